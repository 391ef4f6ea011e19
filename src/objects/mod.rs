//! Durable Objects: each a thin shell over domain logic, one per file.

pub mod rate_limit_do;

//! The orchestrator: a project turns an app into tickets with dependencies, reviewed by its
//! stakeholder and worked through on a board, with every change pushed live to subscribers.
//!
//! - [`model`]: the spec's closed vocabularies (statuses, types, priorities, dependency types)
//!   as enums whose strings are exactly the spec's (and the D1 CHECK lists').
//! - [`protocol`]: every message of the orchestrator WebSocket (`/api/orchestrator/ws`), both
//!   directions, in one place.

pub mod model;
pub mod protocol;

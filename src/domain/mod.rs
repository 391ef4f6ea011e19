//! Plain Rust with no `worker` import: types that parse instead of validate, the arithmetic and
//! protocols the Worker and its Durable Objects share. Everything here unit-tests on the host.

pub mod apps;
pub mod cache;
pub mod codegen;
pub mod config;
pub mod deletion;
pub mod deploy;
pub mod error;
pub mod github;
pub mod hosts;
pub mod ids;
pub mod input;
pub mod oauth;
pub mod openapi;
pub mod orchestrator;
pub mod password;
pub mod preview;
pub mod random;
pub mod ratelimit;
pub mod routes;
pub mod sandbox;
pub mod sandbox_call;
pub mod templates;
pub mod token;
pub mod user;
pub mod verification;
pub mod web;

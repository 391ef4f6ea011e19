//! The orchestrator: a project turns an app into tickets with dependencies, reviewed by its
//! stakeholder and worked through on a board, with every change pushed live to subscribers.
//!
//! - [`model`]: the spec's closed vocabularies (statuses, types, priorities, dependency types)
//!   as enums whose strings are exactly the spec's (and the D1 CHECK lists').
//! - [`graph`]: the dependency graph's rules (validation, cycles, derived `file_conflict`
//!   dependencies).
//! - [`generation`]: AI ticket generation (analysis, prompt, answer parser, resumable driver).
//! - [`protocol`]: every message of the orchestrator WebSocket (`/api/orchestrator/ws`), both
//!   directions, in one place.
//! - [`hub`]: the hub's connection policy (authentication, subscriptions, deadlines, fan-out)
//!   for one shard, and a project's directory of shards; [`hub_call`]: how the hub is sharded
//!   over Durable Objects and the call each of them takes.
//! - [`lifecycle`]: the project and ticket state machines, readiness and completion.
//! - [`plan`]: the plan computed from tickets and `blocks` dependencies (order, levels,
//!   critical path, ready tickets, a cycle).
//! - [`api`]: the REST shapes (rows, objects) and the parsing of every request body and query.
//! - [`events`]: the hub events a REST change publishes, derived from before and after.
//! - [`implement`]: a ticket implemented by the code generator (start rules, the edit request,
//!   the job kept with the agent's run, completion decisions).

pub mod api;
pub mod events;
pub mod generation;
pub mod graph;
pub mod hub;
pub mod hub_call;
pub mod implement;
pub mod lifecycle;
pub mod model;
pub mod plan;
pub mod protocol;

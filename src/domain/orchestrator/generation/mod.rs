//! AI ticket generation (spec: AI Ticket Generation): a project's app is analysed, the model
//! breaks its work into tickets with dependencies, and the answer becomes a development plan.
//!
//! - [`analysis`]: the deterministic steps (structure, stack, dependencies, components, routes,
//!   API endpoints) into the project's `analysisResult`, and what the prompt shows of the app;
//! - [`tickets`]: the prompt, the strict parser of the model's answer (graph checked with
//!   [`super::graph`]) and the plan made from an accepted answer;
//! - [`call`]: the planner object's call;
//! - [`driver`]: one generation over its ports (model, records, job storage, hub), resumable
//!   after an interruption, with one feedback round for an unusable answer.

pub mod analysis;
pub mod call;
pub mod driver;
#[cfg(test)]
mod driver_tests;
pub mod tickets;

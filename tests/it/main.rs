//! Integration suite: the public HTTP API of a real `wrangler dev` (embedded D1, KV, R2 and
//! Durable Objects), driven as a client would, with fakes of external services on loopback.

mod agent;
mod ai;
mod apps;
mod auth;
mod deletion;
mod deploy;
mod fake_cloudflare;
mod fake_github;
mod fake_llm;
mod fakes;
mod github;
mod harness;
mod hub_client;
mod implement;
mod matrix;
mod oauth;
mod openapi;
mod orchestrator;
mod orchestrator_gen;
mod orchestrator_ws;
mod platform;
mod ratelimit;
mod sandbox;
mod tokens;
mod validation;
mod web;

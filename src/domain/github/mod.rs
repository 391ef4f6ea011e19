//! GitHub for exporting apps and working on tickets (issue 14): the REST client over a small HTTP
//! port ([`client`]), the incremental push of an app's files ([`push`]), webhook signatures and
//! events ([`webhook`]), the names we give repositories and branches ([`names`]), and a
//! repository imported as an app ([`import`]).
//!
//! Nothing here imports `worker`: the Worker's adapter (`services::github`) implements
//! [`client::GitHubHttp`] with `Fetch`, and the tests here implement it in memory.

pub mod client;
pub mod import;
pub mod names;
pub mod push;
pub mod webhook;

pub use client::{
    GitHub, GitHubError, GitHubErrorKind, GitHubHttp, HttpMethod, HttpRequest, HttpResponse,
};

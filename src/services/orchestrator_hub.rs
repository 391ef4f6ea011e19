//! Publishing to the orchestrator WebSocket hub: every change made through the REST API (or by
//! ticket generation) is published here as a [`HubMessage`] naming its project, and reaches that
//! project's subscribers and only them: one call to the project's directory object, which
//! forwards the event to the hub shards holding its subscribers
//! ([`crate::domain::orchestrator::hub_call`]).
//!
//! Invariant: publishing never fails the change it reports (the change is committed first); a
//! failure is logged, and a client that missed an event repairs it by reloading on reconnect.

use crate::domain::ids::ProjectId;
use crate::domain::orchestrator::hub_call::{self, directory_name, HubCall, Published, BINDING};
use crate::domain::orchestrator::protocol::HubMessage;
use worker::{Env, Method, Request, RequestInit};

/// Delivers `message` to the subscribers of its project; how many sockets it reached (`None`:
/// it could not be published, which is logged). Messages without a project go nowhere.
pub async fn publish(env: &Env, message: &HubMessage) -> Option<Published> {
    publish_all(env, std::slice::from_ref(message))
        .await
        .into_iter()
        .next()
        .flatten()
}

/// Delivers the events of one change, in order: one call per project they name (in the order
/// the projects first appear), so a subscriber gets a change's events together and the change
/// waits for one round trip per project rather than one per event. One answer per project.
pub async fn publish_all(env: &Env, messages: &[HubMessage]) -> Vec<Option<Published>> {
    let batches = hub_call::batches(messages);
    let mut out = Vec::with_capacity(batches.len());
    for (project, messages) in batches {
        out.push(send(env, project, messages).await);
    }
    out
}

async fn send(env: &Env, project: ProjectId, messages: Vec<String>) -> Option<Published> {
    let call = HubCall::Publish {
        project: project.clone(),
        messages,
    };
    let sent = async {
        let headers = worker::Headers::new();
        headers.set("Content-Type", "application/json")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(call.to_json().into()));
        let req = Request::new_with_init("https://orchestrator-hub/", &init)?;
        let mut resp = super::stub(env, BINDING, &directory_name(&project))?
            .fetch_with_request(req)
            .await?;
        if resp.status_code() != 200 {
            return Err(worker::Error::RustError(format!(
                "the directory answered {}",
                resp.status_code()
            )));
        }
        resp.json::<Published>().await
    };
    match sent.await {
        Ok(p) => Some(p),
        Err(e) => {
            worker::console_error!("hub: publishing to {project} failed: {e}");
            None
        }
    }
}

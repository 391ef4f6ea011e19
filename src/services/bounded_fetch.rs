//! One outgoing HTTP exchange with a deadline, for the clients of external APIs (GitHub,
//! Cloudflare): the whole answer (status, headers, body) or a one-line reason.
//!
//! Invariant: an exchange without its full answer within the deadline is aborted (its
//! connection released), never left running behind the caller.

use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Request};

/// A complete answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Sends `request` and reads its whole answer, or gives up after `timeout_ms`.
pub async fn send(request: Request, timeout_ms: u64) -> Result<Answer, String> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async {
        let mut resp = Fetch::Request(request)
            .send_with_signal(&signal)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status_code();
        let headers = resp.headers().entries().collect();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    };
    let timer = Delay::from(Duration::from_millis(timeout_ms));
    // Bound first: the pinned futures borrow `signal`, so they must be dropped before it is.
    let outcome = match select(Box::pin(exchange), Box::pin(timer)).await {
        Either::Left((answer, _)) => answer,
        Either::Right(_) => {
            controller.abort();
            Err(format!("no answer within {} s", timeout_ms / 1000))
        }
    };
    outcome
}

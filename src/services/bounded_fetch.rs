//! One outgoing HTTP exchange with a deadline, for the clients of external APIs (GitHub,
//! Cloudflare): the whole answer (status, headers, body) or a one-line reason.
//!
//! Invariant: an exchange without its full answer within the deadline is aborted (its
//! connection released), never left running behind the caller.

use futures_util::future::{select, Either};
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

/// A complete answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The request to send: `headers` set one by one (a header that cannot be sent is named),
/// `body` when there is one; `api` names the service when its URL is not valid.
pub fn request<K: AsRef<str>, V: AsRef<str>>(
    method: Method,
    url: &str,
    headers: impl IntoIterator<Item = (K, V)>,
    body: Option<JsValue>,
    api: &str,
) -> Result<Request, String> {
    let h = Headers::new();
    for (k, v) in headers {
        let k = k.as_ref();
        h.set(k, v.as_ref())
            .map_err(|_| format!("the header `{k}` cannot be sent"))?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(h).with_body(body);
    Request::new_with_init(url, &init).map_err(|_| format!("the {api} URL is not valid"))
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

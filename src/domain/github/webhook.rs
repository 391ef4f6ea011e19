//! GitHub webhooks: the `X-Hub-Signature-256` check and the events the ticket workflow acts on.
//!
//! Invariants:
//! - a delivery counts only when its signature is `sha256=<hex HMAC-SHA256 of the raw body under
//!   WEBHOOK_SECRET>`, compared in constant time; anything else (missing, malformed, another
//!   secret, another body) is refused before the body is read as JSON;
//! - the events are read from GitHub's payload shapes, and anything we do not act on is
//!   [`Event::Ignored`] (acknowledged, changing nothing).

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Whether `header` (the `X-Hub-Signature-256` value) signs `body` under `secret`.
pub fn verify_signature(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(given) = decode_hex(hex) else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given).is_ok()
}

/// The signature header value for `body` (what GitHub sends; tests and tools use it).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// What a delivery means for tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A pull request was closed: merged or not.
    PullClosed {
        repo: String,
        branch: String,
        url: String,
        merged: bool,
    },
    /// Commits were pushed to a branch.
    Push {
        repo: String,
        branch: String,
        commits: u64,
    },
    /// `ping`, other events and actions: acknowledged, nothing changes.
    Ignored,
}

fn s(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().map(str::to_string)
}

/// Reads a delivery of type `event` (the `X-GitHub-Event` header). `Err` says what is missing
/// from a payload that should carry it.
pub fn parse(event: &str, payload: &Value) -> Result<Event, String> {
    let repo = || s(payload, &["repository", "full_name"]).ok_or("the payload names no repository");
    match event {
        "pull_request" if s(payload, &["action"]).as_deref() == Some("closed") => {
            let pr = payload
                .get("pull_request")
                .ok_or("the payload has no pull_request")?;
            Ok(Event::PullClosed {
                repo: repo()?,
                branch: s(pr, &["head", "ref"]).ok_or("the pull request names no head branch")?,
                url: s(pr, &["html_url"]).unwrap_or_default(),
                merged: pr.get("merged").and_then(Value::as_bool).unwrap_or(false),
            })
        }
        "push" => {
            let r = s(payload, &["ref"]).ok_or("the push names no ref")?;
            let Some(branch) = r.strip_prefix("refs/heads/") else {
                return Ok(Event::Ignored);
            };
            let commits = payload
                .get("commits")
                .and_then(Value::as_array)
                .map_or(0, |c| c.len() as u64);
            Ok(Event::Push {
                repo: repo()?,
                branch: branch.to_string(),
                commits,
            })
        }
        _ => Ok(Event::Ignored),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signatures() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign("It's a Secret to Everybody", b"Hello, World!"), sig);
        assert!(verify_signature(
            "It's a Secret to Everybody",
            b"Hello, World!",
            Some(sig)
        ));
        assert!(!verify_signature(
            "another secret",
            b"Hello, World!",
            Some(sig)
        ));
        assert!(!verify_signature(
            "It's a Secret to Everybody",
            b"Hello, World?",
            Some(sig)
        ));
        for bad in [
            None,
            Some(""),
            Some("sha1=abc"),
            Some("sha256="),
            Some("sha256=zz"),
            Some(&sig[..70]),
        ] {
            assert!(
                !verify_signature("It's a Secret to Everybody", b"Hello, World!", bad),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn events() {
        let closed = json!({"action": "closed", "repository": {"full_name": "o/r"},
            "pull_request": {"merged": true, "html_url": "https://github.com/o/r/pull/1", "head": {"ref": "ticket-1-x"}}});
        assert_eq!(
            parse("pull_request", &closed).unwrap(),
            Event::PullClosed {
                repo: "o/r".into(),
                branch: "ticket-1-x".into(),
                url: "https://github.com/o/r/pull/1".into(),
                merged: true
            }
        );
        let opened =
            json!({"action": "opened", "repository": {"full_name": "o/r"}, "pull_request": {}});
        assert_eq!(parse("pull_request", &opened).unwrap(), Event::Ignored);
        let push = json!({"ref": "refs/heads/ticket-2-y", "repository": {"full_name": "o/r"}, "commits": [{}, {}]});
        assert_eq!(
            parse("push", &push).unwrap(),
            Event::Push {
                repo: "o/r".into(),
                branch: "ticket-2-y".into(),
                commits: 2
            }
        );
        let tag = json!({"ref": "refs/tags/v1", "repository": {"full_name": "o/r"}});
        assert_eq!(parse("push", &tag).unwrap(), Event::Ignored);
        assert_eq!(parse("ping", &json!({"zen": "x"})).unwrap(), Event::Ignored);
        assert!(parse("push", &json!({"ref": "refs/heads/x"})).is_err());
    }
}

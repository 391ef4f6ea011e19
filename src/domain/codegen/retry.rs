//! When a failed model call is tried again, after how long, and when to switch to the
//! operation's fallback model.
//!
//! Invariants:
//! - transient failures (429, 408, 5xx, timeouts, dropped connections, a stream cut before any
//!   content) are retried on the same model up to `max_attempts` attempts in all, with
//!   exponential backoff and full jitter (`delay = jitter × min(max, base × 2^(n−1))`), never
//!   sooner than a `Retry-After` asks;
//! - failures another model might not have (a 4xx such as an unknown model or a context that is
//!   too long, a bad key for that provider, a provider error that is not transient) skip the
//!   remaining retries and go to the fallback;
//! - the fallback is used at most once per call, and nothing is retried after content reached
//!   the client or after a content-policy refusal (another attempt would repeat or repeat the
//!   refusal);
//! - the caller supplies the jitter fraction, so the schedule is deterministic under test.

use super::chat_stream::{ChatError, ProviderError};

/// How a model call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A non-2xx response.
    Status {
        status: u16,
        /// From `Retry-After` (seconds) or `retry-after-ms`, in milliseconds.
        retry_after_ms: Option<u64>,
    },
    /// No response (or no next chunk) in time.
    Timeout,
    /// The connection failed or dropped.
    Connection,
    /// The stream ended before the provider said it was done.
    Truncated { received_content: bool },
    /// A response that is not what an OpenAI-compatible endpoint sends.
    Malformed,
    /// An error object from the provider (mid-stream or in a 2xx body).
    Provider { transient: bool },
    /// The provider refused on content-policy grounds.
    ContentPolicy,
}

/// What a failure allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Worth trying the same model again.
    Transient,
    /// This model will keep failing; another might not.
    ModelSpecific,
    /// Nothing will help (or a retry would duplicate output).
    Final,
}

/// Whether a provider error object describes a passing condition.
fn transient_provider_error(e: &ProviderError) -> bool {
    let fields: Vec<String> = [e.kind.as_deref(), e.code.as_deref()]
        .iter()
        .flatten()
        .map(|f| f.to_ascii_lowercase())
        .collect();
    // Quota exhaustion looks like a rate limit but does not pass with time.
    if fields.iter().any(|f| f.contains("quota")) {
        return false;
    }
    fields.iter().any(|f| {
        [
            "rate_limit",
            "overloaded",
            "server_error",
            "timeout",
            "unavailable",
            "internal",
        ]
        .iter()
        .any(|k| f.contains(k))
            || matches!(
                f.as_str(),
                "408" | "429" | "500" | "502" | "503" | "504" | "529"
            )
    })
}

impl Failure {
    /// A non-2xx response, reading the body for a content-policy refusal.
    pub fn from_response(status: u16, retry_after_ms: Option<u64>, body: &str) -> Self {
        if (400..500).contains(&status) && ProviderError::from_body(body).is_content_policy() {
            return Failure::ContentPolicy;
        }
        Failure::Status {
            status,
            retry_after_ms,
        }
    }

    /// The failure a stream or completion decoding error amounts to.
    pub fn from_chat_error(e: &ChatError) -> Self {
        match e {
            ChatError::Provider(p) if p.is_content_policy() => Failure::ContentPolicy,
            ChatError::Provider(p) => Failure::Provider {
                transient: transient_provider_error(p),
            },
            ChatError::Malformed(_) => Failure::Malformed,
            ChatError::Truncated { received_content } => Failure::Truncated {
                received_content: *received_content,
            },
        }
    }

    pub fn class(&self) -> Class {
        match self {
            Failure::Status { status, .. } => match status {
                408 | 429 | 500..=599 => Class::Transient,
                _ => Class::ModelSpecific,
            },
            Failure::Timeout | Failure::Connection | Failure::Malformed => Class::Transient,
            Failure::Truncated {
                received_content: false,
            } => Class::Transient,
            Failure::Truncated {
                received_content: true,
            } => Class::Final,
            Failure::Provider { transient: true } => Class::Transient,
            Failure::Provider { transient: false } => Class::ModelSpecific,
            Failure::ContentPolicy => Class::Final,
        }
    }

    fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Failure::Status { retry_after_ms, .. } => *retry_after_ms,
            _ => None,
        }
    }
}

/// Reads a `Retry-After` header given in seconds (the HTTP-date form is not supported and reads
/// as absent).
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().map(|s| s.saturating_mul(1000))
}

/// Reads a `retry-after-ms` header (OpenAI and others send it).
pub fn parse_retry_after_ms(value: &str) -> Option<u64> {
    let v = value.trim();
    match v.parse::<f64>() {
        Ok(ms) if ms.is_finite() && ms >= 0.0 => Some(ms.ceil() as u64),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts on the primary model, the first included.
    pub max_attempts: u32,
    /// Attempts on the fallback model.
    pub fallback_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// A `Retry-After` longer than this is not waited out: the fallback is tried instead.
    pub max_retry_after_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            fallback_attempts: 2,
            base_delay_ms: 500,
            max_delay_ms: 8_000,
            max_retry_after_ms: 30_000,
        }
    }
}

impl RetryPolicy {
    /// The full-jitter backoff before retry number `retry` (1 for the first retry).
    pub fn backoff_ms(&self, retry: u32, jitter: f64) -> u64 {
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let exp = retry.saturating_sub(1).min(32);
        let ceiling = self
            .base_delay_ms
            .saturating_mul(1u64 << exp)
            .min(self.max_delay_ms);
        ((ceiling as f64) * jitter).floor().min(ceiling as f64) as u64
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Try the same model again after `delay_ms`.
    Retry {
        delay_ms: u64,
    },
    /// Switch to the fallback model now (its first attempt needs no delay).
    Fallback,
    GiveUp,
}

/// The attempts of one logical model call.
#[derive(Debug, Clone)]
pub struct Attempts {
    policy: RetryPolicy,
    has_fallback: bool,
    on_fallback: bool,
    /// Attempts made on the current model.
    attempts: u32,
    total: u32,
}

impl Attempts {
    pub fn new(policy: RetryPolicy, has_fallback: bool) -> Self {
        Self {
            policy,
            has_fallback,
            on_fallback: false,
            attempts: 0,
            total: 0,
        }
    }

    /// Whether the next attempt goes to the fallback model.
    pub fn on_fallback(&self) -> bool {
        self.on_fallback
    }

    /// Attempts that have failed so far, across both models.
    pub fn failed(&self) -> u32 {
        self.total
    }

    /// Records a failed attempt and says what to do next. `jitter` is a uniform fraction in
    /// `[0, 1)` from the caller's randomness.
    pub fn next(&mut self, failure: &Failure, jitter: f64) -> Action {
        self.attempts += 1;
        self.total += 1;
        let limit = if self.on_fallback {
            self.policy.fallback_attempts
        } else {
            self.policy.max_attempts
        };
        match failure.class() {
            Class::Final => Action::GiveUp,
            Class::ModelSpecific => self.switch(),
            Class::Transient => {
                let retry_after = failure.retry_after_ms();
                if retry_after.is_some_and(|ms| ms > self.policy.max_retry_after_ms) {
                    return self.switch();
                }
                if self.attempts >= limit {
                    return self.switch();
                }
                let backoff = self.policy.backoff_ms(self.attempts, jitter);
                Action::Retry {
                    delay_ms: backoff.max(retry_after.unwrap_or(0)),
                }
            }
        }
    }

    fn switch(&mut self) -> Action {
        if self.has_fallback && !self.on_fallback {
            self.on_fallback = true;
            self.attempts = 0;
            Action::Fallback
        } else {
            Action::GiveUp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: u16) -> Failure {
        Failure::Status {
            status: s,
            retry_after_ms: None,
        }
    }

    #[test]
    fn classification() {
        for s in [408, 429, 500, 502, 503, 504, 529] {
            assert_eq!(status(s).class(), Class::Transient, "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert_eq!(status(s).class(), Class::ModelSpecific, "{s}");
        }
        assert_eq!(Failure::Timeout.class(), Class::Transient);
        assert_eq!(Failure::Connection.class(), Class::Transient);
        assert_eq!(
            Failure::Truncated {
                received_content: false
            }
            .class(),
            Class::Transient
        );
        assert_eq!(
            Failure::Truncated {
                received_content: true
            }
            .class(),
            Class::Final
        );
        assert_eq!(Failure::ContentPolicy.class(), Class::Final);
    }

    #[test]
    fn failures_from_responses_and_stream_errors() {
        let body = r#"{"error":{"message":"flagged","type":"invalid_request_error","code":"content_policy_violation"}}"#;
        assert_eq!(
            Failure::from_response(400, None, body),
            Failure::ContentPolicy
        );
        assert_eq!(
            Failure::from_response(503, Some(1000), "<html>"),
            Failure::Status {
                status: 503,
                retry_after_ms: Some(1000)
            }
        );
        let p = |kind: &str, code: Option<&str>| {
            ChatError::Provider(ProviderError {
                message: "m".into(),
                kind: Some(kind.into()),
                code: code.map(str::to_string),
            })
        };
        assert_eq!(
            Failure::from_chat_error(&p("overloaded_error", None)),
            Failure::Provider { transient: true }
        );
        assert_eq!(
            Failure::from_chat_error(&p("x", Some("529"))),
            Failure::Provider { transient: true }
        );
        assert_eq!(
            Failure::from_chat_error(&p("insufficient_quota", Some("rate_limit_exceeded"))),
            Failure::Provider { transient: false },
            "a quota never refills within a retry"
        );
        assert_eq!(
            Failure::from_chat_error(&p("requests", Some("rate_limit_exceeded"))),
            Failure::Provider { transient: true }
        );
        assert_eq!(
            Failure::from_chat_error(&p("insufficient_quota", None)),
            Failure::Provider { transient: false }
        );
        assert_eq!(
            Failure::from_chat_error(&p("invalid_request_error", Some("model_not_found"))),
            Failure::Provider { transient: false }
        );
        assert_eq!(
            Failure::from_chat_error(&p("content_filter", None)),
            Failure::ContentPolicy
        );
        assert_eq!(
            Failure::from_chat_error(&ChatError::Malformed("x".into())),
            Failure::Malformed
        );
        assert_eq!(
            Failure::from_chat_error(&ChatError::Truncated {
                received_content: true
            }),
            Failure::Truncated {
                received_content: true
            }
        );
    }

    #[test]
    fn retry_after_headers() {
        assert_eq!(parse_retry_after("7"), Some(7000));
        assert_eq!(parse_retry_after(" 0 "), Some(0));
        assert_eq!(parse_retry_after("1.5"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(parse_retry_after("99999999999999999999"), None);
        assert_eq!(parse_retry_after("18446744073709552"), Some(u64::MAX));
        assert_eq!(parse_retry_after_ms("250.2"), Some(251));
        assert_eq!(parse_retry_after_ms("x"), None);
        assert_eq!(parse_retry_after_ms("-5"), None);
    }

    #[test]
    fn backoff_is_exponential_capped_and_fully_jittered() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff_ms(1, 0.999_999), 499);
        assert_eq!(p.backoff_ms(2, 0.5), 500);
        assert_eq!(p.backoff_ms(3, 0.5), 1000);
        assert_eq!(p.backoff_ms(10, 0.5), 4000, "capped at max_delay");
        assert_eq!(p.backoff_ms(1000, 0.5), 4000, "no overflow");
        assert_eq!(p.backoff_ms(3, 0.0), 0);
        assert_eq!(p.backoff_ms(3, 7.0), 2000, "jitter clamped");
        assert_eq!(p.backoff_ms(3, f64::NAN), 0);
        assert_eq!(p.backoff_ms(3, -1.0), 0);
    }

    #[test]
    fn transient_failures_retry_then_fall_back_once_then_give_up() {
        let mut a = Attempts::new(RetryPolicy::default(), true);
        assert!(!a.on_fallback());
        assert_eq!(a.next(&status(500), 0.5), Action::Retry { delay_ms: 250 });
        assert_eq!(
            a.next(&Failure::Timeout, 0.5),
            Action::Retry { delay_ms: 500 }
        );
        assert_eq!(a.next(&status(429), 0.5), Action::Fallback);
        assert!(a.on_fallback());
        assert_eq!(
            a.next(&Failure::Connection, 0.5),
            Action::Retry { delay_ms: 250 }
        );
        assert_eq!(a.next(&status(503), 0.5), Action::GiveUp);
        assert_eq!(a.failed(), 5);
    }

    #[test]
    fn without_a_fallback_exhaustion_gives_up() {
        let mut a = Attempts::new(RetryPolicy::default(), false);
        assert!(matches!(a.next(&status(502), 0.1), Action::Retry { .. }));
        assert!(matches!(a.next(&status(502), 0.1), Action::Retry { .. }));
        assert_eq!(a.next(&status(502), 0.1), Action::GiveUp);
        let mut a = Attempts::new(RetryPolicy::default(), false);
        assert_eq!(a.next(&status(404), 0.1), Action::GiveUp);
    }

    #[test]
    fn model_specific_failures_skip_to_the_fallback() {
        let mut a = Attempts::new(RetryPolicy::default(), true);
        assert_eq!(a.next(&status(404), 0.5), Action::Fallback);
        // The fallback gets its own retries.
        assert!(matches!(a.next(&status(500), 0.5), Action::Retry { .. }));
        assert_eq!(a.next(&status(401), 0.5), Action::GiveUp);
    }

    #[test]
    fn final_failures_never_retry() {
        for f in [
            Failure::ContentPolicy,
            Failure::Truncated {
                received_content: true,
            },
        ] {
            let mut a = Attempts::new(RetryPolicy::default(), true);
            assert_eq!(a.next(&f, 0.5), Action::GiveUp, "{f:?}");
        }
        // Even on the first failure, a stream cut before content is retried.
        let mut a = Attempts::new(RetryPolicy::default(), true);
        assert!(matches!(
            a.next(
                &Failure::Truncated {
                    received_content: false
                },
                0.5
            ),
            Action::Retry { .. }
        ));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let mut a = Attempts::new(RetryPolicy::default(), true);
        let f = Failure::Status {
            status: 429,
            retry_after_ms: Some(5_000),
        };
        assert_eq!(a.next(&f, 0.0), Action::Retry { delay_ms: 5_000 });
        // A backoff longer than Retry-After wins.
        let mut a = Attempts::new(
            RetryPolicy {
                base_delay_ms: 20_000,
                max_delay_ms: 20_000,
                ..RetryPolicy::default()
            },
            true,
        );
        assert_eq!(a.next(&f, 0.5), Action::Retry { delay_ms: 10_000 });
        // Asked to wait longer than the cap: switch instead.
        let mut a = Attempts::new(RetryPolicy::default(), true);
        let long = Failure::Status {
            status: 429,
            retry_after_ms: Some(120_000),
        };
        assert_eq!(a.next(&long, 0.5), Action::Fallback);
        assert_eq!(a.next(&long, 0.5), Action::GiveUp);
    }

    #[test]
    fn single_attempt_policy() {
        let p = RetryPolicy {
            max_attempts: 1,
            fallback_attempts: 1,
            ..RetryPolicy::default()
        };
        let mut a = Attempts::new(p, true);
        assert_eq!(a.next(&status(500), 0.5), Action::Fallback);
        assert_eq!(a.next(&status(500), 0.5), Action::GiveUp);
    }
}

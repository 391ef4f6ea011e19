//! Sliding-window rate limiting (the two-window counter Cloudflare itself uses): the estimate is
//! `previous × (unelapsed share of the window) + current`, computed in exact integer arithmetic.
//!
//! Invariants: a hit is admitted only if the estimate *including it* stays within the limit, so with
//! a limit of N on a fresh key exactly N of any burst pass; a refused hit changes nothing.
//!
//! The contract with the `DORateLimitStore` objects (one per key, binding [`BINDING`]): the
//! caller (`services::ratelimit`) sends a [`Hit`] as the JSON body of a POST to the object named
//! [`Hit::key`]; the object parses it once ([`Hit::parse`], which refuses a limit the arithmetic
//! cannot use), decides with its own clock (one clock per key keeps its windows in order) and
//! answers a [`Decision`]; a malformed hit is a 400.

use serde::{Deserialize, Serialize};

/// `requests` per `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limit {
    pub requests: u64,
    pub window_ms: i64,
}

impl Limit {
    /// Parses `"<requests>/<seconds>"` (e.g. `1000/60`) or `"<requests>/<n>m"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (n, w) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("rate limit {s:?} must look like 100/60"))?;
        let requests: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("bad request count in {s:?}"))?;
        let w = w.trim();
        let seconds: i64 = match w.strip_suffix('m') {
            Some(m) => m.parse::<i64>().map(|m| m * 60),
            None => w.trim_end_matches('s').parse(),
        }
        .map_err(|_| format!("bad window in {s:?}"))?;
        if requests == 0 || !(1..=86_400).contains(&seconds) {
            return Err(format!("rate limit {s:?} out of range"));
        }
        Ok(Self {
            requests,
            window_ms: seconds * 1000,
        })
    }
}

/// What a key's object keeps between hits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: i64,
    pub current: u64,
    pub previous: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Epoch milliseconds: when exhausted, the moment a request of the same cost is admitted again;
    /// otherwise the end of the current window.
    pub reset_ms: i64,
}

impl Decision {
    /// Seconds until [`Decision::reset_ms`], at least 1 (for `Retry-After`).
    pub fn retry_after_secs(&self, now_ms: i64) -> i64 {
        ((self.reset_ms - now_ms).max(0) + 999) / 1000
    }
}

/// The Durable Object binding of the rate-limit objects.
pub const BINDING: &str = "RATE_LIMITER";

/// Most requests a limit may allow, and its longest window (a day, as [`Limit::parse`] allows).
const MAX_REQUESTS: u64 = 1 << 40;
const MAX_WINDOW_MS: i64 = 86_400_000;

/// A hit on a key: the one request caller and object share, answered with a [`Decision`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    /// `<class>:<user id or client address>`: the name of the object the hit is sent to.
    pub key: String,
    /// `limit.requests` per `limit.window_ms`.
    pub limit: Limit,
    /// How much the hit counts (0: a probe that records nothing).
    pub cost: u64,
}

impl Hit {
    pub fn new(class: &str, key: &str, limit: Limit, cost: u64) -> Self {
        Hit {
            key: format!("{class}:{key}"),
            limit,
            cost,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Reads a hit, refusing malformed JSON, an empty key and a limit with no requests or a
    /// window outside 1 ms..1 day (the window arithmetic divides by it).
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let hit: Hit =
            serde_json::from_slice(json).map_err(|e| format!("malformed rate-limit hit: {e}"))?;
        if hit.key.is_empty() {
            return Err("malformed rate-limit hit: empty key".into());
        }
        let Limit {
            requests,
            window_ms,
        } = hit.limit;
        if !(1..=MAX_REQUESTS).contains(&requests) || !(1..=MAX_WINDOW_MS).contains(&window_ms) {
            return Err(format!(
                "malformed rate-limit hit: limit {requests}/{window_ms} ms out of range"
            ));
        }
        Ok(hit)
    }
}

impl Decision {
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(json).map_err(|e| format!("malformed rate-limit decision: {e}"))
    }
}

impl Window {
    /// Moves the window forward to the one containing `now_ms`.
    fn roll(&mut self, limit: Limit, now_ms: i64) {
        let start = now_ms - now_ms.rem_euclid(limit.window_ms);
        if start == self.start_ms {
            return;
        }
        self.previous = if start - self.start_ms == limit.window_ms {
            self.current
        } else {
            0
        };
        self.current = 0;
        self.start_ms = start;
    }

    /// `estimate × window` (kept scaled so nothing is rounded).
    fn scaled(&self, limit: Limit, now_ms: i64, extra: u64) -> u128 {
        let unelapsed = (limit.window_ms - (now_ms - self.start_ms)) as u128;
        self.previous as u128 * unelapsed + (self.current + extra) as u128 * limit.window_ms as u128
    }

    /// Records a hit of `cost` if it fits; answers either way.
    pub fn hit(&mut self, limit: Limit, now_ms: i64, cost: u64) -> Decision {
        self.roll(limit, now_ms);
        let cap = limit.requests as u128 * limit.window_ms as u128;
        let allowed = cost <= limit.requests && self.scaled(limit, now_ms, cost) <= cap;
        if allowed {
            self.current += cost;
        }
        let used = self.scaled(limit, now_ms, 0);
        let remaining = (cap.saturating_sub(used) / limit.window_ms as u128) as u64;
        // While there is room, the reset is the end of the current window (when its count starts
        // to decay); once exhausted, it is the moment a request fits again.
        let reset_ms = if remaining > 0 {
            self.start_ms + limit.window_ms
        } else {
            self.reset_at(limit, now_ms, cost.max(1))
        };
        Decision {
            allowed,
            limit: limit.requests,
            remaining,
            reset_ms,
        }
    }

    /// The earliest moment a hit of `cost` fits, assuming no other hits.
    fn reset_at(&self, limit: Limit, now_ms: i64, cost: u64) -> i64 {
        let w = limit.window_ms as u128;
        let room = (limit.requests.saturating_sub(cost)) as u128 * w;
        if self.scaled(limit, now_ms, cost) <= (limit.requests as u128) * w {
            return now_ms;
        }
        if self.current + cost <= limit.requests {
            // It fits in this window once enough of `previous` has decayed:
            // previous × (w − e) ≤ room − current × w  ⇒  e ≥ w − (room − current·w) / previous.
            let budget = room - self.current as u128 * w;
            let e = w - budget / self.previous as u128;
            return self.start_ms + e as i64;
        }
        // Not this window: in the next one `current` becomes `previous` and decays the same way.
        let next = self.start_ms + limit.window_ms;
        if self.current == 0 {
            return next;
        }
        let e = w - (room / self.current as u128).min(w);
        next + e as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limit = Limit {
        requests: 10,
        window_ms: 60_000,
    };

    #[test]
    fn parses_config() {
        assert_eq!(
            Limit::parse("1000/60").unwrap(),
            Limit {
                requests: 1000,
                window_ms: 60_000
            }
        );
        assert_eq!(Limit::parse("20/1m").unwrap().window_ms, 60_000);
        assert_eq!(Limit::parse("5/10s").unwrap().window_ms, 10_000);
        for bad in ["", "10", "0/60", "x/60", "10/0", "10/-1"] {
            assert!(Limit::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exactly_n_of_a_burst_pass() {
        let mut w = Window::default();
        let now = 1_000_000_123;
        let passed = (0..25).filter(|_| w.hit(L, now, 1).allowed).count();
        assert_eq!(passed, 10);
        let d = w.hit(L, now, 1);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(d.reset_ms > now);
    }

    #[test]
    fn remaining_counts_down() {
        let mut w = Window::default();
        let d = w.hit(L, 0, 1);
        assert_eq!((d.remaining, d.reset_ms), (9, 60_000));
        assert_eq!(w.hit(L, 1, 1).remaining, 8);
    }

    #[test]
    fn previous_window_decays_linearly() {
        let mut w = Window::default();
        for _ in 0..10 {
            assert!(w.hit(L, 59_000, 1).allowed);
        }
        // Just into the next window, nearly all of the previous 10 still count.
        assert!(!w.hit(L, 60_001, 1).allowed);
        // Halfway through, half of them count: 5 more fit, the sixth does not.
        let passed = (0..10).filter(|_| w.hit(L, 90_000, 1).allowed).count();
        assert_eq!(passed, 5);
        // Two windows later, everything is forgotten.
        let passed = (0..20).filter(|_| w.hit(L, 240_000, 1).allowed).count();
        assert_eq!(passed, 10);
    }

    #[test]
    fn reset_is_when_a_hit_fits_again() {
        let mut w = Window::default();
        for _ in 0..10 {
            w.hit(L, 30_000, 1);
        }
        let d = w.hit(L, 30_000, 1);
        assert!(!d.allowed);
        // Next window starts at 60 000 with previous = 10; one request fits when
        // 10 × (60 000 − e) ≤ 9 × 60 000, i.e. e ≥ 6 000.
        assert_eq!(d.reset_ms, 66_000);
        let mut probe = w;
        assert!(!probe.hit(L, 65_999, 1).allowed);
        let mut probe = w;
        assert!(probe.hit(L, 66_000, 1).allowed);
        assert_eq!(d.retry_after_secs(30_000), 36);
    }

    #[test]
    fn hits_and_decisions_round_trip() {
        let hit = Hit::new("api", "usr_1", L, 2);
        assert_eq!(hit.key, "api:usr_1");
        assert_eq!(
            hit.to_json(),
            r#"{"key":"api:usr_1","limit":{"requests":10,"windowMs":60000},"cost":2}"#
        );
        assert_eq!(Hit::parse(hit.to_json().as_bytes()).unwrap(), hit);
        let d = Window::default().hit(L, 0, 1);
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains(r#""resetMs":60000"#), "{json}");
        assert_eq!(Decision::parse(json.as_bytes()).unwrap(), d);
        assert!(Decision::parse(b"{}").is_err());
    }

    #[test]
    fn malformed_hits_are_refused() {
        for bad in [
            &b"nope"[..],
            br#"{}"#,
            br#"{"key":"k","limit":{"requests":10,"windowMs":60000}}"#,
            br#"{"key":"k","limit":{"requests":10,"windowMs":60000},"cost":-1}"#,
            br#"{"key":"","limit":{"requests":10,"windowMs":60000},"cost":1}"#,
            br#"{"key":"k","limit":{"requests":0,"windowMs":60000},"cost":1}"#,
            br#"{"key":"k","limit":{"requests":10,"windowMs":0},"cost":1}"#,
            br#"{"key":"k","limit":{"requests":10,"windowMs":-5},"cost":1}"#,
            br#"{"key":"k","limit":{"requests":10,"windowMs":86400001},"cost":1}"#,
        ] {
            let e = Hit::parse(bad).unwrap_err();
            assert!(
                e.starts_with("malformed rate-limit hit"),
                "{}: {e}",
                String::from_utf8_lossy(bad)
            );
        }
        let probe = br#"{"key":"ai_tokens:u","limit":{"requests":5,"windowMs":1000},"cost":0}"#;
        assert_eq!(Hit::parse(probe).unwrap().cost, 0, "a probe is a hit");
    }

    #[test]
    fn costs_larger_than_the_limit_never_pass_and_change_nothing() {
        let mut w = Window::default();
        assert!(!w.hit(L, 0, 11).allowed);
        assert_eq!(w.current, 0);
        assert!(w.hit(L, 0, 10).allowed);
    }
}

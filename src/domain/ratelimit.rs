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
//!
//! Sign-in backoff ([`Backoff`]) shares those objects, one per account (`signin:<email>`): the
//! caller POSTs a [`SignIn`] to `/backoff` and gets a [`BackoffDecision`]. After
//! [`BackoffPolicy::free_failures`] consecutive failed sign-ins an account is locked for
//! `base × 2^(failures − free)` seconds, capped; a success clears the count. The lock is per
//! account whatever the client address, and applies to unknown addresses alike (a lock says
//! nothing about whether the account exists).
//!
//! [`limiter_key`] chooses whose counter a request hits: the user's for signed-in routes, the
//! client address for the public sign-in routes whatever token comes with the request (a
//! throwaway account's token must not buy a fresh budget).

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

/// Whose counter a request of `class` on a route of level `auth` hits: `user:<id>` for a
/// signed-in caller, else `ip:<address>`; the public routes of the auth class (sign-in,
/// registration, OAuth) always count per address, whatever credentials come with them.
pub fn limiter_key(
    class: super::routes::RateClass,
    auth: super::routes::AuthLevel,
    user_id: Option<&str>,
    client_ip: &str,
) -> String {
    use super::routes::{AuthLevel, RateClass};
    match user_id {
        Some(u) if !(class == RateClass::Auth && auth == AuthLevel::Public) => format!("user:{u}"),
        _ => format!("ip:{client_ip}"),
    }
}

/// The sign-in backoff's settings (`LOGIN_FREE_FAILURES`, `LOGIN_BACKOFF_BASE_SECONDS`,
/// `LOGIN_BACKOFF_MAX_SECONDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackoffPolicy {
    /// Consecutive failures allowed before the first lock.
    pub free_failures: u32,
    pub base_ms: i64,
    pub max_ms: i64,
}

/// What happened, as the caller reports it to the account's object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignInEvent {
    /// Before checking a password: is the account locked?
    Check,
    Failed,
    Succeeded,
}

/// The request to an account's object (`POST /backoff`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignIn {
    pub key: String,
    pub event: SignInEvent,
    pub policy: BackoffPolicy,
}

impl SignIn {
    /// The object of `email`'s account (addresses compared as given: callers normalise them).
    pub fn new(email: &str, event: SignInEvent, policy: BackoffPolicy) -> Self {
        Self {
            key: format!("signin:{email}"),
            event,
            policy,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let s: SignIn =
            serde_json::from_slice(json).map_err(|e| format!("malformed sign-in event: {e}"))?;
        let p = s.policy;
        if s.key.is_empty() || p.base_ms < 1 || p.max_ms < p.base_ms || p.max_ms > MAX_WINDOW_MS {
            return Err("malformed sign-in event: bad key or policy".into());
        }
        Ok(s)
    }
}

/// The answer: whether a sign-in may be tried now, and if not, when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackoffDecision {
    pub allowed: bool,
    /// Consecutive failures so far.
    pub failures: u32,
    /// Epoch milliseconds until which the account is locked (0: not locked).
    pub locked_until_ms: i64,
}

impl BackoffDecision {
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(json).map_err(|e| format!("malformed backoff decision: {e}"))
    }

    /// Seconds until the lock ends, at least 1 (for `Retry-After`).
    pub fn retry_after_secs(&self, now_ms: i64) -> i64 {
        ((self.locked_until_ms - now_ms).max(0) + 999) / 1000
    }
}

/// An account's failed sign-ins, as its object keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub failures: u32,
    pub locked_until_ms: i64,
    pub last_failure_ms: i64,
}

impl Backoff {
    /// Applies `event` at `now_ms` and answers. A check or a failure while locked changes
    /// nothing (a locked account's password is not even tried, so it cannot fail).
    pub fn apply(&mut self, event: SignInEvent, p: BackoffPolicy, now_ms: i64) -> BackoffDecision {
        let locked = now_ms < self.locked_until_ms;
        match event {
            SignInEvent::Check => {}
            SignInEvent::Succeeded => *self = Backoff::default(),
            SignInEvent::Failed if locked => {}
            SignInEvent::Failed => {
                self.failures = self.failures.saturating_add(1);
                self.last_failure_ms = now_ms;
                if self.failures >= p.free_failures.max(1) {
                    let n = (self.failures - p.free_failures.max(1)).min(40);
                    let lock = p.base_ms.saturating_mul(1i64 << n).min(p.max_ms);
                    self.locked_until_ms = now_ms + lock;
                }
            }
        }
        BackoffDecision {
            allowed: now_ms >= self.locked_until_ms,
            failures: self.failures,
            locked_until_ms: if now_ms < self.locked_until_ms {
                self.locked_until_ms
            } else {
                0
            },
        }
    }

    /// When the record can be forgotten: a full maximum lock after the last failure (a later
    /// failure then starts a fresh count).
    pub fn forget_at(&self, p: BackoffPolicy) -> i64 {
        self.locked_until_ms.max(self.last_failure_ms) + p.max_ms
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

    const P: BackoffPolicy = BackoffPolicy {
        free_failures: 5,
        base_ms: 2_000,
        max_ms: 60_000,
    };

    #[test]
    fn sign_in_backoff_grows_caps_and_resets_on_success() {
        let mut b = Backoff::default();
        let t = 1_000_000;
        for i in 1..5 {
            let d = b.apply(SignInEvent::Failed, P, t);
            assert!(d.allowed, "failure {i} is free");
            assert_eq!(d.failures, i);
        }
        // The fifth failure locks for base × 2^0.
        let d = b.apply(SignInEvent::Failed, P, t);
        assert_eq!((d.allowed, d.locked_until_ms), (false, t + 2_000));
        assert_eq!(d.retry_after_secs(t), 2);
        // While locked, checks are refused and failures are not counted.
        assert!(!b.apply(SignInEvent::Check, P, t + 1_999).allowed);
        assert_eq!(b.apply(SignInEvent::Failed, P, t + 1_000).failures, 5);
        // Then each failure doubles the lock: 4 s, 8 s, … up to the cap.
        let mut now = t + 2_000;
        assert!(b.apply(SignInEvent::Check, P, now).allowed);
        let mut locks = Vec::new();
        for _ in 0..6 {
            let d = b.apply(SignInEvent::Failed, P, now);
            locks.push(d.locked_until_ms - now);
            now = d.locked_until_ms;
        }
        assert_eq!(locks, [4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
        // A success clears everything.
        let d = b.apply(SignInEvent::Succeeded, P, now);
        assert_eq!((d.allowed, d.failures, d.locked_until_ms), (true, 0, 0));
        assert_eq!(b, Backoff::default());
        // A huge count never overflows.
        let mut b = Backoff {
            failures: u32::MAX - 1,
            ..Backoff::default()
        };
        let d = b.apply(SignInEvent::Failed, P, t);
        assert_eq!(d.locked_until_ms, t + 60_000);
        assert_eq!(b.forget_at(P), t + 120_000);
    }

    #[test]
    fn sign_in_events_round_trip_and_bad_ones_are_refused() {
        let s = SignIn::new("a@b.co", SignInEvent::Failed, P);
        assert_eq!(s.key, "signin:a@b.co");
        assert_eq!(SignIn::parse(s.to_json().as_bytes()).unwrap(), s);
        let mut bad = s.clone();
        bad.policy.base_ms = 0;
        assert!(SignIn::parse(bad.to_json().as_bytes()).is_err());
        assert!(SignIn::parse(b"{}").is_err());
        let d = Backoff::default().apply(SignInEvent::Check, P, 5);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(BackoffDecision::parse(json.as_bytes()).unwrap(), d);
    }

    #[test]
    fn sign_in_routes_count_per_address_whatever_the_token() {
        use crate::domain::routes::{AuthLevel, RateClass};
        let k = |class, auth, user| limiter_key(class, auth, user, "203.0.113.7");
        assert_eq!(
            k(RateClass::Auth, AuthLevel::Public, Some("usr_1")),
            "ip:203.0.113.7"
        );
        assert_eq!(
            k(RateClass::Auth, AuthLevel::Public, None),
            "ip:203.0.113.7"
        );
        assert_eq!(
            k(RateClass::Auth, AuthLevel::Authenticated, Some("usr_1")),
            "user:usr_1"
        );
        assert_eq!(
            k(RateClass::Api, AuthLevel::Public, Some("usr_1")),
            "user:usr_1"
        );
        assert_eq!(k(RateClass::Api, AuthLevel::Public, None), "ip:203.0.113.7");
    }
}

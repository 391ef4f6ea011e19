//! `DORateLimitStore`: one object per rate-limit key (`<class>:<user id or client IP>`), holding a
//! sliding window ([`crate::domain::ratelimit::Window`]) in its SQLite storage.
//!
//! Contract ([`crate::domain::ratelimit`], which also names the binding): a POST whose body is a
//! [`Hit`], parsed once, answered with the [`Decision`] as JSON; a malformed hit is a 400 and
//! changes nothing. The decision uses the object's clock (one clock per key). A POST to
//! `/backoff` is a [`SignIn`] event for an account's sign-in backoff ([`Backoff`]), answered
//! with a [`BackoffDecision`]; such an object keeps only that record.
//!
//! Invariant: load → decide → save runs with no `await` in between, so the object's single thread
//! makes every decision atomic: with a limit of N, exactly N of any number of concurrent hits pass.

use crate::domain::ratelimit::{Backoff, BackoffDecision, Decision, Hit, SignIn, Window};
use std::cell::{Cell, RefCell};
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, SqlStorageValue, State,
};

#[durable_object]
pub struct DORateLimitStore {
    state: State,
    window: RefCell<Option<Window>>,
    window_ms: Cell<i64>,
    alarm_set: Cell<bool>,
}

#[derive(serde::Deserialize)]
struct Row {
    start_ms: f64,
    current: f64,
    previous: f64,
    window_ms: f64,
}

impl DORateLimitStore {
    fn load(&self) -> Result<Window> {
        if let Some(w) = *self.window.borrow() {
            return Ok(w);
        }
        let sql = self.state.storage().sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS window (id INTEGER PRIMARY KEY CHECK (id = 1), start_ms INTEGER NOT NULL, \
             current INTEGER NOT NULL, previous INTEGER NOT NULL, window_ms INTEGER NOT NULL)",
            None,
        )?;
        let rows: Vec<Row> = sql
            .exec(
                "SELECT start_ms, current, previous, window_ms FROM window WHERE id = 1",
                None,
            )?
            .to_array()?;
        let w = rows
            .first()
            .map(|r| {
                self.window_ms.set(r.window_ms as i64);
                Window {
                    start_ms: r.start_ms as i64,
                    current: r.current as u64,
                    previous: r.previous as u64,
                }
            })
            .unwrap_or_default();
        Ok(w)
    }

    fn save(&self, w: Window, window_ms: i64) -> Result<()> {
        self.state.storage().sql().exec(
            "INSERT INTO window (id, start_ms, current, previous, window_ms) VALUES (1, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET start_ms = excluded.start_ms, current = excluded.current, \
             previous = excluded.previous, window_ms = excluded.window_ms",
            vec![
                SqlStorageValue::Integer(w.start_ms),
                SqlStorageValue::Integer(w.current as i64),
                SqlStorageValue::Integer(w.previous as i64),
                SqlStorageValue::Integer(window_ms),
            ],
        )?;
        *self.window.borrow_mut() = Some(w);
        self.window_ms.set(window_ms);
        Ok(())
    }
}

impl DORateLimitStore {
    /// The account's backoff record and when it may be forgotten, if this object keeps one.
    fn load_backoff(&self) -> Result<Option<(Backoff, i64)>> {
        let sql = self.state.storage().sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS backoff (id INTEGER PRIMARY KEY CHECK (id = 1), record TEXT NOT NULL, \
             forget_at INTEGER NOT NULL)",
            None,
        )?;
        #[derive(serde::Deserialize)]
        struct Row {
            record: String,
            forget_at: f64,
        }
        let rows: Vec<Row> = sql
            .exec("SELECT record, forget_at FROM backoff WHERE id = 1", None)?
            .to_array()?;
        Ok(rows.first().and_then(|r| {
            serde_json::from_str::<Backoff>(&r.record)
                .ok()
                .map(|b| (b, r.forget_at as i64))
        }))
    }

    /// A sign-in event: load → apply → save with no `await` in between (atomic, as for hits).
    async fn backoff(&self, body: &[u8]) -> Result<Response> {
        let event = match SignIn::parse(body) {
            Ok(e) => e,
            Err(e) => return Response::error(e, 400),
        };
        let now = js_sys::Date::now() as i64;
        let mut b = self.load_backoff()?.map(|(b, _)| b).unwrap_or_default();
        let decision: BackoffDecision = b.apply(event.event, event.policy, now);
        let forget_at = b.forget_at(event.policy);
        if b == Backoff::default() {
            self.state
                .storage()
                .sql()
                .exec("DELETE FROM backoff", None)?;
        } else {
            self.state.storage().sql().exec(
                "INSERT INTO backoff (id, record, forget_at) VALUES (1, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET record = excluded.record, forget_at = excluded.forget_at",
                vec![
                    SqlStorageValue::String(serde_json::to_string(&b)?),
                    SqlStorageValue::Integer(forget_at),
                ],
            )?;
            super::set_alarm_at(&self.state.storage(), forget_at).await?;
        }
        Response::from_json(&decision)
    }
}

impl DurableObject for DORateLimitStore {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            window: RefCell::new(None),
            window_ms: Cell::new(0),
            alarm_set: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.path() == "/backoff" {
            return self.backoff(&req.bytes().await?).await;
        }
        let hit = match Hit::parse(&req.bytes().await?) {
            Ok(h) => h,
            Err(e) => return Response::error(e, 400),
        };
        // Critical section: synchronous from here to the save.
        let now = js_sys::Date::now() as i64;
        let mut w = self.load()?;
        let decision: Decision = w.hit(hit.limit, now, hit.cost);
        if decision.allowed {
            self.save(w, hit.limit.window_ms)?;
        }
        if !self.alarm_set.get() {
            // Forget idle keys: two windows after the last hit nothing of it counts any more.
            self.alarm_set.set(true);
            super::set_alarm_at(&self.state.storage(), now + 2 * hit.limit.window_ms + 1000)
                .await?;
        }
        Response::from_json(&decision)
    }

    async fn alarm(&self) -> Result<Response> {
        let now = js_sys::Date::now() as i64;
        if let Some((_, forget_at)) = self.load_backoff()? {
            if now >= forget_at {
                self.state.storage().delete_all().await?;
            } else {
                super::set_alarm_at(&self.state.storage(), forget_at).await?;
            }
            return Response::ok("");
        }
        let w = self.load()?;
        let window_ms = self.window_ms.get().max(1000);
        if now - w.start_ms >= 2 * window_ms {
            self.state.storage().delete_all().await?;
            *self.window.borrow_mut() = None;
            self.alarm_set.set(false);
        } else {
            super::set_alarm_at(&self.state.storage(), w.start_ms + 2 * window_ms + 1000).await?;
        }
        Response::ok("")
    }
}

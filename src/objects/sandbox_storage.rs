//! The sandbox object's storage: its [`SandboxState`] (one JSON row, cached in the isolate) and
//! the owner's last activity, which bounds how long anonymous preview traffic keeps a sandbox
//! awake ([`crate::domain::sandbox::preview_activity`]); and the admission of an owner's call,
//! which reads the state.

use super::sandbox_do::{config, now, UserAppSandboxService};
use crate::domain::sandbox::State as SandboxState;
use crate::domain::sandbox_call::{admit, CALLER_HEADER, REFUSED_HEADER};
use worker::{Request, Response, Result, SqlStorageValue};

impl UserAppSandboxService {
    /// An owner's call through the API ([`CALLER_HEADER`]) that [`admit`] refuses: the 404 that
    /// says why in [`REFUSED_HEADER`]. `None` to go on (admitted, or no caller named).
    pub(super) fn refuse_caller(&self, req: &Request) -> Result<Option<Response>> {
        let Some(caller) = req.headers().get(CALLER_HEADER)? else {
            return Ok(None);
        };
        let state = if self.retired.get() {
            None
        } else {
            self.load()?
        };
        match admit(state.as_ref(), &caller) {
            Ok(()) => Ok(None),
            Err(refusal) => {
                let resp = Response::error("call not admitted", 404)?;
                resp.headers().set(REFUSED_HEADER, refusal.as_header())?;
                Ok(Some(resp))
            }
        }
    }

    pub(super) fn load(&self) -> Result<Option<SandboxState>> {
        if let Some(s) = self.cached.borrow().clone() {
            return Ok(Some(s));
        }
        self.sql().exec("CREATE TABLE IF NOT EXISTS sandbox (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)", None)?;
        #[derive(serde::Deserialize)]
        struct Row {
            state: String,
        }
        let rows: Vec<Row> = self
            .sql()
            .exec("SELECT state FROM sandbox WHERE id = 1", None)?
            .to_array()?;
        let s = rows
            .first()
            .and_then(|r| serde_json::from_str::<SandboxState>(&r.state).ok());
        *self.cached.borrow_mut() = s.clone();
        Ok(s)
    }

    pub(super) fn save(&self, s: &SandboxState) -> Result<()> {
        let text = serde_json::to_string(s)?;
        self.sql().exec(
            "INSERT INTO sandbox (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state",
            vec![SqlStorageValue::String(text)],
        )?;
        *self.cached.borrow_mut() = Some(s.clone());
        Ok(())
    }

    /// Records activity: the owner's (workspace calls, the code generator) counts fully; a
    /// preview request's (`preview`: anyone's) only up to `PREVIEW_KEEPALIVE_SECONDS` after the
    /// owner's last activity ([`crate::domain::sandbox::preview_activity`]).
    pub(super) fn touch(&self, preview: bool) -> Result<()> {
        if let Some(mut s) = self.load()? {
            let t = now();
            let owner = self.owner_activity(&s)?;
            let at = if preview {
                crate::domain::sandbox::preview_activity(
                    s.last_activity_ms,
                    owner,
                    t,
                    config(&self.env)?.preview_keepalive_ms,
                )
            } else {
                if t - owner > 10_000 {
                    self.set_owner_activity(t)?;
                } else {
                    self.owner_activity.set(Some(t));
                }
                t
            };
            // Persist at most every 10 s: activity is a hint for idle shutdown, not a ledger.
            if at - s.last_activity_ms > 10_000 {
                s.last_activity_ms = at;
                self.save(&s)?;
            } else {
                s.last_activity_ms = at;
                *self.cached.borrow_mut() = Some(s);
            }
        }
        Ok(())
    }

    /// The owner's last activity (kept beside the state; a sandbox from before it was kept
    /// starts from its last activity).
    pub(super) fn owner_activity(&self, s: &SandboxState) -> Result<i64> {
        if let Some(t) = self.owner_activity.get() {
            return Ok(t);
        }
        self.sql().exec(
            "CREATE TABLE IF NOT EXISTS owner_activity (id INTEGER PRIMARY KEY CHECK (id = 1), at_ms INTEGER NOT NULL)",
            None,
        )?;
        #[derive(serde::Deserialize)]
        struct Row {
            at_ms: f64,
        }
        let rows: Vec<Row> = self
            .sql()
            .exec("SELECT at_ms FROM owner_activity WHERE id = 1", None)?
            .to_array()?;
        match rows.first() {
            Some(r) => {
                self.owner_activity.set(Some(r.at_ms as i64));
                Ok(r.at_ms as i64)
            }
            None => {
                self.set_owner_activity(s.last_activity_ms)?;
                Ok(s.last_activity_ms)
            }
        }
    }

    pub(super) fn set_owner_activity(&self, at_ms: i64) -> Result<()> {
        self.sql().exec(
            "CREATE TABLE IF NOT EXISTS owner_activity (id INTEGER PRIMARY KEY CHECK (id = 1), at_ms INTEGER NOT NULL)",
            None,
        )?;
        self.sql().exec(
            "INSERT INTO owner_activity (id, at_ms) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
            vec![SqlStorageValue::Integer(at_ms)],
        )?;
        self.owner_activity.set(Some(at_ms));
        Ok(())
    }
}

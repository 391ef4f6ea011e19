//! The code generator's storage (the driver's [`Store`] port) in the object's SQLite storage:
//! `run` (the state, one JSON row, written only when it changed), `scratch` (the unit output in
//! progress, appended a block at a time, and the pending write mark), `events` (stored events; `seq` is the SSE id), `files` (the
//! app's current files: the edit context and what a fresh sandbox is restored from) and `blobs`
//! (contents already in R2). Each completed phase or edit is a version: new contents go to R2
//! under `apps/<app>/blobs/<sha256>` and a [`VersionManifest`] under `apps/<app>/versions/<n>`;
//! the app record in D1 mirrors the file list and the state.
//!
//! Invariants: [`Store::commit`] makes only synchronous storage calls, so the state, a file and an
//! event written by one commit land together (a Durable Object commits writes made without an
//! intervening `await` atomically); stored events are pruned as they are written
//! ([`crate::domain::codegen::events::prune_through`]), so an app never holds more than
//! `KEPT_EVENTS + PRUNE_EVERY` of them.

use super::codegen_state::SavedState;
use crate::domain::codegen::driver::{FileChange, Store};
use crate::domain::codegen::events::AgentEvent;
use crate::domain::codegen::run::{blob_key, content_hash, version_key, RunState, VersionManifest};
use serde::Deserialize;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use worker::{Env, SqlStorage, SqlStorageValue, Storage};

/// While the driver works, an alarm stays armed this far ahead: if the object dies, the alarm
/// resumes the run.
pub const HEARTBEAT_MS: i64 = 15_000;
pub use crate::domain::codegen::events::KEPT_EVENTS;

pub fn now() -> i64 {
    js_sys::Date::now() as i64
}

pub struct AgentStore {
    storage: Storage,
    env: Env,
    /// The run state (loaded once; every change is saved at once).
    run: RefCell<Option<RunState>>,
    /// The app's current files (loaded on first use).
    contents: RefCell<Option<BTreeMap<String, String>>>,
    /// What storage holds of the run state (so a commit writes only what changed).
    saved: RefCell<SavedState>,
    ready: Cell<bool>,
    beat: Cell<i64>,
}

impl AgentStore {
    pub fn new(storage: Storage, env: Env) -> Self {
        Self {
            storage,
            env,
            run: RefCell::new(None),
            contents: RefCell::new(None),
            saved: RefCell::new(SavedState::default()),
            ready: Cell::new(false),
            beat: Cell::new(0),
        }
    }

    pub fn sql(&self) -> SqlStorage {
        let sql = self.storage.sql();
        if !self.ready.get() {
            for ddl in super::codegen_state::DDL.into_iter().chain([
                "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, content TEXT NOT NULL, hash TEXT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS blobs (hash TEXT PRIMARY KEY)",
            ]) {
                if let Err(e) = sql.exec(ddl, None) {
                    worker::console_error!("codegen: schema: {e}");
                }
            }
            self.ready.set(true);
        }
        sql
    }

    fn loaded(&self) {
        if self.run.borrow().is_some() {
            return;
        }
        let st = self.saved.borrow_mut().load(&self.sql());
        *self.run.borrow_mut() = Some(st);
    }

    fn contents(&self) -> std::cell::RefMut<'_, BTreeMap<String, String>> {
        if self.contents.borrow().is_none() {
            #[derive(Deserialize)]
            struct Row {
                path: String,
                content: String,
            }
            let rows: Vec<Row> = self
                .sql()
                .exec("SELECT path, content FROM files", None)
                .and_then(|c| c.to_array())
                .unwrap_or_default();
            *self.contents.borrow_mut() =
                Some(rows.into_iter().map(|r| (r.path, r.content)).collect());
        }
        std::cell::RefMut::map(self.contents.borrow_mut(), |c| c.as_mut().expect("loaded"))
    }

    /// Changes the run state and saves it.
    pub fn update<R>(&self, f: impl FnOnce(&mut RunState) -> R) -> R {
        self.commit(f, None, None).0
    }

    pub fn last_seq(&self) -> u64 {
        #[derive(Deserialize)]
        struct Row {
            seq: Option<f64>,
        }
        self.sql()
            .exec("SELECT MAX(seq) AS seq FROM events", None)
            .and_then(|c| c.to_array::<Row>())
            .ok()
            .and_then(|r| r.first().and_then(|r| r.seq))
            .unwrap_or(0.0) as u64
    }

    /// Stored events after `since`, as `(seq, event JSON)`.
    pub fn events_after(&self, since: u64, limit: u32) -> Vec<(u64, String)> {
        #[derive(Deserialize)]
        struct Row {
            seq: f64,
            json: String,
        }
        self.sql()
            .exec(
                "SELECT seq, json FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                vec![
                    SqlStorageValue::Integer(since.min(i64::MAX as u64) as i64),
                    SqlStorageValue::Integer(limit as i64),
                ],
            )
            .and_then(|c| c.to_array::<Row>())
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.seq as u64, r.json))
            .collect()
    }

    /// Keeps the newest [`KEPT_EVENTS`] stored events.
    pub fn prune_events(&self) {
        if let Err(e) = self.sql().exec(
            "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?",
            vec![SqlStorageValue::Integer(KEPT_EVENTS as i64)],
        ) {
            worker::console_error!("codegen: pruning events failed: {e}");
        }
    }

    pub async fn arm(&self, at: i64) {
        if let Err(e) = super::set_alarm_at(&self.storage, at).await {
            worker::console_error!("codegen: arming the alarm failed: {e}");
        }
    }

    pub async fn disarm(&self) {
        let _ = self.storage.delete_alarm().await;
    }

    pub fn reset_heartbeat(&self) {
        self.beat.set(0);
    }
}

impl Store for AgentStore {
    fn read<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        self.loaded();
        f(self.run.borrow().as_ref().expect("loaded"))
    }

    fn commit<R>(
        &self,
        f: impl FnOnce(&mut RunState) -> R,
        file: Option<FileChange<'_>>,
        event: Option<&AgentEvent>,
    ) -> (R, Option<u64>) {
        self.loaded();
        let sql = self.sql();
        let r = {
            let mut b = self.run.borrow_mut();
            let st = b.as_mut().expect("loaded");
            let r = f(st);
            self.saved.borrow_mut().save(&sql, st);
            r
        };
        match file {
            Some(FileChange::Write { path, content }) => {
                if let Err(e) = sql.exec(
                    "INSERT INTO files (path, content, hash) VALUES (?, ?, ?) ON CONFLICT (path) DO UPDATE SET content = excluded.content, hash = excluded.hash",
                    vec![
                        SqlStorageValue::String(path.into()),
                        SqlStorageValue::String(content.into()),
                        SqlStorageValue::String(content_hash(content)),
                    ],
                ) {
                    worker::console_error!("codegen: storing {path} failed: {e}");
                }
                self.contents().insert(path.into(), content.into());
            }
            Some(FileChange::Delete { path }) => {
                if let Err(e) = sql.exec(
                    "DELETE FROM files WHERE path = ?",
                    vec![SqlStorageValue::String(path.into())],
                ) {
                    worker::console_error!("codegen: deleting {path} failed: {e}");
                }
                self.contents().remove(path);
            }
            None => {}
        }
        let id = event.and_then(|ev| {
            #[derive(Deserialize)]
            struct Row {
                seq: f64,
            }
            sql.exec(
                "INSERT INTO events (json) VALUES (?) RETURNING seq",
                vec![SqlStorageValue::String(ev.to_json())],
            )
            .and_then(|c| c.to_array::<Row>())
            .map_err(|e| worker::console_error!("codegen: storing an event failed: {e}"))
            .ok()
            .and_then(|r| r.first().map(|r| r.seq as u64))
        });
        if let Some(upto) = id.and_then(crate::domain::codegen::events::prune_through) {
            if let Err(e) = sql.exec(
                "DELETE FROM events WHERE seq <= ?",
                vec![SqlStorageValue::Integer(upto as i64)],
            ) {
                worker::console_error!("codegen: pruning events failed: {e}");
            }
        }
        (r, id)
    }

    fn files(&self) -> BTreeMap<String, String> {
        self.contents().clone()
    }

    fn file(&self, path: &str) -> Option<String> {
        self.contents().get(path).cloned()
    }

    async fn save_version(&self, label: &str) -> Result<u32, String> {
        let r = async {
            let bucket = self.env.bucket("APP_FILES")?;
            let (app_id, files, next) =
                self.read(|s| (s.app_id.clone(), s.files.clone(), s.version + 1));
            #[derive(Deserialize)]
            struct Row {
                hash: String,
            }
            let stored: std::collections::BTreeSet<String> = self
                .sql()
                .exec("SELECT hash FROM blobs", None)?
                .to_array::<Row>()?
                .into_iter()
                .map(|r| r.hash)
                .collect();
            for (path, f) in &files {
                if stored.contains(&f.hash) {
                    continue;
                }
                let Some(content) = self.file(path) else {
                    continue;
                };
                bucket
                    .put(blob_key(app_id.as_str(), &f.hash), content)
                    .execute()
                    .await?;
                self.sql().exec(
                    "INSERT OR IGNORE INTO blobs (hash) VALUES (?)",
                    vec![SqlStorageValue::String(f.hash.clone())],
                )?;
            }
            let manifest = VersionManifest::new(app_id.as_str(), next, label, now(), &files);
            bucket
                .put(version_key(app_id.as_str(), next), manifest.to_json())
                .custom_metadata(manifest.metadata())
                .execute()
                .await?;
            self.update(|s| s.version = next);
            Ok::<u32, worker::Error>(next)
        }
        .await;
        r.map_err(|e| e.to_string())
    }

    async fn mirror(&self) {
        let last = self.last_seq();
        let (files, gen, app_id, user_id) = self.read(|st| {
            let files: Vec<serde_json::Value> = st
                .files
                .iter()
                .map(|(p, f)| serde_json::json!({"path": p, "bytes": f.bytes, "hash": f.hash}))
                .collect();
            let snap = st.snapshot(st.app_id.as_str(), last);
            (
                serde_json::json!(files).to_string(),
                serde_json::json!({ "generation": snap }).to_string(),
                st.app_id.clone(),
                st.user_id.clone(),
            )
        });
        let r = match self.env.d1(crate::services::db::BINDING) {
            Ok(db) => crate::services::db::mirror_generation(&db, &app_id, &user_id, &files, &gen)
                .await
                .map_err(|e| e.message),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = r {
            worker::console_error!("codegen: saving the app's files to D1 failed: {e}");
        }
    }

    /// Keeps an alarm armed a little ahead while the driver works (at most one write per few
    /// seconds).
    async fn keep_alive(&self) {
        let t = now();
        if t - self.beat.get() > HEARTBEAT_MS / 3 {
            self.beat.set(t);
            self.arm(t + HEARTBEAT_MS).await;
        }
    }
}

/// The `type` of a stored event's JSON (its SSE event name).
pub(super) fn event_type(json: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Kind>(json).ok().map(|k| k.kind)
}

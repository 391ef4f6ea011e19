//! The run state's rows in the code generator's storage. The state is one JSON row, rewritten
//! only when it changed; the two fields that change with every block live apart: the unit output
//! in progress (`unit_output`, appended a block at a time, see [`OutputChange`]) and the pending
//! write mark (`pending_write`, one row). Every write here is synchronous, so it is part of the
//! caller's commit.

use crate::domain::codegen::run::{OutputChange, RunState};
use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue};

pub const DDL: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS run (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS unit_output (seq INTEGER PRIMARY KEY AUTOINCREMENT, chunk TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pending_write (id INTEGER PRIMARY KEY CHECK (id = 1), path TEXT NOT NULL)",
];

/// What storage holds of the run state.
#[derive(Default)]
pub struct SavedState {
    state: String,
    output: String,
    pending: Option<String>,
}

impl SavedState {
    /// Reads the stored state (the default state when there is none).
    pub fn load(&mut self, sql: &SqlStorage) -> RunState {
        #[derive(Deserialize)]
        struct Row {
            state: String,
        }
        #[derive(Deserialize)]
        struct Chunk {
            chunk: String,
        }
        #[derive(Deserialize)]
        struct Pending {
            path: String,
        }
        let text = sql
            .exec("SELECT state FROM run WHERE id = 1", None)
            .and_then(|c| c.to_array::<Row>())
            .ok()
            .and_then(|rows| rows.into_iter().next().map(|r| r.state));
        let mut st: RunState = text
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        // A state saved before these rows existed carries its unit output itself; the next
        // commit writes it here (nothing is recorded as saved for it yet).
        *self = SavedState {
            state: text.unwrap_or_default(),
            ..SavedState::default()
        };
        let chunks: Vec<Chunk> = sql
            .exec("SELECT chunk FROM unit_output ORDER BY seq", None)
            .and_then(|c| c.to_array())
            .unwrap_or_default();
        if !chunks.is_empty() {
            st.unit_output = chunks.into_iter().map(|c| c.chunk).collect();
            self.output.clone_from(&st.unit_output);
        }
        let pending = sql
            .exec("SELECT path FROM pending_write WHERE id = 1", None)
            .and_then(|c| c.to_array::<Pending>())
            .unwrap_or_default();
        if let Some(p) = pending.into_iter().next() {
            st.pending_write = Some(p.path);
            self.pending.clone_from(&st.pending_write);
        }
        st
    }

    /// Writes what changed since the last save.
    pub fn save(&mut self, sql: &SqlStorage, st: &RunState) {
        let text = serde_json::to_string(st).unwrap_or_default();
        if text != self.state {
            match sql.exec(
                "INSERT INTO run (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state",
                vec![SqlStorageValue::String(text.clone())],
            ) {
                Ok(_) => self.state = text,
                Err(e) => worker::console_error!("codegen: saving run state failed: {e}"),
            }
        }
        let append = |chunk: &str| {
            sql.exec(
                "INSERT INTO unit_output (chunk) VALUES (?)",
                vec![SqlStorageValue::String(chunk.into())],
            )
            .map(|_| ())
        };
        let wrote = match OutputChange::between(&self.output, &st.unit_output) {
            OutputChange::Unchanged => Ok(false),
            OutputChange::Append(chunk) => append(chunk).map(|()| true),
            OutputChange::Replace(all) => sql
                .exec("DELETE FROM unit_output", None)
                .and_then(|_| if all.is_empty() { Ok(()) } else { append(all) })
                .map(|()| true),
        };
        match wrote {
            Ok(true) => self.output.clone_from(&st.unit_output),
            Ok(false) => {}
            Err(e) => worker::console_error!("codegen: saving the unit output failed: {e}"),
        }
        if st.pending_write != self.pending {
            let r = match &st.pending_write {
                Some(p) => sql.exec(
                    "INSERT INTO pending_write (id, path) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET path = excluded.path",
                    vec![SqlStorageValue::String(p.clone())],
                ),
                None => sql.exec("DELETE FROM pending_write", None),
            };
            match r {
                Ok(_) => self.pending.clone_from(&st.pending_write),
                Err(e) => worker::console_error!("codegen: saving the pending write failed: {e}"),
            }
        }
    }
}

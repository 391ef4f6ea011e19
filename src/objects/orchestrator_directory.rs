//! The directory role of an `OrchestratorWebSocket` object (`project:<id>`): which hub shards
//! have subscribers of the project ([`Directory`], kept in the object's SQLite storage), and
//! the fan-out of the project's events to those shards.
//!
//! Invariants: a presence change is stored before it is acknowledged (a shard confirms a
//! subscription only after that); a publication reaches every shard present when it arrives,
//! in parallel, and a shard that reports no subscriber is dropped (unless a newer presence
//! arrived meanwhile: [`Directory::absent_as_of`]).

use super::orchestrator_hub_do::{call, OrchestratorWebSocket};
use crate::domain::ids::ProjectId;
use crate::domain::orchestrator::hub::Directory;
use crate::domain::orchestrator::hub_call::{shard_name, Delivered, HubCall, Published};
use worker::{Response, Result, SqlStorageValue};

#[derive(serde::Deserialize)]
struct Row {
    shard: f64,
    present: f64,
    version: f64,
}

impl OrchestratorWebSocket {
    fn with_directory<R>(&self, f: impl FnOnce(&mut Directory) -> R) -> Result<R> {
        let mut slot = self.directory.borrow_mut();
        if slot.is_none() {
            let sql = self.state.storage().sql();
            sql.exec(
                "CREATE TABLE IF NOT EXISTS presence (shard INTEGER PRIMARY KEY, \
                 present INTEGER NOT NULL, version INTEGER NOT NULL)",
                None,
            )?;
            let rows: Vec<Row> = sql
                .exec("SELECT shard, present, version FROM presence", None)?
                .to_array()?;
            *slot =
                Some(Directory::from_marks(rows.into_iter().map(|r| {
                    (r.shard as u32, r.present != 0.0, r.version as u64)
                })));
        }
        Ok(f(slot.as_mut().expect("loaded")))
    }

    fn store(&self, shard: u32, present: bool, version: u64) -> Result<()> {
        self.state.storage().sql().exec(
            "INSERT INTO presence (shard, present, version) VALUES (?, ?, ?) \
             ON CONFLICT (shard) DO UPDATE SET present = excluded.present, version = excluded.version",
            vec![
                SqlStorageValue::Integer(shard as i64),
                SqlStorageValue::Integer(present as i64),
                SqlStorageValue::Integer(version as i64),
            ],
        )?;
        Ok(())
    }

    /// A shard's presence changed.
    pub(super) fn presence(&self, shard: u32, present: bool, version: u64) -> Result<Response> {
        if self.with_directory(|d| d.apply(shard, present, version))? {
            self.store(shard, present, version)?;
        }
        Response::ok("recorded")
    }

    /// Events of the project: to every shard with a subscriber, in one call each.
    pub(super) async fn publish(
        &self,
        project: &ProjectId,
        messages: Vec<String>,
    ) -> Result<Response> {
        let targets = self.with_directory(|d| d.targets())?;
        let deliver = HubCall::Deliver {
            project: project.clone(),
            messages,
        };
        let env = &self.env;
        let answers = futures_util::future::join_all(targets.iter().map(|k| {
            let deliver = &deliver;
            async move {
                let mut r = call(env, &shard_name(*k), deliver).await?;
                r.json::<Delivered>().await
            }
        }))
        .await;
        let mut out = Published {
            sockets: 0,
            shards: 0,
        };
        for (k, answer) in targets.iter().zip(answers) {
            match answer {
                Ok(d) => {
                    out.sockets += d.sockets;
                    out.shards += 1;
                    if !d.present && self.with_directory(|dir| dir.absent_as_of(*k, d.version))? {
                        self.store(*k, false, d.version)?;
                    }
                }
                Err(e) => worker::console_error!("hub: shard {k} unreachable: {e}"),
            }
        }
        Response::from_json(&out)
    }
}

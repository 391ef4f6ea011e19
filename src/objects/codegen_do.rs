//! `CodeGeneratorAgent`: one object per app. It turns a prompt into an app: a blueprint from the
//! model, the app's sandbox brought up, then each phase streamed from the model, parsed as it
//! arrives, and every finished file written to the sandbox the moment its block closes; after
//! each phase the sandbox's errors go back to the model for bounded correction rounds.
//!
//! The run happens inside the `POST /chat` request that started it: events go to the client as
//! they happen (a streaming SSE body) and, except live `file_chunk`s, are appended to the
//! object's `events` table (their `seq` is the SSE id, so `GET /state?since=` replays them).
//! Run state (status, blueprint, per-phase status, files written with their hashes) is one JSON
//! row in `run`, saved after every file; the app's file list and generation state are mirrored
//! to D1 `apps.files` / `apps.container_state` at the end of each phase.
//!
//! The decisions are the domain's ([`crate::domain::codegen::run`], `blueprint`, `prompts`,
//! `files_format`); this file is the I/O around them.

use crate::domain::codegen::blueprint::{
    parse_blueprint, Blueprint, PhaseInput, PhaseStatus, DEFAULT_MAX_CORRECTIONS,
};
use crate::domain::codegen::events::{parse_start_chat, AgentEvent, RunOutcome, RunStatus};
use crate::domain::codegen::files_format::{Event as FileEvent, Parser};
use crate::domain::codegen::models::{ModelOverride, Operation};
use crate::domain::codegen::prompts::{self, Diagnostic, FileContext, TemplateInfo};
use crate::domain::codegen::run::{step, RunState, Step};
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::sandbox::{Command, State as SandboxState, Status as SandboxStatus};
use crate::domain::templates;
use crate::http::App;
use crate::services::llm::{Call, Llm};
use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_util::StreamExt;
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, SqlStorage,
    SqlStorageValue, State,
};

pub const BINDING: &str = "CODEGEN";
/// How long a generation waits for its sandbox to become ready.
const SANDBOX_READY_TIMEOUT_MS: i64 = 240_000;
/// How long the type check after a phase may run.
const TYPECHECK_TIMEOUT_MS: u64 = 120_000;

#[durable_object]
pub struct CodeGeneratorAgent {
    state: State,
    env: Env,
    running: Rc<Cell<bool>>,
}

fn now() -> i64 {
    js_sys::Date::now() as i64
}

fn init(sql: &SqlStorage) -> Result<()> {
    sql.exec("CREATE TABLE IF NOT EXISTS run (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)", None)?;
    sql.exec(
        "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL)",
        None,
    )?;
    Ok(())
}

fn load(sql: &SqlStorage) -> Result<RunState> {
    #[derive(serde::Deserialize)]
    struct Row {
        state: String,
    }
    let rows: Vec<Row> = sql
        .exec("SELECT state FROM run WHERE id = 1", None)?
        .to_array()?;
    Ok(rows
        .first()
        .and_then(|r| serde_json::from_str(&r.state).ok())
        .unwrap_or_default())
}

fn last_seq(sql: &SqlStorage) -> Result<u64> {
    #[derive(serde::Deserialize)]
    struct Row {
        seq: Option<f64>,
    }
    let rows: Vec<Row> = sql
        .exec("SELECT MAX(seq) AS seq FROM events", None)?
        .to_array()?;
    Ok(rows.first().and_then(|r| r.seq).unwrap_or(0.0) as u64)
}

/// One generation run: its storage, the client's stream, and the sandbox it writes to.
struct Run {
    sql: SqlStorage,
    env: Env,
    app: App,
    app_id: String,
    user_id: String,
    overrides: Option<ModelOverride>,
    tx: UnboundedSender<std::result::Result<Vec<u8>, worker::Error>>,
    st: RefCell<RunState>,
    /// Current content of the files this run knows (for diffs and the model's context).
    contents: RefCell<BTreeMap<String, String>>,
}

impl Run {
    fn save(&self) {
        let text = serde_json::to_string(&*self.st.borrow()).unwrap_or_default();
        if let Err(e) = self.sql.exec(
            "INSERT INTO run (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state",
            vec![SqlStorageValue::String(text)],
        ) {
            worker::console_error!("codegen: saving run state failed: {e}");
        }
    }

    /// Persists the event (except live chunks) and sends it to the client.
    fn emit(&self, ev: AgentEvent) {
        let frame = if matches!(ev, AgentEvent::FileChunk { .. }) {
            ev.to_sse()
        } else {
            #[derive(serde::Deserialize)]
            struct Row {
                seq: f64,
            }
            let seq = self
                .sql
                .exec(
                    "INSERT INTO events (json) VALUES (?) RETURNING seq",
                    vec![SqlStorageValue::String(ev.to_json())],
                )
                .and_then(|c| c.to_array::<Row>())
                .ok()
                .and_then(|r| r.first().map(|r| r.seq as u64))
                .unwrap_or(0);
            ev.to_sse_with_id(seq)
        };
        let _ = self.tx.unbounded_send(Ok(frame.into_bytes()));
    }

    fn error(&self, e: &ApiError, recoverable: bool) {
        self.emit(AgentEvent::from_error(e, recoverable));
    }

    fn set_phase(&self, i: usize, input: PhaseInput) {
        let mut st = self.st.borrow_mut();
        if let Some(p) = st.phases.get_mut(i) {
            match p.next(input, DEFAULT_MAX_CORRECTIONS) {
                Ok(n) => *p = n,
                Err(e) => worker::console_error!("codegen: {e}"),
            }
        }
    }

    fn call(&self, operation: Operation) -> Call<'_> {
        Call {
            user_id: &self.user_id,
            app_id: Some(&self.app_id),
            operation,
            overrides: self.overrides.as_ref(),
            cancel: None,
        }
    }

    // ----- the sandbox -------------------------------------------------------------------

    async fn sandbox(&self, method: Method, path: &str, body: Option<String>) -> Result<Response> {
        let mut init = RequestInit::new();
        init.with_method(method);
        if let Some(b) = body {
            let h = worker::Headers::new();
            h.set("Content-Type", "application/json")?;
            init.with_headers(h).with_body(Some(b.into()));
        }
        let req = Request::new_with_init(&format!("https://sandbox{path}"), &init)?;
        super::stub(&self.env, super::sandbox_do::BINDING, &self.app_id)?
            .fetch_with_request(req)
            .await
    }

    async fn sandbox_command(&self, cmd: &Command) -> Result<Option<SandboxState>> {
        let mut r = self
            .sandbox(Method::Post, "/command", Some(serde_json::to_string(cmd)?))
            .await?;
        match r.status_code() {
            200 => Ok(Some(r.json().await?)),
            _ => Ok(None),
        }
    }

    /// Brings the app's sandbox up (creating it from `template` if it is not active) and waits
    /// until it is ready.
    async fn ensure_sandbox(&self, template: &str) -> std::result::Result<(), ApiError> {
        let unavailable = |m: String| ApiError::new(503, ErrorCode::E006, m);
        let current = self
            .sandbox_command(&Command::Status)
            .await
            .map_err(|e| unavailable(format!("sandbox unreachable: {e}")))?;
        let active = current.as_ref().is_some_and(|s| s.status.is_active());
        if !active {
            let db = self.app.db()?;
            let max = self.app.cfg.max_sandboxes_per_user;
            if !crate::services::db::claim_sandbox(&db, &self.app_id, &self.user_id, template, max)
                .await?
            {
                return Err(ApiError::new(
                    403,
                    ErrorCode::E006,
                    format!("sandbox limit reached: at most {max} sandboxes may run at once; stop one to start another"),
                ));
            }
            self.sandbox_command(&Command::Create {
                app_id: self.app_id.clone(),
                user_id: self.user_id.clone(),
                template: template.to_string(),
            })
            .await
            .map_err(|e| unavailable(format!("sandbox unreachable: {e}")))?;
        }
        let deadline = now() + SANDBOX_READY_TIMEOUT_MS;
        loop {
            let s = self
                .sandbox_command(&Command::Status)
                .await
                .map_err(|e| unavailable(format!("sandbox unreachable: {e}")))?
                .ok_or_else(|| unavailable("the sandbox disappeared".into()))?;
            match s.status {
                SandboxStatus::Ready => return Ok(()),
                SandboxStatus::Failed | SandboxStatus::Stopped => {
                    return Err(unavailable(format!(
                        "the sandbox is {}: {}",
                        s.status.as_str(),
                        s.reason.unwrap_or_default()
                    )))
                }
                _ if now() > deadline => {
                    return Err(unavailable(
                        "the sandbox did not become ready in time".into(),
                    ))
                }
                _ => worker::Delay::from(std::time::Duration::from_millis(500)).await,
            }
        }
    }

    /// Writes one file to the sandbox; the agent's error message on refusal.
    async fn write_file(&self, path: &str, content: &str) -> std::result::Result<(), String> {
        let body = json!({ "files": [{ "path": path, "content": content }] }).to_string();
        match self.sandbox(Method::Post, "/proxy/files", Some(body)).await {
            Ok(r) if r.status_code() == 200 => Ok(()),
            Ok(mut r) => {
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                Err(v["error"]["message"]
                    .as_str()
                    .unwrap_or("the sandbox refused the file")
                    .to_string())
            }
            Err(e) => Err(format!("sandbox unreachable: {e}")),
        }
    }

    async fn delete_file(&self, path: &str) -> std::result::Result<(), String> {
        let q: String = url_encode(path);
        match self
            .sandbox(Method::Delete, &format!("/proxy/files?path={q}"), None)
            .await
        {
            Ok(r) if matches!(r.status_code(), 204 | 404) => Ok(()),
            Ok(r) => Err(format!("the sandbox answered {}", r.status_code())),
            Err(e) => Err(format!("sandbox unreachable: {e}")),
        }
    }

    async fn diagnostics(&self) -> Vec<Diagnostic> {
        #[derive(serde::Deserialize)]
        struct Errors {
            #[serde(default)]
            errors: Vec<Diagnostic>,
        }
        let errors = match self.sandbox(Method::Get, "/proxy/errors", None).await {
            Ok(mut r) if r.status_code() == 200 => r
                .json::<Errors>()
                .await
                .map(|e| e.errors)
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        if !errors.is_empty() {
            return errors;
        }
        // The dev server is happy: the type checker has the last word.
        let body = json!({ "timeoutMs": TYPECHECK_TIMEOUT_MS }).to_string();
        match self
            .sandbox(Method::Post, "/proxy/typecheck", Some(body))
            .await
        {
            Ok(mut r) if r.status_code() == 200 => r
                .json::<Errors>()
                .await
                .map(|e| e.errors)
                .unwrap_or_default(),
            Ok(r) => {
                worker::console_warn!("codegen: typecheck unavailable ({})", r.status_code());
                Vec::new()
            }
            Err(e) => {
                worker::console_warn!("codegen: typecheck unavailable: {e}");
                Vec::new()
            }
        }
    }

    // ----- model output ------------------------------------------------------------------

    /// Streams one model call's output through the files parser; each block that closes is
    /// applied (written to the sandbox) while the rest is still arriving. Returns whether the
    /// stream ended whole; a failure has been reported as an `error` event.
    async fn stream_files(
        &self,
        operation: Operation,
        messages: &[crate::domain::codegen::models::ChatMessage],
    ) -> bool {
        let llm = match Llm::new(&self.app) {
            Ok(l) => l,
            Err(e) => {
                self.error(&e, false);
                return false;
            }
        };
        let (ftx, mut frx) = unbounded::<FileEvent>();
        let producer = async move {
            let mut parser = Parser::new();
            let mut on_delta = |d: &str| {
                for e in parser.feed_str(d) {
                    let _ = ftx.unbounded_send(e);
                }
            };
            let call = self.call(operation);
            let r = llm.stream(&call, messages, &mut on_delta).await;
            let tail = parser.finish();
            if r.is_ok() {
                if let Ok(events) = &tail {
                    for e in events.iter().cloned() {
                        let _ = ftx.unbounded_send(e);
                    }
                }
            }
            drop(ftx);
            (r, tail)
        };
        let consumer = async {
            while let Some(e) = frx.next().await {
                self.apply(e).await;
            }
        };
        let ((result, tail), ()) = futures_util::join!(producer, consumer);
        match (result, tail) {
            (Err(e), _) => {
                self.error(&e, false);
                false
            }
            (Ok(_), Err(e)) => {
                self.error(
                    &crate::services::llm::generation_failed(format!(
                        "the model's output was cut off ({e}); the unfinished file was not written"
                    )),
                    false,
                );
                false
            }
            (Ok(_), Ok(_)) => true,
        }
    }

    async fn apply(&self, e: FileEvent) {
        let s = step(e, |p| self.contents.borrow().get(p).cloned());
        match s {
            None => {}
            Some(Step::Emit(ev)) => self.emit(ev),
            Some(Step::Write { path, content }) => match self.write_file(&path, &content).await {
                Ok(()) => {
                    self.st.borrow_mut().record_write(&path, &content);
                    self.contents
                        .borrow_mut()
                        .insert(path.clone(), content.clone());
                    self.save();
                    self.emit(AgentEvent::FileGenerated { path, content });
                }
                Err(why) => self.error(
                    &ApiError::new(
                        502,
                        ErrorCode::E005,
                        format!("{path} was not written: {why}"),
                    ),
                    true,
                ),
            },
            Some(Step::Delete { path }) => match self.delete_file(&path).await {
                Ok(()) => {
                    self.st.borrow_mut().record_delete(&path);
                    self.contents.borrow_mut().remove(&path);
                    self.save();
                    self.emit(AgentEvent::FileDeleted { path });
                }
                Err(why) => self.error(
                    &ApiError::new(
                        502,
                        ErrorCode::E005,
                        format!("{path} was not deleted: {why}"),
                    ),
                    true,
                ),
            },
        }
    }

    fn file_context(&self) -> Vec<(String, String)> {
        self.contents
            .borrow()
            .iter()
            .map(|(p, c)| (p.clone(), c.clone()))
            .collect()
    }

    // ----- the run -----------------------------------------------------------------------

    async fn plan(&self, prompt: &str) -> Option<Blueprint> {
        let llm = match Llm::new(&self.app) {
            Ok(l) => l,
            Err(e) => {
                self.error(&e, false);
                return None;
            }
        };
        let infos: Vec<TemplateInfo<'_>> = templates::CATALOG
            .iter()
            .map(|t| TemplateInfo {
                name: t.name,
                description: t.description,
            })
            .collect();
        let names: Vec<&str> = templates::CATALOG.iter().map(|t| t.name).collect();
        let mut messages = prompts::blueprint_messages(prompt, &infos);
        for attempt in 0..2 {
            let out = match llm
                .complete(&self.call(Operation::Blueprint), &messages)
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    self.error(&e, false);
                    return None;
                }
            };
            match parse_blueprint(&out.text, &names) {
                Ok(b) => return Some(b),
                Err(e) if attempt == 0 => prompts::blueprint_retry(&mut messages, &out.text, &e),
                Err(e) => {
                    self.error(
                        &crate::services::llm::generation_failed(format!(
                            "the model did not produce a valid plan: {}",
                            e.problems.join("; ")
                        )),
                        false,
                    );
                }
            }
        }
        None
    }

    /// Mirrors the app's files and generation state to D1.
    async fn mirror(&self) {
        let (files, gen) = {
            let st = self.st.borrow();
            let files: Vec<serde_json::Value> = st
                .files
                .iter()
                .map(|(p, f)| json!({"path": p, "bytes": f.bytes, "hash": f.hash}))
                .collect();
            let snap = st.snapshot(&self.app_id, last_seq(&self.sql).unwrap_or(0));
            (
                json!(files).to_string(),
                json!({ "generation": snap }).to_string(),
            )
        };
        let r = async {
            self.app
                .db()
                .map_err(|e| worker::Error::RustError(e.message))?
                .prepare("UPDATE apps SET files = ?1, container_state = ?2, updated_at = unixepoch() WHERE id = ?3 AND user_id = ?4")
                .bind(&[files.into(), gen.into(), self.app_id.as_str().into(), self.user_id.as_str().into()])?
                .run()
                .await
        }
        .await;
        if let Err(e) = r {
            worker::console_error!("codegen: saving the app's files to D1 failed: {e}");
        }
    }

    fn finish(&self, status: RunStatus, outcome: RunOutcome) {
        self.st.borrow_mut().status = status;
        self.save();
        self.emit(AgentEvent::Done { status: outcome });
    }

    async fn generate(&self, prompt: String, preview_url: String) {
        self.st.borrow_mut().start(&prompt);
        self.save();
        self.emit(AgentEvent::PhaseStart {
            phase: "planning".into(),
            message: "Planning the app".into(),
        });
        let Some(blueprint) = self.plan(&prompt).await else {
            return self.finish(RunStatus::Failed, RunOutcome::Failed);
        };
        self.st.borrow_mut().planned(blueprint.clone());
        self.save();
        self.emit(AgentEvent::PhaseComplete {
            phase: "planning".into(),
            message: format!(
                "{}: {} phases on {}",
                blueprint.title,
                blueprint.phases.len(),
                blueprint.template
            ),
        });
        if let Err(e) = self.ensure_sandbox(&blueprint.template).await {
            self.error(&e, false);
            return self.finish(RunStatus::Failed, RunOutcome::Failed);
        }
        let mut failed = false;
        for (i, phase) in blueprint.phases.iter().enumerate() {
            self.st.borrow_mut().current_phase = Some(i);
            self.set_phase(i, PhaseInput::Start);
            self.save();
            self.emit(AgentEvent::PhaseStart {
                phase: phase.name.clone(),
                message: phase.description.clone(),
            });
            let ctx = self.file_context();
            let files: Vec<FileContext<'_>> = ctx
                .iter()
                .map(|(p, c)| FileContext {
                    path: p,
                    content: c,
                })
                .collect();
            let messages =
                prompts::phase_messages(&blueprint, i, &files, prompts::DEFAULT_CONTEXT_BYTES);
            if !self
                .stream_files(Operation::Implementation, &messages)
                .await
            {
                self.set_phase(i, PhaseInput::Abort);
                self.save();
                self.mirror().await;
                failed = true;
                break;
            }
            self.set_phase(i, PhaseInput::Implemented);
            if !self.validate_and_correct(&blueprint, i).await {
                self.save();
                self.mirror().await;
                failed = true;
                break;
            }
            self.save();
            self.mirror().await;
            let unresolved = self.st.borrow().phases.get(i) == Some(&PhaseStatus::Failed);
            self.emit(AgentEvent::PhaseComplete {
                phase: phase.name.clone(),
                message: if unresolved {
                    format!("{} finished with unresolved errors", phase.name)
                } else {
                    format!("{} complete", phase.name)
                },
            });
        }
        self.st.borrow_mut().current_phase = None;
        if failed {
            return self.finish(RunStatus::Failed, RunOutcome::Failed);
        }
        self.st.borrow_mut().preview_url = Some(preview_url.clone());
        self.emit(AgentEvent::PreviewReady { url: preview_url });
        self.finish(RunStatus::Complete, RunOutcome::Completed);
        self.mirror().await;
    }

    /// Checks the sandbox for errors after phase `i` (the dev server's, then `tsc`'s); while some remain, up to the bound of
    /// correction rounds goes back to the model; what remains after the last is reported.
    /// `false`: a correction call failed (reported), and the run cannot go on.
    async fn validate_and_correct(&self, blueprint: &Blueprint, i: usize) -> bool {
        let phase = &blueprint.phases[i];
        loop {
            let errors = self.diagnostics().await;
            if errors.is_empty() {
                self.set_phase(i, PhaseInput::ValidationPassed);
                return true;
            }
            self.set_phase(i, PhaseInput::ValidationFailed);
            let round = match self.st.borrow().phases.get(i) {
                Some(PhaseStatus::Correcting { round }) => *round,
                _ => {
                    let list: Vec<String> = errors
                        .iter()
                        .take(5)
                        .map(|d| {
                            format!(
                                "{}:{} {}",
                                d.file.as_deref().unwrap_or("?"),
                                d.line.unwrap_or(0),
                                d.message
                            )
                        })
                        .collect();
                    self.error(
                        &ApiError::new(
                            502,
                            ErrorCode::E005,
                            format!(
                                "phase \"{}\" still has {} error(s) after {DEFAULT_MAX_CORRECTIONS} correction rounds: {}",
                                phase.name,
                                errors.len(),
                                list.join("; ")
                            ),
                        ),
                        true,
                    );
                    return true;
                }
            };
            self.save();
            let ctx = self.file_context();
            let files: Vec<FileContext<'_>> = ctx
                .iter()
                .map(|(p, c)| FileContext {
                    path: p,
                    content: c,
                })
                .collect();
            let messages = prompts::correction_messages(
                blueprint,
                phase,
                round,
                DEFAULT_MAX_CORRECTIONS,
                &errors,
                &files,
                prompts::DEFAULT_CONTEXT_BYTES,
            );
            if !self
                .stream_files(Operation::ErrorCorrection, &messages)
                .await
            {
                self.set_phase(i, PhaseInput::Abort);
                return false;
            }
            self.set_phase(i, PhaseInput::CorrectionApplied);
        }
    }
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn header(req: &Request, k: &str) -> Option<String> {
    req.headers().get(k).ok().flatten()
}

impl CodeGeneratorAgent {
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        init(&sql)?;
        Ok(sql)
    }

    async fn chat(&self, mut req: Request) -> Result<Response> {
        let (Some(app_id), Some(user_id), Some(preview_url)) = (
            header(&req, "X-App-Id"),
            header(&req, "X-User-Id"),
            header(&req, "X-Preview-Url"),
        ) else {
            return Response::error("missing run parameters", 400);
        };
        let body = req.bytes().await?;
        let start = match parse_start_chat(&body) {
            Ok(s) => s,
            Err(e) => return Ok(crate::http::error_response(&e)),
        };
        if self.running.get() {
            let e = ApiError::new(
                409,
                ErrorCode::E005,
                "a generation is already running for this app",
            );
            return Ok(crate::http::error_response(&e));
        }
        let app = match App::new(self.env.clone()) {
            Ok(a) => a,
            Err(e) => return Response::error(format!("misconfigured: {e}"), 503),
        };
        let sql = self.sql()?;
        let st = load(&sql)?;
        let (tx, rx) = unbounded();
        let run = Run {
            sql,
            env: self.env.clone(),
            app,
            app_id,
            user_id,
            overrides: start.config,
            tx,
            st: RefCell::new(st),
            contents: RefCell::new(BTreeMap::new()),
        };
        self.running.set(true);
        let running = self.running.clone();
        worker::wasm_bindgen_futures::spawn_local(async move {
            run.generate(start.message, preview_url).await;
            running.set(false);
            // Dropping the run closes the client's stream.
        });
        let headers = worker::Headers::new();
        headers.set("Content-Type", "text/event-stream; charset=utf-8")?;
        headers.set("Cache-Control", "no-cache")?;
        Ok(Response::from_stream(rx)?.with_headers(headers))
    }

    fn state_since(&self, req: &Request) -> Result<Response> {
        let app_id = header(req, "X-App-Id").unwrap_or_default();
        let since: i64 = req
            .url()?
            .query_pairs()
            .find(|(k, _)| k == "since")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let sql = self.sql()?;
        let st = load(&sql)?;
        #[derive(serde::Deserialize)]
        struct Row {
            seq: f64,
            json: String,
        }
        let rows: Vec<Row> = sql
            .exec(
                "SELECT seq, json FROM events WHERE seq > ? ORDER BY seq LIMIT 1000",
                vec![SqlStorageValue::Integer(since.max(0))],
            )?
            .to_array()?;
        let events: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut v: serde_json::Value =
                    serde_json::from_str(&r.json).unwrap_or(serde_json::Value::Null);
                v["id"] = json!(r.seq as u64);
                v
            })
            .collect();
        let snap = st.snapshot(&app_id, last_seq(&sql)?);
        Response::from_json(
            &json!({ "state": snap, "events": events, "running": self.running.get() }),
        )
    }
}

impl DurableObject for CodeGeneratorAgent {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            running: Rc::new(Cell::new(false)),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/chat") => self.chat(req).await,
            (Method::Get, "/state") => self.state_since(&req),
            _ => Response::error("not found", 404),
        }
    }
}

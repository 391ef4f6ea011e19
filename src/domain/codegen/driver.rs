//! The code generator's driver: plain Rust over small ports, so every behaviour of a run (plan,
//! phases streamed into the sandbox, installs, diagnostics, correction rounds, follow-up edits,
//! stop/resume, resume after an interruption, versions) is exercised on the host with in-memory
//! fakes. The `CodeGeneratorAgent` Durable Object is a shell that implements the ports and calls
//! [`Driver::run`] from its alarm.
//!
//! Ports (kept few): [`Model`] (a chat completion, whole or streamed; cancellation is the
//! adapter's, through the shared [`Cancel`]), [`Sandbox`] (bring up, write, delete, install,
//! errors, type check, preview address), [`Store`] (the run state, the app's files and the
//! stored events, committed together; versions and the app record) and [`Events`] (fan-out to
//! connected clients). Work is chosen from the persisted state alone ([`RunState::next_work`]).
//!
//! Guarantee after an interruption (eviction, a killed runtime, `stop`): **a unit of work (a
//! phase, a correction round or an edit) is one generation, continued, never mixed.** The model's
//! output is committed as it streams: each block that closes is written to the sandbox and then
//! committed together with the file, the run state (which holds the unit's output up to the end
//! of that block) and its event, in one atomic store write. A resumed unit replays its stored
//! output through a fresh parser (nothing is written or announced again) and asks the model to
//! continue that same output from where it ended, so every file lands exactly once and all of
//! a unit's files come from one coherent generation. A write that reached the sandbox but not the
//! store (interrupted in between) is marked beforehand ([`RunState::pending_write`]) and undone on
//! resume (the committed content put back, or the file removed), so the sandbox never keeps a
//! file from a lost generation.

use super::blueprint::{parse_blueprint, Blueprint, PhaseInput, PhaseKind, PhasePlan, PhaseStatus};
use super::context::{self, Workspace};
use super::events::{AgentEvent, CallUsage, RunOutcome, RunStatus};
use super::files_format::{Event as FileEvent, Parser};
use super::models::{ChatMessage, Operation};
use super::phase_plan::{parse_phase_detail, PhaseDetail};
use super::prompts::{self, Diagnostic, Shown, TemplateInfo};
use super::run::{step, RunState, Step, Work};
use crate::domain::error::{summarize_upstream, ApiError, ErrorCode};
use crate::domain::templates;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

/// Phase name of follow-up edits in events.
pub const EDIT_PHASE: &str = "edit";
/// Files restored into a fresh sandbox per write, by size.
pub const RESTORE_BATCH_BYTES: usize = 512 * 1024;
/// File bytes one `===READ===` answer carries.
pub const READ_BYTES: usize = 48_000;
/// What a resumed unit asks the model after replaying its own output.
pub const CONTINUE_INSTRUCTION: &str = "Your previous answer (above) was interrupted. Continue it exactly where it stops: write the next line after its last line, in the same format, and do not repeat any block it already contains.";

/// A stop flag shared by the driver and the model adapter (checked between streamed chunks).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Rc<Cell<bool>>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.set(true);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.get()
    }
}

/// A 502 E005: generation failed.
pub fn generation_failed(message: impl Into<String>) -> ApiError {
    ApiError::new(502, ErrorCode::E005, message)
}

/// Stores `ev` (unless it is live: `file_chunk`, `state`) and sends it to clients with its id;
/// the one way events go out, for the driver and for the object's own command replies alike.
pub fn publish(store: &impl Store, events: &impl Events, ev: AgentEvent) {
    let live = matches!(ev, AgentEvent::FileChunk { .. } | AgentEvent::State(_));
    let id = if live {
        None
    } else {
        store.commit(|_| (), None, Some(&ev)).1
    };
    events.send(&ev, id);
}

/// The model: one chat completion for an operation. A successful call also says what it used
/// (the run's token count shown to its clients).
#[allow(async_fn_in_trait)]
pub trait Model {
    /// A whole completion's text.
    async fn complete(
        &self,
        op: Operation,
        messages: &[ChatMessage],
    ) -> Result<(String, CallUsage), ApiError>;
    /// A streamed completion: `on_delta` gets each piece of content as it arrives.
    async fn stream(
        &self,
        op: Operation,
        messages: &[ChatMessage],
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<CallUsage, ApiError>;
}

/// The app's sandbox.
#[allow(async_fn_in_trait)]
pub trait Sandbox {
    /// Brings the sandbox up from `template` and waits until it is ready; a running sandbox
    /// made from another template is replaced. `Ok(true)`: it was created fresh (the app's
    /// files must be restored into it).
    async fn ensure(&self, template: &str) -> Result<bool, ApiError>;
    /// Writes files (all or none); the message says why they were refused.
    async fn write(&self, files: &[(String, String)]) -> Result<(), String>;
    /// Deletes a file (absent counts as deleted).
    async fn delete(&self, path: &str) -> Result<(), String>;
    /// Installs dependencies; `Err` carries the installer's summary.
    async fn install(&self) -> Result<(), String>;
    /// The dev server's current errors.
    async fn errors(&self) -> Vec<Diagnostic>;
    /// The type checker's errors.
    async fn typecheck(&self) -> Vec<Diagnostic>;
    /// A fresh preview address for clients.
    fn preview_url(&self) -> Option<String>;
}

/// A file change committed with the run state.
#[derive(Debug, Clone, Copy)]
pub enum FileChange<'a> {
    Write { path: &'a str, content: &'a str },
    Delete { path: &'a str },
}

/// The run's persistence, shared with whoever handles commands while the driver works.
#[allow(async_fn_in_trait)]
pub trait Store {
    fn read<R>(&self, f: impl FnOnce(&RunState) -> R) -> R;
    /// Changes the run state and, in the same atomic write, a file and a stored event; returns
    /// the event's id. Live events (`file_chunk`, `state`) are not stored and have no id.
    fn commit<R>(
        &self,
        f: impl FnOnce(&mut RunState) -> R,
        file: Option<FileChange<'_>>,
        event: Option<&AgentEvent>,
    ) -> (R, Option<u64>);
    /// The app's current files.
    fn files(&self) -> BTreeMap<String, String>;
    /// The current content of one file.
    fn file(&self, path: &str) -> Option<String>;
    /// Saves a version of the app's files (a completed phase or edit); returns its number.
    async fn save_version(&self, label: &str) -> Result<u32, String>;
    /// Mirrors the app's file list and state to the app record.
    async fn mirror(&self);
    /// Called often while the driver works (the object keeps a wake-up armed).
    async fn keep_alive(&self);
}

/// Connected clients, and the operator's log.
pub trait Events {
    fn send(&self, event: &AgentEvent, id: Option<u64>);
    /// A line for the operator's log (never shown to users).
    fn log(&self, _line: &str) {}
}

/// How a step of the driver ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stopped,
    Failed,
}

/// The unit whose phase status a correction loop drives.
#[derive(Clone, Copy)]
enum Unit {
    Phase(usize),
    Edit,
}

/// One run of the driver over its ports.
pub struct Driver<'a, M, S, T, E> {
    pub model: &'a M,
    pub sandbox: &'a S,
    pub store: &'a T,
    pub events: &'a E,
    pub cancel: Cancel,
    pub max_corrections: u32,
    /// `package.json` changed since dependencies were last installed.
    deps_changed: Cell<bool>,
    sandbox_ready: Cell<bool>,
    /// The template the sandbox was last brought up from in this driver.
    sandbox_template: RefCell<Option<String>>,
}

impl<'a, M: Model, S: Sandbox, T: Store, E: Events> Driver<'a, M, S, T, E> {
    pub fn new(
        model: &'a M,
        sandbox: &'a S,
        store: &'a T,
        events: &'a E,
        cancel: Cancel,
        max_corrections: u32,
    ) -> Self {
        // A run picked up after an interruption may have written package.json unseen.
        let deps = store.read(|s| s.attempt.contains_key("package.json"));
        Self {
            model,
            sandbox,
            store,
            events,
            cancel,
            max_corrections,
            deps_changed: Cell::new(deps),
            sandbox_ready: Cell::new(false),
            sandbox_template: RefCell::new(None),
        }
    }

    // ----- state and events --------------------------------------------------------------

    fn read<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        self.store.read(f)
    }

    fn update<R>(&self, f: impl FnOnce(&mut RunState) -> R) -> R {
        self.store.commit(f, None, None).0
    }

    /// Stores the event (unless live) and sends it to clients.
    pub fn emit(&self, ev: AgentEvent) {
        publish(self.store, self.events, ev);
    }

    fn error(&self, e: &ApiError, recoverable: bool) {
        self.update(|s| {
            if let Some(job) = &mut s.ticket {
                job.error_reported(&e.message);
            }
        });
        self.emit(AgentEvent::from_error(e, recoverable));
    }

    /// Counts a finished model call in the run's totals and tells clients, in one store write.
    fn used(&self, call: CallUsage) {
        let ev = AgentEvent::Usage(call);
        let (_, id) = self.store.commit(
            |s| {
                if let AgentEvent::Usage(u) = &ev {
                    s.record_usage(u);
                }
            },
            None,
            Some(&ev),
        );
        self.events.send(&ev, id);
    }

    fn stopped(&self) -> bool {
        self.cancel.is_cancelled() || self.read(|s| s.status == RunStatus::Stopped)
    }

    // ----- the loop ----------------------------------------------------------------------

    /// Works until nothing is left, or the run stops or fails.
    pub async fn run(&self) {
        loop {
            self.store.keep_alive().await;
            let work = self.read(RunState::next_work);
            let template = self
                .read(|s| s.blueprint.as_ref().map(|b| b.template.clone()))
                .unwrap_or_else(|| templates::DEFAULT.to_string());
            let switch = self.sandbox_template.borrow().as_deref() != Some(template.as_str());
            if !matches!(work, Work::Idle | Work::Plan | Work::Finish)
                && (!self.sandbox_ready.get() || switch)
            {
                if let Err(e) = self.ensure_sandbox(&template).await {
                    self.error(&e, false);
                    self.fail().await;
                    return;
                }
            }
            let flow = match work {
                Work::Idle => {
                    if self.read(|s| s.status == RunStatus::Stopped) {
                        self.emit(AgentEvent::Done {
                            status: RunOutcome::Stopped,
                        });
                    }
                    return;
                }
                // The sandbox comes up from the default template while the blueprint is being
                // written; a blueprint that picks another template switches it afterwards.
                Work::Plan if !self.sandbox_ready.get() => {
                    let (flow, sandbox) =
                        futures_util::join!(self.plan(), self.ensure_sandbox(&template));
                    if let Err(e) = sandbox {
                        // Tried again (and reported) when the first phase needs it.
                        self.sandbox_ready.set(false);
                        *self.sandbox_template.borrow_mut() = None;
                        self.events.log(&format!(
                            "codegen: preparing the sandbox during planning failed: {}",
                            e.message
                        ));
                    }
                    flow
                }
                Work::Plan => self.plan().await,
                Work::Phase(i) => self.phase(i).await,
                Work::NextMessage => {
                    self.update(|s| {
                        s.start_next_edit();
                    });
                    Flow::Continue
                }
                Work::Edit => self.edit().await,
                Work::Finish => {
                    self.finish().await;
                    return;
                }
            };
            match flow {
                Flow::Continue => {}
                Flow::Stopped => {
                    self.update(|s| {
                        s.status = RunStatus::Stopped;
                        if let Some(job) = &mut s.ticket {
                            job.abandoned(
                                "the run was stopped before the ticket's change was finished",
                            );
                        }
                    });
                    self.store.mirror().await;
                    self.emit(AgentEvent::Done {
                        status: RunOutcome::Stopped,
                    });
                    return;
                }
                Flow::Failed => {
                    self.fail().await;
                    return;
                }
            }
        }
    }

    async fn fail(&self) {
        // Queued messages stay queued: the next message (or generation) applies them.
        self.update(|s| {
            s.status = RunStatus::Failed;
            s.current_phase = None;
            if let Some(job) = &mut s.ticket {
                job.abandoned("the code generator's run failed");
            }
        });
        self.store.mirror().await;
        self.emit(AgentEvent::Done {
            status: RunOutcome::Failed,
        });
    }

    async fn finish(&self) {
        let url = self.sandbox.preview_url();
        let status = self.update(|s| {
            s.status = s.finished_status();
            s.current_phase = None;
            s.preview_url = url.clone();
            s.status
        });
        self.store.mirror().await;
        if let Some(url) = url {
            self.emit(AgentEvent::PreviewReady { url });
        }
        self.emit(AgentEvent::Done {
            status: if status == RunStatus::Complete {
                RunOutcome::Completed
            } else {
                RunOutcome::Stopped
            },
        });
    }

    // ----- planning ----------------------------------------------------------------------

    async fn plan(&self) -> Flow {
        let Some(prompt) = self.read(|s| s.prompt.clone()) else {
            self.error(&generation_failed("the run has no prompt"), false);
            return Flow::Failed;
        };
        self.emit(AgentEvent::PhaseStart {
            phase: "planning".into(),
            message: "Planning the app".into(),
        });
        let infos: Vec<TemplateInfo<'_>> =
            templates::CATALOG.iter().map(TemplateInfo::of).collect();
        let names: Vec<&str> = templates::CATALOG.iter().map(|t| t.name).collect();
        let mut messages = prompts::blueprint_messages(&prompt, &infos);
        for attempt in 0..2 {
            let text = match self.model.complete(Operation::Blueprint, &messages).await {
                Ok((t, usage)) => {
                    self.used(usage);
                    t
                }
                Err(_) if self.stopped() => return Flow::Stopped,
                Err(e) => {
                    self.error(&e, false);
                    return Flow::Failed;
                }
            };
            match parse_blueprint(&text, &names) {
                Ok(b) => {
                    let summary =
                        format!("{}: {} phases on {}", b.title, b.phases.len(), b.template);
                    if self.stopped() {
                        return Flow::Stopped;
                    }
                    self.update(|s| s.planned(b));
                    self.emit(AgentEvent::PhaseComplete {
                        phase: "planning".into(),
                        message: summary,
                    });
                    return Flow::Continue;
                }
                Err(e) if attempt == 0 => prompts::blueprint_retry(&mut messages, &text, &e),
                Err(e) => self.error(
                    &generation_failed(format!(
                        "the model did not produce a valid plan: {}",
                        e.problems.join("; ")
                    )),
                    false,
                ),
            }
        }
        Flow::Failed
    }

    // ----- phases and edits --------------------------------------------------------------

    fn status_of(&self, unit: Unit) -> Option<PhaseStatus> {
        self.read(|s| match unit {
            Unit::Phase(i) => s.phases.get(i).copied(),
            Unit::Edit => s.edit.as_ref().map(|e| e.status),
        })
    }

    /// Moves `unit` on; entering a new stream (implementing, a correction round) starts a new
    /// unit of output.
    fn advance(&self, unit: Unit, input: PhaseInput) {
        let max = self.max_corrections;
        self.update(|s| {
            let slot = match unit {
                Unit::Phase(i) => s.phases.get_mut(i),
                Unit::Edit => s.edit.as_mut().map(|e| &mut e.status),
            };
            let Some(p) = slot else { return };
            if let Ok(n) = p.next(input, max) {
                *p = n;
                if matches!(
                    n,
                    PhaseStatus::Implementing | PhaseStatus::Correcting { .. }
                ) {
                    s.begin_unit();
                }
            }
        });
    }

    fn file_context(&self) -> Vec<(String, String)> {
        self.store.files().into_iter().collect()
    }

    /// The run's starting template (the blueprint's, else the default).
    fn template(&self) -> &'static templates::Template {
        self.read(|s| {
            s.blueprint
                .as_ref()
                .and_then(|b| templates::find(&b.template))
        })
        .or_else(|| templates::find(templates::DEFAULT))
        .unwrap_or(&templates::CATALOG[0])
    }

    /// The app as the model sees it: the template's files under the run's own.
    fn workspace(&self) -> Workspace {
        Workspace::new(self.template().sources, self.store.files())
    }

    /// A file's current content: the run's, else the template's.
    fn current_file(&self, path: &str) -> Option<String> {
        self.store.file(path).or_else(|| {
            self.template()
                .sources
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, c)| c.to_string())
        })
    }

    async fn phase(&self, i: usize) -> Flow {
        let Some(blueprint) = self.read(|s| s.blueprint.clone()) else {
            return Flow::Failed;
        };
        let Some(plan) = blueprint.phases.get(i).cloned() else {
            return Flow::Failed;
        };
        let status = self.status_of(Unit::Phase(i));
        self.update(|s| s.current_phase = Some(i));
        if status == Some(PhaseStatus::Planned) {
            self.emit(AgentEvent::PhaseStart {
                phase: plan.name.clone(),
                message: plan.description.clone(),
            });
            // Planned already while the previous phase's checks ran, or now.
            let ahead = self.read(|s| {
                (
                    s.phase_details.get(&i).cloned(),
                    s.planned_without_detail.contains(&i),
                )
            });
            let detail = match ahead {
                (Some(d), _) => Some(d),
                (None, true) => None,
                (None, false) => match self.plan_phase(&blueprint, i).await {
                    Ok(d) => d,
                    Err(flow) => return flow,
                },
            };
            // The detailed plan's files, or the blueprint's when the model gave none.
            let files: Vec<String> = match &detail {
                Some(d) => d.files.iter().map(|f| f.path.clone()).collect(),
                None => plan.files.clone(),
            };
            let ev = AgentEvent::PhasePlanned {
                phase: plan.name.clone(),
                files,
            };
            let (_, id) = self.store.commit(
                |s| {
                    if let Some(d) = detail {
                        s.phase_details.insert(i, d);
                    }
                },
                None,
                Some(&ev),
            );
            self.events.send(&ev, id);
            self.advance(Unit::Phase(i), PhaseInput::Start);
        } else {
            self.emit(AgentEvent::PhaseStart {
                phase: plan.name.clone(),
                message: format!("Resuming {}", plan.name),
            });
        }
        if self.status_of(Unit::Phase(i)) == Some(PhaseStatus::Implementing) {
            let ws = self.workspace();
            let detail = self.read(|s| s.phase_details.get(&i).cloned());
            // The phase's files (planned, and in its detailed plan) and what they import; a
            // first phase also gets the template's entry chain.
            let mut focus: Vec<String> = plan.files.clone();
            if let Some(d) = &detail {
                focus.extend(d.files.iter().map(|f| f.path.clone()));
            }
            if self.read(|s| s.files.is_empty()) {
                focus.extend(ENTRY_FILES.iter().map(|p| p.to_string()));
            }
            let focus = ws.with_imports(&focus);
            let selection = context::select(
                &ws,
                &focus,
                context::IMPLEMENTATION_FULL_BYTES,
                context::OUTLINE_BYTES,
            );
            let template = TemplateInfo::of(self.template());
            let messages = prompts::phase_messages(
                &blueprint,
                Some(&template),
                i,
                detail.as_ref(),
                &Shown::of(&ws, &selection),
                context::IMPLEMENTATION_FULL_BYTES,
            );
            match self.stream_files(Operation::Implementation, messages).await {
                Flow::Continue => self.advance(Unit::Phase(i), PhaseInput::Implemented),
                Flow::Stopped => return Flow::Stopped,
                Flow::Failed => {
                    self.advance(Unit::Phase(i), PhaseInput::Abort);
                    self.store.mirror().await;
                    return Flow::Failed;
                }
            }
        }
        // The next phase is planned while this one's checks run (the model waits on nothing
        // the checks decide: the plan needs the blueprint and the file list).
        let (flow, ()) = futures_util::join!(
            self.correct(&blueprint, &plan.name, Unit::Phase(i)),
            self.plan_ahead(&blueprint, i + 1)
        );
        match flow {
            Flow::Continue => {}
            other => return other,
        }
        self.save_version(&plan.name).await;
        self.store.mirror().await;
        let unresolved = self.status_of(Unit::Phase(i)) == Some(PhaseStatus::Failed);
        self.emit(AgentEvent::PhaseComplete {
            phase: plan.name.clone(),
            message: if unresolved {
                format!("{} finished with unresolved errors", plan.name)
            } else {
                format!("{} complete", plan.name)
            },
        });
        Flow::Continue
    }

    /// Asks the model for phase `i`'s detailed plan. `Ok(None)`: its answer was not a usable
    /// plan, and the blueprint's plan of the phase is followed as it is.
    async fn plan_phase(
        &self,
        blueprint: &Blueprint,
        i: usize,
    ) -> Result<Option<PhaseDetail>, Flow> {
        match self.ask_phase_plan(blueprint, i).await {
            Ok(text) => Ok(parse_phase_detail(&text).ok()),
            Err(_) if self.stopped() => Err(Flow::Stopped),
            Err(e) => {
                self.error(&e, false);
                self.advance(Unit::Phase(i), PhaseInput::Abort);
                Err(Flow::Failed)
            }
        }
    }

    /// Asks the model for phase `i`'s detailed plan (its usage recorded); the raw answer.
    async fn ask_phase_plan(&self, blueprint: &Blueprint, i: usize) -> Result<String, ApiError> {
        let ws = self.workspace();
        let paths: Vec<&str> = ws.files.keys().map(String::as_str).collect();
        let template = TemplateInfo::of(self.template());
        let messages = prompts::phase_plan_messages(blueprint, Some(&template), i, &paths);
        let (text, usage) = self
            .model
            .complete(Operation::PhasePlanning, &messages)
            .await?;
        self.used(usage);
        Ok(text)
    }

    /// Plans phase `i` ahead of time, when that is safe: it is next and not started, nothing
    /// waits to go before it (a queued edit could change the files it plans from) and it has
    /// no plan yet. A failure here changes nothing: the phase plans itself when it starts.
    async fn plan_ahead(&self, blueprint: &Blueprint, i: usize) {
        let safe = self.read(|s| {
            s.phases.get(i) == Some(&PhaseStatus::Planned)
                && !s.phase_details.contains_key(&i)
                && !s.planned_without_detail.contains(&i)
                && s.queue.is_empty()
                && !s.hold_phases
        });
        if !safe || self.stopped() {
            return;
        }
        match self.ask_phase_plan(blueprint, i).await {
            Ok(text) => {
                let detail = parse_phase_detail(&text).ok();
                self.update(|s| {
                    if s.phases.get(i) == Some(&PhaseStatus::Planned) {
                        match detail {
                            Some(d) => {
                                s.phase_details.insert(i, d);
                            }
                            None => {
                                s.planned_without_detail.insert(i);
                            }
                        }
                    }
                });
            }
            Err(e) => self.events.log(&format!(
                "codegen: planning phase {} ahead failed ({}); it plans when it starts",
                i + 1,
                e.message
            )),
        }
    }

    async fn edit(&self) -> Flow {
        let Some(edit) = self.read(|s| s.edit.clone()) else {
            return Flow::Continue;
        };
        let blueprint = self.read(|s| s.blueprint.clone());
        self.update(|s| s.current_phase = None);
        if edit.status == PhaseStatus::Planned {
            self.advance(Unit::Edit, PhaseInput::Start);
            self.emit(AgentEvent::PhaseStart {
                phase: EDIT_PHASE.into(),
                message: edit.message.clone(),
            });
        } else {
            self.emit(AgentEvent::PhaseStart {
                phase: EDIT_PHASE.into(),
                message: format!("Resuming: {}", edit.message),
            });
        }
        if self.status_of(Unit::Edit) == Some(PhaseStatus::Implementing) {
            let ws = self.workspace();
            // The files the request concerns (ranked over paths, outlines and text), what they
            // import, then the root component where most requests land.
            let mut focus = ws.with_imports(&context::rank_for_request(&ws, &edit.message));
            focus.push(ROOT_COMPONENT.to_string());
            let selection = context::select(
                &ws,
                &focus,
                context::EDIT_FULL_BYTES,
                context::EDIT_OUTLINE_BYTES,
            );
            let template = TemplateInfo::of(self.template());
            let messages = prompts::chat_edit_messages(
                &edit.message,
                blueprint.as_ref(),
                Some(&template),
                &Shown::of(&ws, &selection),
                context::EDIT_FULL_BYTES,
            );
            match self.stream_files(Operation::ChatEdit, messages).await {
                Flow::Continue => self.advance(Unit::Edit, PhaseInput::Implemented),
                Flow::Stopped => return Flow::Stopped,
                Flow::Failed => {
                    self.advance(Unit::Edit, PhaseInput::Abort);
                    return Flow::Failed;
                }
            }
        }
        if let Some(b) = &blueprint {
            match self.correct(b, EDIT_PHASE, Unit::Edit).await {
                Flow::Continue => {}
                other => return other,
            }
        } else {
            self.advance(Unit::Edit, PhaseInput::ValidationPassed);
        }
        let version = self.save_version(EDIT_PHASE).await;
        // A ticket's edit ends here: its outcome is decided from what it changed.
        let status = self.status_of(Unit::Edit).unwrap_or(PhaseStatus::Failed);
        self.update(|s| {
            let files = s.file_hashes();
            if let Some(job) = &mut s.ticket {
                job.edit_ended(status, &files, version);
            }
        });
        self.store.mirror().await;
        self.emit(AgentEvent::PhaseComplete {
            phase: EDIT_PHASE.into(),
            message: format!("Applied: {}", edit.message),
        });
        Flow::Continue
    }

    async fn save_version(&self, label: &str) -> Option<u32> {
        match self.store.save_version(label).await {
            Ok(v) => Some(v),
            Err(e) => {
                // The files are in the store and the sandbox; generation goes on.
                self.events
                    .log(&format!("codegen: saving a version failed: {e}"));
                None
            }
        }
    }

    /// The sandbox's errors after a unit: a failed install first, then the dev server's, then
    /// the type checker's.
    async fn diagnostics(&self) -> Vec<Diagnostic> {
        let found = self.install().await;
        if !found.is_empty() {
            return found;
        }
        let found = self.sandbox.errors().await;
        if !found.is_empty() {
            return found;
        }
        self.sandbox.typecheck().await
    }

    /// Checks the sandbox after `unit`; while errors remain, up to the configured bound of
    /// correction rounds goes back to the model; what remains after the last is reported and
    /// the run goes on.
    async fn correct(&self, blueprint: &Blueprint, name: &str, unit: Unit) -> Flow {
        let max = self.max_corrections;
        let mut errors: Option<Vec<Diagnostic>> = None;
        loop {
            if self.stopped() {
                return Flow::Stopped;
            }
            self.store.keep_alive().await;
            match self.status_of(unit) {
                Some(PhaseStatus::Validating { .. }) => {
                    let found = self.diagnostics().await;
                    if found.is_empty() {
                        self.advance(unit, PhaseInput::ValidationPassed);
                        return Flow::Continue;
                    }
                    self.advance(unit, PhaseInput::ValidationFailed);
                    if self.status_of(unit) == Some(PhaseStatus::Failed) {
                        let list: Vec<String> = found.iter().take(5).map(describe).collect();
                        self.error(
                            &generation_failed(format!(
                                "phase \"{name}\" still has {} error(s) after {max} correction rounds: {}",
                                found.len(),
                                list.join("; ")
                            )),
                            true,
                        );
                        return Flow::Continue;
                    }
                    if let Some(d) = found.first() {
                        self.events.log(&format!(
                            "codegen: \"{name}\" has {} error(s); correcting. First: {} [{}] {}",
                            found.len(),
                            describe_place(d),
                            d.kind,
                            d.message.lines().next().unwrap_or_default()
                        ));
                    }
                    errors = Some(found);
                }
                Some(PhaseStatus::Correcting { round }) => {
                    let found = match errors.take() {
                        Some(e) => e,
                        // Resumed inside a round: the sandbox says what is still wrong.
                        None => self.diagnostics().await,
                    };
                    let plan = match unit {
                        Unit::Phase(i) => blueprint.phases.get(i).cloned(),
                        Unit::Edit => None,
                    }
                    .unwrap_or_else(|| PhasePlan {
                        name: name.to_string(),
                        kind: PhaseKind::Core,
                        description: "a follow-up edit".into(),
                        files: Vec::new(),
                    });
                    // The failing files and what they import in full; the rest as outlines.
                    let ws = self.workspace();
                    let mut failing: Vec<String> = Vec::new();
                    for d in &found {
                        if let Some(f) = d.file.as_deref().and_then(|f| workspace_path(&ws, f)) {
                            if !failing.contains(&f) {
                                failing.push(f);
                            }
                        }
                    }
                    if failing.is_empty() {
                        // No file named (a runtime error): the unit's own files.
                        failing = plan.files.clone();
                    }
                    let selection = context::select(
                        &ws,
                        &ws.with_imports(&failing),
                        context::CORRECTION_FULL_BYTES,
                        context::OUTLINE_BYTES,
                    );
                    let template = TemplateInfo::of(self.template());
                    let messages = prompts::correction_messages(
                        blueprint,
                        Some(&template),
                        &plan,
                        round,
                        max,
                        &found,
                        &Shown::of(&ws, &selection),
                        context::CORRECTION_FULL_BYTES,
                    );
                    match self
                        .stream_files(Operation::ErrorCorrection, messages)
                        .await
                    {
                        Flow::Continue => self.advance(unit, PhaseInput::CorrectionApplied),
                        Flow::Stopped => return Flow::Stopped,
                        Flow::Failed => {
                            self.advance(unit, PhaseInput::Abort);
                            return Flow::Failed;
                        }
                    }
                }
                // Implemented or already decided.
                _ => return Flow::Continue,
            }
        }
    }

    /// Installs dependencies when `package.json` changed; a failure is a diagnostic for the
    /// correction loop (the model can fix a bad version or a misspelt package).
    async fn install(&self) -> Vec<Diagnostic> {
        if !self.deps_changed.get() {
            return Vec::new();
        }
        match self.sandbox.install().await {
            Ok(()) => {
                self.deps_changed.set(false);
                Vec::new()
            }
            Err(message) => vec![Diagnostic {
                file: Some("package.json".into()),
                line: None,
                column: None,
                message,
                kind: "install".into(),
            }],
        }
    }

    // ----- the sandbox -------------------------------------------------------------------

    /// Brings the sandbox up; a fresh one gets the app's files (and their dependencies).
    pub async fn ensure_sandbox(&self, template: &str) -> Result<(), ApiError> {
        let unavailable = |m: String| ApiError::new(503, ErrorCode::E006, m);
        let fresh = self.sandbox.ensure(template).await?;
        self.sandbox_ready.set(true);
        *self.sandbox_template.borrow_mut() = Some(template.to_string());
        if !fresh {
            return Ok(());
        }
        let files = self.file_context();
        let mut batch: Vec<(String, String)> = Vec::new();
        let mut size = 0;
        let mut it = files.into_iter().peekable();
        while let Some((path, content)) = it.next() {
            size += content.len();
            batch.push((path, content));
            if size >= RESTORE_BATCH_BYTES || it.peek().is_none() {
                size = 0;
                self.sandbox
                    .write(&std::mem::take(&mut batch))
                    .await
                    .map_err(|e| {
                        self.events
                            .log(&format!("codegen: restoring the app's files failed: {e}"));
                        unavailable(format!(
                            "restoring the app's files failed: {}",
                            summarize_upstream(&e)
                        ))
                    })?;
            }
        }
        if self.store.file("package.json").is_some() {
            // The template's dependencies were installed; the app's may differ.
            self.deps_changed.set(true);
            if let Some(e) = self.install().await.first() {
                self.events.log(&format!(
                    "codegen: restoring dependencies failed: {}",
                    e.message
                ));
                return Err(unavailable(format!(
                    "installing the app's dependencies failed: {}",
                    user_text(e)
                )));
            }
        }
        Ok(())
    }

    /// Undoes a sandbox write that was not committed (interrupted between the two).
    async fn undo_pending(&self) {
        let Some(path) = self.read(|s| s.pending_write.clone()) else {
            return;
        };
        let r = match self.store.file(&path) {
            Some(content) => self.sandbox.write(&[(path.clone(), content)]).await,
            None => self.sandbox.delete(&path).await,
        };
        if r.is_ok() {
            self.update(|s| s.pending_write = None);
        }
    }

    // ----- model output ------------------------------------------------------------------

    /// Streams one unit's model output through the files parser; each block that closes is
    /// applied while the rest is still arriving. A unit resumed with output already committed
    /// replays it (applying nothing again) and asks the model to continue it.
    async fn stream_files(&self, operation: Operation, mut messages: Vec<ChatMessage>) -> Flow {
        self.undo_pending().await;
        let done = self.read(|s| s.unit_output.clone());
        let mut parser = Parser::new();
        if !done.is_empty() {
            // Everything in it was applied and committed: position the parser after it. Files
            // it asked to read are shown again with the request to continue.
            let outside: String = parser
                .feed_str(&done)
                .into_iter()
                .filter_map(|e| match e {
                    FileEvent::Text(t) => Some(t),
                    _ => None,
                })
                .collect();
            let reads = prompts::read_requests(&outside);
            messages.push(ChatMessage::assistant(done.clone()));
            if reads.is_empty() {
                messages.push(ChatMessage::user(CONTINUE_INSTRUCTION));
            } else {
                let answer = prompts::read_answer(&self.workspace(), &reads, READ_BYTES);
                messages.push(ChatMessage::user(format!(
                    "{answer}\n\n{CONTINUE_INSTRUCTION}"
                )));
            }
        }
        let output = RefCell::new(done);
        // This turn's text outside blocks (where `===READ: path===` requests are).
        let outside = RefCell::new(String::new());
        let (tx, mut rx) = futures_channel::mpsc::unbounded::<(FileEvent, usize)>();
        let producer = async {
            let mut on_delta = |d: &str| {
                // Fed a line at a time, so each event knows how much output it completes; the
                // live chunks of one delta go out as one event per file, as the model sent them.
                let mut pending: Option<(String, String, usize)> = None;
                let flush = |p: &mut Option<(String, String, usize)>| {
                    if let Some((path, chunk, end)) = p.take() {
                        let _ =
                            tx.unbounded_send((FileEvent::FileChunk { path, text: chunk }, end));
                    }
                };
                for piece in d.split_inclusive('\n') {
                    let end = {
                        let mut o = output.borrow_mut();
                        o.push_str(piece);
                        o.len()
                    };
                    for e in parser.feed_str(piece) {
                        match e {
                            FileEvent::FileChunk { path, text } => match &mut pending {
                                Some((p, chunk, at)) if *p == path => {
                                    chunk.push_str(&text);
                                    *at = end;
                                }
                                _ => {
                                    flush(&mut pending);
                                    pending = Some((path, text, end));
                                }
                            },
                            other => {
                                flush(&mut pending);
                                if let FileEvent::Text(t) = &other {
                                    outside.borrow_mut().push_str(t);
                                }
                                let _ = tx.unbounded_send((other, end));
                            }
                        }
                    }
                }
                flush(&mut pending);
            };
            // A turn that ends asking to READ files gets them in a follow-up turn (bounded),
            // and its output goes on in the same unit.
            let mut turns = 0;
            let r = loop {
                let start = output.borrow().len();
                outside.borrow_mut().clear();
                let r = self.model.stream(operation, &messages, &mut on_delta).await;
                if r.is_err() || self.stopped() || turns >= context::MAX_READ_TURNS {
                    break r;
                }
                let reads = prompts::read_requests(&outside.borrow());
                if reads.is_empty() {
                    break r;
                }
                turns += 1;
                let this_turn = output.borrow()[start..].to_string();
                if !this_turn.ends_with('\n') {
                    on_delta("\n");
                }
                self.events.log(&format!(
                    "codegen: the model asked to read {} file(s): {}",
                    reads.len(),
                    reads.join(", ")
                ));
                messages.push(ChatMessage::assistant(this_turn));
                messages.push(ChatMessage::user(prompts::read_answer(
                    &self.workspace(),
                    &reads,
                    READ_BYTES,
                )));
            };
            let tail = parser.finish();
            if r.is_ok() {
                if let Ok(events) = &tail {
                    let end = output.borrow().len();
                    for e in events.iter().cloned() {
                        let _ = tx.unbounded_send((e, end));
                    }
                }
            }
            tx.close_channel();
            (r, tail)
        };
        let consumer = async {
            use futures_util::StreamExt;
            while let Some((e, end)) = rx.next().await {
                if self.stopped() {
                    continue;
                }
                let text = output.borrow()[..end].to_string();
                self.apply(e, text).await;
            }
        };
        let ((result, tail), ()) = futures_util::join!(producer, consumer);
        // The call's tokens were spent however its output is used.
        let result = result.map(|usage| self.used(usage));
        if self.stopped() {
            return Flow::Stopped;
        }
        match (result, tail) {
            (Err(e), _) => {
                self.error(&e, false);
                Flow::Failed
            }
            (Ok(()), Err(e)) => {
                self.error(
                    &generation_failed(format!(
                        "the model's output was cut off ({e}); the unfinished file was not written"
                    )),
                    false,
                );
                Flow::Failed
            }
            (Ok(()), Ok(_)) => Flow::Continue,
        }
    }

    /// Applies one parsed block; `output` is the unit's output up to the block's end, committed
    /// with it.
    async fn apply(&self, e: FileEvent, output: String) {
        let Some(s) = step(e, |p| self.current_file(p)) else {
            return;
        };
        match s {
            Step::Emit(ev @ AgentEvent::FileChunk { .. }) => self.emit(ev),
            Step::Emit(ev) => self.commit_block(|_| {}, None, ev, output),
            Step::Write { path, content } => {
                // Dependencies are installed again only when they change (not for a new script
                // or a reformatted file).
                let deps_differ = path == "package.json"
                    && self
                        .current_file(&path)
                        .and_then(|old| context::dependencies(&old))
                        .is_none_or(|old| context::dependencies(&content) != Some(old));
                self.update(|s| s.pending_write = Some(path.clone()));
                match self.sandbox.write(&[(path.clone(), content.clone())]).await {
                    Ok(()) => {
                        if deps_differ {
                            self.deps_changed.set(true);
                        }
                        let ev = AgentEvent::FileGenerated {
                            path: path.clone(),
                            content: content.clone(),
                        };
                        let file = FileChange::Write {
                            path: &path,
                            content: &content,
                        };
                        self.commit_block(
                            |s| {
                                s.record_write(&path, &content);
                            },
                            Some(file),
                            ev,
                            output,
                        );
                        self.store.keep_alive().await;
                    }
                    Err(why) => self.refused(format!("{path} was not written"), &why, output),
                }
            }
            Step::Delete { path } => {
                self.update(|s| s.pending_write = Some(path.clone()));
                match self.sandbox.delete(&path).await {
                    Ok(()) => {
                        let ev = AgentEvent::FileDeleted { path: path.clone() };
                        let file = FileChange::Delete { path: &path };
                        self.commit_block(|s| s.record_delete(&path), Some(file), ev, output);
                    }
                    Err(why) => self.refused(format!("{path} was not deleted"), &why, output),
                }
            }
        }
    }

    /// Commits a handled block: the state change, the file, the block's event and the unit's
    /// output up to its end (no write pending any more), in one store write; then tells clients.
    fn commit_block(
        &self,
        f: impl FnOnce(&mut RunState),
        file: Option<FileChange<'_>>,
        ev: AgentEvent,
        output: String,
    ) {
        let (_, id) = self.store.commit(
            |s| {
                f(s);
                s.unit_output = output;
                s.pending_write = None;
            },
            file,
            Some(&ev),
        );
        self.events.send(&ev, id);
    }

    /// A block the sandbox refused: a recoverable error, committed like any handled block. The
    /// sandbox's own words go to the log; users get a summary.
    fn refused(&self, what: String, why: &str, output: String) {
        self.events.log(&format!("codegen: {what}: {why}"));
        let message = format!("{what}: {}", summarize_upstream(why));
        let ev = AgentEvent::from_error(&generation_failed(message), true);
        self.commit_block(|_| {}, None, ev, output);
    }
}

/// A template's entry chain: shown in full to a first phase (and its root component to edits).
const ENTRY_FILES: &[&str] = &["src/main.tsx", "src/App.tsx", "package.json", "index.html"];
const ROOT_COMPONENT: &str = "src/App.tsx";

/// The workspace path a diagnostic's file names (tools report `./src/x.ts`, `/workspace/src/x.ts`
/// or an absolute path ending in the app's path).
fn workspace_path(ws: &Workspace, file: &str) -> Option<String> {
    let f = file.trim_start_matches("./");
    if ws.files.contains_key(f) {
        return Some(f.to_string());
    }
    ws.files
        .keys()
        .filter(|p| f.ends_with(&format!("/{p}")))
        .max_by_key(|p| p.len())
        .cloned()
}

fn describe_place(d: &Diagnostic) -> String {
    format!(
        "{}:{}",
        d.file.as_deref().unwrap_or("?"),
        d.line.unwrap_or(0)
    )
}

/// A diagnostic as users see it: its place and [`user_text`].
fn describe(d: &Diagnostic) -> String {
    format!("{} {}", describe_place(d), user_text(d))
}

/// What users are told of a diagnostic (the model gets all of it): an install failure's
/// headline and npm's first meaningful line; otherwise its first line, each cleaned of paths and
/// secrets and bounded ([`summarize_upstream`]).
pub fn user_text(d: &Diagnostic) -> String {
    match d.message.split_once('\n') {
        Some((head, rest)) if d.kind == "install" => {
            let line = summarize_upstream(rest);
            let head = summarize_upstream(head.trim_end_matches(':'));
            if line.is_empty() {
                head
            } else {
                format!("{head}: {line}")
            }
        }
        _ => summarize_upstream(&d.message),
    }
}

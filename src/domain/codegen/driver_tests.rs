//! Host tests of the driver over in-memory fakes of every port: whole runs in milliseconds, and an
//! interruption at every file boundary of a multi-phase run.

use super::driver::*;
use super::events::{AgentEvent, CallUsage, RunOutcome, RunStatus};
use super::files_format::UnifiedDiff;
use super::models::{ChatMessage, Operation, Provider, Role};
use super::prompts::Diagnostic;
use super::run::RunState;
use crate::domain::error::{ApiError, ErrorCode};
use futures_executor::LocalPool;
use futures_util::task::LocalSpawnExt;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

const PHASES: usize = 3;
const FILES_PER_PHASE: usize = 3;

fn blueprint_json() -> String {
    let phases: Vec<serde_json::Value> = (0..PHASES)
        .map(|i| {
            serde_json::json!({
                "name": format!("Phase {i}"),
                "kind": if i == 0 { "foundation" } else { "core" },
                "description": format!("phase {i}"),
                "files": (0..FILES_PER_PHASE).map(|k| format!("src/p{i}_{k}.ts")).collect::<Vec<_>>(),
            })
        })
        .collect();
    let files: Vec<serde_json::Value> = (0..PHASES)
        .flat_map(|i| {
            (0..FILES_PER_PHASE).map(
                move |k| serde_json::json!({"path": format!("src/p{i}_{k}.ts"), "purpose": "x"}),
            )
        })
        .collect();
    serde_json::json!({
        "title": "Test app", "description": "an app", "template": "react-vite", "frameworks": [],
        "files": files, "phases": phases,
    })
    .to_string()
}

/// Phase `i`'s output in generation `g`: every file carries the generation's tag.
fn phase_output(i: usize, g: u32) -> String {
    let mut out = format!("Writing phase {i}.\n");
    for k in 0..FILES_PER_PHASE {
        out.push_str(&format!(
            "===FILE: src/p{i}_{k}.ts===\n// generation {g}\nexport const v{k} = {g};\n===END FILE===\n"
        ));
    }
    out
}

fn phase_of(messages: &[ChatMessage]) -> usize {
    let text: String = messages.iter().map(|m| m.content.as_str()).collect();
    (1..=PHASES)
        .find(|n| text.contains(&format!("Implement phase {n} of")))
        .map(|n| n - 1)
        .expect("an implementation prompt names its phase")
}

type Script = Box<dyn Fn(Operation, &[ChatMessage], u32) -> Result<String, ApiError>>;

/// A scripted model. Every fresh call is a new generation; a continuation request continues the
/// generation whose start it carries (so a driver that re-asked instead would mix generations).
struct FakeModel {
    script: Script,
    generation: Cell<u32>,
    produced: RefCell<Vec<String>>,
    calls: RefCell<Vec<(Operation, Vec<ChatMessage>)>>,
    /// Bytes per streamed delta.
    chunk: usize,
    /// The blueprint is answered only once this holds (the driver must make it true meanwhile).
    blueprint_waits: RefCell<Option<Rc<dyn Fn() -> bool>>>,
}

impl FakeModel {
    fn new(script: Script) -> Self {
        Self {
            script,
            generation: Cell::new(0),
            produced: RefCell::new(Vec::new()),
            calls: RefCell::new(Vec::new()),
            chunk: 7,
            blueprint_waits: RefCell::new(None),
        }
    }

    fn answer(&self, op: Operation, messages: &[ChatMessage]) -> Result<String, ApiError> {
        self.calls.borrow_mut().push((op, messages.to_vec()));
        let n = messages.len();
        if n >= 2 && messages[n - 1].content == CONTINUE_INSTRUCTION {
            assert_eq!(messages[n - 2].role, Role::Assistant);
            let prefix = &messages[n - 2].content;
            let whole = self
                .produced
                .borrow()
                .iter()
                .find(|p| p.starts_with(prefix.as_str()))
                .cloned()
                .expect("a continuation of an output this model produced");
            return Ok(whole[prefix.len()..].to_string());
        }
        self.generation.set(self.generation.get() + 1);
        let text = (self.script)(op, messages, self.generation.get())?;
        self.produced.borrow_mut().push(text.clone());
        Ok(text)
    }

    fn calls_of(&self, op: Operation) -> usize {
        self.calls.borrow().iter().filter(|(o, _)| *o == op).count()
    }
}

/// What the fake says a call used: one token per byte, from a model named after the operation.
fn fake_usage(op: Operation, messages: &[ChatMessage], text: &str) -> CallUsage {
    let prompt: u64 = messages.iter().map(|m| m.content.len() as u64).sum();
    CallUsage {
        operation: op,
        provider: Provider::Custom,
        model: format!("fake-{}", op.as_str()),
        prompt_tokens: prompt,
        completion_tokens: text.len() as u64,
        total_tokens: prompt + text.len() as u64,
    }
}

impl Model for FakeModel {
    async fn complete(
        &self,
        op: Operation,
        messages: &[ChatMessage],
    ) -> Result<(String, CallUsage), ApiError> {
        let wait = self.blueprint_waits.borrow().clone();
        if let (Operation::Blueprint, Some(ready)) = (op, wait) {
            // Yields (bounded) until the condition holds: never a timer.
            let mut polls = 0;
            futures_util::future::poll_fn(|cx| {
                polls += 1;
                if ready() || polls > 1000 {
                    std::task::Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                }
            })
            .await;
            if !ready() {
                return Err(generation_failed("the blueprint waited in vain"));
            }
        }
        let text = self.answer(op, messages)?;
        let usage = fake_usage(op, messages, &text);
        Ok((text, usage))
    }

    async fn stream(
        &self,
        op: Operation,
        messages: &[ChatMessage],
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<CallUsage, ApiError> {
        let text = self.answer(op, messages)?;
        let usage = fake_usage(op, messages, &text);
        let bytes = text.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let end = text.ceil_char_boundary((at + self.chunk).min(bytes.len()));
            on_delta(&text[at..end]);
            at = end;
        }
        Ok(usage)
    }
}

/// Where the fake sandbox stops answering (the run is interrupted there).
#[derive(Clone, Copy, Debug)]
enum Crash {
    /// The n-th write (0-based) never starts.
    BeforeWrite(usize),
    /// The n-th write lands in the sandbox, then the runtime dies before the driver goes on.
    AfterWrite(usize),
}

/// Holds a type check (its 0-based number) until it says so.
type CheckGate = Rc<dyn Fn(usize) -> bool>;

/// Called with the number of each landed write.
type WriteHook = Box<dyn Fn(usize)>;

#[derive(Default)]
struct FakeSandbox {
    files: RefCell<BTreeMap<String, String>>,
    created: Cell<u32>,
    /// The template of every `ensure`.
    templates: RefCell<Vec<String>>,
    /// The n-th type check (0-based) finishes only once this holds for n.
    typecheck_waits: RefCell<Option<CheckGate>>,
    typechecks: Cell<usize>,
    writes: Cell<usize>,
    crash: Cell<Option<Crash>>,
    installs: RefCell<VecDeque<Result<(), String>>>,
    install_calls: Cell<u32>,
    errors: RefCell<VecDeque<Vec<Diagnostic>>>,
    /// Called after each landed write (e.g. a `stop` arriving meanwhile).
    on_write: RefCell<Option<WriteHook>>,
}

impl Sandbox for FakeSandbox {
    async fn ensure(&self, template: &str) -> Result<bool, ApiError> {
        // Another template replaces the sandbox (fresh, like a first one).
        let switched = self
            .templates
            .borrow()
            .last()
            .is_some_and(|t| t != template);
        self.templates.borrow_mut().push(template.to_string());
        let fresh = self.created.get() == 0 || switched;
        self.created.set(self.created.get() + 1);
        Ok(fresh)
    }

    async fn write(&self, files: &[(String, String)]) -> Result<(), String> {
        let n = self.writes.get();
        if let Some(Crash::BeforeWrite(at)) = self.crash.get() {
            if at == n {
                futures_util::future::pending::<()>().await;
            }
        }
        for (p, c) in files {
            if p.contains("forbidden") {
                return Err("refused".into());
            }
            self.files.borrow_mut().insert(p.clone(), c.clone());
        }
        self.writes.set(n + 1);
        if let Some(Crash::AfterWrite(at)) = self.crash.get() {
            if at == n {
                futures_util::future::pending::<()>().await;
            }
        }
        if let Some(f) = self.on_write.borrow().as_ref() {
            f(n);
        }
        Ok(())
    }

    async fn delete(&self, path: &str) -> Result<(), String> {
        self.files.borrow_mut().remove(path);
        Ok(())
    }

    async fn install(&self) -> Result<(), String> {
        self.install_calls.set(self.install_calls.get() + 1);
        self.installs.borrow_mut().pop_front().unwrap_or(Ok(()))
    }

    async fn errors(&self) -> Vec<Diagnostic> {
        self.errors.borrow_mut().pop_front().unwrap_or_default()
    }

    async fn typecheck(&self) -> Vec<Diagnostic> {
        let n = self.typechecks.get();
        self.typechecks.set(n + 1);
        let wait = self.typecheck_waits.borrow().clone();
        if let Some(ready) = wait {
            let mut polls = 0;
            futures_util::future::poll_fn(|cx| {
                polls += 1;
                if ready(n) || polls > 1000 {
                    std::task::Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                }
            })
            .await;
            if !ready(n) {
                return vec![diag("src/p0_0.ts", "the check waited in vain")];
            }
        }
        Vec::new()
    }

    fn preview_url(&self) -> Option<String> {
        Some("http://app.preview.test/".into())
    }
}

/// The persisted run: what survives an interruption.
#[derive(Default)]
struct FakeStore {
    state: RefCell<RunState>,
    files: RefCell<BTreeMap<String, String>>,
    events: RefCell<Vec<(u64, AgentEvent)>>,
    versions: RefCell<Vec<(String, BTreeMap<String, String>)>>,
}

impl Store for FakeStore {
    fn read<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        f(&self.state.borrow())
    }

    fn commit<R>(
        &self,
        f: impl FnOnce(&mut RunState) -> R,
        file: Option<FileChange<'_>>,
        event: Option<&AgentEvent>,
    ) -> (R, Option<u64>) {
        let r = f(&mut self.state.borrow_mut());
        match file {
            Some(FileChange::Write { path, content }) => {
                self.files.borrow_mut().insert(path.into(), content.into());
            }
            Some(FileChange::Delete { path }) => {
                self.files.borrow_mut().remove(path);
            }
            None => {}
        }
        let id = event.map(|e| {
            let mut ev = self.events.borrow_mut();
            let id = ev.len() as u64 + 1;
            ev.push((id, e.clone()));
            id
        });
        (r, id)
    }

    fn files(&self) -> BTreeMap<String, String> {
        self.files.borrow().clone()
    }

    fn file(&self, path: &str) -> Option<String> {
        self.files.borrow().get(path).cloned()
    }

    async fn save_version(&self, label: &str) -> Result<u32, String> {
        let files = self.files.borrow().clone();
        self.versions.borrow_mut().push((label.into(), files));
        let n = self.versions.borrow().len() as u32;
        self.state.borrow_mut().version = n;
        Ok(n)
    }

    async fn mirror(&self) {}

    async fn keep_alive(&self) {}
}

#[derive(Default)]
struct FakeClients {
    seen: RefCell<Vec<AgentEvent>>,
}

impl Events for FakeClients {
    fn send(&self, event: &AgentEvent, _id: Option<u64>) {
        self.seen.borrow_mut().push(event.clone());
    }
}

struct World {
    model: Rc<FakeModel>,
    sandbox: Rc<FakeSandbox>,
    store: Rc<FakeStore>,
    clients: Rc<FakeClients>,
    cancel: Cancel,
    max_corrections: u32,
}

fn app_script() -> Script {
    Box::new(|op, messages, g| match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation => Ok(phase_output(phase_of(messages), g)),
        other => panic!("unexpected call {other:?}"),
    })
}

impl World {
    fn new(script: Script) -> Self {
        Self {
            model: Rc::new(FakeModel::new(script)),
            sandbox: Rc::default(),
            store: Rc::default(),
            clients: Rc::default(),
            cancel: Cancel::default(),
            max_corrections: 3,
        }
    }

    fn start(&self, prompt: &str) {
        self.store.state.borrow_mut().start(prompt);
    }

    /// Runs the driver until it finishes or nothing can progress (an interruption); then the
    /// driver and everything it held in memory are gone. `true` when the run finished.
    fn run(&self) -> bool {
        let mut pool = LocalPool::new();
        let done = Rc::new(Cell::new(false));
        let (m, s, st, c, d) = (
            self.model.clone(),
            self.sandbox.clone(),
            self.store.clone(),
            self.clients.clone(),
            done.clone(),
        );
        let (cancel, max) = (self.cancel.clone(), self.max_corrections);
        pool.spawner()
            .spawn_local(async move {
                Driver::new(&*m, &*s, &*st, &*c, cancel, max).run().await;
                d.set(true);
            })
            .unwrap();
        pool.run_until_stalled();
        done.get()
    }

    fn stored(&self) -> Vec<AgentEvent> {
        self.store
            .events
            .borrow()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn written(&self, path: &str) -> usize {
        self.stored()
            .iter()
            .filter(|e| matches!(e, AgentEvent::FileGenerated { path: p, .. } if p == path))
            .count()
    }

    fn status(&self) -> RunStatus {
        self.store.state.borrow().status
    }
}

fn all_paths() -> Vec<String> {
    (0..PHASES)
        .flat_map(|i| (0..FILES_PER_PHASE).map(move |k| format!("src/p{i}_{k}.ts")))
        .collect()
}

fn generation_of(content: &str) -> &str {
    content.lines().next().unwrap_or_default()
}

#[test]
fn a_prompt_becomes_a_finished_app() {
    let w = World::new(app_script());
    w.start("build it");
    assert!(w.run());
    assert_eq!(w.status(), RunStatus::Complete);
    for p in all_paths() {
        assert_eq!(w.written(&p), 1, "{p}");
        assert_eq!(
            w.sandbox.files.borrow().get(&p),
            w.store.files.borrow().get(&p)
        );
    }
    let ev = w.stored();
    assert!(
        matches!(ev.first(), Some(AgentEvent::PhaseStart { phase, .. }) if phase == "planning")
    );
    assert!(matches!(
        ev.last(),
        Some(AgentEvent::Done {
            status: RunOutcome::Completed
        })
    ));
    assert!(ev
        .iter()
        .any(|e| matches!(e, AgentEvent::PreviewReady { .. })));
    // One version per phase, each with the files so far.
    let versions = w.store.versions.borrow();
    assert_eq!(versions.len(), PHASES);
    assert_eq!(versions[PHASES - 1].1.len(), PHASES * FILES_PER_PHASE);
    // Live chunks reached clients but were not stored.
    assert!(w
        .clients
        .seen
        .borrow()
        .iter()
        .any(|e| matches!(e, AgentEvent::FileChunk { .. })));
    assert!(!ev.iter().any(|e| matches!(e, AgentEvent::FileChunk { .. })));
    assert_eq!(w.model.calls_of(Operation::Implementation), PHASES);
}

/// For every write of the run and both sides of it: interrupt there, start a fresh driver on
/// what was stored, finish. Every file lands exactly once, and each phase's files come from one
/// generation (the model gives a different one to every fresh request).
#[test]
fn an_interruption_at_every_file_boundary_resumes_coherently() {
    let total = PHASES * FILES_PER_PHASE;
    for at in 0..total {
        for crash in [Crash::BeforeWrite(at), Crash::AfterWrite(at)] {
            let w = World::new(app_script());
            w.start("build it");
            w.sandbox.crash.set(Some(crash));
            assert!(!w.run(), "{crash:?}: the run should have been interrupted");
            w.sandbox.crash.set(None);
            assert!(w.run(), "{crash:?}: the resumed run should finish");
            assert_eq!(w.status(), RunStatus::Complete, "{crash:?}");
            let sandbox = w.sandbox.files.borrow();
            let stored = w.store.files.borrow();
            assert_eq!(*sandbox, *stored, "{crash:?}: sandbox and store agree");
            for p in all_paths() {
                assert_eq!(w.written(&p), 1, "{crash:?}: {p} announced once");
            }
            for i in 0..PHASES {
                let gens: std::collections::BTreeSet<&str> = (0..FILES_PER_PHASE)
                    .map(|k| generation_of(&stored[&format!("src/p{i}_{k}.ts")]))
                    .collect();
                assert_eq!(gens.len(), 1, "{crash:?}: phase {i} mixes {gens:?}");
            }
        }
    }
}

#[test]
fn a_write_lost_between_sandbox_and_store_is_undone_when_the_model_changes_course() {
    // The first file of phase 0 reaches the sandbox, the runtime dies; nothing was committed,
    // so the unit starts over, and this time the model writes other files.
    let w = World::new(Box::new(|op, messages, g| match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation if g <= 3 => Ok(
            "===FILE: src/stray.ts===\nexport {};\n===END FILE===\n".to_string()
                + &phase_output(phase_of(messages), g),
        ),
        Operation::Implementation => Ok(phase_output(phase_of(messages), g)),
        other => panic!("unexpected call {other:?}"),
    }));
    w.start("build it");
    w.sandbox.crash.set(Some(Crash::AfterWrite(0)));
    assert!(!w.run());
    assert!(w.sandbox.files.borrow().contains_key("src/stray.ts"));
    w.sandbox.crash.set(None);
    // The stray file's generation is continued (its start was never committed, so the unit
    // starts clean and the model's next answer has no stray file).
    w.model.generation.set(10);
    assert!(w.run());
    assert!(!w.sandbox.files.borrow().contains_key("src/stray.ts"));
    assert_eq!(*w.sandbox.files.borrow(), *w.store.files.borrow());
}

fn diag(file: &str, message: &str) -> Diagnostic {
    Diagnostic {
        file: Some(file.into()),
        line: Some(1),
        column: None,
        message: message.into(),
        kind: "typescript".into(),
    }
}

#[test]
fn correction_rounds_fix_errors_and_stop_at_their_bound() {
    let w = World::new(Box::new(|op, messages, g| match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation => Ok(phase_output(phase_of(messages), g)),
        Operation::ErrorCorrection => {
            let text: String = messages.iter().map(|m| m.content.as_str()).collect();
            assert!(text.contains("broken here"), "the errors reach the model");
            Ok(format!(
                "===FILE: src/fix{g}.ts===\nexport const fixed = {g};\n===END FILE===\n"
            ))
        }
        other => panic!("unexpected call {other:?}"),
    }));
    // Phase 0: one error, fixed by one round. Phase 1: errors that never go away.
    {
        let mut e = w.sandbox.errors.borrow_mut();
        e.push_back(vec![diag("src/p0_0.ts", "broken here")]);
        e.push_back(vec![]);
        for _ in 0..4 {
            e.push_back(vec![diag("src/p1_0.ts", "broken here")]);
        }
    }
    w.start("build it");
    assert!(w.run());
    assert_eq!(w.model.calls_of(Operation::ErrorCorrection), 1 + 3);
    let reported: Vec<String> = w
        .stored()
        .into_iter()
        .filter_map(|e| match e {
            AgentEvent::Error {
                code,
                message,
                recoverable: true,
            } => {
                assert_eq!(code, ErrorCode::E005);
                Some(message)
            }
            _ => None,
        })
        .collect();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(
        reported[0].contains("after 3 correction rounds"),
        "{reported:?}"
    );
    assert!(reported[0].contains("src/p1_0.ts:1 broken here"));
    // The run goes on to the last phase and completes.
    assert_eq!(w.status(), RunStatus::Complete);
    assert_eq!(w.written("src/p2_0.ts"), 1);
}

#[test]
fn a_failed_install_goes_to_the_model_and_is_corrected() {
    let w = World::new(Box::new(|op, messages, g| {
        match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation if phase_of(messages) == 0 => Ok(format!(
            "===FILE: package.json===\n{{\"dependencies\":{{\"no-such-pkg\":\"1\"}}}}\n===END FILE===\n{}",
            phase_output(0, g)
        )),
        Operation::Implementation => Ok(phase_output(phase_of(messages), g)),
        Operation::ErrorCorrection => {
            let text: String = messages.iter().map(|m| m.content.as_str()).collect();
            assert!(text.contains("npm ERR! 404 no-such-pkg"));
            Ok("===FILE: package.json===\n{\"dependencies\":{}}\n===END FILE===\n".into())
        }
        other => panic!("unexpected call {other:?}"),
    }
    }));
    w.sandbox
        .installs
        .borrow_mut()
        .push_back(Err("npm ERR! 404 no-such-pkg".into()));
    w.start("build it");
    assert!(w.run());
    assert_eq!(w.sandbox.install_calls.get(), 2);
    assert_eq!(w.model.calls_of(Operation::ErrorCorrection), 1);
    assert_eq!(
        w.store.files.borrow()["package.json"],
        "{\"dependencies\":{}}\n"
    );
    assert_eq!(w.status(), RunStatus::Complete);
}

#[test]
fn users_see_a_summary_of_a_diagnostic_whose_whole_text_goes_to_the_model() {
    let install = Diagnostic {
        file: Some("package.json".into()),
        line: None,
        column: None,
        kind: "install".into(),
        message: "npm install failed (exit 1):\nnpm error code E404\n\
                  npm error 404 Not Found - GET https://registry.npmjs.org/no-such-pkg - Not found\n\
                  npm error A complete log of this run can be found in: /root/.npm/_logs/x-debug-0.log"
            .into(),
    };
    assert_eq!(
        user_text(&install),
        "npm install failed (exit 1): 404 Not Found - GET https://registry.npmjs.org/no-such-pkg - Not found"
    );
    let runtime = Diagnostic {
        kind: "runtime".into(),
        message:
            "Failed to resolve import './x' from '/srv/sandboxes/ws_1/src/App.tsx'\n    at stack…"
                .into(),
        ..install.clone()
    };
    assert_eq!(
        user_text(&runtime),
        "Failed to resolve import './x' from '…/App.tsx'"
    );
}

#[test]
fn stop_then_resume_continues_the_same_generation() {
    let w = World::new(app_script());
    // A `stop` arrives right after the second file of phase 1 landed.
    let (store, cancel) = (w.store.clone(), w.cancel.clone());
    *w.sandbox.on_write.borrow_mut() = Some(Box::new(move |n| {
        if n == FILES_PER_PHASE + 1 {
            store.state.borrow_mut().stop();
            cancel.cancel();
        }
    }));
    w.start("build it");
    assert!(w.run());
    assert_eq!(w.status(), RunStatus::Stopped);
    assert!(matches!(
        w.stored().last(),
        Some(AgentEvent::Done {
            status: RunOutcome::Stopped
        })
    ));
    *w.sandbox.on_write.borrow_mut() = None;
    w.store.state.borrow_mut().resume().unwrap();
    let w2 = World {
        cancel: Cancel::default(),
        ..w
    };
    assert!(w2.run());
    assert_eq!(w2.status(), RunStatus::Complete);
    for p in all_paths() {
        assert!(w2.written(&p) <= 1, "{p}");
    }
    let stored = w2.store.files.borrow();
    let gens: std::collections::BTreeSet<&str> = (0..FILES_PER_PHASE)
        .map(|k| generation_of(&stored[&format!("src/p1_{k}.ts")]))
        .collect();
    assert_eq!(gens.len(), 1, "phase 1 mixes {gens:?}");
    assert_eq!(*w2.sandbox.files.borrow(), *stored);
}

#[test]
fn a_queued_follow_up_is_applied_as_a_diff_touching_only_its_file() {
    let w = World::new(Box::new(|op, messages, g| match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation => Ok(phase_output(phase_of(messages), g)),
        Operation::ChatEdit => {
            let text: String = messages.iter().map(|m| m.content.as_str()).collect();
            assert!(text.contains("rename v0"));
            // The files are shown in path order: the first is src/p0_0.ts.
            let at = text.find("// generation ").expect("files shown") + 14;
            let g: String = text[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let old = format!("// generation {g}\nexport const v0 = {g};\n");
            let new = format!("// generation {g}\nexport const first = {g};\n");
            let diff = UnifiedDiff::compute("src/p0_0.ts", &old, &new);
            Ok(format!(
                "Renaming.\n===DIFF: src/p0_0.ts===\n{diff}===END DIFF===\n"
            ))
        }
        other => panic!("unexpected call {other:?}"),
    }));
    w.start("build it");
    assert!(w.run());
    let before = w.store.files.borrow().clone();
    w.store.state.borrow_mut().enqueue("rename v0").unwrap();
    assert!(w.run());
    let after = w.store.files.borrow().clone();
    let changed: Vec<&String> = after
        .iter()
        .filter(|(p, c)| before.get(*p) != Some(*c))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(changed, vec!["src/p0_0.ts"]);
    assert!(after["src/p0_0.ts"].contains("export const first = "));
    assert_eq!(*w.sandbox.files.borrow(), after);
    assert_eq!(w.store.versions.borrow().last().unwrap().0, EDIT_PHASE);
    assert_eq!(w.status(), RunStatus::Complete);
}

#[test]
fn a_model_failure_ends_the_run_with_e005() {
    let w = World::new(Box::new(|op, _messages, _g| match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => Ok("no plan".into()),
        _ => Err(generation_failed("the model answered 500 on every attempt")),
    }));
    w.start("build it");
    assert!(w.run());
    assert_eq!(w.status(), RunStatus::Failed);
    let ev = w.stored();
    assert!(ev.iter().any(|e| matches!(
        e,
        AgentEvent::Error {
            code: ErrorCode::E005,
            recoverable: false,
            ..
        }
    )));
    assert!(matches!(
        ev.last(),
        Some(AgentEvent::Done {
            status: RunOutcome::Failed
        })
    ));
    assert!(w.sandbox.files.borrow().is_empty());
}

#[test]
fn a_truncated_stream_writes_no_partial_file_and_fails() {
    let w = World::new(Box::new(|op, _messages, _g| {
        match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => Ok("no plan".into()),
        _ => Ok("===FILE: src/p0_0.ts===\nexport const a = 1;\n===END FILE===\n===FILE: src/p0_1.ts===\nexport const".into()),
    }
    }));
    w.start("build it");
    assert!(w.run());
    assert_eq!(w.status(), RunStatus::Failed);
    assert!(w.sandbox.files.borrow().contains_key("src/p0_0.ts"));
    assert!(!w.sandbox.files.borrow().contains_key("src/p0_1.ts"));
}

#[test]
fn a_refused_path_is_a_recoverable_error_and_the_others_land() {
    let w = World::new(Box::new(|op, messages, g| {
        match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation => Ok(format!(
            "===FILE: ../evil.ts===\nx\n===END FILE===\n===FILE: src/forbidden.ts===\nx\n===END FILE===\n{}",
            phase_output(phase_of(messages), g)
        )),
        other => panic!("unexpected call {other:?}"),
    }
    }));
    w.start("build it");
    assert!(w.run());
    assert_eq!(w.status(), RunStatus::Complete);
    let errors = w
        .stored()
        .iter()
        .filter(|e| {
            matches!(
                e,
                AgentEvent::Error {
                    recoverable: true,
                    ..
                }
            )
        })
        .count();
    assert_eq!(errors, 2 * PHASES);
    assert!(!w.store.files.borrow().contains_key("src/forbidden.ts"));
    assert_eq!(w.written("src/p2_2.ts"), 1);
}

#[test]
fn a_lost_sandbox_comes_back_with_the_apps_files() {
    let w = World::new(app_script());
    w.start("build it");
    assert!(w.run());
    // The sandbox lost its disk; the next use brings it back from the stored files.
    w.sandbox.files.borrow_mut().clear();
    w.sandbox.created.set(0);
    let (m, s, st, c) = (&*w.model, &*w.sandbox, &*w.store, &*w.clients);
    let d = Driver::new(m, s, st, c, Cancel::default(), 3);
    futures_executor::block_on(d.ensure_sandbox("react-vite")).unwrap();
    assert_eq!(*w.sandbox.files.borrow(), *w.store.files.borrow());
    assert_eq!(w.sandbox.files.borrow().len(), PHASES * FILES_PER_PHASE);
}

#[test]
fn each_phase_reports_the_files_planned_and_written() {
    // Phase 1 gets a detailed plan naming a file it never writes; the others keep the
    // blueprint's list (their plan is not usable).
    let plans = Cell::new(0);
    let w = World::new(Box::new(move |op, messages, g| match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => {
            plans.set(plans.get() + 1);
            Ok(if plans.get() == 2 {
                r#"{"files":[{"path":"src/p1_0.ts"},{"path":"src/p1_1.ts"},{"path":"src/p1_extra.ts"}]}"#.into()
            } else {
                "no plan".into()
            })
        }
        Operation::Implementation => Ok(phase_output(phase_of(messages), g)),
        Operation::ChatEdit => Ok("===FILE: src/edit.ts===\nexport {};\n===END FILE===\n".into()),
        other => panic!("unexpected call {other:?}"),
    }));
    // Mid-phase (phase 1's second file reaching the sandbox), a reconnecting client sees the
    // plan and what is written so far.
    let mid = Rc::new(RefCell::new(None));
    let (store, seen) = (w.store.clone(), mid.clone());
    *w.sandbox.on_write.borrow_mut() = Some(Box::new(move |n| {
        if n == FILES_PER_PHASE + 1 {
            *seen.borrow_mut() = Some(store.state.borrow().snapshot("app", 0));
        }
    }));
    w.start("build it");
    assert!(w.run());
    let mid = mid.borrow().clone().expect("a snapshot mid-phase");
    assert_eq!(mid.current_phase.as_deref(), Some("Phase 1"));
    assert_eq!(
        mid.phases[1].planned_files,
        ["src/p1_0.ts", "src/p1_1.ts", "src/p1_extra.ts"]
    );
    assert_eq!(mid.phases[1].written_files, ["src/p1_0.ts"]);
    assert_eq!(mid.phases[0].written_files.len(), FILES_PER_PHASE);
    assert_eq!(
        mid.phases[2].planned_files.len(),
        FILES_PER_PHASE,
        "the blueprint's list"
    );
    assert!(mid.phases[2].written_files.is_empty());

    // Each phase's plan is announced right after its start.
    let ev = w.stored();
    let planned: Vec<(String, Vec<String>)> = ev
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            AgentEvent::PhasePlanned { phase, files } => {
                // Right after the phase's start (and its planning call's usage, when it was
                // planned then rather than ahead, during the previous phase's checks).
                let before: Vec<&AgentEvent> = ev[..i]
                    .iter()
                    .rev()
                    .skip_while(|e| matches!(e, AgentEvent::Usage(_)))
                    .take(1)
                    .collect();
                assert!(
                    matches!(before[..], [AgentEvent::PhaseStart { phase: p, .. }] if p == phase),
                    "{:?}",
                    &ev[i.saturating_sub(3)..i]
                );
                Some((phase.clone(), files.clone()))
            }
            _ => None,
        })
        .collect();
    let blueprint_files = |i: usize| -> Vec<String> {
        (0..FILES_PER_PHASE)
            .map(|k| format!("src/p{i}_{k}.ts"))
            .collect()
    };
    assert_eq!(
        planned,
        vec![
            ("Phase 0".into(), blueprint_files(0)),
            ("Phase 1".into(), mid.phases[1].planned_files.clone()),
            ("Phase 2".into(), blueprint_files(2)),
        ]
    );

    // A follow-up edit's files belong to no phase.
    w.store.state.borrow_mut().enqueue("add a file").unwrap();
    assert!(w.run());
    let end = w.store.state.borrow().snapshot("app", 0);
    assert!(w.store.files.borrow().contains_key("src/edit.ts"));
    for (i, p) in end.phases.iter().enumerate() {
        assert_eq!(p.written_files, blueprint_files(i), "{}", p.name);
    }
    assert_eq!(end.phases[1].planned_files.len(), 3);
}

#[test]
fn the_runs_tokens_add_up_per_model_and_a_new_run_starts_from_zero() {
    let w = World::new(app_script());
    w.start("build it");
    assert!(w.run());
    let usage: Vec<CallUsage> = w
        .stored()
        .into_iter()
        .filter_map(|e| match e {
            AgentEvent::Usage(u) => Some(u),
            _ => None,
        })
        .collect();
    // One per model call, each with the operation that made it.
    let calls = w.model.calls.borrow().clone();
    assert_eq!(usage.len(), calls.len());
    for (u, (op, _)) in usage.iter().zip(&calls) {
        assert_eq!(u.operation, *op);
        assert_eq!(u.model, format!("fake-{}", op.as_str()));
    }
    let snap = w.store.state.borrow().snapshot("app", 0);
    let per_model: Vec<(&str, u32)> = snap
        .usage
        .iter()
        .map(|m| (m.model.as_str(), m.calls))
        .collect();
    assert_eq!(
        per_model,
        [
            ("fake-blueprint", 1),
            ("fake-phase_planning", PHASES as u32),
            ("fake-implementation", PHASES as u32)
        ]
    );
    let sum = |f: fn(&CallUsage) -> u64| usage.iter().map(f).sum::<u64>();
    assert_eq!(
        snap.usage.iter().map(|m| m.total_tokens).sum::<u64>(),
        sum(|u| u.total_tokens)
    );
    assert_eq!(
        snap.usage.iter().map(|m| m.prompt_tokens).sum::<u64>(),
        sum(|u| u.prompt_tokens)
    );
    assert!(sum(|u| u.completion_tokens) > 0);

    // A new generation counts from zero.
    w.start("build it again");
    assert!(w.store.state.borrow().snapshot("app", 0).usage.is_empty());
    assert!(w.run());
    let again = w.store.state.borrow().snapshot("app", 0);
    assert_eq!(again.usage.len(), 3);
    assert_eq!(again.usage[0].calls, 1);
}

// ----- what each prompt contains (context selection, template, READ, shared prefixes) -------

fn user_turn(messages: &[ChatMessage]) -> String {
    messages
        .iter()
        .filter(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A file shown in full in a prompt (its content fenced under `### path`).
fn shown_in_full(prompt: &str, path: &str) -> bool {
    prompt.contains(&format!("### {path}\n```"))
}

fn shown_as_outline(prompt: &str, path: &str) -> bool {
    prompt.contains(&format!("### {path} (outline"))
}

#[test]
fn the_first_phase_sees_the_templates_files() {
    let w = World::new(app_script());
    w.start("build it");
    assert!(w.run());
    let calls = w.model.calls.borrow();
    let (_, first) = calls
        .iter()
        .find(|(op, _)| *op == Operation::Implementation)
        .unwrap();
    let u = user_turn(first);
    assert!(!u.contains("none yet"), "{u}");
    for p in ["src/main.tsx", "src/App.tsx", "package.json", "index.html"] {
        assert!(shown_in_full(&u, p), "{p} in full in\n{u}");
    }
    for p in ["vite.config.ts", "tsconfig.json"] {
        assert!(shown_as_outline(&u, p), "{p} outlined in\n{u}");
    }
    assert!(u.contains("Starting template: react-vite"));
    assert!(
        u.contains("\"react\": \"^19.2.0\""),
        "installed versions shown"
    );
    // The planner saw the template too, and the phase planner its files.
    let (_, plan) = calls
        .iter()
        .find(|(op, _)| *op == Operation::Blueprint)
        .unwrap();
    assert!(user_turn(plan).contains("### src/main.tsx\n```\nimport { StrictMode }"));
    let (_, phase_plan) = calls
        .iter()
        .find(|(op, _)| *op == Operation::PhasePlanning)
        .unwrap();
    assert!(user_turn(phase_plan)
        .contains("Files that exist now: index.html, package.json, src/App.tsx"));
}

#[test]
fn a_diff_against_a_template_file_applies_to_the_templates_content() {
    let app = crate::domain::templates::find("react-vite").unwrap();
    let main = app
        .sources
        .iter()
        .find(|(p, _)| *p == "src/main.tsx")
        .unwrap()
        .1;
    let new = main.replace(
        "import './index.css'\n",
        "import './index.css'\nimport './theme.css'\n",
    );
    let diff = UnifiedDiff::compute("src/main.tsx", main, &new);
    let w = World::new(Box::new(move |op, messages, g| match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation if phase_of(messages) == 0 => Ok(format!(
            "===DIFF: src/main.tsx===\n{diff}===END DIFF===\n{}",
            phase_output(0, g)
        )),
        Operation::Implementation => Ok(phase_output(phase_of(messages), g)),
        other => panic!("unexpected call {other:?}"),
    }));
    w.start("build it");
    assert!(w.run());
    assert_eq!(w.store.files.borrow()["src/main.tsx"], new);
    assert_eq!(w.sandbox.files.borrow()["src/main.tsx"], new);
}

/// A blueprint of `n` components in one phase and one more phase that changes them.
fn big_app(n: usize) -> (String, Vec<(String, String)>) {
    let mut files = Vec::new();
    for i in 0..n {
        let content = if i % 10 == 0 {
            format!("import {{ helper{i} }} from '../lib/helper{i}'\n\nexport interface Card{i}Props {{\n  title: string\n}}\n\nexport function Card{i}({{ title }}: Card{i}Props) {{\n  return <div className=\"card\">{{helper{i}(title)}}</div>\n}}\n")
        } else {
            format!("export interface Card{i}Props {{\n  title: string\n}}\n\nexport function Card{i}({{ title }}: Card{i}Props) {{\n  const label = title.trim()\n  return <div className=\"card\">{{label}}</div>\n}}\n")
        };
        files.push((format!("src/components/Card{i}.tsx"), content));
        if i % 10 == 0 {
            files.push((
                format!("src/lib/helper{i}.ts"),
                format!("export function helper{i}(s: string): string {{\n  return s.toUpperCase()\n}}\n"),
            ));
        }
    }
    let paths: Vec<&String> = files.iter().map(|(p, _)| p).collect();
    let plan = serde_json::json!({
        "title": "Cards", "description": "many cards", "template": "react-vite", "frameworks": [],
        "files": paths.iter().map(|p| serde_json::json!({"path": p, "purpose": "x"})).collect::<Vec<_>>(),
        "phases": [{"name": "All", "kind": "core", "description": "every card", "files": paths}],
    });
    (plan.to_string(), files)
}

fn write_all(files: &[(String, String)]) -> String {
    files
        .iter()
        .map(|(p, c)| format!("===FILE: {p}===\n{c}===END FILE===\n"))
        .collect()
}

#[test]
fn an_edit_in_a_100_file_app_sends_its_component_and_imports_in_full_and_outlines_the_rest() {
    let (plan, files) = big_app(100);
    let out = write_all(&files);
    let w = World::new(Box::new(move |op, messages, _g| match op {
        Operation::Blueprint => Ok(plan.clone()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation => Ok(out.clone()),
        Operation::ChatEdit => {
            let u = user_turn(messages);
            let old = "return <div className=\"card\">{helper40(title)}</div>";
            assert!(u.contains(old), "the component in full");
            Ok(format!("===DIFF: src/components/Card40.tsx===\n@@ -7,3 +7,3 @@\n export function Card40({{ title }}: Card40Props) {{\n-  {old}\n+  return <div className=\"card big\">{{helper40(title)}}</div>\n }}\n===END DIFF===\n"))
        }
        other => panic!("unexpected call {other:?}"),
    }));
    w.start("build it");
    assert!(w.run());
    w.store
        .state
        .borrow_mut()
        .enqueue("Make Card40 use the big style")
        .unwrap();
    assert!(w.run());
    assert!(w.store.files.borrow()["src/components/Card40.tsx"].contains("card big"));
    let calls = w.model.calls.borrow();
    let (_, edit) = calls
        .iter()
        .find(|(op, _)| *op == Operation::ChatEdit)
        .unwrap();
    let u = user_turn(edit);
    assert!(shown_in_full(&u, "src/components/Card40.tsx"));
    assert!(shown_in_full(&u, "src/lib/helper40.ts"), "what it imports");
    let full = files.iter().filter(|(p, _)| shown_in_full(&u, p)).count();
    assert!(full <= 4, "{full} app files in full");
    assert!(shown_as_outline(&u, "src/components/Card1.tsx"));
    assert!(u.contains("export function Card1({ title }: Card1Props)"));
    assert!(
        u.contains("Also present (not shown): "),
        "past the outline budget: paths"
    );
    assert!(!u.contains("const label = title.trim()"), "no other bodies");
    // Independent of the app's size: a bounded prompt.
    let chars: usize = edit.iter().map(|m| m.content.len()).sum();
    assert!(chars < 40_000, "{chars} chars");
}

#[test]
fn a_correction_sends_the_failing_file_and_its_imports_but_not_unrelated_files() {
    let (plan, files) = big_app(30);
    let out = write_all(&files);
    let w = World::new(Box::new(move |op, _messages, _g| match op {
        Operation::Blueprint => Ok(plan.clone()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation => Ok(out.clone()),
        Operation::ErrorCorrection => Ok("Nothing to change.\n".into()),
        other => panic!("unexpected call {other:?}"),
    }));
    w.sandbox.errors.borrow_mut().push_back(vec![diag(
        "/workspace/src/components/Card20.tsx",
        "Type 'number' is not assignable to type 'string'.",
    )]);
    w.start("build it");
    assert!(w.run());
    let calls = w.model.calls.borrow();
    let (_, fix) = calls
        .iter()
        .find(|(op, _)| *op == Operation::ErrorCorrection)
        .unwrap();
    let u = user_turn(fix);
    assert!(u.contains("Type 'number' is not assignable"));
    assert!(shown_in_full(&u, "src/components/Card20.tsx"));
    assert!(shown_in_full(&u, "src/lib/helper20.ts"));
    assert!(!shown_in_full(&u, "src/components/Card21.tsx"));
    assert!(!shown_in_full(&u, "src/lib/helper10.ts"));
    assert!(shown_as_outline(&u, "src/components/Card21.tsx"));
}

#[test]
fn read_requests_are_answered_in_a_follow_up_turn_and_bounded() {
    let w = World::new(Box::new(|op, messages, g| match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation if phase_of(messages) == 1 => {
            let turns = messages
                .iter()
                .filter(|m| m.role == Role::Assistant)
                .count();
            let last = &messages.last().unwrap().content;
            match turns {
                0 => Ok("I need the first file.\n===READ: src/p0_0.ts===\n".into()),
                1 => {
                    assert!(
                        last.contains("### src/p0_0.ts\n```\n// generation"),
                        "{last}"
                    );
                    Ok("===FILE: src/p1_0.ts===\nexport const v0 = 1;\n===END FILE===\n===READ: vite.config.ts===\n".into())
                }
                // Asks again and again: answered at most MAX_READ_TURNS times.
                _ => Ok(format!("{}===READ: src/p0_1.ts===\n", phase_output(1, g))),
            }
        }
        Operation::Implementation => Ok(phase_output(phase_of(messages), g)),
        other => panic!("unexpected call {other:?}"),
    }));
    w.start("build it");
    assert!(w.run());
    assert_eq!(w.status(), RunStatus::Complete);
    let calls = w.model.calls.borrow();
    let phase1: Vec<&Vec<ChatMessage>> = calls
        .iter()
        .filter(|(op, m)| *op == Operation::Implementation && phase_of(m) == 1)
        .map(|(_, m)| m)
        .collect();
    assert_eq!(phase1.len(), 1 + super::context::MAX_READ_TURNS);
    assert!(phase1[2]
        .last()
        .unwrap()
        .content
        .contains("### vite.config.ts\n```"));
    // Every block of the three turns landed, each file once.
    assert_eq!(w.written("src/p1_0.ts"), 2);
    assert_eq!(w.written("src/p1_2.ts"), 1);
}

#[test]
fn every_code_writing_call_of_a_run_starts_with_the_same_prefix() {
    let w = World::new(Box::new(|op, messages, g| match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation => Ok(phase_output(phase_of(messages), g)),
        Operation::ErrorCorrection => Ok("Nothing.\n".into()),
        Operation::ChatEdit => Ok("Nothing.\n".into()),
        other => panic!("unexpected call {other:?}"),
    }));
    w.sandbox
        .errors
        .borrow_mut()
        .push_back(vec![diag("src/p0_0.ts", "broken")]);
    w.start("build it");
    assert!(w.run());
    w.store.state.borrow_mut().enqueue("rename v1").unwrap();
    assert!(w.run());
    let calls = w.model.calls.borrow();
    let code: Vec<&Vec<ChatMessage>> = calls
        .iter()
        .filter(|(op, _)| {
            matches!(
                op,
                Operation::Implementation | Operation::ErrorCorrection | Operation::ChatEdit
            )
        })
        .map(|(_, m)| m)
        .collect();
    assert_eq!(code.len(), PHASES + 2);
    let system = &code[0][0].content;
    let context = super::prompts::run_context(
        w.store.state.borrow().blueprint.as_ref(),
        Some(&super::prompts::TemplateInfo::of(
            crate::domain::templates::find("react-vite").unwrap(),
        )),
    );
    assert!(context.len() > 200);
    for m in &code {
        assert_eq!(m[0].role, Role::System);
        assert_eq!(&m[0].content, system, "one system prompt");
        assert!(
            m[1].content.starts_with(&context),
            "the run's context first"
        );
    }
}

#[test]
fn the_sandbox_comes_up_while_the_blueprint_is_written_and_switches_with_its_template() {
    let plan = blueprint_json().replace("\"react-vite\"", "\"react-vite-worker\"");
    let w = World::new(Box::new(move |op, messages, g| match op {
        Operation::Blueprint => Ok(plan.clone()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation => {
            let u = user_turn(messages);
            assert!(u.contains("Starting template: react-vite-worker"));
            Ok(phase_output(phase_of(messages), g))
        }
        other => panic!("unexpected call {other:?}"),
    }));
    let s = w.sandbox.clone();
    *w.model.blueprint_waits.borrow_mut() = Some(Rc::new(move || s.created.get() > 0));
    w.start("build it");
    assert!(w.run());
    assert_eq!(w.status(), RunStatus::Complete);
    assert_eq!(
        *w.sandbox.templates.borrow(),
        vec!["react-vite", "react-vite-worker"],
        "the default while planning, then the blueprint's"
    );
    assert_eq!(*w.sandbox.files.borrow(), *w.store.files.borrow());
}

#[test]
fn dependencies_are_installed_only_when_they_change() {
    let template = crate::domain::templates::find("react-vite").unwrap();
    let pkg = template
        .sources
        .iter()
        .find(|(p, _)| *p == "package.json")
        .unwrap()
        .1;
    let renamed = pkg.replace("\"byte-app\"", "\"todo-app\"");
    let added = pkg.replace("\"react\": ", "\"zod\": \"^3.25.0\",\n    \"react\": ");
    assert!(renamed != pkg && added != pkg);
    let w = World::new(Box::new(move |op, messages, g| match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => Ok("no plan".into()),
        Operation::Implementation => {
            let i = phase_of(messages);
            let pkg = match i {
                0 => Some(&renamed), // same dependencies as the template
                1 => Some(&added),   // one more
                _ => None,
            };
            let mut out = phase_output(i, g);
            if let Some(p) = pkg {
                out.push_str(&format!("===FILE: package.json===\n{p}===END FILE===\n"));
            }
            Ok(out)
        }
        other => panic!("unexpected call {other:?}"),
    }));
    w.start("build it");
    assert!(w.run());
    assert_eq!(w.written("package.json"), 2);
    assert_eq!(
        w.sandbox.install_calls.get(),
        1,
        "only the phase that added zod"
    );
}

#[test]
fn the_next_phase_is_planned_while_this_ones_checks_run() {
    let w = World::new(Box::new(|op, messages, g| match op {
        Operation::Blueprint => Ok(blueprint_json()),
        Operation::PhasePlanning => {
            Ok(r#"{"files":[{"path":"src/p0_0.ts","purpose":"x"}],"steps":["Write it."]}"#.into())
        }
        Operation::Implementation => Ok(phase_output(phase_of(messages), g)),
        other => panic!("unexpected call {other:?}"),
    }));
    // Each phase's type check finishes only once the next phase's plan was asked for.
    let m = w.model.clone();
    *w.sandbox.typecheck_waits.borrow_mut() = Some(Rc::new(move |n| {
        m.calls_of(Operation::PhasePlanning) >= (n + 2).min(PHASES)
    }));
    w.start("build it");
    assert!(w.run());
    assert_eq!(w.status(), RunStatus::Complete);
    assert_eq!(
        w.model.calls_of(Operation::PhasePlanning),
        PHASES,
        "each phase planned once"
    );
    assert_eq!(w.store.state.borrow().phase_details.len(), PHASES);
}

/// A ticket's job rides its edit through the driver: finished with exactly the edit's changed
/// files when it succeeds, failed with the model's error when the edit cannot be made.
#[test]
fn a_tickets_job_ends_with_its_edits_changes_or_its_failure() {
    use crate::domain::orchestrator::implement::{JobStage, Outcome, TicketJob};
    let edit = |ok: bool| -> Script {
        Box::new(move |op, messages, g| {
            match op {
            Operation::Blueprint => Ok(blueprint_json()),
            Operation::PhasePlanning => Ok("no plan".into()),
            Operation::Implementation => Ok(phase_output(phase_of(messages), g)),
            Operation::ChatEdit if ok => Ok(
                "Adding it.\n===FILE: src/ticket.ts===\nexport const done = true;\n===END FILE===\n"
                    .into(),
            ),
            Operation::ChatEdit => Err(generation_failed("the model answered 500 on every attempt")),
            other => panic!("unexpected call {other:?}"),
        }
        })
    };
    for ok in [true, false] {
        let w = World::new(edit(ok));
        w.start("build it");
        assert!(w.run());
        // A message queued before the ticket is not the ticket's.
        let job = TicketJob::new(
            "tkt_1".into(),
            "prj_1".into(),
            "usr_1".into(),
            "Implement ticket #1".into(),
        );
        w.store
            .state
            .borrow_mut()
            .enqueue_ticket(job.clone())
            .unwrap();
        assert!(
            w.store.state.borrow_mut().enqueue_ticket(job).is_err(),
            "one ticket at a time"
        );
        assert!(w.run());
        let stage = w.store.state.borrow().ticket.clone().unwrap().stage;
        let JobStage::Finished { outcome } = stage else {
            panic!("not finished: {stage:?}")
        };
        if ok {
            assert_eq!(
                outcome,
                Outcome::Succeeded {
                    version: Some(w.store.versions.borrow().len() as u32),
                    written: vec!["src/ticket.ts".into()],
                    deleted: vec![],
                }
            );
        } else {
            let Outcome::Failed { message } = outcome else {
                panic!("{outcome:?}")
            };
            assert!(message.contains("500 on every attempt"), "{message}");
        }
    }
}

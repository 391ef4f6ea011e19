//! Host tests of the ticket generation driver over in-memory fakes: a scripted model, the
//! project's records, the job storage and the hub. An interruption is a driver future dropped
//! while it waits (the model's answer or the D1 write never comes), then a fresh driver on what
//! the storage kept.

use super::analysis::{tests::app_source, Source};
use super::driver::*;
use super::tickets::Plan;
use crate::domain::codegen::driver::Model;
use crate::domain::codegen::events::CallUsage;
use crate::domain::codegen::models::{ChatMessage, Operation, Provider, Role};
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::ids::TicketId;
use crate::domain::orchestrator::model::{DependencyType, ProjectStatus};
use crate::domain::orchestrator::protocol::HubMessage;
use futures_util::FutureExt;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

/// What the model answers, call by call; `None` never answers (an interruption).
struct FakeModel {
    answers: RefCell<VecDeque<Option<Result<String, ApiError>>>>,
    calls: RefCell<Vec<Vec<ChatMessage>>>,
}

impl FakeModel {
    fn new(answers: Vec<Option<Result<String, ApiError>>>) -> Self {
        Self {
            answers: RefCell::new(answers.into()),
            calls: RefCell::new(Vec::new()),
        }
    }

    fn answering(texts: &[String]) -> Self {
        Self::new(texts.iter().map(|t| Some(Ok(t.clone()))).collect())
    }

    fn calls(&self) -> usize {
        self.calls.borrow().len()
    }
}

impl Model for FakeModel {
    async fn complete(
        &self,
        op: Operation,
        messages: &[ChatMessage],
    ) -> Result<(String, CallUsage), ApiError> {
        assert_eq!(op, Operation::TicketGeneration);
        self.calls.borrow_mut().push(messages.to_vec());
        let next = self
            .answers
            .borrow_mut()
            .pop_front()
            .expect("the model was asked more often than scripted");
        let Some(answer) = next else {
            return futures_util::future::pending().await;
        };
        let text = answer?;
        let usage = CallUsage {
            operation: op,
            provider: Provider::Custom,
            model: "fake".into(),
            prompt_tokens: 1,
            completion_tokens: 1,
            total_tokens: 2,
        };
        Ok((text, usage))
    }

    async fn stream(
        &self,
        _op: Operation,
        _messages: &[ChatMessage],
        _on_delta: &mut dyn FnMut(&str),
    ) -> Result<CallUsage, ApiError> {
        unreachable!("ticket generation does not stream")
    }
}

#[derive(Default)]
struct FakeRecords {
    source: Source,
    source_reads: Cell<u32>,
    steps: RefCell<Vec<Step>>,
    /// Writes that never complete, first (interruptions).
    hang_writes: Cell<u32>,
    written: RefCell<Vec<Plan>>,
    failed: RefCell<Option<ApiError>>,
    /// The project left `analyzing` meanwhile.
    moved_on: Cell<bool>,
}

impl Records for FakeRecords {
    async fn source(&self, _job: &Job) -> Result<Source, ApiError> {
        self.source_reads.set(self.source_reads.get() + 1);
        Ok(self.source.clone())
    }
    async fn step(&self, _job: &Job, step: Step) {
        self.steps.borrow_mut().push(step);
    }
    async fn write(&self, _job: &Job, plan: &Plan) -> Result<bool, ApiError> {
        if self.hang_writes.get() > 0 {
            self.hang_writes.set(self.hang_writes.get() - 1);
            return futures_util::future::pending().await;
        }
        if self.moved_on.get() {
            return Ok(false);
        }
        self.written.borrow_mut().push(plan.clone());
        Ok(true)
    }
    async fn fail(&self, _job: &Job, error: &ApiError) -> Result<(), ApiError> {
        *self.failed.borrow_mut() = Some(error.clone());
        Ok(())
    }
}

#[derive(Default)]
struct FakeStore {
    saved: RefCell<Option<Job>>,
    /// The run of the job currently stored by the object (a newer start replaces it).
    current: RefCell<Option<String>>,
}

impl JobStore for FakeStore {
    async fn save(&self, job: &Job) -> Result<bool, ApiError> {
        if let Some(c) = self.current.borrow().as_ref() {
            if *c != job.run {
                return Ok(false);
            }
        }
        *self.saved.borrow_mut() = Some(job.clone());
        Ok(true)
    }
}

#[derive(Default)]
struct FakeHub(RefCell<Vec<HubMessage>>);

impl Hub for FakeHub {
    async fn publish(&self, message: HubMessage) {
        self.0.borrow_mut().push(message);
    }
}

fn ids() -> impl Fn() -> TicketId {
    let n = Cell::new(0u32);
    move || {
        n.set(n.get() + 1);
        TicketId::from(format!("tkt_{:032x}", n.get()))
    }
}

fn job(guidance: Option<&str>) -> Job {
    Job::new(
        "prj_00000000000000000000000000000001".into(),
        "usr_1".into(),
        Some("app_1".into()),
        guidance.map(str::to_string),
        "run-1".into(),
    )
}

struct World {
    model: FakeModel,
    records: FakeRecords,
    store: FakeStore,
    hub: FakeHub,
}

impl World {
    fn new(model: FakeModel) -> Self {
        Self {
            model,
            records: FakeRecords {
                source: app_source(),
                ..Default::default()
            },
            store: FakeStore::default(),
            hub: FakeHub::default(),
        }
    }

    fn run(&self, job: &mut Job) -> Outcome {
        self.run_once(job).expect("the run was interrupted")
    }

    /// Polls the run once: `None` when it waits on something that never comes.
    fn run_once(&self, job: &mut Job) -> Option<Outcome> {
        let new_id = ids();
        let p = Planner {
            model: &self.model,
            records: &self.records,
            store: &self.store,
            hub: &self.hub,
            new_id: &new_id,
        };
        p.run(job).now_or_never()
    }

    fn steps(&self) -> Vec<&'static str> {
        self.records
            .steps
            .borrow()
            .iter()
            .map(|s| s.as_str())
            .collect()
    }

    fn events(&self) -> Vec<String> {
        self.hub
            .0
            .borrow()
            .iter()
            .map(|m| match m {
                HubMessage::AnalysisProgress { step, .. } => format!("progress {step}"),
                HubMessage::TicketsGenerated { total_tickets, .. } => {
                    format!("generated {total_tickets}")
                }
                HubMessage::GenerationFailed { code, .. } => format!("failed {code}"),
                HubMessage::ProjectStatusChanged {
                    old_status,
                    new_status,
                    ..
                } => format!("status {old_status}->{new_status}"),
                other => format!("{other:?}"),
            })
            .collect()
    }
}

fn good() -> Value {
    json!({
        "summary": "A todo app with a small API.",
        "tickets": [
            {"key": "T1", "title": "Set up the server", "description": "Hono server.", "type": "setup",
             "priority": "critical", "estimatedHours": 2, "affectedFiles": ["server/index.ts"]},
            {"key": "T2", "title": "Todo API", "description": "CRUD endpoints.", "type": "feature",
             "priority": "high", "estimatedHours": 5, "affectedFiles": ["server/index.ts"],
             "acceptanceCriteria": ["POST /api/todos creates a todo"], "blockedBy": ["T1"]},
            {"key": "T3", "title": "List polish", "description": "Empty state.", "type": "enhancement",
             "priority": "medium", "affectedFiles": ["src/components/TodoList.tsx"]},
            {"key": "T4", "title": "List tests", "description": "Vitest.", "type": "test",
             "priority": "low", "affectedFiles": ["src/components/TodoList.tsx"], "related": ["T2"]}
        ]
    })
}

fn cyclic() -> String {
    let mut v = good();
    v["tickets"][0]["blockedBy"] = json!(["T2"]);
    v.to_string()
}

const CYCLE: &str = "the blocks dependencies form a cycle: \"T1\" → \"T2\" → \"T1\"";

fn last_user(messages: &[ChatMessage]) -> &str {
    &messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .unwrap()
        .content
}

#[test]
fn a_good_answer_becomes_the_plan() {
    let w = World::new(FakeModel::answering(&[good().to_string()]));
    let mut j = job(None);
    assert_eq!(w.run(&mut j), Outcome::Generated { total_tickets: 4 });
    assert_eq!(w.model.calls(), 1);
    assert_eq!(
        w.steps(),
        vec![
            "analyze_structure",
            "identify_features",
            "generate_tickets",
            "create_plan"
        ]
    );
    assert_eq!(
        w.events(),
        vec![
            "progress analyze_structure",
            "progress identify_features",
            "progress generate_tickets",
            "progress create_plan",
            "status analyzing->review",
            "generated 4",
        ]
    );
    let written = w.records.written.borrow();
    assert_eq!(written.len(), 1);
    let plan = &written[0];
    assert_eq!(plan.analysis.summary, "A todo app with a small API.");
    assert_eq!(plan.analysis.file_count, 5);
    assert!(plan.analysis.stack.contains(&"React".to_string()));
    let titles: Vec<&str> = plan
        .tickets
        .iter()
        .map(|t| t.ticket.title.as_str())
        .collect();
    assert_eq!(
        titles,
        vec!["Set up the server", "Todo API", "List polish", "List tests"]
    );
    // The prompt carried the analysis and the app's outline.
    let prompt = last_user(&w.model.calls.borrow()[0]).to_string();
    assert!(prompt.contains("\"components\""), "{prompt}");
    assert!(prompt.contains("--- src/App.tsx"), "{prompt}");
    assert!(w.records.failed.borrow().is_none());
    // The job kept its plan (a restart of the write would write the same tickets).
    assert_eq!(
        w.store.saved.borrow().as_ref().unwrap().plan.as_ref(),
        Some(plan)
    );
}

#[test]
fn file_conflicts_are_derived_from_shared_files() {
    let w = World::new(FakeModel::answering(&[good().to_string()]));
    w.run(&mut job(None));
    let plan = &w.records.written.borrow()[0];
    let id = |n: u32| plan.tickets[n as usize - 1].id.clone();
    let deps: Vec<(TicketId, TicketId, DependencyType)> = plan
        .dependencies
        .iter()
        .map(|d| (d.ticket_id.clone(), d.depends_on_ticket_id.clone(), d.kind))
        .collect();
    // T2 blocked by T1 (both change server/index.ts: no second edge); T4 related to T2; T4
    // and T3 share TodoList.tsx: the later depends on the earlier.
    assert_eq!(
        deps,
        vec![
            (id(2), id(1), DependencyType::Blocks),
            (id(4), id(2), DependencyType::Related),
            (id(4), id(3), DependencyType::FileConflict),
        ]
    );
}

#[test]
fn a_cyclic_answer_is_fed_back_once_and_the_fix_accepted() {
    let w = World::new(FakeModel::answering(&[cyclic(), good().to_string()]));
    assert_eq!(
        w.run(&mut job(None)),
        Outcome::Generated { total_tickets: 4 }
    );
    let calls = w.model.calls.borrow();
    assert_eq!(calls.len(), 2);
    let second = &calls[1];
    // The first answer, then the exact problem.
    let n = second.len();
    assert_eq!(second[n - 2].role, Role::Assistant);
    assert_eq!(second[n - 2].content, cyclic());
    assert!(
        second[n - 1].content.contains(CYCLE),
        "{}",
        second[n - 1].content
    );
    assert_eq!(w.records.written.borrow().len(), 1);
}

#[test]
fn a_cyclic_answer_twice_fails_with_e005() {
    let w = World::new(FakeModel::answering(&[cyclic(), cyclic()]));
    let Outcome::Failed(e) = w.run(&mut job(None)) else {
        panic!("the generation should fail")
    };
    assert_eq!((e.status, e.code), (502, ErrorCode::E005));
    assert!(e.message.contains(CYCLE), "{}", e.message);
    assert_eq!(w.model.calls(), MAX_ANSWERS);
    assert!(w.records.written.borrow().is_empty());
    assert_eq!(w.records.failed.borrow().as_ref(), Some(&e));
    assert_eq!(w.events().last().map(String::as_str), Some("failed E005"));
    assert!(!w.events().iter().any(|e| e.starts_with("generated")));
}

#[test]
fn a_malformed_answer_is_fed_back_once_and_the_fix_accepted() {
    let w = World::new(FakeModel::answering(&[
        "Sure! Here are your tickets: ...".into(),
        format!("```json\n{}\n```", good()),
    ]));
    assert_eq!(
        w.run(&mut job(None)),
        Outcome::Generated { total_tickets: 4 }
    );
    let calls = w.model.calls.borrow();
    assert!(last_user(&calls[1]).contains("the answer is not one valid JSON object"));
}

#[test]
fn a_malformed_answer_twice_fails_with_e005() {
    let bad_type = {
        let mut v = good();
        v["tickets"][2]["type"] = json!("chore");
        v.to_string()
    };
    let w = World::new(FakeModel::answering(&["{\"tickets\": [".into(), bad_type]));
    let Outcome::Failed(e) = w.run(&mut job(None)) else {
        panic!("the generation should fail")
    };
    assert_eq!(e.code, ErrorCode::E005);
    assert!(
        e.message
            .contains("tickets[2] (\"T3\").type \"chore\" is not one of"),
        "{}",
        e.message
    );
    assert!(w.records.written.borrow().is_empty());
}

#[test]
fn a_model_failure_fails_the_generation_with_its_error() {
    let limited = ApiError::rate_limited("AI request limit reached");
    let w = World::new(FakeModel::new(vec![Some(Err(limited.clone()))]));
    assert_eq!(w.run(&mut job(None)), Outcome::Failed(limited.clone()));
    assert_eq!(w.model.calls(), 1, "the LLM client already retried");
    assert_eq!(w.records.failed.borrow().as_ref(), Some(&limited));
    assert_eq!(w.events().last().map(String::as_str), Some("failed E003"));
}

#[test]
fn guidance_reaches_the_prompt() {
    let w = World::new(FakeModel::answering(&[good().to_string()]));
    let mut j = job(Some("Split the API ticket into read and write"));
    w.run(&mut j);
    let calls = w.model.calls.borrow();
    assert!(last_user(&calls[0]).contains("Split the API ticket into read and write"));
    // Blank guidance is none.
    assert_eq!(job(Some("  ")).guidance, None);
}

#[test]
fn a_crash_while_the_model_answers_resumes_without_analysing_again() {
    let w = World::new(FakeModel::new(vec![None, Some(Ok(good().to_string()))]));
    let mut j = job(None);
    assert_eq!(
        w.run_once(&mut j),
        None,
        "interrupted while the model answers"
    );
    drop(j);
    // The object's storage kept the analysis: a fresh driver continues from it.
    let mut resumed = w
        .store
        .saved
        .borrow()
        .clone()
        .expect("saved after analysing");
    assert!(resumed.analyzed.is_some() && resumed.plan.is_none());
    let kept = resumed.analyzed.as_ref().unwrap();
    assert!(kept.source.files.is_empty(), "the files are not kept");
    assert!(kept.context.contains("--- src/App.tsx"));
    assert_eq!(w.run(&mut resumed), Outcome::Generated { total_tickets: 4 });
    assert_eq!(w.records.source_reads.get(), 1, "the app was read once");
    assert_eq!(
        w.steps()
            .iter()
            .filter(|s| **s == "analyze_structure")
            .count(),
        1
    );
    assert_eq!(
        w.model.calls(),
        2,
        "only the interrupted call was made again"
    );
    assert_eq!(w.records.written.borrow().len(), 1);
}

#[test]
fn a_crash_while_writing_resumes_with_the_same_plan_and_no_model_call() {
    let w = World::new(FakeModel::answering(&[good().to_string()]));
    w.records.hang_writes.set(1);
    let mut j = job(None);
    assert_eq!(w.run_once(&mut j), None, "interrupted while writing");
    let mut resumed = w.store.saved.borrow().clone().unwrap();
    let planned = resumed
        .plan
        .clone()
        .expect("the plan was saved before the write");
    assert_eq!(w.run(&mut resumed), Outcome::Generated { total_tickets: 4 });
    assert_eq!(w.model.calls(), 1);
    assert_eq!(w.records.source_reads.get(), 1);
    assert_eq!(*w.records.written.borrow(), vec![planned], "same ids");
}

#[test]
fn a_rejected_answer_survives_a_crash_and_still_counts() {
    let w = World::new(FakeModel::new(vec![
        Some(Ok(cyclic())),
        None,
        Some(Ok(cyclic())),
    ]));
    let mut j = job(None);
    assert_eq!(w.run_once(&mut j), None);
    let mut resumed = w.store.saved.borrow().clone().unwrap();
    assert_eq!(resumed.rejected.len(), 1);
    // The resumed run asks with the feedback, and a second bad answer ends it.
    let Outcome::Failed(e) = w.run(&mut resumed) else {
        panic!("two unusable answers fail")
    };
    assert_eq!(e.code, ErrorCode::E005);
    assert_eq!(w.model.calls(), 3);
    assert!(last_user(&w.model.calls.borrow()[2]).contains(CYCLE));
}

#[test]
fn a_replaced_job_stops_without_writing() {
    let w = World::new(FakeModel::answering(&[good().to_string()]));
    *w.store.current.borrow_mut() = Some("run-2".into());
    assert_eq!(w.run(&mut job(None)), Outcome::Abandoned);
    assert_eq!(w.model.calls(), 0);
    assert!(w.records.written.borrow().is_empty());
    assert!(w.records.failed.borrow().is_none());
    // A project that left `analyzing` is not written either.
    let w = World::new(FakeModel::answering(&[good().to_string()]));
    w.records.moved_on.set(true);
    assert_eq!(w.run(&mut job(None)), Outcome::Abandoned);
    assert!(!w.hub.0.borrow().iter().any(|m| matches!(
        m,
        HubMessage::ProjectStatusChanged {
            new_status: ProjectStatus::Review,
            ..
        }
    )));
}

//! Deleting an app, and an account: what is erased, in which order, and how a deletion that
//! fails midway is finished later.
//!
//! An app deletion is one D1 batch that removes the app row (so the app is gone from every list
//! and get at once) and records an `app_deletions` row; the rest is the ordered [`APP_PLAN`],
//! run by the app's `AppDeletion` object (`objects/deletion_do.rs`): once inside the `DELETE`
//! request, then from its alarm with [`backoff_ms`] until every step has succeeded. Progress is
//! journalled in the row after each step, so a retry resumes at the first step not yet done.
//!
//! Invariants (tested below):
//! - steps run in plan order; a failed step ends the attempt, and no later step runs before it
//!   has succeeded;
//! - every step is idempotent, so re-running a step that succeeded but was not journalled (the
//!   object died in between) is harmless;
//! - the sandbox keeps its place in the owner's quota (`holds_sandbox`) until
//!   [`Step::StopSandbox`] has seen it stopped, never earlier;
//! - the `app_deletions` row is removed only after the last step; a row whose step is unknown
//!   (a step removed by a later release) restarts the plan from the top.
//!
//! Adding a step (a deployment to take down, a repository link to drop) is one [`Step`] variant
//! and one entry in [`APP_PLAN`], plus its executor arm in the object.

use super::sandbox_call::Owner;
use serde::{Deserialize, Serialize};
use strum::IntoStaticStr;

/// The Durable Object binding of the deletion objects (one object per app id).
pub const BINDING: &str = "DELETIONS";

/// Everything the routes ask of an app's deletion object (it trusts the [`Owner`]: the route
/// checked that the app, or its pending deletion, is the caller's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum DeletionCall {
    /// Delete the owner's app: remove its row and record the deletion in one D1 batch, then run
    /// one attempt at the plan before answering (later ones from the alarm). 404: no such app.
    DeleteApp { by: Owner },
    /// Remember the owner and arm a late safety alarm, before an account's batch records the
    /// deletion (an alarm that finds no recorded deletion forgets everything: nothing is erased
    /// that D1 did not record).
    Prepare { by: Owner },
    /// Run the plan of a recorded deletion from the alarm, now.
    Resume { by: Owner },
}

impl DeletionCall {
    pub fn owner(&self) -> &Owner {
        match self {
            DeletionCall::DeleteApp { by }
            | DeletionCall::Prepare { by }
            | DeletionCall::Resume { by } => by,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn parse(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(json).map_err(|e| format!("malformed deletion call: {e}"))
    }
}

/// Every R2 object of an app (file blobs and version manifests) is under this prefix.
pub fn files_prefix(app_id: &str) -> String {
    format!("apps/{app_id}/")
}

/// One idempotent clean-up step of an app deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    /// The code generator object: its run is stopped (the step fails while its driver is still
    /// winding down), then its storage (state, files, prompts, events) and alarm are erased.
    /// First, because a running generator starts sandboxes and writes versions.
    EraseGenerator,
    /// The sandbox is stopped for good: byte-sandbox deletes the workspace (killing the dev
    /// server and every command, removing the directory) and the container is told to stop.
    /// Succeeds only on the agent's word (deleted, or no such workspace); frees the quota slot.
    StopSandbox,
    /// The sandbox object's storage and alarm are erased.
    EraseSandbox,
    /// Every R2 object under `apps/<id>/` (blobs and version manifests), page by page.
    DeleteFiles,
    /// The app's deployer: a running deployment finishes first (the step fails until then),
    /// the deployed app is unpublished from its hosting, its artifacts (`deployments/<id>/`)
    /// are deleted and the object erased. Its D1 rows went with the app row.
    Undeploy,
}

/// The app deletion plan, in order.
pub const APP_PLAN: &[Step] = &[
    Step::EraseGenerator,
    Step::StopSandbox,
    Step::EraseSandbox,
    Step::DeleteFiles,
    Step::Undeploy,
];

/// What `next_step` says once every step has succeeded (only the row is left to remove).
pub const DONE: &str = "done";

impl Step {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Whether the sandbox's quota slot is free once this step has succeeded.
    pub fn frees_sandbox_slot(self) -> bool {
        self == Step::StopSandbox
    }
}

/// Where a deletion stands, as journalled in its `app_deletions` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The next step to run; `None` when every step has succeeded.
    pub next: Option<Step>,
    pub holds_sandbox: bool,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl Progress {
    /// A new deletion, before its first attempt.
    pub fn start(holds_sandbox: bool) -> Self {
        Progress {
            next: APP_PLAN.first().copied(),
            holds_sandbox,
            attempts: 0,
            last_error: None,
        }
    }

    /// Reads a journalled row: `next_step` is a step name or [`DONE`]; an unknown name restarts
    /// the plan (every step is idempotent).
    pub fn from_row(
        next_step: &str,
        holds_sandbox: bool,
        attempts: u32,
        last_error: Option<String>,
    ) -> Self {
        let next = if next_step == DONE {
            None
        } else {
            Some(
                APP_PLAN
                    .iter()
                    .copied()
                    .find(|s| s.name() == next_step)
                    .unwrap_or(APP_PLAN[0]),
            )
        };
        Progress {
            next,
            holds_sandbox,
            attempts,
            last_error,
        }
    }

    /// `next_step` as journalled.
    pub fn next_name(&self) -> &'static str {
        self.next.map(Step::name).unwrap_or(DONE)
    }
}

/// Runs one step (the object's adapters: the other objects, byte-sandbox, R2).
#[allow(async_fn_in_trait)]
pub trait Executor {
    async fn run(&self, step: Step) -> Result<(), String>;
}

/// Persists progress (the `app_deletions` row, owner in every WHERE).
#[allow(async_fn_in_trait)]
pub trait Journal {
    async fn record(&self, p: &Progress) -> Result<(), String>;
    /// Removes the row: the deletion is complete.
    async fn finish(&self) -> Result<(), String>;
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Try again at this time (epoch ms).
    RetryAt(i64),
}

/// The wait before the next attempt after `attempts` failed ones: 1 s, doubling, at most 5 min.
pub fn backoff_ms(attempts: u32) -> i64 {
    let exp = attempts.saturating_sub(1).min(16);
    (1000i64 << exp).min(300_000)
}

/// One attempt at the plan from where `p` stands: each step that succeeds is journalled before
/// the next runs; the first failure ends the attempt with a retry time.
pub async fn attempt(
    p: &mut Progress,
    exec: &impl Executor,
    journal: &impl Journal,
    now_ms: i64,
) -> Outcome {
    p.attempts = p.attempts.saturating_add(1);
    let retry = |p: &Progress| Outcome::RetryAt(now_ms + backoff_ms(p.attempts));
    if journal.record(p).await.is_err() {
        return retry(p);
    }
    while let Some(step) = p.next {
        if let Err(e) = exec.run(step).await {
            p.last_error = Some(format!("{}: {e}", step.name()));
            let _ = journal.record(p).await;
            return retry(p);
        }
        let at = APP_PLAN.iter().position(|s| *s == step).unwrap_or(0);
        p.next = APP_PLAN.get(at + 1).copied();
        if step.frees_sandbox_slot() {
            p.holds_sandbox = false;
        }
        p.last_error = None;
        if journal.record(p).await.is_err() {
            return retry(p);
        }
    }
    match journal.finish().await {
        Ok(()) => Outcome::Done,
        Err(_) => retry(p),
    }
}

/// How long after signing in an OAuth-only account may be deleted without a password.
pub const RECENT_SIGN_IN_SECONDS: i64 = 600;

/// What proves that the person deleting an account is its owner, not someone holding a stolen
/// token: the current password for a password account; for an account without one, a session
/// opened (by signing in with the provider) within [`RECENT_SIGN_IN_SECONDS`].
pub fn account_deletion_allowed(
    has_password: bool,
    password_matches: bool,
    session_created_at_s: i64,
    now_s: i64,
) -> Result<(), &'static str> {
    if has_password {
        return if password_matches {
            Ok(())
        } else {
            Err("the current password is required to delete this account (send it as `password`)")
        };
    }
    if now_s - session_created_at_s <= RECENT_SIGN_IN_SECONDS {
        Ok(())
    } else {
        Err("sign in again (within the last 10 minutes) to delete this account")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Steps fail as scripted: `fails[step]` failures before it succeeds.
    #[derive(Default)]
    struct Fake {
        fails: RefCell<HashMap<Step, u32>>,
        ran: RefCell<Vec<Step>>,
        journal: RefCell<Vec<Progress>>,
        finished: RefCell<u32>,
        journal_down: RefCell<bool>,
    }

    impl Executor for Fake {
        async fn run(&self, step: Step) -> Result<(), String> {
            self.ran.borrow_mut().push(step);
            let mut f = self.fails.borrow_mut();
            match f.get_mut(&step) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    Err("agent unreachable".into())
                }
                _ => Ok(()),
            }
        }
    }

    impl Journal for Fake {
        async fn record(&self, p: &Progress) -> Result<(), String> {
            if *self.journal_down.borrow() {
                return Err("D1 down".into());
            }
            self.journal.borrow_mut().push(p.clone());
            Ok(())
        }
        async fn finish(&self) -> Result<(), String> {
            if *self.journal_down.borrow() {
                return Err("D1 down".into());
            }
            *self.finished.borrow_mut() += 1;
            Ok(())
        }
    }

    fn run(p: &mut Progress, f: &Fake) -> Outcome {
        futures_executor::block_on(attempt(p, f, f, 1_000))
    }

    #[test]
    fn a_clean_run_takes_every_step_in_order_then_removes_the_row() {
        let f = Fake::default();
        let mut p = Progress::start(true);
        assert_eq!(run(&mut p, &f), Outcome::Done);
        assert_eq!(*f.ran.borrow(), APP_PLAN);
        assert_eq!(*f.finished.borrow(), 1);
        assert_eq!(p.next, None);
        assert!(!p.holds_sandbox);
        // The journal saw each step done before the next ran.
        let names: Vec<&str> = f.journal.borrow().iter().map(|p| p.next_name()).collect();
        assert_eq!(
            names,
            [
                "erase_generator",
                "stop_sandbox",
                "erase_sandbox",
                "delete_files",
                "undeploy",
                DONE
            ]
        );
    }

    #[test]
    fn a_failure_stops_the_attempt_and_the_retry_resumes_there() {
        let f = Fake::default();
        f.fails.borrow_mut().insert(Step::StopSandbox, 2);
        let mut p = Progress::start(true);
        assert_eq!(run(&mut p, &f), Outcome::RetryAt(1_000 + 1_000));
        assert_eq!(*f.ran.borrow(), [Step::EraseGenerator, Step::StopSandbox]);
        assert_eq!(p.next, Some(Step::StopSandbox));
        assert!(
            p.holds_sandbox,
            "the slot is held while the sandbox may run"
        );
        assert_eq!(
            p.last_error.as_deref(),
            Some("stop_sandbox: agent unreachable")
        );
        let last = f.journal.borrow().last().cloned().unwrap();
        assert_eq!(last, p, "the failure is journalled");

        assert_eq!(run(&mut p, &f), Outcome::RetryAt(1_000 + 2_000));
        assert_eq!(f.ran.borrow().len(), 3, "only the failed step ran again");
        assert!(p.holds_sandbox);
        assert_eq!(*f.finished.borrow(), 0);

        assert_eq!(run(&mut p, &f), Outcome::Done);
        assert_eq!(
            f.ran.borrow()[3..],
            [
                Step::StopSandbox,
                Step::EraseSandbox,
                Step::DeleteFiles,
                Step::Undeploy
            ]
        );
        assert_eq!(p.attempts, 3);
        assert_eq!(p.last_error, None);
        assert_eq!(*f.finished.borrow(), 1);
    }

    #[test]
    fn the_slot_is_freed_exactly_when_the_sandbox_is_stopped() {
        let f = Fake::default();
        f.fails.borrow_mut().insert(Step::EraseSandbox, 1);
        let mut p = Progress::start(true);
        run(&mut p, &f);
        assert_eq!(p.next, Some(Step::EraseSandbox));
        assert!(
            !p.holds_sandbox,
            "stopped: the slot is free though work is left"
        );
        let holds: Vec<(Option<Step>, bool)> = f
            .journal
            .borrow()
            .iter()
            .map(|p| (p.next, p.holds_sandbox))
            .collect();
        assert_eq!(
            holds,
            [
                (Some(Step::EraseGenerator), true),
                (Some(Step::StopSandbox), true),
                (Some(Step::EraseSandbox), false),
                (Some(Step::EraseSandbox), false),
            ]
        );
        // A deletion without a running sandbox never held one.
        let mut q = Progress::start(false);
        run(&mut q, &Fake::default());
        assert!(!q.holds_sandbox);
    }

    #[test]
    fn a_journal_failure_retries_without_skipping_anything() {
        let f = Fake::default();
        *f.journal_down.borrow_mut() = true;
        let mut p = Progress::start(true);
        assert!(matches!(run(&mut p, &f), Outcome::RetryAt(_)));
        assert!(f.ran.borrow().is_empty(), "nothing runs unjournalled");
        *f.journal_down.borrow_mut() = false;
        assert_eq!(run(&mut p, &f), Outcome::Done);
        assert_eq!(*f.ran.borrow(), APP_PLAN);
    }

    #[test]
    fn rows_read_back_and_unknown_steps_restart() {
        for (i, s) in APP_PLAN.iter().enumerate() {
            let p = Progress::from_row(s.name(), true, i as u32, None);
            assert_eq!(p.next, Some(*s));
            assert_eq!(p.next_name(), s.name());
        }
        assert_eq!(Progress::from_row(DONE, false, 3, None).next, None);
        assert_eq!(
            Progress::from_row("unlink_repository_v0", false, 1, None).next,
            Some(APP_PLAN[0])
        );
        // A row left at `done` (the removal failed) only removes itself.
        let f = Fake::default();
        let mut p = Progress::from_row(DONE, false, 4, None);
        assert_eq!(run(&mut p, &f), Outcome::Done);
        assert!(f.ran.borrow().is_empty());
    }

    #[test]
    fn backoff_doubles_from_a_second_to_five_minutes() {
        let waits: Vec<i64> = (1..=11).map(backoff_ms).collect();
        assert_eq!(
            waits,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
                300_000
            ]
        );
        assert_eq!(backoff_ms(0), 1_000);
        assert_eq!(backoff_ms(u32::MAX), 300_000);
    }

    #[test]
    fn step_names_are_unique_and_stable() {
        let mut names: Vec<&str> = APP_PLAN.iter().map(|s| s.name()).collect();
        names.push(DONE);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for s in APP_PLAN {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.name())
            );
        }
        assert_eq!(
            APP_PLAN.iter().filter(|s| s.frees_sandbox_slot()).count(),
            1
        );
    }

    #[test]
    fn every_stored_file_of_an_app_is_under_its_prefix() {
        use crate::domain::codegen::run::{blob_key, version_key, versions_prefix};
        let p = files_prefix("app_1");
        assert!(blob_key("app_1", "ab").starts_with(&p));
        assert!(version_key("app_1", 7).starts_with(&p));
        assert!(versions_prefix("app_1").starts_with(&p));
        assert!(!blob_key("app_10", "ab").starts_with(&p), "no other app's");
    }

    #[test]
    fn calls_round_trip() {
        let by = Owner {
            app_id: "app_1".into(),
            user_id: "usr_1".into(),
        };
        for call in [
            DeletionCall::DeleteApp { by: by.clone() },
            DeletionCall::Prepare { by: by.clone() },
            DeletionCall::Resume { by: by.clone() },
        ] {
            let back = DeletionCall::parse(call.to_json().as_bytes()).unwrap();
            assert_eq!(back, call);
            assert_eq!(back.owner(), &by);
        }
        assert!(DeletionCall::parse(br#"{"call":"delete_app"}"#).is_err());
    }

    #[test]
    fn account_deletion_needs_the_password_or_a_fresh_sign_in() {
        assert!(account_deletion_allowed(true, true, 0, 1_000_000).is_ok());
        assert!(account_deletion_allowed(true, false, 1_000_000, 1_000_000).is_err());
        assert!(account_deletion_allowed(false, false, 1_000, 1_000 + 600).is_ok());
        assert!(account_deletion_allowed(false, false, 1_000, 1_000 + 601).is_err());
    }
}

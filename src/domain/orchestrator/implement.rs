//! A ticket implemented by the code generator (issue 14): the rules for starting one, the edit
//! request built from the ticket, the job the app's agent keeps with its run, and the decisions
//! taken when that run ends.
//!
//! The work itself is the agent's ordinary follow-up edit (same streaming events, sandbox
//! checks and correction loop); this module only says what to ask and how to read the result.
//!
//! Invariants:
//! - a ticket starts only in a project that accepts work, with every `blocks` dependency
//!   completed, from a status the lifecycle lets reach `in_progress` (409 E004 otherwise, naming
//!   the blockers or the status);
//! - a job is [`JobStage::Queued`] until the agent takes its request as the edit in progress,
//!   [`JobStage::Running`] (with the file hashes it started from) until that edit ends, then
//!   [`JobStage::Finished`] with exactly one [`Outcome`]; the job is kept in the agent's stored
//!   run state, so an interrupted run or report picks it up again;
//! - only an edit that completed with no errors left and changed at least one file succeeds;
//!   the changed files are the difference between the hashes it started from and the ones it
//!   ended with (what another edit changed before or after it is not the ticket's).

use super::lifecycle::{conflict, project_accepts_work, ticket_is_final, TicketContext};
use super::model::TicketStatus;
use crate::domain::codegen::phase::PhaseStatus;
use crate::domain::error::ApiError;
use crate::domain::ids::{ProjectId, TicketId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest edit request built from a ticket (its description is bounded, but criteria and
/// files add up).
pub const MAX_PROMPT_CHARS: usize = 16_000;

/// What the edit request is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketBrief<'a> {
    pub number: u32,
    pub title: &'a str,
    pub description: &'a str,
    pub acceptance_criteria: &'a [String],
    pub affected_files: &'a [String],
}

/// The follow-up edit request that implements the ticket: the ticket's title and description,
/// its acceptance criteria as a checklist, and the files it names as where to start.
pub fn edit_request(t: &TicketBrief<'_>) -> String {
    let mut out = format!(
        "Implement ticket #{} of this app's project plan: {}\n\n{}\n",
        t.number,
        t.title.trim(),
        t.description.trim()
    );
    if !t.acceptance_criteria.is_empty() {
        out.push_str("\nAcceptance criteria (all must hold when you are done):\n");
        for c in t.acceptance_criteria {
            out.push_str(&format!("- {}\n", c.trim()));
        }
    }
    if !t.affected_files.is_empty() {
        out.push_str("\nFiles this ticket is expected to touch (change others only if needed):\n");
        for f in t.affected_files {
            out.push_str(&format!("- {}\n", f.trim()));
        }
    }
    out.push_str(
        "\nChange only what this ticket needs; keep the rest of the app as it is, and keep it building.\n",
    );
    if out.chars().count() > MAX_PROMPT_CHARS {
        out = out.chars().take(MAX_PROMPT_CHARS).collect();
        out.push_str("\n[…]\n");
    }
    out
}

/// Whether work on a ticket in `status` may start now, for the implement route: the project
/// accepts work, every blocker is completed, and the lifecycle lets the ticket reach
/// `in_progress` (`ready` and `assigned` through assignment to the caller, `review` and
/// `blocked` back to work, `in_progress` again after a failed run). `blockers` names the open
/// blockers (`#3, #5`).
pub fn check_start(
    status: TicketStatus,
    ctx: TicketContext,
    blockers: &str,
) -> Result<(), ApiError> {
    if !project_accepts_work(ctx.project) {
        return Err(conflict(format!(
            "the project is {}: tickets are implemented only once it is approved",
            ctx.project
        )));
    }
    if !ctx.blockers_done || status == TicketStatus::Pending {
        let mut e = conflict(format!(
            "work cannot start: blocked by {}, not completed yet",
            if blockers.is_empty() {
                "unfinished tickets"
            } else {
                blockers
            }
        ));
        e.fields.insert("blockedBy".into(), blockers.to_string());
        return Err(e);
    }
    if ticket_is_final(status) {
        return Err(conflict(format!(
            "the ticket is {status}: there is nothing left to implement"
        )));
    }
    Ok(())
}

/// Where a job is (stored with the agent's run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum JobStage {
    /// The request waits in the agent's queue.
    Queued,
    /// The request is the edit in progress; `baseline` is every file's content hash when it
    /// started; `last_error` the last error the run reported meanwhile.
    Running {
        baseline: BTreeMap<String, String>,
        #[serde(default)]
        last_error: Option<String>,
    },
    /// The edit ended; the outcome waits to be reported to the ticket (and GitHub).
    Finished { outcome: Outcome },
}

/// How a ticket's run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The change is in the app: version `version` (when it was saved), these paths written
    /// and deleted (path order).
    Succeeded {
        version: Option<u32>,
        written: Vec<String>,
        deleted: Vec<String>,
    },
    /// Nothing to commit: why, for the person.
    Failed { message: String },
}

/// A ticket's implementation by the app's agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketJob {
    pub ticket_id: TicketId,
    pub project_id: ProjectId,
    /// Who asked: the ticket is written, and GitHub called, as them.
    pub user_id: UserId,
    /// The edit request (the queued message it travels as).
    pub request: String,
    pub stage: JobStage,
    /// Reports tried and failed (GitHub or D1 unavailable); bounded by [`MAX_REPORT_ATTEMPTS`].
    #[serde(default)]
    pub report_attempts: u32,
}

/// Reports of a finished job tried before it is given up (logged).
pub const MAX_REPORT_ATTEMPTS: u32 = 5;

/// The wait before reporting a job again, times the attempts made.
pub const REPORT_RETRY_MS: i64 = 30_000;

/// What follows a report that failed ([`TicketJob::report_failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailedReport {
    /// Try again after this many milliseconds.
    RetryInMs(i64),
    /// The attempts are spent: the job is dropped (and logged).
    GiveUp,
}

impl TicketJob {
    /// Counts a failed report: retried after a wait that grows with the attempts, until
    /// [`MAX_REPORT_ATTEMPTS`] have failed.
    pub fn report_failed(&mut self) -> AfterFailedReport {
        self.report_attempts += 1;
        if self.report_attempts >= MAX_REPORT_ATTEMPTS {
            AfterFailedReport::GiveUp
        } else {
            AfterFailedReport::RetryInMs(REPORT_RETRY_MS * self.report_attempts as i64)
        }
    }

    pub fn new(
        ticket_id: TicketId,
        project_id: ProjectId,
        user_id: UserId,
        request: String,
    ) -> Self {
        Self {
            ticket_id,
            project_id,
            user_id,
            request,
            stage: JobStage::Queued,
            report_attempts: 0,
        }
    }

    /// Not finished yet.
    pub fn is_open(&self) -> bool {
        !matches!(self.stage, JobStage::Finished { .. })
    }

    /// The agent took `message` as its edit in progress: the job's own request starts running
    /// from `files` (path → content hash). Another message changes nothing.
    pub fn edit_started(&mut self, message: &str, files: BTreeMap<String, String>) {
        if self.stage == JobStage::Queued && message == self.request {
            self.stage = JobStage::Running {
                baseline: files,
                last_error: None,
            };
        }
    }

    /// The run reported an error while the job runs (kept for a failure's message).
    pub fn error_reported(&mut self, message: &str) {
        if let JobStage::Running { last_error, .. } = &mut self.stage {
            *last_error = Some(message.chars().take(1000).collect());
        }
    }

    /// The edit in progress ended with `status`; `files` are the hashes it ended with and
    /// `version` the version saved for it. A job that was not running is unchanged.
    pub fn edit_ended(
        &mut self,
        status: PhaseStatus,
        files: &BTreeMap<String, String>,
        version: Option<u32>,
    ) {
        let JobStage::Running {
            baseline,
            last_error,
        } = &self.stage
        else {
            return;
        };
        let outcome = decide(status, baseline, files, version, last_error.as_deref());
        self.stage = JobStage::Finished { outcome };
    }

    /// The run ended while the job had not finished (stopped, or failed before its edit):
    /// it fails with `why`.
    pub fn abandoned(&mut self, why: &str) {
        if self.is_open() {
            let message = match &self.stage {
                JobStage::Running {
                    last_error: Some(e),
                    ..
                } => format!("{why}: {e}"),
                _ => why.to_string(),
            };
            self.stage = JobStage::Finished {
                outcome: Outcome::Failed { message },
            };
        }
    }
}

/// The paths written (new or changed) and deleted between `before` and `after` (path →
/// content hash), each in path order.
pub fn changes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> (Vec<String>, Vec<String>) {
    let written = after
        .iter()
        .filter(|(p, h)| before.get(*p) != Some(h))
        .map(|(p, _)| p.clone())
        .collect();
    let deleted = before
        .keys()
        .filter(|p| !after.contains_key(*p))
        .cloned()
        .collect();
    (written, deleted)
}

/// The outcome of a ticket's edit that ended with `status`.
pub fn decide(
    status: PhaseStatus,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    version: Option<u32>,
    last_error: Option<&str>,
) -> Outcome {
    let failed = |m: String| Outcome::Failed { message: m };
    match status {
        PhaseStatus::Complete => {
            let (written, deleted) = changes(before, after);
            if written.is_empty() && deleted.is_empty() {
                failed("the code generator changed no file for this ticket".into())
            } else {
                Outcome::Succeeded {
                    version,
                    written,
                    deleted,
                }
            }
        }
        PhaseStatus::Failed => failed(match last_error {
            Some(e) => format!("the change did not pass the app's checks: {e}"),
            None => "the change did not pass the app's checks".into(),
        }),
        other => failed(format!(
            "the run ended while the change was {}",
            other.label()
        )),
    }
}

/// The status a ticket in `status` moves to when its implementation succeeded: `review` from
/// `in_progress`; a ticket someone moved meanwhile stays where they put it.
pub fn status_after_success(status: TicketStatus) -> Option<TicketStatus> {
    (status == TicketStatus::InProgress).then_some(TicketStatus::Review)
}

/// The commit message of a ticket's change.
pub fn commit_message(number: u32, title: &str) -> String {
    format!("Ticket #{number}: {title}\n\nImplemented by the Byte Platform code generator.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::orchestrator::model::ProjectStatus;

    fn hashes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(p, h)| (p.to_string(), h.to_string()))
            .collect()
    }

    #[test]
    fn the_request_carries_the_ticket() {
        let criteria = vec!["Hello renders the name".to_string(), "Tests pass".into()];
        let files = vec!["src/components/Hello.tsx".to_string()];
        let r = edit_request(&TicketBrief {
            number: 3,
            title: " Greeting props ",
            description: "Let Hello take a name.",
            acceptance_criteria: &criteria,
            affected_files: &files,
        });
        assert!(r.starts_with("Implement ticket #3 of this app's project plan: Greeting props\n"));
        assert!(r.contains("Let Hello take a name."));
        assert!(r.contains("- Hello renders the name\n- Tests pass\n"));
        assert!(r.contains("- src/components/Hello.tsx\n"));
        // Without criteria or files, no empty sections.
        let bare = edit_request(&TicketBrief {
            number: 1,
            title: "T",
            description: "D",
            acceptance_criteria: &[],
            affected_files: &[],
        });
        assert!(!bare.contains("Acceptance") && !bare.contains("Files this"));
        // Bounded.
        let long = "x".repeat(MAX_PROMPT_CHARS * 2);
        let r = edit_request(&TicketBrief {
            number: 1,
            title: "T",
            description: &long,
            acceptance_criteria: &[],
            affected_files: &[],
        });
        assert!(r.chars().count() <= MAX_PROMPT_CHARS + 10);
    }

    fn ctx(project: ProjectStatus, blockers_done: bool) -> TicketContext {
        TicketContext {
            project,
            blockers_done,
        }
    }

    #[test]
    fn starting_needs_an_approved_project_finished_blockers_and_an_open_ticket() {
        use TicketStatus as T;
        let ok = ctx(ProjectStatus::InProgress, true);
        for s in [T::Ready, T::Assigned, T::InProgress, T::Review, T::Blocked] {
            assert!(check_start(s, ok, "").is_ok(), "{s}");
        }
        let e = check_start(T::Pending, ctx(ProjectStatus::Approved, false), "#1, #4").unwrap_err();
        assert_eq!((e.status, e.fields["blockedBy"].as_str()), (409, "#1, #4"));
        assert!(e.message.contains("#1, #4"), "{}", e.message);
        // A ticket moved on by hand while a blocker reopened is still refused.
        let e = check_start(T::Assigned, ctx(ProjectStatus::InProgress, false), "#2").unwrap_err();
        assert_eq!(e.status, 409);
        for s in [T::Completed, T::Cancelled] {
            let e = check_start(s, ok, "").unwrap_err();
            assert!(e.message.contains("nothing left"), "{}", e.message);
        }
        for p in [
            ProjectStatus::Review,
            ProjectStatus::Archived,
            ProjectStatus::Completed,
        ] {
            let e = check_start(T::Ready, ctx(p, true), "").unwrap_err();
            assert!(e.message.contains("approved"), "{}", e.message);
        }
    }

    #[test]
    fn failed_reports_are_retried_later_each_time_then_given_up() {
        let mut j = TicketJob::new(
            "tkt_1".into(),
            "prj_1".into(),
            "usr_1".into(),
            "do it".into(),
        );
        let waits: Vec<AfterFailedReport> = (0..MAX_REPORT_ATTEMPTS)
            .map(|_| j.report_failed())
            .collect();
        let expected: Vec<AfterFailedReport> = (1..MAX_REPORT_ATTEMPTS as i64)
            .map(|n| AfterFailedReport::RetryInMs(REPORT_RETRY_MS * n))
            .chain([AfterFailedReport::GiveUp])
            .collect();
        assert_eq!(waits, expected);
        assert_eq!(j.report_attempts, MAX_REPORT_ATTEMPTS);
    }

    #[test]
    fn a_job_runs_only_for_its_own_request_and_ends_once() {
        let mut j = TicketJob::new(
            "tkt_1".into(),
            "prj_1".into(),
            "usr_1".into(),
            "do it".into(),
        );
        j.edit_started("someone else's edit", hashes(&[("a", "1")]));
        assert_eq!(j.stage, JobStage::Queued);
        j.error_reported("ignored while queued");
        j.edit_started("do it", hashes(&[("a", "1"), ("b", "2")]));
        assert!(matches!(j.stage, JobStage::Running { .. }));
        j.error_reported("src/App.tsx:3 missing brace");
        let after = hashes(&[("a", "1"), ("b", "3"), ("c", "4")]);
        j.edit_ended(PhaseStatus::Complete, &after, Some(7));
        assert_eq!(
            j.stage,
            JobStage::Finished {
                outcome: Outcome::Succeeded {
                    version: Some(7),
                    written: vec!["b".into(), "c".into()],
                    deleted: vec![],
                }
            }
        );
        // Ended is ended: nothing moves it again.
        let done = j.stage.clone();
        j.edit_ended(PhaseStatus::Failed, &after, None);
        j.abandoned("stopped");
        j.edit_started("do it", BTreeMap::new());
        assert_eq!(j.stage, done);
        assert!(!j.is_open());
    }

    #[test]
    fn completion_decisions() {
        let before = hashes(&[("a", "1"), ("gone", "2")]);
        let after = hashes(&[("a", "1"), ("new", "3")]);
        assert_eq!(
            decide(PhaseStatus::Complete, &before, &after, None, None),
            Outcome::Succeeded {
                version: None,
                written: vec!["new".into()],
                deleted: vec!["gone".into()],
            }
        );
        // Nothing changed: nothing to review.
        let Outcome::Failed { message } =
            decide(PhaseStatus::Complete, &before, &before, Some(2), None)
        else {
            panic!()
        };
        assert!(message.contains("no file"));
        // Errors left after the correction rounds: a failure naming the last error.
        let Outcome::Failed { message } = decide(
            PhaseStatus::Failed,
            &before,
            &after,
            Some(3),
            Some("phase \"edit\" still has 1 error(s)"),
        ) else {
            panic!()
        };
        assert!(message.contains("still has 1 error"), "{message}");
        // A stopped run abandons a running job with what it last reported.
        let mut j = TicketJob::new("tkt_1".into(), "prj_1".into(), "usr_1".into(), "r".into());
        j.edit_started("r", before.clone());
        j.error_reported("the model is down");
        j.abandoned("the run stopped before the ticket's change was finished");
        let JobStage::Finished {
            outcome: Outcome::Failed { message },
        } = &j.stage
        else {
            panic!()
        };
        assert!(message.contains("stopped") && message.contains("model is down"));
        // Success moves only an in-progress ticket to review.
        assert_eq!(
            status_after_success(TicketStatus::InProgress),
            Some(TicketStatus::Review)
        );
        assert_eq!(status_after_success(TicketStatus::Cancelled), None);
        assert_eq!(status_after_success(TicketStatus::Review), None);
    }

    #[test]
    fn jobs_round_trip_as_stored() {
        let mut j = TicketJob::new("tkt_1".into(), "prj_1".into(), "usr_1".into(), "r".into());
        j.edit_started("r", hashes(&[("a", "1")]));
        let back: TicketJob = serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
        assert_eq!(back, j);
    }
}

//! A phase's lifecycle: the state machine each planned phase (and each chat edit) goes through
//! while the agent implements, validates and corrects it, and the bound on correction rounds.
//!
//! Invariants:
//! - a phase only moves along planned → implementing → validating → (correcting(n) →
//!   validating)* → complete | failed; any other move is an [`IllegalTransition`], never a
//!   silent change;
//! - at most the configured number of correction rounds run (0 to [`MAX_CORRECTIONS_LIMIT`]);
//!   a validation that still fails after the last one fails the phase;
//! - [`PhaseStatus`] is persisted with the agent's state, so its JSON form
//!   (`{"status": "correcting", "round": 2}`) is stable.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Correction rounds per phase unless configured otherwise.
pub const DEFAULT_MAX_CORRECTIONS: u32 = 3;
/// The most correction rounds a deployment may configure.
pub const MAX_CORRECTIONS_LIMIT: u32 = 10;

/// Parses a configured correction bound (`0` disables corrections).
pub fn parse_max_corrections(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n <= MAX_CORRECTIONS_LIMIT => Ok(n),
        _ => Err(format!(
            "correction rounds must be an integer from 0 to {MAX_CORRECTIONS_LIMIT}, not {s:?}"
        )),
    }
}

/// Where a phase is. Persisted with the agent's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PhaseStatus {
    Planned,
    Implementing,
    /// Install, build and type-check running; `corrections` rounds done so far.
    Validating {
        corrections: u32,
    },
    /// Correction round `round` (1-based) being generated and applied.
    Correcting {
        round: u32,
    },
    Complete,
    /// Aborted, or still failing validation after the last correction round.
    Failed,
}

/// What happened to a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseInput {
    Start,
    /// All of the phase's files were written.
    Implemented,
    ValidationPassed,
    ValidationFailed,
    /// A correction's files were written.
    CorrectionApplied,
    /// An unrecoverable error (the model failed after its retries and fallback).
    Abort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: PhaseStatus,
    pub input: PhaseInput,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "phase cannot take {:?} while {}",
            self.input,
            self.from.label()
        )
    }
}

impl std::error::Error for IllegalTransition {}

impl PhaseStatus {
    /// The status without its counters, for events and the UI.
    pub fn label(&self) -> &'static str {
        match self {
            PhaseStatus::Planned => "planned",
            PhaseStatus::Implementing => "implementing",
            PhaseStatus::Validating { .. } => "validating",
            PhaseStatus::Correcting { .. } => "correcting",
            PhaseStatus::Complete => "complete",
            PhaseStatus::Failed => "failed",
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, PhaseStatus::Complete | PhaseStatus::Failed)
    }

    /// The next status, or an error for a transition the lifecycle does not have. A failed
    /// validation after `max_corrections` rounds fails the phase (its remaining errors are then
    /// reported as they are).
    pub fn next(self, input: PhaseInput, max_corrections: u32) -> Result<Self, IllegalTransition> {
        use PhaseInput as I;
        use PhaseStatus as S;
        Ok(match (self, input) {
            (S::Planned, I::Start) => S::Implementing,
            (S::Implementing, I::Implemented) => S::Validating { corrections: 0 },
            (S::Validating { .. }, I::ValidationPassed) => S::Complete,
            (S::Validating { corrections }, I::ValidationFailed) => {
                if corrections < max_corrections {
                    S::Correcting {
                        round: corrections + 1,
                    }
                } else {
                    S::Failed
                }
            }
            (S::Correcting { round }, I::CorrectionApplied) => S::Validating { corrections: round },
            (s, I::Abort) if !s.is_terminal() => S::Failed,
            (from, input) => return Err(IllegalTransition { from, input }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phase_lifecycle_happy_path_and_corrections() {
        use PhaseInput::*;
        let mut s = PhaseStatus::Planned;
        for (input, want) in [
            (Start, PhaseStatus::Implementing),
            (Implemented, PhaseStatus::Validating { corrections: 0 }),
            (ValidationFailed, PhaseStatus::Correcting { round: 1 }),
            (
                CorrectionApplied,
                PhaseStatus::Validating { corrections: 1 },
            ),
            (ValidationFailed, PhaseStatus::Correcting { round: 2 }),
            (
                CorrectionApplied,
                PhaseStatus::Validating { corrections: 2 },
            ),
            (ValidationPassed, PhaseStatus::Complete),
        ] {
            s = s.next(input, DEFAULT_MAX_CORRECTIONS).unwrap();
            assert_eq!(s, want);
        }
        assert!(s.is_terminal());
    }

    #[test]
    fn corrections_stop_at_the_bound() {
        use PhaseInput::*;
        for bound in [0, 1, 3] {
            let mut s = PhaseStatus::Validating { corrections: 0 };
            let mut rounds = 0;
            loop {
                s = s.next(ValidationFailed, bound).unwrap();
                match s {
                    PhaseStatus::Correcting { round } => {
                        rounds += 1;
                        assert_eq!(round, rounds);
                        s = s.next(CorrectionApplied, bound).unwrap();
                    }
                    PhaseStatus::Failed => break,
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(rounds, bound);
        }
    }

    #[test]
    fn illegal_transitions_are_refused() {
        use PhaseInput::*;
        for (from, input) in [
            (PhaseStatus::Planned, Implemented),
            (PhaseStatus::Planned, ValidationPassed),
            (PhaseStatus::Implementing, Start),
            (PhaseStatus::Implementing, ValidationFailed),
            (
                PhaseStatus::Validating { corrections: 0 },
                CorrectionApplied,
            ),
            (PhaseStatus::Correcting { round: 1 }, ValidationPassed),
            (PhaseStatus::Complete, Start),
            (PhaseStatus::Complete, Abort),
            (PhaseStatus::Failed, Abort),
            (PhaseStatus::Failed, Start),
        ] {
            let e = from.next(input, 3).unwrap_err();
            assert_eq!(e, IllegalTransition { from, input });
            assert!(e.to_string().contains(from.label()));
        }
        for from in [
            PhaseStatus::Planned,
            PhaseStatus::Implementing,
            PhaseStatus::Validating { corrections: 2 },
            PhaseStatus::Correcting { round: 1 },
        ] {
            assert_eq!(from.next(Abort, 3), Ok(PhaseStatus::Failed));
        }
    }

    #[test]
    fn phase_status_serde_and_bound_parsing() {
        let s = PhaseStatus::Correcting { round: 2 };
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(v, json!({"status": "correcting", "round": 2}));
        assert_eq!(serde_json::from_value::<PhaseStatus>(v).unwrap(), s);
        assert_eq!(
            serde_json::to_value(PhaseStatus::Complete).unwrap(),
            json!({"status": "complete"})
        );
        assert_eq!(parse_max_corrections(" 5 "), Ok(5));
        assert_eq!(parse_max_corrections("0"), Ok(0));
        assert!(parse_max_corrections("11").is_err());
        assert!(parse_max_corrections("-1").is_err());
        assert!(parse_max_corrections("three").is_err());
    }
}

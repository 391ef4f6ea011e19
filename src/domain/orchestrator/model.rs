//! The orchestrator's closed vocabularies, spelled exactly as the spec and the CHECK lists of
//! migration 0010 spell them, so a value read from D1 or a request parses into the same enum.

use serde::{Deserialize, Serialize};
use strum::{EnumIter, EnumString, IntoStaticStr};

macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            Serialize,
            Deserialize,
            utoipa::ToSchema,
            IntoStaticStr,
            EnumString,
            EnumIter,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// Every value, in declaration order (for error messages that list them).
            pub fn all() -> Vec<$name> {
                <$name as strum::IntoEnumIterator>::iter().collect()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(
    /// A project's lifecycle state (spec: Project Lifecycle).
    ProjectStatus {
        Analyzing,
        Review,
        Approved,
        InProgress,
        Completed,
        Archived,
    }
);

vocabulary!(
    /// A ticket's lifecycle state (spec: Ticket Lifecycle).
    TicketStatus {
        Pending,
        Ready,
        Assigned,
        InProgress,
        Review,
        Blocked,
        Completed,
        Cancelled,
    }
);

vocabulary!(
    /// What kind of work a ticket is.
    TicketType {
        Feature,
        Enhancement,
        Bug,
        Refactor,
        Test,
        Documentation,
        Setup,
    }
);

vocabulary!(
    /// How urgent a ticket is; declaration order is most urgent first.
    Priority {
        Critical,
        High,
        Medium,
        Low,
    }
);

vocabulary!(
    /// How a ticket depends on another (spec: Ticket Dependencies).
    DependencyType {
        /// The other ticket must be completed before this one starts.
        Blocks,
        /// Loosely related; no ordering.
        Related,
        /// Both change the same files (derived, not chosen by the model).
        FileConflict,
    }
);

vocabulary!(
    /// Where a project's app comes from.
    ProjectSource {
        App,
        Github,
        New,
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn strings_are_the_specs() {
        assert_eq!(ProjectStatus::InProgress.as_str(), "in_progress");
        assert_eq!(
            TicketStatus::from_str("cancelled").unwrap(),
            TicketStatus::Cancelled
        );
        assert_eq!(DependencyType::FileConflict.to_string(), "file_conflict");
        assert_eq!(
            serde_json::to_string(&TicketStatus::InProgress).unwrap(),
            "\"in_progress\""
        );
        assert!(TicketType::from_str("epic").is_err());
        assert_eq!(Priority::all().len(), 4);
        let migration = include_str!("../../../migrations/0010_orchestration.sql");
        for s in ProjectStatus::all()
            .iter()
            .map(|v| v.as_str())
            .chain(TicketStatus::all().iter().map(|v| v.as_str()))
            .chain(TicketType::all().iter().map(|v| v.as_str()))
            .chain(Priority::all().iter().map(|v| v.as_str()))
            .chain(DependencyType::all().iter().map(|v| v.as_str()))
            .chain(ProjectSource::all().iter().map(|v| v.as_str()))
        {
            assert!(
                migration.contains(&format!("'{s}'")),
                "{s} is in a CHECK list"
            );
        }
    }
}

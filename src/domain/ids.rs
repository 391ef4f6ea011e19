//! The platform's identifiers as distinct types: [`AppId`], [`UserId`], [`SessionId`],
//! [`ProjectId`] and [`TicketId`], so an app id cannot be passed where a user id is expected.
//!
//! Invariants: on the wire and in storage each is exactly its string (`#[serde(transparent)]`),
//! so stored rows, tokens and Durable Object calls are byte-identical to plain strings. An id
//! from outside (a URL path, a preview hostname) enters through `parse`, which refuses anything
//! the platform could not have minted; ids read back from our own storage or signed tokens are
//! trusted as they are (`From<String>`), since only we wrote them.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix of the ids the platform mints for this kind.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id: the prefix, `_`, and 128 random bits as lower-case hex.
            pub fn generate() -> Self {
                Self(super::random::id($prefix))
            }

            /// An id from outside (a URL, a hostname): `<prefix>_` and 32 hex digits, else `None`.
            pub fn parse(s: &str) -> Option<Self> {
                let hex = s.strip_prefix($prefix)?.strip_prefix('_')?;
                (hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()))
                    .then(|| Self(s.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// An id the platform minted or stored itself (a D1 row, a signed token, an object's
        /// own storage); ids from a request go through `parse`.
        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id_type!(
    /// An app's id (`app_<hex>`).
    AppId,
    "app"
);
id_type!(
    /// A user's id (`usr_<hex>`).
    UserId,
    "usr"
);
id_type!(
    /// A session's id (`ses_<hex>`), the handle logout revokes.
    SessionId,
    "ses"
);
id_type!(
    /// An orchestration project's id (`prj_<hex>`).
    ProjectId,
    "prj"
);
id_type!(
    /// An orchestration ticket's id (`tkt_<hex>`).
    TicketId,
    "tkt"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_only_what_the_platform_mints() {
        let a = AppId::generate();
        assert_eq!(AppId::parse(a.as_str()), Some(a.clone()));
        assert!(AppId::parse("app_0123456789ABCDEF0123456789abcdef").is_some());
        for bad in [
            "",
            "app_",
            "app_123",
            "usr_0123456789abcdef0123456789abcdef",
            "app-0123456789abcdef0123456789abcdef",
            "app_0123456789abcdef0123456789abcdeg",
            "app_0123456789abcdef0123456789abcdef0",
        ] {
            assert_eq!(AppId::parse(bad), None, "{bad}");
        }
        assert!(UserId::parse(UserId::generate().as_str()).is_some());
        assert!(SessionId::parse(SessionId::generate().as_str()).is_some());
        assert!(ProjectId::parse(ProjectId::generate().as_str()).is_some());
        assert!(TicketId::parse(TicketId::generate().as_str()).is_some());
        assert!(TicketId::parse(ProjectId::generate().as_str()).is_none());
    }

    #[test]
    fn ids_are_their_strings_on_the_wire() {
        let id = UserId::from("usr_1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"usr_1\"");
        assert_eq!(serde_json::from_str::<UserId>("\"usr_1\"").unwrap(), id);
        assert_eq!(id.to_string(), "usr_1");
        assert_eq!(id, "usr_1");
    }
}

//! Users: the email newtype, display names, roles and the sign-up allow-list.
//!
//! Invariants: an address counts for `ADMIN_EMAILS` and `ALLOWED_EMAIL` only once its owner has
//! proved it (a verification link, or a provider that vouches for it); the role is recomputed from
//! the lists at every sign-in and checked again on every admin request, so removal demotes.

use serde::Serialize;
use strum::IntoStaticStr;

/// A syntactically plausible, normalized (trimmed, lower-cased) email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let e = raw.trim().to_ascii_lowercase();
        if e.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let Some((local, domain)) = e.split_once('@') else {
            return Err("must be an email address".into());
        };
        let ok_local = !local.is_empty() && local.len() <= 64;
        let ok_domain = domain.len() >= 3
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        let ok_chars =
            e.chars().all(|c| !c.is_whitespace() && !c.is_control()) && !domain.contains('@');
        if ok_local && ok_domain && ok_chars {
            Ok(Self(e))
        } else {
            Err("must be an email address".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name derived from an email when the user gave none.
pub fn default_display_name(email: &Email) -> String {
    email
        .as_str()
        .split('@')
        .next()
        .unwrap_or("user")
        .to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    /// Hand-written, not strum: anything but `admin` (an unknown or missing role) is a user.
    pub fn parse(s: &str) -> Self {
        if s == "admin" {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// An address list from configuration: exact addresses, or `*@domain` for a whole domain.
/// An empty list allows everyone (used for `ALLOWED_EMAIL`) or no one (used for `ADMIN_EMAILS`),
/// as the caller decides.
#[derive(Debug, Clone, Default)]
pub struct EmailList(Vec<String>);

impl EmailList {
    pub fn parse(raw: &str) -> Self {
        Self(
            raw.split([',', ' ', '\n'])
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, email: &Email) -> bool {
        let e = email.as_str();
        self.0.iter().any(|p| match p.strip_prefix("*@") {
            Some(domain) => e
                .rsplit_once('@')
                .map(|(_, d)| d == domain)
                .unwrap_or(false),
            None => p == e,
        })
    }
}

/// The role an account holds: admin only for a verified address on `ADMIN_EMAILS`.
pub fn role_for(admins: &EmailList, email: &Email, verified: bool) -> Role {
    if verified && admins.contains(email) {
        Role::Admin
    } else {
        Role::User
    }
}

/// Whether `ALLOWED_EMAIL` lets an address register (before it is verified): an empty list lets
/// everyone.
pub fn may_register(allowed: &EmailList, email: &Email) -> bool {
    allowed.is_empty() || allowed.contains(email)
}

/// Whether `ALLOWED_EMAIL` lets an account use the platform: an empty list lets everyone; a
/// non-empty one only verified addresses on it.
pub fn may_enter(allowed: &EmailList, email: &Email, verified: bool) -> bool {
    allowed.is_empty() || (verified && allowed.contains(email))
}

impl Role {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@com",
            "a b@example.com",
            "ada@ex..com",
            "a@b@c.com",
            "ada@.example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_count_only_verified_addresses() {
        let admins = EmailList::parse("boss@corp.com");
        let boss = Email::parse("boss@corp.com").unwrap();
        assert_eq!(role_for(&admins, &boss, false), Role::User);
        assert_eq!(role_for(&admins, &boss, true), Role::Admin);
        assert_eq!(role_for(&EmailList::parse(""), &boss, true), Role::User);
        let allowed = EmailList::parse("*@corp.com");
        assert!(may_register(&allowed, &boss) && !may_enter(&allowed, &boss, false));
        assert!(may_enter(&allowed, &boss, true));
        let out = Email::parse("x@else.com").unwrap();
        assert!(!may_register(&allowed, &out) && !may_enter(&allowed, &out, true));
        let open = EmailList::parse("");
        assert!(may_register(&open, &out) && may_enter(&open, &out, false));
    }

    #[test]
    fn allow_list_matches_addresses_and_domains() {
        let l = EmailList::parse("boss@corp.com, *@team.dev");
        assert!(l.contains(&Email::parse("BOSS@corp.com").unwrap()));
        assert!(l.contains(&Email::parse("x@team.dev").unwrap()));
        assert!(!l.contains(&Email::parse("x@evilteam.dev").unwrap()));
        assert!(EmailList::parse(" ").is_empty());
    }
}

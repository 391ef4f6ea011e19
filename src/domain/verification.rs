//! Email verification: the link a verification mail carries, the mail itself, and how often an
//! account may be sent one.
//!
//! Invariants: the token travels in the link's fragment (`#token=`), which browsers never send to
//! a server nor put in a `Referer`, so it stays out of access logs; the page posts it to
//! `POST /api/auth/verify`. Mail to one account is limited to [`MAIL_LIMIT`] whatever asked
//! for it (sign-up, resend, change of address), so the platform cannot be used to flood a
//! mailbox.

use super::ratelimit::Limit;

/// Verification mails per account: five an hour.
pub const MAIL_LIMIT: Limit = Limit {
    requests: 5,
    window_ms: 3600 * 1000,
};

/// Why a link is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The address an account signed up with.
    SignUp,
    /// A new address the account asked to change to.
    Change,
}

/// One verification mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub link: String,
}

/// The link the page at `/verify-email` turns into `POST /api/auth/verify`.
pub fn link(origin: &str, token: &str) -> String {
    format!(
        "{}/verify-email#token={token}",
        origin.trim_end_matches('/')
    )
}

/// The mail for `to` carrying `token`, from a deployment served at `origin`.
pub fn mail(origin: &str, to: &str, token: &str, purpose: Purpose, hours: i64) -> Mail {
    let link = link(origin, token);
    let (subject, why) = match purpose {
        Purpose::SignUp => (
            "Confirm your email address for Byte Platform",
            "You signed up for Byte Platform with this address.",
        ),
        Purpose::Change => (
            "Confirm your new email address for Byte Platform",
            "You asked to change your Byte Platform address to this one.",
        ),
    };
    let text = format!(
        "{why}\n\nOpen this link to confirm it (it works once, for {hours} hours):\n\n{link}\n\n\
         If this was not you, ignore this mail: nothing changes until the link is used.\n"
    );
    Mail {
        to: to.to_string(),
        subject: subject.to_string(),
        text,
        link,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_rides_in_the_fragment() {
        let m = mail(
            "https://byte.example/",
            "a@b.co",
            "t.o.k",
            Purpose::SignUp,
            24,
        );
        assert_eq!(m.link, "https://byte.example/verify-email#token=t.o.k");
        assert!(m.text.contains(&m.link) && m.text.contains("24 hours"));
        assert_eq!(m.to, "a@b.co");
        let c = mail("http://localhost:8787", "n@b.co", "x", Purpose::Change, 24);
        assert!(c.subject.contains("new email address"));
    }

    #[test]
    fn mail_limit_is_small() {
        assert_eq!(MAIL_LIMIT.requests, 5);
        assert_eq!(MAIL_LIMIT.window_ms, 3_600_000);
    }
}

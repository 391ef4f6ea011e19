//! The names we give and accept on GitHub: repository names (GitHub's own rules), the branch of a
//! ticket (`ticket-<n>-<slug of its title>`, stable for a ticket), and the export commit message.
//!
//! Invariant: every name built here is valid on GitHub as it is (no escaping needed in a URL
//! path or a ref).

/// The longest slug part of a branch name.
pub const MAX_SLUG: usize = 40;
/// GitHub's limit on repository names.
pub const MAX_REPO_NAME: usize = 100;

/// Lower-case ASCII letters and digits, everything else folded into single `-`, trimmed, at most
/// `max` characters (cut at a `-` where possible).
pub fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_end_matches('-').to_string();
    if out.len() > max {
        out.truncate(max);
        if let Some(i) = out.rfind('-').filter(|i| *i >= max / 2) {
            out.truncate(i);
        }
        out = out.trim_end_matches('-').to_string();
    }
    out
}

/// The branch of ticket number `n`: `ticket-<n>-<slug of the title>`, or `ticket-<n>`.
pub fn ticket_branch(number: u32, title: &str) -> String {
    match slug(title, MAX_SLUG) {
        s if s.is_empty() => format!("ticket-{number}"),
        s => format!("ticket-{number}-{s}"),
    }
}

/// Checks a repository name by GitHub's rules: 1–100 of `A-Z a-z 0-9 . _ -`, not `.` or `..`,
/// not ending in `.git`.
pub fn check_repo_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_REPO_NAME {
        return Err(format!("must be 1 to {MAX_REPO_NAME} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("may contain only letters, digits, `.`, `_` and `-`".into());
    }
    if name == "." || name == ".." || name.to_ascii_lowercase().ends_with(".git") {
        return Err("is reserved by GitHub".into());
    }
    Ok(())
}

/// A repository name from an app's title (for a default).
pub fn repo_name_from_title(title: &str) -> String {
    match slug(title, 60) {
        s if s.is_empty() => "byte-app".into(),
        s => s,
    }
}

/// Checks a branch name we are given back (owner, repo, branch as GitHub spells them in URLs):
/// letters, digits, `.`, `_`, `-` and `/`, no `..`, no leading or trailing `/`.
pub fn check_ref_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && !s.contains("..")
        && !s.starts_with('/')
        && !s.ends_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_are_stable_slugs() {
        assert_eq!(
            ticket_branch(3, "Add the Login page!"),
            "ticket-3-add-the-login-page"
        );
        assert_eq!(ticket_branch(12, "  ---  "), "ticket-12");
        assert_eq!(
            ticket_branch(1, "Ünïcode — names & (things)"),
            "ticket-1-n-code-names-things"
        );
        let long = ticket_branch(
            7,
            "implement the very long feature title that goes on and on forever",
        );
        assert!(long.len() <= "ticket-7-".len() + MAX_SLUG, "{long}");
        assert!(!long.ends_with('-') && check_ref_part(&long), "{long}");
        assert_eq!(
            long,
            ticket_branch(
                7,
                "implement the very long feature title that goes on and on forever"
            )
        );
    }

    #[test]
    fn repository_names() {
        for ok in ["app", "My.App_2-x", &"a".repeat(100)] {
            assert!(check_repo_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "x.git", "ü", &"a".repeat(101)] {
            assert!(check_repo_name(bad).is_err(), "{bad}");
        }
        assert_eq!(repo_name_from_title("Todo App (v2)"), "todo-app-v2");
        assert_eq!(repo_name_from_title("✨"), "byte-app");
        assert!(!check_ref_part("a/../b") && !check_ref_part("/a") && check_ref_part("feature/x"));
    }
}

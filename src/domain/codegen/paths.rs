//! Checks every path the model (or a user) names before anything is written under it: the
//! file blocks of the streaming format ([`super::files_format`]), the blueprint's file plan
//! ([`super::blueprint`]) and each phase plan ([`super::phase_plan`]).
//!
//! Invariants: the rules are [`byte_protocol::RelPath`]'s and nothing else, so what the model may
//! write here is exactly what the sandbox accepts; an accepted path comes back in its normal form
//! (callers store that, never the raw text); a refusal is a sentence the model can act on.

/// Path limits come from the one lexical rule set the Worker and byte-sandbox share.
pub use byte_protocol::path::{MAX_PATH_BYTES, MAX_PATH_DEPTH};

/// Checks a path the model (or a user) names and returns its normal form: relative,
/// `/`-separated, with `.` components and repeated slashes removed. The rules are
/// [`byte_protocol::RelPath`]'s, so what the model may write is exactly what the sandbox accepts.
///
/// The error is a sentence suitable for showing to the model so it can correct itself.
pub fn validate_path(raw: &str) -> Result<String, String> {
    byte_protocol::RelPath::parse(raw)
        .map(byte_protocol::RelPath::into_string)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_path_accepts_and_normalises() {
        for (raw, want) in [
            ("src/App.tsx", "src/App.tsx"),
            ("./src/App.tsx", "src/App.tsx"),
            ("src//./lib/a.ts", "src/lib/a.ts"),
            (
                "app/[id]/(group)/@slot/+page.svelte",
                "app/[id]/(group)/@slot/+page.svelte",
            ),
            ("routes/$slug.tsx", "routes/$slug.tsx"),
            (".env.example", ".env.example"),
            (".github/workflows/ci.yml", ".github/workflows/ci.yml"),
            ("a.gitignore", "a.gitignore"),
            ("node_modules_backup/x", "node_modules_backup/x"),
        ] {
            assert_eq!(validate_path(raw).as_deref(), Ok(want), "{raw}");
        }
        let deep = vec!["d"; MAX_PATH_DEPTH].join("/");
        assert!(validate_path(&deep).is_ok());
        assert!(validate_path(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn validate_path_refuses_with_reasons() {
        for (raw, why) in [
            ("", "empty"),
            ("../x", ".."),
            ("src/../../x", ".."),
            ("/etc/passwd", "absolute"),
            ("C:/x", "drive"),
            ("c:x", "drive"),
            ("src\\a.ts", "backslash"),
            ("a\0b", "NUL"),
            ("a\nb", "control"),
            ("a\tb", "control"),
            ("a\u{7f}b", "control"),
            ("src/", "directory"),
            (".", "root"),
            ("./", "directory"),
            ("...", "dots"),
            ("a/.../b", "dots"),
            ("node_modules/react/index.js", "node_modules"),
            ("x/Node_Modules/y", "node_modules"),
            (".git/config", ".git"),
            ("a/.GIT/hooks/pre-commit", ".git"),
            ("-rf", "`-`"),
            ("a b.ts", "' '"),
            ("ab:c", "':'"),
            ("~/x", "'~'"),
            ("é.ts", "'é'"),
            ("a%2e", "'%'"),
            ("a*b", "'*'"),
            ("a;b", "';'"),
            ("a|b", "'|'"),
            ("a`b", "'`'"),
            ("a'b", "'\\''"),
        ] {
            let e = validate_path(raw).unwrap_err();
            assert!(e.contains(why), "{raw:?}: {e}");
        }
        assert!(validate_path(&"a".repeat(MAX_PATH_BYTES + 1))
            .unwrap_err()
            .contains("512"));
        assert!(validate_path(&"a".repeat(256)).unwrap_err().contains("255"));
        let deep = vec!["d"; MAX_PATH_DEPTH + 1].join("/");
        assert!(validate_path(&deep).unwrap_err().contains("deeper"));
    }
}

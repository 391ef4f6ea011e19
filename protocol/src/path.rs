//! The one lexical rule set for file paths inside an app: what the model may name, what the
//! Worker's routes accept, and what byte-sandbox writes, reads and deletes.
//!
//! Invariants of a [`RelPath`] (checked on the text alone, before any file system is touched):
//! - relative, `/`-separated, normalised (`.` components and repeated `/` removed), naming a
//!   file (no trailing `/`), at most [`MAX_PATH_BYTES`] bytes and [`MAX_PATH_DEPTH`] components
//!   of at most [`MAX_COMPONENT_BYTES`] bytes each;
//! - no `..` component, no component made only of dots, no absolute path, no drive prefix
//!   (`C:`), no backslash, no NUL or other control character;
//! - components use ASCII letters, digits and [`PATH_PUNCTUATION`] only (nothing a shell or a
//!   URL reads as syntax, no look-alike Unicode), and none starts with `-`;
//! - nothing inside `.git/` or `node_modules/` (compared ignoring ASCII case, as a
//!   case-insensitive file system would).
//!
//! These merge the two rule sets that existed before (byte-sandbox's confinement parser and
//! the Worker's parser for paths the model writes), keeping the stricter rule of each. Whether a
//! valid path stays inside the workspace on disk (symlinks) is byte-sandbox's job.
//!
//! Every [`PathError`] message is a sentence the model or a person can act on; it repeats only
//! parts of the caller's own path.

use std::fmt;

use serde::{Serialize, Serializer};

/// Longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 512;
/// Most path components accepted.
pub const MAX_PATH_DEPTH: usize = 32;
/// Longest single component, in bytes (the usual file-system limit).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Characters allowed in a path component besides ASCII letters and digits. Enough for real
/// front-end trees (`[id].tsx`, `(group)/`, `@scope`, `+page.svelte`, `$slug.tsx`), and nothing
/// a shell or URL would interpret as syntax.
pub const PATH_PUNCTUATION: &str = "._-@+$[]()";

/// A path relative to an app's root that passed every lexical rule, in normal form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(String);

/// A directory no app file may be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReservedDir {
    /// `.git/`: version control belongs to the platform, not to generated code.
    Git,
    /// `node_modules/`: the package manager owns it.
    NodeModules,
}

/// Why a path was refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathError {
    /// Empty, or only `.` and `/`: it names the root directory.
    Empty,
    TooLong,
    Nul,
    ControlCharacter,
    Backslash,
    Absolute,
    DrivePrefix,
    ParentComponent,
    /// A component such as `...`, which some systems treat specially.
    DotsOnly(String),
    ComponentTooLong,
    /// A character outside letters, digits and [`PATH_PUNCTUATION`].
    Character(char),
    /// A component starting with `-`, which a command line would read as an option.
    LeadingDash(String),
    Reserved(ReservedDir),
    /// Ends with `/`: it names a directory, not a file.
    Directory,
    TooDeep,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => {
                f.write_str("path is empty: it names the app's root directory, not a file")
            }
            PathError::TooLong => write!(f, "path is longer than {MAX_PATH_BYTES} bytes"),
            PathError::Nul => f.write_str("path contains a NUL character"),
            PathError::ControlCharacter => f.write_str("path contains a control character"),
            PathError::Backslash => {
                f.write_str("path contains a backslash; use / as the separator")
            }
            PathError::Absolute => {
                f.write_str("path is absolute; use a path relative to the app's root directory")
            }
            PathError::DrivePrefix => f.write_str(
                "path has a drive prefix; use a path relative to the app's root directory",
            ),
            PathError::ParentComponent => f.write_str("path contains a `..` component"),
            PathError::DotsOnly(part) => {
                write!(f, "path component `{part}` is made only of dots")
            }
            PathError::ComponentTooLong => write!(
                f,
                "a path component is longer than {MAX_COMPONENT_BYTES} bytes"
            ),
            PathError::Character(c) => {
                let allowed: Vec<String> = PATH_PUNCTUATION.chars().map(String::from).collect();
                write!(
                    f,
                    "path contains the character {c:?}; use letters, digits and {}",
                    allowed.join(" ")
                )
            }
            PathError::LeadingDash(part) => write!(
                f,
                "path component `{part}` starts with `-` (it would read as a command option)"
            ),
            PathError::Reserved(ReservedDir::Git) => {
                f.write_str("path is inside .git/, which app files must not touch")
            }
            PathError::Reserved(ReservedDir::NodeModules) => {
                f.write_str("path is inside node_modules/, which the package manager owns")
            }
            PathError::Directory => {
                f.write_str("path ends with `/`: it names a directory, not a file")
            }
            PathError::TooDeep => {
                write!(f, "path is nested deeper than {MAX_PATH_DEPTH} directories")
            }
        }
    }
}

impl std::error::Error for PathError {}

impl RelPath {
    /// Checks `raw` against every rule and returns its normal form.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        if raw.is_empty() {
            return Err(PathError::Empty);
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        if raw.contains('\0') {
            return Err(PathError::Nul);
        }
        if raw.chars().any(char::is_control) {
            return Err(PathError::ControlCharacter);
        }
        if raw.contains('\\') {
            return Err(PathError::Backslash);
        }
        if raw.starts_with('/') {
            return Err(PathError::Absolute);
        }
        let b = raw.as_bytes();
        if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
            return Err(PathError::DrivePrefix);
        }
        let mut parts: Vec<&str> = Vec::new();
        for part in raw.split('/') {
            if part.is_empty() || part == "." {
                continue;
            }
            if part == ".." {
                return Err(PathError::ParentComponent);
            }
            if part.bytes().all(|c| c == b'.') {
                return Err(PathError::DotsOnly(part.to_string()));
            }
            if part.len() > MAX_COMPONENT_BYTES {
                return Err(PathError::ComponentTooLong);
            }
            if let Some(c) = part
                .chars()
                .find(|c| !c.is_ascii_alphanumeric() && !PATH_PUNCTUATION.contains(*c))
            {
                return Err(PathError::Character(c));
            }
            if part.starts_with('-') {
                return Err(PathError::LeadingDash(part.to_string()));
            }
            if part.eq_ignore_ascii_case(".git") {
                return Err(PathError::Reserved(ReservedDir::Git));
            }
            if part.eq_ignore_ascii_case("node_modules") {
                return Err(PathError::Reserved(ReservedDir::NodeModules));
            }
            parts.push(part);
        }
        if parts.is_empty() {
            return Err(PathError::Empty);
        }
        if raw.ends_with('/') {
            return Err(PathError::Directory);
        }
        if parts.len() > MAX_PATH_DEPTH {
            return Err(PathError::TooDeep);
        }
        Ok(RelPath(parts.join("/")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The first component (`src` for `src/App.tsx`).
    pub fn first_component(&self) -> &str {
        self.0.split('/').next().unwrap_or("")
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RelPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<RelPath> for String {
    fn from(p: RelPath) -> String {
        p.0
    }
}

impl TryFrom<&str> for RelPath {
    type Error = PathError;

    fn try_from(raw: &str) -> Result<Self, PathError> {
        RelPath::parse(raw)
    }
}

/// Serialized as its normal-form string (a request built from a `RelPath` is always valid).
impl Serialize for RelPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathError::*;

    fn err(raw: &str) -> PathError {
        RelPath::parse(raw).expect_err(raw)
    }

    fn ok(raw: &str) -> String {
        RelPath::parse(raw)
            .unwrap_or_else(|e| panic!("{raw:?}: {e}"))
            .into_string()
    }

    // --- the cases of byte-sandbox's former `paths::RelPath` suite ---

    #[test]
    fn sandbox_lexical_rules() {
        let cases: &[(&str, PathError)] = &[
            ("", Empty),
            (".", Empty),
            ("./", Empty),
            ("/etc/passwd", Absolute),
            ("/", Absolute),
            ("..", ParentComponent),
            ("../x", ParentComponent),
            ("src/../../x", ParentComponent),
            ("src/..", ParentComponent),
            ("a/b/../c", ParentComponent),
            ("src\\App.tsx", Backslash),
            ("..\\..\\x", Backslash),
            ("a\0b", Nul),
            ("C:/Windows", DrivePrefix),
            ("c:foo", DrivePrefix),
            ("a\nb", ControlCharacter),
            ("a\x1bb", ControlCharacter),
        ];
        for (input, want) in cases {
            assert_eq!(err(input), *want, "{input:?}");
        }
        assert_eq!(err(&"a/".repeat(257)), TooLong);
        assert_eq!(err(&"a".repeat(256)), ComponentTooLong);
        assert_eq!(ok(&"a".repeat(255)), "a".repeat(255));
        assert!(RelPath::parse(&format!("{}/b", "a".repeat(254))).is_ok());
    }

    #[test]
    fn sandbox_normalisation() {
        assert_eq!(ok("./src//App.tsx"), "src/App.tsx");
        assert_eq!(ok("src/./a"), "src/a");
        assert_eq!(
            ok("..foo/bar.."),
            "..foo/bar..",
            "dots inside names are fine"
        );
        assert_eq!(
            RelPath::parse("src/App.tsx").unwrap().first_component(),
            "src"
        );
        // Stricter than byte-sandbox used to be: the Worker's rules refuse a trailing `/` (it
        // names a directory) and a `:` anywhere (not only as a drive prefix).
        assert_eq!(err("src/./a/"), Directory);
        assert_eq!(err("ab:c"), Character(':'));
    }

    /// Every traversal attempt byte-sandbox's API test sends.
    #[test]
    fn sandbox_api_traversal_attempts() {
        for bad in [
            "../evil.txt",
            "../../evil.txt",
            "src/../../evil.txt",
            "/etc/evil.txt",
            "/tmp/evil.txt",
            "..\\evil.txt",
            "src\\..\\..\\evil.txt",
            "C:/evil.txt",
            "c:evil.txt",
            "evil\u{0}.txt",
            "",
            "..",
        ] {
            assert!(RelPath::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(err(&("a/".repeat(300) + "x")), TooLong);
        // Lexically fine; refused on disk when `escape` is a symlink leaving the workspace.
        assert_eq!(ok("escape/evil.txt"), "escape/evil.txt");
    }

    // --- the cases of the Worker's former `files_format::validate_path` suite ---

    #[test]
    fn worker_accepts_and_normalises() {
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
            assert_eq!(ok(raw), want, "{raw}");
        }
        let deep = vec!["d"; MAX_PATH_DEPTH].join("/");
        assert!(RelPath::parse(&deep).is_ok());
        assert!(RelPath::parse(&"a".repeat(255)).is_ok());
    }

    /// The messages keep saying what the Worker's messages said (its tests look for these
    /// words), so a model that learnt from them is not confused.
    #[test]
    fn worker_refuses_with_reasons() {
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
            let e = err(raw).to_string();
            assert!(e.contains(why), "{raw:?}: {e}");
        }
        assert!(err(&"a".repeat(MAX_PATH_BYTES + 1))
            .to_string()
            .contains("512"));
        assert!(err(&"a".repeat(256)).to_string().contains("255"));
        let deep = vec!["d"; MAX_PATH_DEPTH + 1].join("/");
        assert!(err(&deep).to_string().contains("deeper"));
    }

    // --- beyond both former suites ---

    #[test]
    fn which_rule_wins_when_several_apply() {
        // Control characters are named before anything else in the text...
        assert_eq!(err("/a\nb"), ControlCharacter);
        assert_eq!(err("a\\b\u{1}"), ControlCharacter);
        // ...and components are judged in order.
        assert_eq!(err("../node_modules/x"), ParentComponent);
        assert_eq!(err("node_modules/../x"), Reserved(ReservedDir::NodeModules));
        assert_eq!(err("a b/../x"), Character(' '));
        // A reserved directory is refused even as the last component.
        assert_eq!(err("node_modules"), Reserved(ReservedDir::NodeModules));
        assert_eq!(err(".git"), Reserved(ReservedDir::Git));
    }

    #[test]
    fn look_alikes_and_encodings_are_refused() {
        for (raw, c) in [
            ("a\u{2215}b", '\u{2215}'),         // division slash
            ("a\u{ff0f}b", '\u{ff0f}'),         // fullwidth solidus
            ("\u{ff0e}\u{ff0e}/x", '\u{ff0e}'), // fullwidth full stops
            ("a\u{200b}b", '\u{200b}'),         // zero-width space
            ("%2e%2e/x", '%'),
            ("a?b", '?'),
            ("a#b", '#'),
            ("a&b", '&'),
            ("a=b", '='),
            ("a,b", ','),
        ] {
            assert_eq!(err(raw), Character(c), "{raw:?}");
        }
        assert_eq!(err("a\u{85}b"), ControlCharacter, "C1 controls too");
    }

    #[test]
    fn bounds_are_inclusive() {
        let exactly = format!("{}/{}", "a".repeat(255), "b".repeat(255));
        assert_eq!(exactly.len(), 511);
        assert!(RelPath::parse(&exactly).is_ok());
        let at_limit = format!("{}/{}", "a".repeat(255), "b".repeat(256));
        assert_eq!(at_limit.len(), 512);
        assert_eq!(err(&at_limit), ComponentTooLong);
        // The byte limit counts the raw text, before `./` and `//` are removed.
        let padded = format!("{}{}", "./".repeat(200), "a".repeat(113));
        assert_eq!(padded.len(), 513);
        assert_eq!(err(&padded), TooLong);
        // Depth counts real components only.
        let dotted = format!("{}{}", "./".repeat(40), vec!["d"; MAX_PATH_DEPTH].join("/"));
        assert!(RelPath::parse(&dotted).is_ok());
    }

    #[test]
    fn normal_form_is_a_fixed_point() {
        for raw in ["./a//b/./c.ts", "a", ".env", "x/[y]/(z).tsx"] {
            let once = ok(raw);
            assert_eq!(ok(&once), once, "{raw}");
        }
    }

    #[test]
    fn serializes_as_its_string() {
        let p = RelPath::parse("./src//a.ts").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), r#""src/a.ts""#);
        assert_eq!(String::from(p.clone()), "src/a.ts");
        assert_eq!(RelPath::try_from("src/a.ts").unwrap(), p);
        assert_eq!(p.as_ref(), "src/a.ts");
    }
}

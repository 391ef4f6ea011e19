//! Identifiers and path confinement on disk: the security core of the agent.
//!
//! Invariants kept here:
//! - a [`WorkspaceId`] is `[a-z0-9-]{1,64}`, so it is always one safe directory name;
//! - a [`RelPath`] passed the platform's one set of lexical path rules
//!   ([`byte_protocol::path`], shared with the Worker): relative, normalised, no `..`, NUL,
//!   backslash, drive prefix, control character or shell syntax, bounded in length and depth;
//! - [`resolve`] only returns a path whose deepest existing ancestor, with every symlink
//!   resolved, lies inside the canonical workspace root, and whose final component is not a
//!   symlink. Callers then write with temp-file + rename and read with `O_NOFOLLOW`, so the
//!   final component is never followed either.

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

pub use byte_protocol::path::{PathError as LexicalError, RelPath};

/// A validated workspace id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspaceId(String);

impl WorkspaceId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(WorkspaceId(s.to_string()))
        } else {
            Err(format!(
                "invalid workspace id `{}`: use 1-64 characters from a-z, 0-9 and -",
                truncate(s, 80)
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a path was refused: by the lexical rules, or by what is on disk. The message names the
/// caller's own path only, never where a symlink points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// Refused on its text alone (see [`byte_protocol::path`]).
    Lexical(LexicalError),
    /// An existing ancestor resolves (through symlinks) outside the workspace.
    Escapes,
    /// The final component is a symlink.
    Symlink,
    /// An ancestor exists but is not a directory.
    NotADirectory,
    /// The target exists and is a directory.
    IsADirectory,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Lexical(e) => e.fmt(f),
            PathError::Escapes => f.write_str("path resolves outside the workspace"),
            PathError::Symlink => f.write_str("path is a symbolic link"),
            PathError::NotADirectory => f.write_str("a parent of the path is not a directory"),
            PathError::IsADirectory => f.write_str("path is a directory"),
        }
    }
}

impl std::error::Error for PathError {}

impl From<LexicalError> for PathError {
    fn from(e: LexicalError) -> Self {
        PathError::Lexical(e)
    }
}

/// Resolves `rel` under `root` (which must already be canonical) for reading, writing or
/// deleting, refusing anything that would leave the workspace. The returned path is built
/// from the canonical deepest existing ancestor plus the components that do not exist yet,
/// so no symlink remains in its directory part. I/O errors other than "not found" while
/// inspecting ancestors are returned as `Err(Ok(io))`-style via [`ResolveError::Io`].
pub fn resolve(root: &Path, rel: &RelPath) -> Result<PathBuf, ResolveError> {
    let target = root.join(rel.as_str());
    // The final component: never a symlink (we would not follow it, and replacing a link the
    // caller cannot see is surprising), never a directory.
    match std::fs::symlink_metadata(&target) {
        Ok(m) if m.file_type().is_symlink() => return Err(PathError::Symlink.into()),
        Ok(m) if m.is_dir() => return Err(PathError::IsADirectory.into()),
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) if is_not_dir(&e) => return Err(PathError::NotADirectory.into()),
        Err(e) => return Err(ResolveError::Io(e)),
    }
    // A `RelPath` has at least one component, so both exist.
    let Some(parent) = target.parent() else {
        return Err(PathError::Lexical(LexicalError::Empty).into());
    };
    let file_name = target
        .file_name()
        .ok_or(PathError::Lexical(LexicalError::Empty))?
        .to_owned();

    // Walk up to the deepest ancestor that exists (as a directory entry, possibly a symlink).
    let mut existing = parent.to_path_buf();
    let mut missing: Vec<std::ffi::OsString> = Vec::new();
    loop {
        match std::fs::symlink_metadata(&existing) {
            Ok(_) => break,
            Err(e) if is_not_found(&e) => {
                let name = existing.file_name().ok_or(PathError::Escapes)?.to_owned();
                missing.push(name);
                if !existing.pop() || !existing.starts_with(root) {
                    // Only possible if the root itself vanished.
                    return Err(ResolveError::Io(e));
                }
            }
            Err(e) if is_not_dir(&e) => return Err(PathError::NotADirectory.into()),
            Err(e) => return Err(ResolveError::Io(e)),
        }
    }
    let canonical = match std::fs::canonicalize(&existing) {
        Ok(c) => c,
        // A dangling symlink on the way: it points nowhere we can check, so refuse it.
        Err(e) if is_not_found(&e) => return Err(PathError::Escapes.into()),
        Err(e) if is_not_dir(&e) => return Err(PathError::NotADirectory.into()),
        Err(e) => return Err(ResolveError::Io(e)),
    };
    if !canonical.starts_with(root) {
        return Err(PathError::Escapes.into());
    }
    if !canonical.is_dir() {
        return Err(PathError::NotADirectory.into());
    }
    let mut resolved = canonical;
    for name in missing.into_iter().rev() {
        resolved.push(name);
    }
    resolved.push(file_name);
    debug_assert!(resolved
        .components()
        .all(|c| !matches!(c, Component::ParentDir)));
    Ok(resolved)
}

/// Resolves an existing directory `rel` under the canonical `root` (for listing a build's
/// output). `Ok(None)` when it does not exist; a symlink or anything resolving outside is refused.
pub fn resolve_existing_dir(root: &Path, rel: &RelPath) -> Result<Option<PathBuf>, ResolveError> {
    let target = root.join(rel.as_str());
    match std::fs::symlink_metadata(&target) {
        Ok(m) if m.file_type().is_symlink() => return Err(PathError::Symlink.into()),
        Ok(m) if !m.is_dir() => return Err(PathError::NotADirectory.into()),
        Ok(_) => {}
        Err(e) if is_not_found(&e) || is_not_dir(&e) => return Ok(None),
        Err(e) => return Err(ResolveError::Io(e)),
    }
    let canonical = std::fs::canonicalize(&target).map_err(ResolveError::Io)?;
    if !canonical.starts_with(root) {
        return Err(PathError::Escapes.into());
    }
    Ok(Some(canonical))
}

#[derive(Debug)]
pub enum ResolveError {
    Path(PathError),
    Io(io::Error),
}

impl From<PathError> for ResolveError {
    fn from(e: PathError) -> Self {
        ResolveError::Path(e)
    }
}

fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

fn is_not_dir(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTDIR)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Turns a canonical path inside `root` back into a `/`-separated relative string.
pub fn relative_to(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = rel
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn workspace_ids() {
        for ok in ["a", "app-1", "0", &"a".repeat(64)] {
            assert!(WorkspaceId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a_b",
            "a.b",
            "..",
            "a/b",
            "a b",
            &"a".repeat(65),
            "é",
            "a\0",
        ] {
            assert!(WorkspaceId::parse(bad).is_err(), "{bad:?}");
        }
    }

    // The lexical rules (and the cases this suite used to hold for them) are tested in
    // `byte_protocol::path`; here only that the agent refuses on them.
    #[test]
    fn lexical_refusals_come_from_the_shared_rules() {
        assert_eq!(
            RelPath::parse("../x").unwrap_err(),
            LexicalError::ParentComponent
        );
        assert_eq!(
            PathError::from(LexicalError::Backslash).to_string(),
            LexicalError::Backslash.to_string()
        );
        assert_eq!(
            RelPath::parse("./src//App.tsx").unwrap().as_str(),
            "src/App.tsx"
        );
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("ws");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), "secret").unwrap();
        std::fs::write(root.join("src/App.tsx"), "x").unwrap();
        Fixture {
            _dir: dir,
            root,
            outside,
        }
    }

    fn res(f: &Fixture, p: &str) -> Result<PathBuf, PathError> {
        match resolve(&f.root, &RelPath::parse(p).unwrap()) {
            Ok(p) => Ok(p),
            Err(ResolveError::Path(e)) => Err(e),
            Err(ResolveError::Io(e)) => panic!("io error for {p}: {e}"),
        }
    }

    #[test]
    fn resolves_inside() {
        let f = fixture();
        assert_eq!(res(&f, "src/App.tsx").unwrap(), f.root.join("src/App.tsx"));
        assert_eq!(
            res(&f, "new/deep/file.txt").unwrap(),
            f.root.join("new/deep/file.txt")
        );
        assert_eq!(res(&f, "top.txt").unwrap(), f.root.join("top.txt"));
    }

    #[test]
    fn symlinked_directory_escaping_is_refused() {
        let f = fixture();
        symlink(&f.outside, f.root.join("link")).unwrap();
        assert_eq!(res(&f, "link/secret.txt").unwrap_err(), PathError::Escapes);
        assert_eq!(res(&f, "link/new.txt").unwrap_err(), PathError::Escapes);
        assert_eq!(res(&f, "link/a/b/c.txt").unwrap_err(), PathError::Escapes);
        // A relative symlink that climbs out.
        symlink("../../outside", f.root.join("src/up")).unwrap();
        assert_eq!(res(&f, "src/up/x.txt").unwrap_err(), PathError::Escapes);
    }

    #[test]
    fn symlink_inside_the_workspace_is_followed_for_directories() {
        let f = fixture();
        symlink(f.root.join("src"), f.root.join("alias")).unwrap();
        assert_eq!(
            res(&f, "alias/App.tsx").unwrap(),
            f.root.join("src/App.tsx")
        );
    }

    #[test]
    fn final_symlink_is_refused_even_inside() {
        let f = fixture();
        symlink(f.outside.join("secret.txt"), f.root.join("leak.txt")).unwrap();
        assert_eq!(res(&f, "leak.txt").unwrap_err(), PathError::Symlink);
        symlink(f.root.join("src/App.tsx"), f.root.join("inner.txt")).unwrap();
        assert_eq!(res(&f, "inner.txt").unwrap_err(), PathError::Symlink);
        // Dangling symlink as the final component (would create a file outside on open).
        symlink(
            f.outside.join("created-by-attack.txt"),
            f.root.join("dangling.txt"),
        )
        .unwrap();
        assert_eq!(res(&f, "dangling.txt").unwrap_err(), PathError::Symlink);
    }

    #[test]
    fn dangling_symlink_ancestor_is_refused() {
        let f = fixture();
        symlink(f.outside.join("not-yet"), f.root.join("later")).unwrap();
        assert_eq!(res(&f, "later/x.txt").unwrap_err(), PathError::Escapes);
    }

    #[test]
    fn file_as_directory_and_directory_as_file() {
        let f = fixture();
        assert_eq!(
            res(&f, "src/App.tsx/x").unwrap_err(),
            PathError::NotADirectory
        );
        assert_eq!(res(&f, "src").unwrap_err(), PathError::IsADirectory);
    }

    #[test]
    fn existing_directories() {
        let f = fixture();
        let rel = |p: &str| RelPath::parse(p).unwrap();
        let dir = |p: &str| match resolve_existing_dir(&f.root, &rel(p)) {
            Ok(v) => Ok(v),
            Err(ResolveError::Path(e)) => Err(e),
            Err(ResolveError::Io(e)) => panic!("{e}"),
        };
        assert_eq!(dir("src").unwrap(), Some(f.root.join("src")));
        assert_eq!(dir("dist").unwrap(), None);
        assert_eq!(dir("src/App.tsx").unwrap_err(), PathError::NotADirectory);
        symlink(&f.outside, f.root.join("dist")).unwrap();
        assert_eq!(dir("dist").unwrap_err(), PathError::Symlink);
        symlink(&f.outside, f.root.join("out")).unwrap();
        assert_eq!(
            dir("out/sub").unwrap(),
            None,
            "missing below an escaping link"
        );
        std::fs::create_dir(f.outside.join("sub")).unwrap();
        assert_eq!(dir("out/sub").unwrap_err(), PathError::Escapes);
    }

    #[test]
    fn relative_paths_round_trip() {
        let f = fixture();
        let abs = res(&f, "src/App.tsx").unwrap();
        assert_eq!(relative_to(&f.root, &abs).as_deref(), Some("src/App.tsx"));
        assert_eq!(relative_to(&f.root, &f.outside), None);
    }
}

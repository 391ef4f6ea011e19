//! File operations inside one workspace: batch write, read, list, delete.
//!
//! Every path goes through [`crate::paths`] (the shared lexical rules, then confinement on
//! disk); request and reply bodies are [`byte_protocol::files`] types. A batch is validated in full (lexical rules,
//! symlink confinement, content decoding, conflicts inside the batch) before the first byte
//! is written, so one bad path means nothing is written. Each file is written to a temporary
//! name in its directory and renamed over the target, so readers (Vite's watcher, a
//! concurrent GET) never see a half-written file.
//!
//! Jailed processes can change the workspace while the agent works in it (and the agent may
//! run as root), so writes, reads and deletes never trust a path resolved earlier: they walk
//! from the workspace root one component at a time with `O_NOFOLLOW` directory fds
//! (`open_parent`) and act on the last name relative to its directory. A directory swapped
//! for a symlink after validation makes the operation fail instead of following it out.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;

pub use byte_protocol::files::{Encoding, FileContent, FileInput, TreeEntry};

use crate::api_error::{io_kind, ApiError, ApiResult};
use crate::paths::{resolve, PathError, RelPath, ResolveError};

/// Directories the tree listing does not descend into.
pub const SKIPPED_DIRS: &[&str] = &["node_modules", ".git", "dist"];
/// Largest file returned by a read.
pub const MAX_READ_BYTES: u64 = 10 * 1024 * 1024;
/// Most entries a tree listing returns.
pub const MAX_TREE_ENTRIES: usize = 20_000;

/// A write that passed every check.
pub struct ValidWrite {
    pub rel: RelPath,
    root: PathBuf,
    bytes: Vec<u8>,
}

fn path_error(field: &str, path: &str, e: &PathError) -> ApiError {
    ApiError::field(field, format!("`{}`: {e}", shorten(path)))
}

fn resolve_error(field: &str, path: &str, e: ResolveError) -> ApiError {
    match e {
        ResolveError::Path(p) => path_error(field, path, &p),
        ResolveError::Io(io) => ApiError::io("cannot inspect the path", io),
    }
}

fn shorten(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}

/// Parses a path from a request field into a [`RelPath`], as a 400 naming the field.
pub fn parse_rel(field: &str, raw: &str) -> ApiResult<RelPath> {
    RelPath::parse(raw).map_err(|e| path_error(field, raw, &e.into()))
}

/// Checks a whole batch; returns the writes to perform or the first problem found.
pub fn validate_batch(root: &Path, files: Vec<FileInput>) -> ApiResult<Vec<ValidWrite>> {
    if files.is_empty() {
        return Err(ApiError::field(
            "files",
            "`files` must contain at least one file",
        ));
    }
    let mut out = Vec::with_capacity(files.len());
    let mut seen = BTreeSet::new();
    for (i, file) in files.into_iter().enumerate() {
        let field = format!("files[{i}].path");
        let rel = parse_rel(&field, &file.path)?;
        resolve(root, &rel).map_err(|e| resolve_error(&field, &file.path, e))?;
        let bytes = match file.encoding {
            Encoding::Utf8 => file.content.into_bytes(),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(file.content.as_bytes())
                .map_err(|_| {
                    ApiError::field(
                        format!("files[{i}].content"),
                        format!("`{rel}`: content is not valid base64"),
                    )
                })?,
        };
        seen.insert(rel.as_str().to_string());
        out.push(ValidWrite {
            rel,
            root: root.to_path_buf(),
            bytes,
        });
    }
    // `a` and `a/b` in one batch cannot both be files.
    for (i, w) in out.iter().enumerate() {
        let mut prefix = String::new();
        for part in w
            .rel
            .as_str()
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, dirs)| dirs)
            .unwrap_or(&[])
        {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if seen.contains(&prefix) {
                return Err(ApiError::field(
                    format!("files[{i}].path"),
                    format!(
                        "`{}`: `{prefix}` is also written as a file in this batch",
                        w.rel
                    ),
                ));
            }
        }
    }
    Ok(out)
}

impl ValidWrite {
    /// SHA-256 of the bytes this write puts in the file.
    pub fn content_hash(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(&self.bytes).into()
    }
}

/// Performs validated writes, in order, giving new files and directories to `owner` when
/// set (the jail's uid, when the agent is root). Returns the relative paths written.
pub fn write_all(writes: &[ValidWrite], owner: Option<(u32, u32)>) -> ApiResult<Vec<String>> {
    let mut written = Vec::with_capacity(writes.len());
    for w in writes {
        write_atomic(&w.root, &w.rel, &w.bytes, owner)
            .map_err(|e| ApiError::io(&format!("cannot write `{}`", w.rel), e))?;
        written.push(w.rel.as_str().to_string());
    }
    Ok(written)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(io::Error::other)
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

const DIR_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;

/// Opens the directory holding `rel` by walking from `root` one component at a time, never
/// following a symlink; with `create`, missing directories are made (and given to `owner`).
/// Returns the directory and the last component's name.
fn open_parent(
    root: &Path,
    rel: &RelPath,
    create: bool,
    owner: Option<(u32, u32)>,
) -> io::Result<(OwnedFd, CString)> {
    let root = CString::new(root.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: plain syscalls on NUL-terminated strings; each fd is owned at once.
    let mut dir = unsafe { OwnedFd::from_raw_fd(check(libc::open(root.as_ptr(), DIR_FLAGS))?) };
    let parts: Vec<&str> = rel.as_str().split('/').collect();
    let (last, dirs) = parts
        .split_last()
        .ok_or_else(|| io::Error::other("empty path"))?;
    for part in dirs {
        let name = cstr(part)?;
        let mut fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), DIR_FLAGS) };
        if fd < 0 && create && io::Error::last_os_error().kind() == io::ErrorKind::NotFound {
            let made = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) };
            if made < 0 && io::Error::last_os_error().kind() != io::ErrorKind::AlreadyExists {
                return Err(io::Error::last_os_error());
            }
            fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), DIR_FLAGS) };
            if fd >= 0 && made == 0 {
                if let Some((uid, gid)) = owner {
                    check(unsafe { libc::fchown(fd, uid, gid) })?;
                }
            }
        }
        dir = unsafe { OwnedFd::from_raw_fd(check(fd)?) };
    }
    Ok((dir, cstr(last)?))
}

/// Writes `bytes` to a new temporary file next to `rel` and renames it into place.
/// `rename` replaces the directory entry itself, so even a symlink planted at the target after
/// validation is replaced, never followed.
pub fn write_atomic(
    root: &Path,
    rel: &RelPath,
    bytes: &[u8],
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    let (dir, name) = open_parent(root, rel, true, owner)?;
    let tmp = cstr(&format!(
        ".byte-tmp-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ))?;
    // Keep the mode of a file being replaced (an executable script stays executable).
    let mode = {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstatat fills `st` for a name relative to an open directory.
        let r = unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFREG {
            st.st_mode & 0o777
        } else {
            0o644
        }
    };
    // SAFETY: as above; the fd is owned at once.
    let fd = check(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            tmp.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    let result = (|| {
        let mut f = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        if let Some((uid, gid)) = owner {
            check(unsafe { libc::fchown(f.as_raw_fd(), uid, gid) })?;
        }
        f.write_all(bytes)?;
        f.flush()?;
        drop(f);
        check(unsafe {
            libc::renameat(
                dir.as_raw_fd(),
                tmp.as_ptr(),
                dir.as_raw_fd(),
                name.as_ptr(),
            )
        })
        .map(drop)
    })();
    if result.is_err() {
        unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
    }
    result
}

/// Reads a file (UTF-8 as text, anything else as base64).
pub fn read(root: &Path, rel: &RelPath) -> ApiResult<FileContent> {
    resolve(root, rel).map_err(|e| resolve_error("path", rel.as_str(), e))?;
    let opened = open_parent(root, rel, false, None).and_then(|(dir, name)| {
        // SAFETY: openat on a name relative to an open directory; the fd is owned at once.
        let fd = check(unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        })?;
        Ok(fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    });
    let mut f = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ApiError::not_found(format!("no file `{rel}`")))
        }
        Err(e) => return Err(ApiError::io(&format!("cannot read `{rel}`"), e)),
    };
    let meta = f.metadata().map_err(|e| ApiError::io("cannot read", e))?;
    if !meta.is_file() {
        return Err(path_error("path", rel.as_str(), &PathError::IsADirectory));
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(ApiError::validation_status(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "`{rel}` is {} bytes; reads are limited to {MAX_READ_BYTES}",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut bytes)
        .map_err(|e| ApiError::io(&format!("cannot read `{rel}`"), e))?;
    let size = bytes.len() as u64;
    let (content, encoding) = match String::from_utf8(bytes) {
        Ok(text) => (text, Encoding::Utf8),
        Err(e) => (
            base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
            Encoding::Base64,
        ),
    };
    Ok(FileContent {
        path: rel.as_str().to_string(),
        content,
        encoding,
        size,
    })
}

/// Deletes one file (not a directory). `Err(not found)` when absent.
/// Sets the file's modification time to now (never following a symlink, walking from the
/// root like every other operation), so file watchers see it change again.
pub fn touch(root: &Path, rel: &RelPath) -> io::Result<()> {
    let (dir, name) = open_parent(root, rel, false, None)?;
    // SAFETY: a NUL-terminated name relative to an open directory; NULL times mean "now".
    check(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            std::ptr::null(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

pub fn delete(root: &Path, rel: &RelPath) -> ApiResult<()> {
    resolve(root, rel).map_err(|e| resolve_error("path", rel.as_str(), e))?;
    let removed = open_parent(root, rel, false, None).and_then(|(dir, name)| {
        // SAFETY: unlinkat (files only, never directories) relative to an open directory.
        check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }).map(drop)
    });
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(ApiError::not_found(format!("no file `{rel}`")))
        }
        Err(e) => Err(ApiError::internal(format!(
            "cannot delete `{rel}`: {}",
            io_kind(&e)
        ))),
    }
}

/// Lists regular files under `root` recursively, sorted, skipping [`SKIPPED_DIRS`] and
/// symlinks (never followed). Returns the entries and whether the listing was cut short.
pub fn tree(root: &Path) -> io::Result<(Vec<TreeEntry>, bool)> {
    // Each directory is held open (`O_NOFOLLOW`) and listed through its fd, so a directory
    // swapped for a symlink while we walk is skipped, never listed.
    let root_c = CString::new(root.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: open on a NUL-terminated path; the fd is owned at once.
    let root_fd = unsafe { OwnedFd::from_raw_fd(check(libc::open(root_c.as_ptr(), DIR_FLAGS))?) };
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), root_fd)];
    let mut truncated = false;
    while let Some((prefix, dir)) = stack.pop() {
        let entries = match fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) {
            Ok(e) => e,
            Err(e) if !prefix.is_empty() && e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let ft = entry.file_type()?;
            let name = entry.file_name();
            let Some(name_str) = name.to_str() else {
                continue;
            };
            let rel = if prefix.is_empty() {
                name_str.to_string()
            } else {
                format!("{prefix}/{name_str}")
            };
            if ft.is_dir() {
                if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                    let c = cstr(name_str)?;
                    // SAFETY: openat relative to an open directory; owned at once.
                    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), DIR_FLAGS) };
                    if fd >= 0 {
                        stack.push((rel, unsafe { OwnedFd::from_raw_fd(fd) }));
                    }
                }
            } else if ft.is_file() {
                if name_str.starts_with(".byte-tmp-") {
                    continue;
                }
                if out.len() >= MAX_TREE_ENTRIES {
                    truncated = true;
                    break;
                }
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                out.push(TreeEntry { path: rel, size });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::os::unix::fs::PermissionsExt;

    fn input(path: &str, content: &str) -> FileInput {
        FileInput {
            path: path.into(),
            content: content.into(),
            encoding: Encoding::Utf8,
        }
    }

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("ws");
        let outside = base.join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        (dir, root, outside)
    }

    fn all_files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = tree(dir).unwrap().0.into_iter().map(|e| e.path).collect();
        v.sort();
        v
    }

    #[test]
    fn batch_write_read_tree_delete() {
        let (_d, root, _) = setup();
        let writes = validate_batch(
            &root,
            vec![
                input("src/App.tsx", "export default 1\n"),
                input("./README.md", "# hi"),
                FileInput {
                    path: "public/x.bin".into(),
                    content: "AP8A".into(),
                    encoding: Encoding::Base64,
                },
            ],
        )
        .unwrap();
        assert_eq!(
            write_all(&writes, None).unwrap(),
            vec!["src/App.tsx", "README.md", "public/x.bin"]
        );
        let got = read(&root, &RelPath::parse("src/App.tsx").unwrap()).unwrap();
        assert_eq!(
            (got.content.as_str(), got.encoding, got.size),
            ("export default 1\n", Encoding::Utf8, 17)
        );
        let bin = read(&root, &RelPath::parse("public/x.bin").unwrap()).unwrap();
        assert_eq!(
            (bin.content.as_str(), bin.encoding, bin.size),
            ("AP8A", Encoding::Base64, 3)
        );

        fs::create_dir_all(root.join("node_modules/x")).unwrap();
        fs::write(root.join("node_modules/x/i.js"), "").unwrap();
        fs::create_dir_all(root.join("dist")).unwrap();
        fs::write(root.join("dist/a.js"), "").unwrap();
        assert_eq!(
            all_files(&root),
            vec!["README.md", "public/x.bin", "src/App.tsx"]
        );

        delete(&root, &RelPath::parse("README.md").unwrap()).unwrap();
        let err = delete(&root, &RelPath::parse("README.md").unwrap()).unwrap_err();
        assert_eq!(err.code, "E002");
        assert_eq!(
            read(&root, &RelPath::parse("nope.txt").unwrap())
                .unwrap_err()
                .code,
            "E002"
        );
    }

    #[test]
    fn one_bad_path_writes_nothing() {
        let (_d, root, outside) = setup();
        symlink(&outside, root.join("escape")).unwrap();
        for bad in [
            "../evil.txt",
            "/etc/evil",
            "a\\b",
            "a\0b",
            "C:/x",
            "escape/evil.txt",
            "",
            &"x/".repeat(300),
        ] {
            let err = validate_batch(&root, vec![input("ok.txt", "fine"), input(bad, "evil")])
                .err()
                .unwrap();
            assert_eq!((err.status.as_u16(), err.code), (400, "E004"), "{bad:?}");
            assert!(
                err.fields.contains_key("files[1].path"),
                "{bad:?}: {:?}",
                err.fields
            );
        }
        assert!(!root.join("ok.txt").exists(), "nothing written");
        assert!(
            fs::read_dir(&outside).unwrap().next().is_none(),
            "nothing outside"
        );
    }

    #[test]
    fn bad_base64_and_conflicts_are_refused() {
        let (_d, root, _) = setup();
        let err = validate_batch(
            &root,
            vec![FileInput {
                path: "a.bin".into(),
                content: "not base64!".into(),
                encoding: Encoding::Base64,
            }],
        )
        .err()
        .unwrap();
        assert!(err.fields.contains_key("files[0].content"));
        let err = validate_batch(&root, vec![input("a", "x"), input("a/b", "y")])
            .err()
            .unwrap();
        assert_eq!(err.code, "E004");
        assert!(validate_batch(&root, vec![]).is_err());
    }

    #[test]
    fn symlink_targets_are_never_followed() {
        let (_d, root, outside) = setup();
        fs::write(outside.join("secret.txt"), "secret").unwrap();
        symlink(outside.join("secret.txt"), root.join("leak.txt")).unwrap();
        let err = read(&root, &RelPath::parse("leak.txt").unwrap()).unwrap_err();
        assert_eq!(err.code, "E004");
        assert!(
            !err.message.contains(outside.to_str().unwrap()),
            "no host path in {}",
            err.message
        );
        assert!(validate_batch(&root, vec![input("leak.txt", "overwrite")]).is_err());
        assert!(delete(&root, &RelPath::parse("leak.txt").unwrap()).is_err());
        assert_eq!(
            fs::read_to_string(outside.join("secret.txt")).unwrap(),
            "secret"
        );
        // The listing does not follow links either.
        symlink(&outside, root.join("dir-link")).unwrap();
        assert!(all_files(&root).is_empty());
    }

    #[test]
    fn atomic_write_replaces_a_symlink_planted_after_validation() {
        let (_d, root, outside) = setup();
        let writes = validate_batch(&root, vec![input("race.txt", "mine")]).unwrap();
        // Attacker swaps in a symlink between validation and write.
        symlink(outside.join("victim.txt"), root.join("race.txt")).unwrap();
        write_all(&writes, None).unwrap();
        assert!(
            !outside.join("victim.txt").exists(),
            "the link was replaced, not followed"
        );
        assert_eq!(fs::read_to_string(root.join("race.txt")).unwrap(), "mine");
        assert!(!fs::symlink_metadata(root.join("race.txt"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_directory_swapped_for_a_symlink_after_validation_is_never_followed() {
        let (_d, root, outside) = setup();
        fs::create_dir_all(root.join("src")).unwrap();
        fs::write(outside.join("victim.txt"), "host").unwrap();
        let writes = validate_batch(&root, vec![input("src/victim.txt", "mine")]).unwrap();
        let rel = parse_rel("path", "src/victim.txt").unwrap();
        // A jailed process swaps `src` for a link to a host directory after the checks.
        fs::remove_dir(root.join("src")).unwrap();
        symlink(&outside, root.join("src")).unwrap();
        assert!(write_all(&writes, None).is_err());
        assert_eq!(
            fs::read_to_string(outside.join("victim.txt")).unwrap(),
            "host"
        );
        let raw = crate::paths::RelPath::parse("src/victim.txt").unwrap();
        assert!(open_parent(&root, &raw, false, None).is_err());
        // Read and delete check the path first (refused here); the walk refuses it too.
        assert!(read(&root, &rel).is_err());
        assert!(delete(&root, &rel).is_err());
        assert!(outside.join("victim.txt").exists());
    }

    #[test]
    fn overwrite_keeps_mode_and_leaves_no_temp_files() {
        let (_d, root, _) = setup();
        fs::write(root.join("run.sh"), "old").unwrap();
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        write_all(
            &validate_batch(&root, vec![input("run.sh", "new")]).unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(
            fs::metadata(root.join("run.sh"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        let names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("run.sh")]);
    }

    #[test]
    fn directories_are_not_files() {
        let (_d, root, _) = setup();
        fs::create_dir_all(root.join("src")).unwrap();
        assert_eq!(
            read(&root, &RelPath::parse("src").unwrap())
                .unwrap_err()
                .code,
            "E004"
        );
        assert_eq!(
            delete(&root, &RelPath::parse("src").unwrap())
                .unwrap_err()
                .code,
            "E004"
        );
        assert!(validate_batch(&root, vec![input("src", "x")]).is_err());
    }
}

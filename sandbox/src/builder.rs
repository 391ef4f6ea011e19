//! Collecting a production build's output tree (by default `dist/`) for deployment: every
//! regular file, base64-encoded, with a cap on the total size so a runaway build cannot
//! produce a response the Worker cannot hold.

use std::fs;
use std::io;
use std::path::Path;

use base64::Engine;

pub use byte_protocol::files::OutputFile;

use crate::paths::{relative_to, resolve_existing_dir, PathError, RelPath, ResolveError};

pub const DEFAULT_BUILD_COMMAND: &str = "npm run build";
pub const DEFAULT_OUTPUT_DIR: &str = "dist";

#[derive(Debug)]
pub enum CollectError {
    /// The output directory does not exist after the build.
    Missing,
    TooLarge {
        total: u64,
        cap: u64,
    },
    Path(PathError),
    Io(io::Error),
}

impl From<ResolveError> for CollectError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Path(p) => CollectError::Path(p),
            ResolveError::Io(io) => CollectError::Io(io),
        }
    }
}

impl From<io::Error> for CollectError {
    fn from(e: io::Error) -> Self {
        CollectError::Io(e)
    }
}

/// Lists and reads every regular file under `out_dir` (symlinks skipped, never followed),
/// sorted by path. Sizes are summed before anything is read, so an oversized tree fails fast.
pub fn collect(root: &Path, out_dir: &RelPath, cap: u64) -> Result<Vec<OutputFile>, CollectError> {
    let dir = resolve_existing_dir(root, out_dir)?.ok_or(CollectError::Missing)?;
    let mut found = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                let size = entry.metadata()?.len();
                total += size;
                if total > cap {
                    // Keep counting for an exact figure in the error.
                    continue;
                }
                found.push((entry.path(), size));
            }
        }
    }
    if total > cap {
        return Err(CollectError::TooLarge { total, cap });
    }
    let mut out = Vec::with_capacity(found.len());
    let mut read_total = 0u64;
    for (path, _) in found {
        let Some(bytes) = read_confined(root, &path, cap)? else {
            continue;
        };
        // Files may have grown since they were listed.
        read_total += bytes.len() as u64;
        if read_total > cap {
            return Err(CollectError::TooLarge {
                total: read_total,
                cap,
            });
        }
        let Some(rel) = relative_to(root, &path) else {
            continue;
        };
        out.push(OutputFile {
            path: rel,
            size: bytes.len() as u64,
            content: base64::engine::general_purpose::STANDARD.encode(&bytes),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Reads a regular file that is still inside `root` once opened: a jailed process (the dev
/// server may still run) can swap a listed file or a directory above it for a symlink, so the
/// open never follows the last component, and the path the kernel reports for the open file
/// must lie under `root` (canonical). `None` for anything else.
fn read_confined(root: &Path, path: &Path, cap: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(_) => return Ok(None),
    };
    let real = fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd()))?;
    if !real.starts_with(root) || !f.metadata()?.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    f.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn collects_sorted_files_and_skips_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("dist/assets")).unwrap();
        fs::write(root.join("dist/index.html"), "<html>").unwrap();
        fs::write(root.join("dist/assets/a.js"), "x").unwrap();
        fs::write(root.join("secret"), "s").unwrap();
        symlink(root.join("secret"), root.join("dist/link")).unwrap();
        let files = collect(&root, &RelPath::parse("dist").unwrap(), 1000).unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["dist/assets/a.js", "dist/index.html"]);
        assert_eq!(files[1].content, "PGh0bWw+");
        assert_eq!(files[1].size, 6);
    }

    #[test]
    fn a_directory_swapped_for_a_symlink_after_listing_is_not_read_through() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("ws");
        fs::create_dir_all(root.join("dist")).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(base.join("outside/secret"), "host secret").unwrap();
        // As if `dist/assets` was listed as a directory, then replaced by a link.
        symlink(base.join("outside"), root.join("dist/assets")).unwrap();
        assert_eq!(
            read_confined(&root, &root.join("dist/assets/secret"), 100).unwrap(),
            None
        );
        fs::write(root.join("dist/ok"), "fine").unwrap();
        assert_eq!(
            read_confined(&root, &root.join("dist/ok"), 100).unwrap(),
            Some(b"fine".to_vec())
        );
    }

    #[test]
    fn missing_and_oversized() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        assert!(matches!(
            collect(&root, &RelPath::parse("dist").unwrap(), 10),
            Err(CollectError::Missing)
        ));
        fs::create_dir_all(root.join("dist")).unwrap();
        fs::write(root.join("dist/a"), vec![0u8; 8]).unwrap();
        fs::write(root.join("dist/b"), vec![0u8; 8]).unwrap();
        match collect(&root, &RelPath::parse("dist").unwrap(), 10) {
            Err(CollectError::TooLarge { total, cap }) => assert_eq!((total, cap), (16, 10)),
            other => panic!("{other:?}"),
        }
    }
}

//! Prepared dependencies: each template's `node_modules`, installed once per template and
//! lockfile and hard-linked into every workspace made from it.
//!
//! A store is `SANDBOX_DEPS_DIR/<template>-<key>/node_modules`, where `key` is the SHA-256 of
//! the template's `package.json` and `package-lock.json`: a template whose manifest or
//! lockfile changed gets a new store (and its older stores are removed), so a prepared tree
//! always matches its template. It is installed by `npm ci` in the jail, in a staging
//! directory renamed into place when complete (two agents preparing at once both finish; one
//! rename wins).
//!
//! Invariants:
//! - A store's files are read-only and owned by the agent, not by the uid jailed processes
//!   run as: a workspace's hard links share the store's inodes, so no jailed process can
//!   change a byte another workspace sees (it can only unlink its own names, which is what
//!   `npm install` does when it replaces a package). When jailed processes would run as the
//!   store's owner (the agent is not root and the store is its own), files are copied instead.
//! - Directories are never shared: each workspace gets its own, owned by the jail's uid, so
//!   npm can add, remove and replace packages in its own tree. npm's hidden lockfile
//!   (`node_modules/.package-lock.json`), which it rewrites in place, is copied.
//! - A dependency install (`npm install`/`npm ci` with no package names, see
//!   [`is_dependency_install`]) in a workspace whose `package.json` and lockfile are still
//!   those of the store its `node_modules` came from, with no command run since, has nothing
//!   to do and is answered without running npm; any other install runs npm, which finds the
//!   template's tree in place and installs only the difference.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::exec::{self, ExecRequest, ProcessGroups};
use crate::jail::{chown_tree, Jail};

/// The command that prepares a store (in the jail, in its staging directory): the same
/// install a workspace runs, so the tree is the one it would have installed itself.
const PREPARE_COMMAND: &str = "npm install --prefer-offline --no-audit --no-fund";
const PREPARE_TIMEOUT: Duration = Duration::from_secs(900);
/// Flags a dependency install may carry and still mean "install what package.json says".
const INSTALL_FLAGS: &[&str] = &[
    "--prefer-offline",
    "--no-audit",
    "--no-fund",
    "--no-progress",
    "--silent",
    "--quiet",
];
/// npm's hidden lockfile: rewritten in place by npm, so never shared.
const HIDDEN_LOCKFILE: &str = ".package-lock.json";

/// True for a bare dependency install: `npm install`, `npm i` or `npm ci`, with only
/// [`INSTALL_FLAGS`] (no package names, no other options).
pub fn is_dependency_install(command: &str) -> bool {
    let mut words = command.split_whitespace();
    words.next() == Some("npm")
        && matches!(words.next(), Some("install" | "i" | "ci"))
        && words.all(|w| INSTALL_FLAGS.contains(&w))
}

/// The key of a manifest and lockfile pair.
pub fn key_of(package_json: &[u8], lockfile: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update((package_json.len() as u64).to_le_bytes());
    h.update(package_json);
    h.update(lockfile);
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The key of the manifest and lockfile in `dir`, if both are there.
pub fn key_of_dir(dir: &Path) -> Option<String> {
    let manifest = std::fs::read(dir.join("package.json")).ok()?;
    let lock = std::fs::read(dir.join("package-lock.json")).ok()?;
    Some(key_of(&manifest, &lock))
}

/// A prepared store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The key of the manifest and of the lockfile as the install left them (npm may
    /// complete the template's lockfile): what a workspace holds after linking.
    pub key: String,
    /// `…/<template>-<key>/node_modules`.
    pub node_modules: PathBuf,
    /// `…/<template>-<key>/package-lock.json`, as the install left it.
    pub lockfile: PathBuf,
}

type Slot = Arc<tokio::sync::OnceCell<Result<Prepared, String>>>;

pub struct DepStore {
    dir: PathBuf,
    templates_dir: PathBuf,
    jail: Arc<Jail>,
    /// One preparation per store at a time; the result is kept.
    slots: Mutex<HashMap<String, Slot>>,
    groups: ProcessGroups,
}

static STAGING: AtomicU64 = AtomicU64::new(0);

impl DepStore {
    pub fn new(dir: PathBuf, templates_dir: PathBuf, jail: Arc<Jail>) -> Self {
        DepStore {
            dir,
            templates_dir,
            jail,
            slots: Mutex::new(HashMap::new()),
            groups: ProcessGroups::default(),
        }
    }

    /// Kills a preparation in progress (agent shutdown).
    pub fn shutdown(&self) {
        self.groups.kill_all(libc::SIGKILL);
    }

    /// The names of the templates that have a manifest and a lockfile.
    pub fn templates(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(&self.templates_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| key_of_dir(&e.path()).is_some())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| crate::paths::WorkspaceId::parse(n).is_ok())
            .collect();
        out.sort();
        out
    }

    /// The store for `template` as it is now, prepared first if needed (waiting for a
    /// preparation already running). `Ok(None)`: the template has no lockfile.
    pub async fn prepare(&self, template: &str) -> Result<Option<Prepared>, String> {
        let src = self.templates_dir.join(template);
        let Some(key) = key_of_dir(&src) else {
            return Ok(None);
        };
        let name = format!("{template}-{key}");
        let slot = self
            .slots
            .lock()
            .expect("deps lock")
            .entry(name.clone())
            .or_default()
            .clone();
        let result = slot
            .get_or_init(|| async {
                let store = self.dir.join(&name);
                if !store.join("node_modules").is_dir() {
                    self.install(template, &src, &name).await?;
                }
                self.remove_older(template, &name);
                let manifest = std::fs::read(src.join("package.json"));
                let lock = std::fs::read(store.join("package-lock.json"));
                let (Ok(manifest), Ok(lock)) = (manifest, lock) else {
                    return Err(format!(
                        "the prepared dependencies of `{template}` are incomplete"
                    ));
                };
                Ok(Prepared {
                    key: key_of(&manifest, &lock),
                    node_modules: store.join("node_modules"),
                    lockfile: store.join("package-lock.json"),
                })
            })
            .await
            .clone();
        if result.is_err() {
            // A failed preparation is tried again by the next caller.
            self.slots.lock().expect("deps lock").remove(&name);
        }
        result.map(Some)
    }

    async fn install(&self, template: &str, src: &Path, name: &str) -> Result<(), String> {
        let fail = |what: &str, e: io::Error| format!("{what} for template `{template}`: {e}");
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| fail("cannot create SANDBOX_DEPS_DIR", e))?;
        // The jail's uid must reach the staging directory inside it.
        let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755));
        let staging = self.dir.join(format!(
            ".staging-{name}-{}-{}",
            std::process::id(),
            STAGING.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self.install_in(src, &staging, name).await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        result.map_err(|e| fail("cannot prepare dependencies", e))
    }

    async fn install_in(&self, src: &Path, staging: &Path, name: &str) -> io::Result<()> {
        std::fs::create_dir(staging)?;
        // The whole template, as a workspace gets it (`file:` dependencies included).
        crate::workspace::copy_tree(src, staging)?;
        chown_tree(staging, self.jail.owner())?;
        let req = ExecRequest {
            command: PREPARE_COMMAND.to_string(),
            cwd: staging.to_path_buf(),
            env: Vec::new(),
            timeout: PREPARE_TIMEOUT,
            output_cap: 64 * 1024,
        };
        tracing::info!(
            store = name,
            "preparing template dependencies: {PREPARE_COMMAND}"
        );
        let out = exec::run(&req, None, &self.groups, &self.jail).await?;
        if !out.success() {
            return Err(io::Error::other(format!(
                "`{PREPARE_COMMAND}` failed ({}): {}",
                out.exit_code
                    .map_or("timed out or killed".to_string(), |c| format!("exit {c}")),
                out.stderr
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.contains("A complete log"))
                    .take(6)
                    .collect::<Vec<_>>()
                    .join(" | ")
            )));
        }
        let staging_nm = staging.join("node_modules");
        let owned = staging_nm.clone();
        tokio::task::spawn_blocking(move || seal(&owned))
            .await
            .map_err(io::Error::other)??;
        let done = self.dir.join(name);
        std::fs::create_dir(&done).or_else(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        // The lockfile first: a store counts as complete once its node_modules is there.
        let lock_tmp = done.join(format!(".package-lock.json.{}", std::process::id()));
        std::fs::copy(staging.join("package-lock.json"), &lock_tmp)?;
        std::fs::rename(&lock_tmp, done.join("package-lock.json"))?;
        match std::fs::rename(&staging_nm, done.join("node_modules")) {
            Ok(()) => {}
            // Another agent finished first: its store is as good.
            Err(_) if done.join("node_modules").is_dir() => {}
            Err(e) => return Err(e),
        }
        let _ = std::fs::remove_dir_all(staging);
        tracing::info!(store = name, "template dependencies prepared");
        Ok(())
    }

    /// Removes the stores of `template` other than `keep` (an earlier manifest or lockfile).
    /// Workspaces linked from them keep their files: hard links outlive the store's names.
    fn remove_older(&self, template: &str, keep: &str) {
        let prefix = format!("{template}-");
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let rest = name.strip_prefix(&prefix);
            // `<template>-<16 hex>` only: another template may be named `<template>-x`.
            let is_store =
                rest.is_some_and(|r| r.len() == 16 && r.bytes().all(|b| b.is_ascii_hexdigit()));
            if is_store && name != keep {
                tracing::info!(store = name, "removing outdated template dependencies");
                remove_store(&entry.path());
            }
        }
    }
}

/// Removes a store (its directories are read-only: made writable first, so an agent that
/// is not root can remove its own stores).
pub fn remove_store(path: &Path) {
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir_all(path);
}

/// Makes a freshly installed tree a store: every file and directory read-only.
/// (Its owner is the agent: the jail's uid owned the staging tree.)
fn seal(root: &Path) -> io::Result<()> {
    let agent = (unsafe { libc::geteuid() }, unsafe { libc::getegid() });
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let ft = entry.file_type()?;
            std::os::unix::fs::lchown(&path, Some(agent.0), Some(agent.1))?;
            if ft.is_dir() {
                stack.push(path.clone());
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555))?;
            } else if ft.is_file() {
                let mode = entry.metadata()?.mode() & 0o555;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | 0o444))?;
            }
        }
    }
    std::os::unix::fs::lchown(root, Some(agent.0), Some(agent.1))?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o555))
}

/// Recreates the store's tree at `dst` (which must not exist): directories made anew and
/// given to `owner`, symlinks recreated, files hard-linked, or copied when `copy_files` (or
/// when a link is refused, e.g. across file systems). npm's hidden lockfile is always copied.
pub fn link_tree(
    store: &Path,
    dst: &Path,
    owner: Option<(u32, u32)>,
    copy_files: bool,
) -> io::Result<u64> {
    let mut files = 0;
    let mut stack = vec![(store.to_path_buf(), dst.to_path_buf())];
    while let Some((from, to)) = stack.pop() {
        std::fs::create_dir(&to)?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(&to, Some(uid), Some(gid))?;
        }
        for entry in std::fs::read_dir(&from)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            let target = to.join(entry.file_name());
            if ft.is_dir() {
                stack.push((entry.path(), target));
            } else if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::lchown(&target, Some(uid), Some(gid))?;
                }
            } else if ft.is_file() {
                files += 1;
                let private = copy_files || entry.file_name() == HIDDEN_LOCKFILE;
                if private || std::fs::hard_link(entry.path(), &target).is_err() {
                    std::fs::copy(entry.path(), &target)?;
                    if let Some((uid, gid)) = owner {
                        std::os::unix::fs::lchown(&target, Some(uid), Some(gid))?;
                    }
                    let mode = entry.metadata()?.mode() & 0o777;
                    std::fs::set_permissions(
                        &target,
                        std::fs::Permissions::from_mode(mode | 0o200),
                    )?;
                }
            }
        }
    }
    Ok(files)
}

/// Whether a store's files may be shared by hard links with workspaces whose processes run
/// as `jail_uid` (`None`: as the agent's own uid): only when they cannot change them, i.e.
/// they do not own them (`chmod` needs ownership).
pub fn may_share(store: &Path, jail_uid: Option<u32>) -> bool {
    let runs_as = jail_uid.unwrap_or_else(|| unsafe { libc::geteuid() });
    match std::fs::metadata(store.join("package.json")).or_else(|_| std::fs::metadata(store)) {
        Ok(m) => m.uid() != runs_as,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_installs_are_recognised() {
        for c in [
            "npm install",
            "npm install --prefer-offline --no-audit --no-fund",
            "npm i",
            "npm ci --no-audit",
        ] {
            assert!(is_dependency_install(c), "{c}");
        }
        for c in [
            "npm install left-pad",
            "npm install --omit=dev",
            "npm run build",
            "npm install && rm -rf /",
            "npx npm install",
            "",
        ] {
            assert!(!is_dependency_install(c), "{c}");
        }
    }

    #[test]
    fn the_key_follows_manifest_and_lockfile() {
        let a = key_of(b"{\"a\":1}", b"lock");
        assert_eq!(a.len(), 16);
        assert_eq!(a, key_of(b"{\"a\":1}", b"lock"));
        assert_ne!(a, key_of(b"{\"a\":2}", b"lock"));
        assert_ne!(a, key_of(b"{\"a\":1}", b"lock2"));
        // The boundary between the two files counts.
        assert_ne!(key_of(b"ab", b"c"), key_of(b"a", b"bc"));
    }

    #[test]
    fn linked_trees_share_files_but_not_directories_or_the_hidden_lockfile() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store/node_modules");
        std::fs::create_dir_all(store.join("pkg/lib")).unwrap();
        std::fs::create_dir_all(store.join(".bin")).unwrap();
        std::fs::write(store.join("pkg/lib/index.js"), "x").unwrap();
        std::fs::write(store.join(HIDDEN_LOCKFILE), "{}").unwrap();
        std::os::unix::fs::symlink("../pkg/lib/index.js", store.join(".bin/pkg")).unwrap();
        seal(&store).unwrap();

        let ws = dir.path().join("ws/node_modules");
        std::fs::create_dir_all(dir.path().join("ws")).unwrap();
        assert_eq!(link_tree(&store, &ws, None, false).unwrap(), 2);
        let (a, b) = (
            std::fs::metadata(store.join("pkg/lib/index.js")).unwrap(),
            std::fs::metadata(ws.join("pkg/lib/index.js")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino(), "files are hard links");
        assert_eq!(b.mode() & 0o222, 0, "and read-only");
        let lock = std::fs::metadata(ws.join(HIDDEN_LOCKFILE)).unwrap();
        assert_ne!(
            lock.ino(),
            std::fs::metadata(store.join(HIDDEN_LOCKFILE))
                .unwrap()
                .ino()
        );
        assert_ne!(
            lock.mode() & 0o200,
            0,
            "the hidden lockfile is the workspace's own"
        );
        assert_eq!(
            std::fs::read_link(ws.join(".bin/pkg")).unwrap(),
            Path::new("../pkg/lib/index.js")
        );
        // The workspace's directories are its own: a package can be removed and replaced.
        std::fs::remove_dir_all(ws.join("pkg")).unwrap();
        assert!(
            store.join("pkg/lib/index.js").is_file(),
            "the store keeps its files"
        );

        let copied = dir.path().join("ws2/node_modules");
        std::fs::create_dir_all(dir.path().join("ws2")).unwrap();
        link_tree(&store, &copied, None, true).unwrap();
        assert_ne!(
            std::fs::metadata(copied.join("pkg/lib/index.js"))
                .unwrap()
                .ino(),
            a.ino(),
            "copied when sharing is not safe"
        );
        remove_store(&dir.path().join("store"));
        assert!(!dir.path().join("store").exists());
    }

    #[test]
    fn only_stores_owned_by_someone_else_are_shared() {
        let dir = tempfile::tempdir().unwrap();
        let me = unsafe { libc::geteuid() };
        assert!(
            !may_share(dir.path(), None),
            "jailed processes run as the store's owner"
        );
        assert!(!may_share(dir.path(), Some(me)));
        assert!(may_share(dir.path(), Some(me.wrapping_add(100_000))));
    }
}

//! The jail every workspace process runs in: commands (exec, type-check, build), installs and
//! dev servers. Debian's bubblewrap (`bwrap`) builds it from unprivileged kernel features, so
//! the same jail works for a root developer locally and for the non-root agent in the
//! production container.
//!
//! What a jailed process sees: `/usr` (and the `/bin`, `/lib*`, `/sbin` links or binds of the
//! host) read-only, a short list of `/etc` files needed to resolve names, verify TLS and run
//! Node (never all of `/etc`: no `shadow`, no keys), a fresh `/proc` of its own pid namespace,
//! a minimal `/dev`, a private size-limited tmpfs `/tmp` (also `HOME`), its workspace at
//! `/workspace` and the npm cache at `/npm-cache`, both writable. Nothing else: not the
//! project directory, `.dev.vars`, `.wrangler/state`, other workspaces or the agent's
//! environment (the environment is rebuilt from an allowlist).
//!
//! Invariants and why each mechanism was chosen:
//! - **Unprivileged identity.** Inside, the process is uid/gid 1000 of a new user namespace
//!   with no capabilities, and cannot create further user namespaces. Outside, when the agent
//!   runs as root, bwrap itself is started as [`Config::jail_uid`] (default 100000, a uid no
//!   account uses), never as root: a user namespace created by root maps to host root, which
//!   owns every root-owned file it can see (e.g. `/etc/shadow`) and is exempt from
//!   `RLIMIT_NPROC`. Workspace files and the jail's npm cache are owned by that uid; the agent
//!   chowns what it writes. A non-root agent (the container) jails its own uid.
//! - **Pid namespace.** bwrap's init is pid 1 of the run; when the run's main process exits or
//!   is killed (the agent kills bwrap's process group), the kernel kills everything left in
//!   the namespace, including processes that escaped with `setsid` or double forks.
//!   `--die-with-parent` also ends the run if the agent dies, and the agent's reaper
//!   (`crate::reaper`) kills the group if it does not.
//! - **Limits per run, set by `prlimit` inside the jail** (setrlimit works unprivileged and
//!   needs no cgroup delegation, which neither a developer's machine nor the container gives):
//!   `RLIMIT_NPROC` (threads and processes, counted per user namespace, so each run has its
//!   own budget and a fork bomb cannot starve other workspaces), `RLIMIT_DATA` (private
//!   writable memory per process: heap and anonymous mappings; not `RLIMIT_AS`, because V8
//!   reserves about 10 GiB of address space per WebAssembly memory, which Vite's tools use,
//!   and such reservations are not data until written; the total is bounded by processes ×
//!   data, not more tightly: only a memory cgroup could do that) and `RLIMIT_FSIZE` (largest
//!   file; a write past it fails with `EFBIG`). `/tmp` is a tmpfs with a size cap.
//! - **Disk quota per workspace, enforced by the agent**: while a command or dev server runs,
//!   [`spawn_disk_watch`] measures the workspace (allocated blocks, symlinks not followed,
//!   one file system) and kills the run that took it over the quota. Loop devices and
//!   size-limited tmpfs workspaces need root (or lose the workspace on restart), and project
//!   quotas need file-system support; a periodic measure works everywhere. The overshoot is
//!   bounded by what a run writes between two measures (plus `RLIMIT_FSIZE` per file). File
//!   writes through the API check the quota before writing (`Workspace::check_disk_room`).
//! - **Shared npm cache**: one cache for every jail (installs stay fast and offline-capable),
//!   so one workspace's install can write entries another reads; npm checks tarballs against
//!   their integrity hashes, but cached registry metadata is not signed. A per-workspace cache
//!   would close that at the cost of downloading every package per workspace.
//! - **Network stays shared**: `npm install` needs the registry and the agent reaches dev
//!   servers on loopback. A jailed process can therefore reach other loopback services (other
//!   workspaces' dev servers included); see the README.
//!
//! Without bwrap the agent refuses to start unless `SANDBOX_UNCONFINED=1` says otherwise
//! (unsafe: commands then run as the agent's own user, with its view of the machine).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Command;

use crate::config::Config;

/// Where the workspace appears inside the jail (tool output names files under it).
pub const INSIDE_ROOT: &str = "/workspace";
/// Where the npm cache appears inside the jail.
const INSIDE_NPM_CACHE: &str = "/npm-cache";
/// uid and gid of jailed processes inside their user namespace.
const INSIDE_ID: &str = "1000";
/// `PATH` inside: Debian's Node is in /usr/bin, the official Node image's in /usr/local/bin.
const INSIDE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// The `/etc` entries a jailed process may read (each only if it exists on the host).
const ETC_ALLOWED: &[&str] = &[
    "/etc/alternatives",
    "/etc/ca-certificates",
    "/etc/gai.conf",
    "/etc/group",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/npmrc",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/protocols",
    "/etc/resolv.conf",
    "/etc/services",
    "/etc/ssl/certs",
];
/// Variables of the agent's environment passed into the jail (prefixes), besides the fixed
/// ones; `NPM_CONFIG_CACHE` is always replaced by the jail's cache.
const ENV_PASSED_PREFIXES: &[&str] = &["NPM_CONFIG_", "npm_config_"];
/// Variables never passed to children, jailed or not.
const SECRET_VARS: &[&str] = &["SANDBOX_SECRET"];

/// Per-run limits; see the module header for what each bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `RLIMIT_DATA` of every process, bytes.
    pub memory_bytes: u64,
    /// `RLIMIT_NPROC`: processes and threads of one run.
    pub processes: u64,
    /// `RLIMIT_FSIZE`: largest file a process may write, bytes.
    pub file_size_bytes: u64,
    /// Disk used by one workspace (node_modules included), bytes.
    pub disk_bytes: u64,
    /// Size of the private `/tmp`, bytes.
    pub tmp_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Limits {
            memory_bytes: 4096 * MIB,
            processes: 512,
            file_size_bytes: 256 * MIB,
            disk_bytes: 2048 * MIB,
            tmp_bytes: 512 * MIB,
        }
    }
}

#[derive(Clone, Debug)]
struct Confined {
    bwrap: PathBuf,
    /// Host uid and gid bwrap runs as (when the agent is root).
    run_as: Option<(u32, u32)>,
    npm_cache: PathBuf,
}

/// How workspace processes are started: confined (the default) or, only when explicitly
/// asked for, unconfined.
#[derive(Clone, Debug)]
pub struct Jail {
    confined: Option<Confined>,
    limits: Limits,
}

impl Jail {
    /// Commands run as the agent's own user, seeing what it sees. Unsafe outside tests of
    /// process handling and `SANDBOX_UNCONFINED=1`.
    pub fn unconfined(limits: Limits) -> Arc<Self> {
        crate::reaper::start();
        Arc::new(Jail {
            confined: None,
            limits,
        })
    }

    /// Builds the jail the configuration asks for and proves it works by running a command in
    /// it; the error says what is missing and how to fix it.
    pub async fn setup(config: &Config) -> Result<Arc<Self>, String> {
        // Before any workspace process exists (the self-test below is the first).
        crate::reaper::start();
        if config.unconfined {
            tracing::warn!(
                "SANDBOX_UNCONFINED=1: UNSAFE. Workspace commands, installs and dev servers run \
                 WITHOUT the jail, as this process's user, and can read and change everything it \
                 can (secrets, other workspaces, the project). Never use this with untrusted users."
            );
            eprintln!(
                "byte-sandbox: WARNING: running UNCONFINED (SANDBOX_UNCONFINED=1); every workspace \
                 command runs with this process's full access"
            );
            return Ok(Jail::unconfined(config.limits.clone()));
        }
        let bwrap = match &config.bwrap {
            Some(p) => p.clone(),
            None => find_in_path("bwrap").ok_or_else(|| {
                "bubblewrap (`bwrap`) is not installed, and byte-sandbox runs workspace commands \
                 only inside its jail. Install it (`apt-get install bubblewrap`; \
                 scripts/ensure-tools.sh does) or, knowing that it is unsafe, set \
                 SANDBOX_UNCONFINED=1"
                    .to_string()
            })?,
        };
        if !bwrap.is_file() {
            return Err(format!(
                "SANDBOX_BWRAP: `{}` does not exist; install bubblewrap or, knowing that it is \
                 unsafe, set SANDBOX_UNCONFINED=1",
                bwrap.display()
            ));
        }
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = root.then_some((config.jail_uid, config.jail_uid));
        let npm_cache = match &config.npm_cache {
            Some(p) => p.clone(),
            None if root => PathBuf::from("/var/cache/byte-sandbox/npm"),
            None => host_npm_cache()
                .ok_or("cannot tell where npm's cache is: set SANDBOX_NPM_CACHE or HOME")?,
        };
        let cache = npm_cache.clone();
        tokio::task::spawn_blocking(move || prepare_npm_cache(&cache, run_as))
            .await
            .map_err(|_| "preparing the npm cache was interrupted".to_string())?
            .map_err(|e| {
                format!(
                    "cannot prepare the jail's npm cache `{}`: {e}",
                    npm_cache.display()
                )
            })?;
        let jail = Arc::new(Jail {
            confined: Some(Confined {
                bwrap,
                run_as,
                npm_cache,
            }),
            limits: config.limits.clone(),
        });
        jail.self_test(&config.root).await?;
        Ok(jail)
    }

    pub fn is_confined(&self) -> bool {
        self.confined.is_some()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Owner the agent gives the files it writes into workspaces, when it must (it is root
    /// and jailed processes run as another uid).
    pub fn owner(&self) -> Option<(u32, u32)> {
        self.confined.as_ref().and_then(|c| c.run_as)
    }

    /// The workspace root as jailed tools print it, if different from the host's.
    pub fn inside_root(&self) -> Option<&'static str> {
        self.confined.as_ref().map(|_| INSIDE_ROOT)
    }

    /// `sh -c command` for `workspace`, as the leader of a new process group (pgid = pid),
    /// stdin closed, stdout and stderr piped. Confined, the leader is bwrap: killing its group
    /// ends the pid namespace and so everything the command started.
    pub fn command(&self, command: &str, workspace: &Path, env: &[(String, String)]) -> Command {
        let mut cmd = match &self.confined {
            None => {
                let mut cmd = Command::new("sh");
                cmd.arg("-c").arg(command).current_dir(workspace);
                for var in SECRET_VARS {
                    cmd.env_remove(var);
                }
                cmd
            }
            Some(c) => self.bwrap_command(c, command, workspace),
        };
        cmd.envs(env.iter().map(|(k, v)| (k, v)))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A backstop only: it kills the leader, not its group; callers kill the group.
            .kill_on_drop(true);
        cmd
    }

    fn bwrap_command(&self, c: &Confined, command: &str, workspace: &Path) -> Command {
        let mut cmd = Command::new(&c.bwrap);
        cmd.args([
            "--unshare-user",
            "--uid",
            INSIDE_ID,
            "--gid",
            INSIDE_ID,
            "--disable-userns",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sandbox",
            "--die-with-parent",
            "--new-session",
            "--ro-bind",
            "/usr",
            "/usr",
        ]);
        for dir in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::read_link(dir) {
                Ok(target) => {
                    cmd.arg("--symlink").arg(target).arg(dir);
                }
                Err(_) if Path::new(dir).is_dir() => {
                    cmd.args(["--ro-bind", dir, dir]);
                }
                Err(_) => {}
            }
        }
        for etc in ETC_ALLOWED {
            cmd.args(["--ro-bind-try", etc, etc]);
        }
        cmd.args(["--proc", "/proc", "--dev", "/dev", "--size"])
            .arg(self.limits.tmp_bytes.to_string())
            .args(["--perms", "1777", "--tmpfs", "/tmp", "--bind"])
            .arg(workspace)
            .arg(INSIDE_ROOT)
            .arg("--bind")
            .arg(&c.npm_cache)
            .arg(INSIDE_NPM_CACHE)
            // The jail's own root (a tmpfs holding the mount points) is read-only too.
            .args(["--remount-ro", "/", "--chdir", INSIDE_ROOT, "--", "prlimit"])
            .arg(format!("--nproc={}", self.limits.processes))
            .arg(format!("--data={}", self.limits.memory_bytes))
            .arg(format!("--fsize={}", self.limits.file_size_bytes))
            .args(["--", "sh", "-c", command])
            // bwrap runs from `/`: the workspace's host path may not be searchable by it.
            .current_dir("/")
            .env_clear()
            .envs(
                std::env::vars_os()
                    .filter(|(k, _)| {
                        let k = k.to_string_lossy();
                        ENV_PASSED_PREFIXES.iter().any(|p| k.starts_with(p))
                            && !k.eq_ignore_ascii_case("npm_config_cache")
                    })
                    .collect::<Vec<_>>(),
            )
            .env("PATH", INSIDE_PATH)
            .env("HOME", "/tmp")
            .env("TMPDIR", "/tmp")
            .env("LANG", "C.UTF-8")
            .env("NPM_CONFIG_CACHE", INSIDE_NPM_CACHE)
            .env("NPM_CONFIG_UPDATE_NOTIFIER", "false");
        if let Some((uid, gid)) = c.run_as {
            // std drops supplementary groups when a root parent sets the uid.
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Runs a probe in a scratch workspace under `root` and checks that it wrote there.
    async fn self_test(&self, root: &Path) -> Result<(), String> {
        std::fs::create_dir_all(root)
            .map_err(|e| format!("cannot create SANDBOX_ROOT `{}`: {e}", root.display()))?;
        let dir = root.join(format!(".jail-check-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir)
            .and_then(|()| chown_tree(&dir, self.owner()))
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
        let out = self
            .command("echo jail-ok > probe && cat probe", &dir, &[])
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), out).await;
        let written = std::fs::read_to_string(dir.join("probe")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        let out = match out {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return Err(format!("cannot start bwrap: {e}")),
            Err(_) => return Err("the jail's self-test did not finish in 30 s".into()),
        };
        if out.status.success() && written.trim() == "jail-ok" {
            return Ok(());
        }
        Err(format!(
            "the jail does not work here (bwrap exited with {:?}: {}). It needs unprivileged user \
             namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0; \
             containers must allow unshare(CLONE_NEWUSER)), SANDBOX_ROOT `{}` searchable by uid {}, \
             and prlimit (util-linux) in /usr/bin. Fix that, or, knowing that it is unsafe, set \
             SANDBOX_UNCONFINED=1",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim(),
            root.display(),
            self.owner().map_or_else(|| "of this process".to_string(), |(u, _)| u.to_string()),
        ))
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// npm's own cache location for this process: `NPM_CONFIG_CACHE`, else `$HOME/.npm`.
fn host_npm_cache() -> Option<PathBuf> {
    std::env::var_os("NPM_CONFIG_CACHE")
        .or_else(|| std::env::var_os("npm_config_cache"))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".npm")))
}

/// Creates the jail's npm cache if needed, seeded with a copy of this user's npm cache (so
/// installs are served offline as before; a copy, never a link, so jails cannot poison the
/// developer's own cache), and gives it to the jail's uid.
fn prepare_npm_cache(cache: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    if !cache.exists() {
        let parent = cache.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(parent)?;
        let tmp = parent.join(format!(".seeding-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp)?;
        if let Some(seed) = host_npm_cache().filter(|s| s.is_dir() && s != cache) {
            let copied = std::process::Command::new("cp")
                .arg("-R")
                .arg(seed.join("."))
                .arg(&tmp)
                .stdin(Stdio::null())
                .status()?;
            if !copied.success() {
                tracing::warn!(seed = %seed.display(), "could not seed the jail's npm cache; it starts empty");
            }
        }
        if std::fs::rename(&tmp, cache).is_err() {
            // Another agent created it meanwhile.
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    chown_tree(cache, owner)
}

/// Gives `path` and everything below it to `owner` (no-op for `None`), except files with
/// more than one hard link, which keep their owner (shared inodes, e.g. prepared
/// dependencies: see `chown_below`). Symlinks are never followed: the walk holds a directory
/// fd at each level and names entries relative to it, so a directory swapped for a symlink
/// meanwhile cannot redirect it.
pub fn chown_tree(path: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: plain syscalls on a NUL-terminated path; the fd is owned right away.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let dir = unsafe { OwnedFd::from_raw_fd(fd) };
    if unsafe { libc::fchown(dir.as_raw_fd(), uid, gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    chown_below(&dir, uid, gid)
}

fn chown_below(dir: &OwnedFd, uid: u32, gid: u32) -> io::Result<()> {
    let listing = format!("/proc/self/fd/{}", dir.as_raw_fd());
    for entry in std::fs::read_dir(&listing)? {
        let entry = entry?;
        let name = CString::new(entry.file_name().as_bytes()).map_err(io::Error::other)?;
        let meta = entry.metadata()?;
        // A file with more than one link shares its inode with another tree: the prepared
        // dependencies' read-only store (`crate::deps`) or whatever a jailed process linked.
        // Re-owning it would hand the jail a file other workspaces read (the owner may
        // chmod it writable), so it keeps its owner; a workspace needs to own only its
        // directories to replace such files.
        let shared = !meta.file_type().is_dir() && meta.nlink() > 1;
        if (meta.uid() != uid || meta.gid() != gid) && !shared {
            // SAFETY: fchownat on a name relative to an open directory, never following it.
            let r = unsafe {
                libc::fchownat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    uid,
                    gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if meta.file_type().is_dir() {
            // SAFETY: as above; O_NOFOLLOW refuses a symlink planted since the listing.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                continue;
            }
            chown_below(&unsafe { OwnedFd::from_raw_fd(fd) }, uid, gid)?;
        }
    }
    Ok(())
}

/// Bytes allocated under `root` (blocks, so sparse files count what they use), not following
/// symlinks and not crossing into other file systems.
pub fn disk_usage(root: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(root) else {
        return 0;
    };
    let dev = top.dev();
    let mut total = top.blocks() * 512;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            total += meta.blocks() * 512;
            if meta.file_type().is_dir() && meta.dev() == dev {
                stack.push(entry.path());
            }
        }
    }
    total
}

/// Aborts its task when dropped.
pub struct DiskWatch(tokio::task::JoinHandle<()>);

impl Drop for DiskWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Measures `root` every `every` (first at once) and calls `exceeded(bytes)` once, then stops,
/// when it holds more than `limit` bytes.
pub fn spawn_disk_watch(
    root: PathBuf,
    limit: u64,
    every: Duration,
    exceeded: impl FnOnce(u64) + Send + 'static,
) -> DiskWatch {
    DiskWatch(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let dir = root.clone();
            let Ok(used) = tokio::task::spawn_blocking(move || disk_usage(&dir)).await else {
                return;
            };
            if used > limit {
                exceeded(used);
                return;
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn disk_usage_counts_blocks_and_skips_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let before = disk_usage(dir.path());
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f"), vec![1u8; 100_000]).unwrap();
        std::os::unix::fs::symlink("/usr", dir.path().join("usr")).unwrap();
        let after = disk_usage(dir.path());
        assert!(after >= before + 100_000, "{before} → {after}");
        assert!(
            after < before + 1_000_000,
            "the symlink to /usr was followed: {after}"
        );
    }

    #[tokio::test]
    async fn disk_watch_fires_once_over_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), vec![1u8; 200_000]).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _watch = spawn_disk_watch(
            dir.path().to_path_buf(),
            100_000,
            Duration::from_millis(10),
            move |used| {
                let _ = tx.send(used);
            },
        );
        let used = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .unwrap()
            .unwrap();
        assert!(used > 100_000);
    }

    #[test]
    fn chown_tree_leaves_hard_linked_files_to_their_owner() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: chown needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::create_dir_all(ws.join("node_modules/pkg")).unwrap();
        std::fs::write(store.join("index.js"), "shared").unwrap();
        std::fs::set_permissions(
            store.join("index.js"),
            std::fs::Permissions::from_mode(0o444),
        )
        .unwrap();
        std::fs::hard_link(store.join("index.js"), ws.join("node_modules/pkg/index.js")).unwrap();
        std::fs::write(ws.join("app.ts"), "own").unwrap();
        chown_tree(&ws, Some((54321, 54321))).unwrap();
        let meta = |p: &Path| std::fs::symlink_metadata(p).unwrap();
        assert_eq!(meta(&ws.join("app.ts")).uid(), 54321);
        assert_eq!(
            meta(&ws.join("node_modules/pkg")).uid(),
            54321,
            "directories are re-owned"
        );
        let shared = meta(&ws.join("node_modules/pkg/index.js"));
        assert_eq!(shared.uid(), 0, "a shared inode keeps its owner");
        assert_eq!(shared.mode() & 0o222, 0, "and stays read-only");
        assert_eq!(meta(&store.join("index.js")).uid(), 0);
    }

    #[test]
    fn chown_tree_is_a_no_op_without_an_owner() {
        let dir = tempfile::tempdir().unwrap();
        chown_tree(dir.path(), None).unwrap();
    }
}

//! Running shell commands: `sh -c` in the workspace, in a process group of its own, with
//! stdout and stderr captured separately up to a cap, a timeout that kills the whole group,
//! and every line copied to the workspace log.
//!
//! Invariants: a command's process group never outlives the command (it is SIGKILLed on
//! timeout and swept once the shell exits, so `cmd &` leftovers do not linger), every command
//! starts through [`Jail::command`] (confined, its pid namespace dies with it, `setsid`
//! escapes included), and a confined command that takes its workspace over the disk quota
//! is killed.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;

use crate::jail::{spawn_disk_watch, Jail};
use crate::logs::{LineSplitter, LogBuffer, Source, Stream};
use crate::reaper;

/// A command's outcome, as the API returns it.
pub use byte_protocol::exec::ExecReply;

/// Sends `signal` to every process in group `pgid`. Refuses pgid 0 and 1, which would mean
/// "our own group" and "init" to the kernel.
pub fn kill_group(pgid: i32, signal: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: killpg has no memory-safety preconditions; a stale pgid yields ESRCH.
    unsafe { libc::killpg(pgid, signal) == 0 }
}

/// True while any process of group `pgid` exists (zombies included).
pub fn group_alive(pgid: i32) -> bool {
    pgid > 1 && unsafe { libc::killpg(pgid, 0) == 0 }
}

/// Process groups currently running for a workspace, so deleting the workspace or stopping
/// the agent can kill them.
#[derive(Clone, Default)]
pub struct ProcessGroups(Arc<Mutex<HashSet<i32>>>);

impl ProcessGroups {
    pub fn register(&self, pgid: i32) -> GroupGuard {
        self.0.lock().expect("groups lock").insert(pgid);
        GroupGuard {
            groups: self.clone(),
            pgid,
        }
    }

    pub fn kill_all(&self, signal: i32) {
        for &pgid in self.0.lock().expect("groups lock").iter() {
            kill_group(pgid, signal);
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().expect("groups lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct GroupGuard {
    groups: ProcessGroups,
    pgid: i32,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.groups
            .0
            .lock()
            .expect("groups lock")
            .remove(&self.pgid);
    }
}

#[derive(Clone, Debug)]
pub struct ExecRequest {
    pub command: String,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Cap for stdout and, separately, for stderr.
    pub output_cap: usize,
}

/// How long output readers may lag behind the exit of the group before we stop waiting
/// (a process that escaped the group with `setsid` could hold the pipes open forever).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How often a running command's workspace is measured against the disk quota.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Starts `command` for the workspace at `cwd` through `jail` (see [`Jail::command`]), its
/// group on the reaper's list until the returned guard is dropped: drop it only once the
/// leader has been waited for (`crate::reaper`).
pub fn spawn_shell(
    jail: &Jail,
    command: &str,
    cwd: &Path,
    env: &[(String, String)],
) -> io::Result<(Child, reaper::Watched)> {
    spawn_with(jail.command(command, cwd, env))
}

/// Spawns a command built by [`Jail::command`] (a group leader) and puts its group on the
/// reaper's list.
pub fn spawn_with(mut command: tokio::process::Command) -> io::Result<(Child, reaper::Watched)> {
    let child = command.spawn()?;
    let pgid = child
        .id()
        .map(|p| p as i32)
        .ok_or_else(|| io::Error::other("child exited before it was tracked"))?;
    Ok((child, reaper::watch(pgid)))
}

/// Runs the command to completion or timeout. `log`, when given, receives every line.
pub async fn run(
    req: &ExecRequest,
    log: Option<Arc<LogBuffer>>,
    groups: &ProcessGroups,
    jail: &Jail,
) -> io::Result<ExecReply> {
    let started = Instant::now();
    if let Some(log) = &log {
        log.push(Stream::System, Source::Exec, &format!("$ {}", req.command));
    }
    let (mut child, _reaped) = spawn_shell(jail, &req.command, &req.cwd, &req.env)?;
    let pgid = child
        .id()
        .map(|p| p as i32)
        .ok_or_else(|| io::Error::other("child exited before it was tracked"))?;
    let _registered = groups.register(pgid);
    let over_quota = Arc::new(Mutex::new(None::<u64>));
    let _disk_watch = jail.is_confined().then(|| {
        let over_quota = over_quota.clone();
        spawn_disk_watch(
            req.cwd.clone(),
            jail.limits().disk_bytes,
            DISK_CHECK_EVERY,
            move |used| {
                *over_quota.lock().expect("quota lock") = Some(used);
                kill_group(pgid, libc::SIGKILL);
            },
        )
    });

    let stdout = Arc::new(Mutex::new(Captured::default()));
    let stderr = Arc::new(Mutex::new(Captured::default()));
    let readers = [
        child.stdout.take().map(|r| {
            spawn_capture(
                r,
                req.output_cap,
                stdout.clone(),
                log.clone(),
                Stream::Stdout,
            )
        }),
        child.stderr.take().map(|r| {
            spawn_capture(
                r,
                req.output_cap,
                stderr.clone(),
                log.clone(),
                Stream::Stderr,
            )
        }),
    ];

    let (status, timed_out) = match tokio::time::timeout(req.timeout, child.wait()).await {
        Ok(status) => (Some(status?), false),
        Err(_) => {
            kill_group(pgid, libc::SIGKILL);
            (child.wait().await.ok(), true)
        }
    };
    // Commands are finite: anything the shell left running in its group goes now.
    kill_group(pgid, libc::SIGKILL);

    for reader in readers.into_iter().flatten() {
        let abort = reader.abort_handle();
        if tokio::time::timeout(DRAIN_GRACE, reader).await.is_err() {
            abort.abort();
        }
    }
    let duration_ms = started.elapsed().as_millis() as u64;
    let exit_code = if timed_out {
        None
    } else {
        status.and_then(|s| s.code())
    };
    let over_quota = *over_quota.lock().expect("quota lock");
    if let Some(used) = over_quota {
        let message = quota_message(used, jail.limits().disk_bytes);
        stderr
            .lock()
            .expect("capture lock")
            .bytes
            .extend_from_slice(format!("\n{message}\n").as_bytes());
    }
    if let Some(log) = &log {
        if let Some(used) = over_quota {
            log.push(
                Stream::System,
                Source::Exec,
                &quota_message(used, jail.limits().disk_bytes),
            );
        }
        let summary = match (timed_out, exit_code) {
            (true, _) => format!(
                "timed out after {} ms; process group killed",
                req.timeout.as_millis()
            ),
            (false, Some(code)) => format!("exited with code {code} in {duration_ms} ms"),
            (false, None) => format!("killed by a signal after {duration_ms} ms"),
        };
        log.push(Stream::System, Source::Exec, &summary);
    }
    let (stdout, stdout_truncated) = stdout.lock().expect("capture lock").take();
    let (stderr, stderr_truncated) = stderr.lock().expect("capture lock").take();
    Ok(ExecReply {
        exit_code,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        timed_out,
        duration_ms,
    })
}

/// What a run killed for the disk quota is told.
pub fn quota_message(used: u64, limit: u64) -> String {
    format!(
        "byte-sandbox: the workspace uses {used} bytes, over its disk quota of {limit} bytes \
         (SANDBOX_DISK_BYTES); the process was killed. Delete files (node_modules included) \
         to continue."
    )
}

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Captured {
    fn take(&mut self) -> (String, bool) {
        (
            String::from_utf8_lossy(&std::mem::take(&mut self.bytes)).into_owned(),
            self.truncated,
        )
    }
}

fn spawn_capture<R: AsyncRead + Unpin + Send + 'static>(
    reader: R,
    cap: usize,
    into: Arc<Mutex<Captured>>,
    log: Option<Arc<LogBuffer>>,
    stream: Stream,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(capture(reader, cap, into, log, stream))
}

/// Reads until EOF: keeps the first `cap` bytes, counts the rest as truncated but keeps
/// draining so the child never blocks on a full pipe.
async fn capture<R: AsyncRead + Unpin>(
    mut reader: R,
    cap: usize,
    into: Arc<Mutex<Captured>>,
    log: Option<Arc<LogBuffer>>,
    stream: Stream,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut lines = LineSplitter::default();
    let emit = |line: &str| {
        if let Some(log) = &log {
            log.push(stream, Source::Exec, line);
        }
    };
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut c = into.lock().expect("capture lock");
            let room = cap.saturating_sub(c.bytes.len());
            let keep = room.min(n);
            c.bytes.extend_from_slice(&buf[..keep]);
            if keep < n {
                c.truncated = true;
            }
        }
        lines.feed(&buf[..n], emit);
    }
    lines.finish(emit);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(
        req: &ExecRequest,
        log: Option<Arc<LogBuffer>>,
        groups: &ProcessGroups,
    ) -> io::Result<ExecReply> {
        // Process-group handling without the jail; the jail has its own tests (tests/jail.rs).
        super::run(req, log, groups, &Jail::unconfined(Default::default())).await
    }

    fn req(command: &str, timeout_ms: u64, cap: usize) -> ExecRequest {
        ExecRequest {
            command: command.into(),
            cwd: std::env::temp_dir(),
            env: vec![("GREETING".into(), "hi".into())],
            timeout: Duration::from_millis(timeout_ms),
            output_cap: cap,
        }
    }

    #[tokio::test]
    async fn captures_stdout_stderr_and_exit_code() {
        let groups = ProcessGroups::default();
        let log = Arc::new(LogBuffer::new(100));
        let out = run(
            &req("echo $GREETING; echo oops >&2; exit 3", 10_000, 1024),
            Some(log.clone()),
            &groups,
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stdout, "hi\n");
        assert_eq!(out.stderr, "oops\n");
        assert!(!out.timed_out && !out.stdout_truncated && !out.stderr_truncated);
        let (lines, _) = log.since(0);
        let texts: Vec<_> = lines.iter().map(|l| (l.stream, l.line.as_str())).collect();
        assert!(texts.contains(&(Stream::Stdout, "hi")));
        assert!(texts.contains(&(Stream::Stderr, "oops")));
        assert_eq!(lines[0].line, "$ echo $GREETING; echo oops >&2; exit 3");
        assert!(groups.is_empty(), "finished commands are unregistered");
    }

    #[tokio::test]
    async fn output_is_capped_but_drained() {
        let groups = ProcessGroups::default();
        // 200 KB on stdout, 10 bytes on stderr, cap 1000: the writer must not block on a full pipe.
        let out = run(
            &req(
                "head -c 200000 /dev/zero | tr '\\0' a; printf 0123456789 >&2",
                10_000,
                1000,
            ),
            None,
            &groups,
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code, Some(0));
        assert_eq!(out.stdout.len(), 1000);
        assert!(out.stdout_truncated);
        assert_eq!(out.stderr, "0123456789");
        assert!(!out.stderr_truncated);

        let exact = run(&req("printf 0123456789", 10_000, 10), None, &groups)
            .await
            .unwrap();
        assert_eq!(exact.stdout, "0123456789");
        assert!(!exact.stdout_truncated, "exactly the cap is not truncated");
    }

    #[tokio::test]
    async fn secret_is_not_inherited() {
        std::env::set_var("SANDBOX_SECRET", "do-not-leak");
        let out = run(
            &req("echo \"[${SANDBOX_SECRET:-}]\"", 10_000, 1024),
            None,
            &ProcessGroups::default(),
        )
        .await
        .unwrap();
        assert_eq!(out.stdout, "[]\n");
    }

    fn pid_alive(pid: i32) -> bool {
        // A zombie is dead for our purposes (it is waiting to be reaped by init).
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => false,
        }
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_tree() {
        let dir = tempfile::tempdir().unwrap();
        let groups = ProcessGroups::default();
        let mut r = req(
            "sleep 30 & echo $! > bg.pid; (sleep 31; echo never) & echo $! > sub.pid; sleep 32",
            500,
            1024,
        );
        r.cwd = dir.path().to_path_buf();
        let started = Instant::now();
        let out = run(&r, None, &groups).await.unwrap();
        assert!(out.timed_out);
        assert_eq!(out.exit_code, None);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "returned promptly"
        );
        for file in ["bg.pid", "sub.pid"] {
            let pid: i32 = std::fs::read_to_string(dir.path().join(file))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(2);
            while pid_alive(pid) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(
                !pid_alive(pid),
                "child {pid} from {file} survived the timeout"
            );
        }
        assert!(!out.stdout.contains("never"));
    }

    #[tokio::test]
    async fn background_leftovers_are_swept_after_exit() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = req("sleep 30 & echo $! > bg.pid; echo done", 10_000, 1024);
        r.cwd = dir.path().to_path_buf();
        let started = Instant::now();
        let out = run(&r, None, &ProcessGroups::default()).await.unwrap();
        assert_eq!(
            (out.exit_code, out.stdout.as_str(), out.timed_out),
            (Some(0), "done\n", false)
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "did not wait for the background sleep"
        );
        let pid: i32 = std::fs::read_to_string(dir.path().join("bg.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while pid_alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!pid_alive(pid));
    }

    #[test]
    fn never_signals_our_own_group_or_init() {
        assert!(!kill_group(0, 0));
        assert!(!kill_group(1, 0));
        assert!(!kill_group(-5, 0));
    }
}

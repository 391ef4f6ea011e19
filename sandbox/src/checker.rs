//! A warm type checker per workspace, so a check after a phase costs what changed, not a
//! cold `tsc` (Node start, loading TypeScript, parsing the DOM and React types: seconds).
//!
//! The checker is a long-lived Node process in the workspace's jail running `checker.js`
//! (embedded here) with the workspace's own `node_modules/typescript`. It answers one check
//! per request line, in order, each tagged with the request's id (a generation counter:
//! an answer is taken only for the id just asked, never by timing). Correctness rests on the
//! checker, not on watching files:
//! - **read-after-write**: a check starts only when its request arrives, which the agent
//!   sends after the writes before it have returned, and it re-reads `tsconfig.json`, the
//!   file list and the text of every app file then; parsed files are reused only when their
//!   text is unchanged (files under `node_modules` while their inode, size and mtime are),
//!   and TypeScript's builder re-checks every file a change can affect. Nothing is
//!   debounced, and no file watcher is involved;
//! - **tsc's own answer**: the same compiler and options (`tsc --noEmit -p .`), its
//!   diagnostics in its order and plain format, and its exit status; what the checker
//!   cannot answer as tsc would (project references, an unreadable `tsconfig.json`, a
//!   reinstalled TypeScript) it declines, and the agent runs `tsc` itself;
//! - **failure is never an answer**: a checker that crashed, printed something unexpected or
//!   did not answer by the deadline is killed (its whole process group) and the request falls
//!   back to a cold `tsc`; the next check starts a new checker.
//!
//! The checker is started ahead of need ([`Checker::prewarm`]: a new workspace with
//! TypeScript installed, or a write to a workspace without one), so its first full check
//! overlaps the model writing code rather than the wait for the checks. That check's answer
//! is discarded, but what it leaves is not: the parsed DOM and React types, and a JIT-compiled
//! compiler (a checker's first check in a process takes about twice as long as the same
//! check later; loading and parsing alone would leave the type checker's code cold). It lives until the
//! workspace is deleted or the agent stops (and the reaper kills it if the agent dies).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::exec::{kill_group, spawn_with};
use crate::jail::Jail;
use crate::reaper::Watched;

/// The checker program (Node, CommonJS).
pub const SCRIPT: &str = include_str!("checker.js");
/// The variable carrying [`SCRIPT`] into the jail (its command line would be visible in
/// `ps` either way; the variable keeps the shell command short).
const SCRIPT_VAR: &str = "BYTE_TS_CHECKER";
const COMMAND: &str = "exec node -e \"$BYTE_TS_CHECKER\"";
/// Longest a warm check may take before the checker counts as hung.
pub const WARM_LIMIT: Duration = Duration::from_secs(60);
/// Where TypeScript must be for the checker to start.
pub const TYPESCRIPT_MANIFEST: &str = "node_modules/typescript/package.json";

/// A check's result, as `tsc --noEmit -p .` would have printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub output: String,
    pub exit_code: i32,
}

/// Why a check was not answered warm; the caller runs `tsc` instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The checker declined (it cannot answer as tsc would here).
    Declined(String),
    /// It could not start, exited, or printed something that is not an answer.
    Crashed(String),
    /// No answer by the deadline.
    Hung,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Declined(why) => write!(f, "declined: {why}"),
            Failure::Crashed(why) => write!(f, "crashed: {why}"),
            Failure::Hung => write!(f, "did not answer in time"),
        }
    }
}

struct Proc {
    child: Child,
    pgid: i32,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
    stderr_tail: Arc<std::sync::Mutex<String>>,
    _reaped: Watched,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Its whole group (jailed: its pid namespace). The reaper forgets the group once
        // the leader is waited for, which `kill_on_drop` leaves to the runtime; a stale
        // entry only matters if the agent dies in that moment.
        kill_group(self.pgid, libc::SIGKILL);
        let _ = self.child.start_kill();
    }
}

/// One workspace's warm type checker (see the module).
pub struct Checker {
    jail: Arc<Jail>,
    cwd: PathBuf,
    command: String,
    env: Vec<(String, String)>,
    proc_: tokio::sync::Mutex<Option<Proc>>,
    starts: AtomicU64,
}

impl Checker {
    pub fn new(jail: Arc<Jail>, cwd: PathBuf) -> Self {
        Self::with_program(
            jail,
            cwd,
            COMMAND.to_string(),
            vec![(SCRIPT_VAR.to_string(), SCRIPT.to_string())],
        )
    }

    /// A checker running another program speaking the same protocol (tests).
    pub fn with_program(
        jail: Arc<Jail>,
        cwd: PathBuf,
        command: String,
        env: Vec<(String, String)>,
    ) -> Self {
        Checker {
            jail,
            cwd,
            command,
            env,
            proc_: tokio::sync::Mutex::new(None),
            starts: AtomicU64::new(0),
        }
    }

    /// How many checker processes were started so far.
    pub fn starts(&self) -> u64 {
        self.starts.load(Ordering::SeqCst)
    }

    /// Whether TypeScript is installed where the checker needs it.
    pub fn available(&self) -> bool {
        self.cwd.join(TYPESCRIPT_MANIFEST).is_file()
    }

    /// Starts the checker and its first (full) check in the background, unless it runs
    /// already or is busy; its result is discarded.
    pub fn prewarm(self: &Arc<Self>) {
        if !self.available() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(mut guard) = this.proc_.try_lock() else {
                return;
            };
            if guard
                .as_mut()
                .is_some_and(|p| p.child.try_wait().ok().flatten().is_none())
            {
                return;
            }
            let deadline = tokio::time::Instant::now() + WARM_LIMIT;
            if let Err(e) = this.check_locked(&mut guard, deadline).await {
                tracing::debug!(cwd = %this.cwd.display(), "type checker warm-up: {e}");
            }
        });
    }

    /// Asks for a check that reads the workspace as it is now; see the module for what an
    /// answer guarantees. On any failure the checker is gone and the caller runs `tsc`.
    pub async fn check(&self, deadline: tokio::time::Instant) -> Result<Answer, Failure> {
        let mut guard = self.proc_.lock().await;
        self.check_locked(&mut guard, deadline).await
    }

    async fn check_locked(
        &self,
        guard: &mut Option<Proc>,
        deadline: tokio::time::Instant,
    ) -> Result<Answer, Failure> {
        if guard
            .as_mut()
            .is_some_and(|p| p.child.try_wait().ok().flatten().is_some())
        {
            // Exited since the last check (e.g. after declining a reinstalled TypeScript).
            *guard = None;
        }
        if guard.is_none() {
            *guard = Some(self.spawn()?);
        }
        let result = ask(guard.as_mut().expect("just set"), deadline).await;
        if matches!(result, Err(Failure::Crashed(_) | Failure::Hung)) {
            let tail = guard
                .as_ref()
                .map(|p| p.stderr_tail.lock().expect("tail lock").clone())
                .unwrap_or_default();
            if !tail.trim().is_empty() {
                tracing::warn!(cwd = %self.cwd.display(), stderr = %tail.trim(), "type checker failed");
            }
            *guard = None;
        }
        result
    }

    fn spawn(&self) -> Result<Proc, Failure> {
        let mut command = self.jail.command(&self.command, &self.cwd, &self.env);
        command.stdin(std::process::Stdio::piped());
        let (mut child, reaped) =
            spawn_with(command).map_err(|e| Failure::Crashed(format!("cannot start: {e}")))?;
        self.starts.fetch_add(1, Ordering::SeqCst);
        let pgid = child.id().map_or(0, |p| p as i32);
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let stderr_tail = Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let tail = stderr_tail.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = err.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let mut t = tail.lock().expect("tail lock");
                    t.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if t.len() > 4096 {
                        let cut = t.len() - 4096;
                        let cut = (cut..t.len()).find(|i| t.is_char_boundary(*i)).unwrap_or(0);
                        t.drain(..cut);
                    }
                }
            });
        }
        Ok(Proc {
            child,
            pgid,
            stdin,
            stdout,
            next_id: 0,
            stderr_tail,
            _reaped: reaped,
        })
    }

    /// Kills the checker (workspace deletion, agent shutdown).
    pub async fn shutdown(&self) {
        if let Some(mut p) = self.proc_.lock().await.take() {
            kill_group(p.pgid, libc::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(2), p.child.wait()).await;
        }
    }
}

/// Sends one request and waits for its answer.
async fn ask(p: &mut Proc, deadline: tokio::time::Instant) -> Result<Answer, Failure> {
    p.next_id += 1;
    let id = p.next_id;
    let request = format!("{{\"id\":{id}}}\n");
    let sent = tokio::time::timeout_at(deadline, async {
        p.stdin.write_all(request.as_bytes()).await?;
        p.stdin.flush().await
    })
    .await;
    match sent {
        Err(_) => return Err(Failure::Hung),
        Ok(Err(e)) => return Err(Failure::Crashed(format!("cannot send the request: {e}"))),
        Ok(Ok(())) => {}
    }
    loop {
        let line = match tokio::time::timeout_at(deadline, p.stdout.next_line()).await {
            Err(_) => return Err(Failure::Hung),
            Ok(Err(e)) => return Err(Failure::Crashed(format!("cannot read its answer: {e}"))),
            Ok(Ok(None)) => return Err(Failure::Crashed("it exited".into())),
            Ok(Ok(Some(line))) => line,
        };
        match parse_line(&line) {
            Line::Answer(answer_id, answer) if answer_id == id => return answer,
            // An older request's answer (cannot happen: a request that gets no answer kills
            // the checker) or the start-up line.
            Line::Answer(..) | Line::Ready => continue,
            Line::Fatal(why) => return Err(Failure::Crashed(why)),
            Line::Garbage => {
                return Err(Failure::Crashed(format!(
                    "unexpected output: {}",
                    line.chars().take(200).collect::<String>()
                )))
            }
        }
    }
}

enum Line {
    Ready,
    Answer(u64, Result<Answer, Failure>),
    Fatal(String),
    Garbage,
}

fn parse_line(line: &str) -> Line {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire {
        id: Option<u64>,
        ready: Option<bool>,
        fatal: Option<String>,
        output: Option<String>,
        exit_code: Option<i32>,
        fallback: Option<String>,
    }
    let Ok(w) = serde_json::from_str::<Wire>(line) else {
        return Line::Garbage;
    };
    match w {
        Wire {
            fatal: Some(why), ..
        } => Line::Fatal(why),
        Wire {
            id: Some(id),
            fallback: Some(why),
            ..
        } => Line::Answer(id, Err(Failure::Declined(why))),
        Wire {
            id: Some(id),
            output: Some(output),
            exit_code: Some(exit_code),
            ..
        } => Line::Answer(id, Ok(Answer { output, exit_code })),
        Wire {
            ready: Some(true), ..
        } => Line::Ready,
        _ => Line::Garbage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jail::Limits;

    fn fake(dir: &std::path::Path, script: &str) -> Arc<Checker> {
        Arc::new(Checker::with_program(
            Jail::unconfined(Limits::default()),
            dir.to_path_buf(),
            script.to_string(),
            Vec::new(),
        ))
    }

    fn soon() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(20)
    }

    #[test]
    fn lines_are_told_apart() {
        assert!(matches!(
            parse_line(r#"{"ready":true,"typescript":"5.9.3"}"#),
            Line::Ready
        ));
        assert!(matches!(
            parse_line(r#"{"id":3,"output":"a.ts(1,1): error TS1: x\n","exitCode":2}"#),
            Line::Answer(3, Ok(Answer { exit_code: 2, .. }))
        ));
        assert!(matches!(
            parse_line(r#"{"id":4,"fallback":"project references"}"#),
            Line::Answer(4, Err(Failure::Declined(_)))
        ));
        assert!(matches!(
            parse_line(r#"{"fatal":"no typescript"}"#),
            Line::Fatal(_)
        ));
        assert!(matches!(parse_line("Debugger attached."), Line::Garbage));
        assert!(matches!(parse_line(r#"{"id":5}"#), Line::Garbage));
    }

    #[tokio::test]
    async fn answers_are_matched_to_their_request_by_id() {
        let dir = tempfile::tempdir().unwrap();
        // Answers every request with its id as the output, after a stale answer for id 0.
        let c = fake(
            dir.path(),
            r#"echo '{"ready":true}'; echo '{"id":0,"output":"stale","exitCode":0}'; while read -r line; do id=${line#*:}; id=${id%\}}; echo "{\"id\":$id,\"output\":\"check $id\",\"exitCode\":0}"; done"#,
        );
        for n in 1..=3 {
            let a = c.check(soon()).await.unwrap();
            assert_eq!(a.output, format!("check {n}"));
        }
        assert_eq!(c.starts(), 1, "one process for every check");
        c.shutdown().await;
    }

    #[tokio::test]
    async fn a_crashed_checker_fails_the_check_and_is_restarted_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        // Answers once, then exits while asked the second time.
        let c = fake(
            dir.path(),
            r#"read -r line; echo '{"id":1,"output":"","exitCode":0}'; read -r line; exit 3"#,
        );
        assert!(c.check(soon()).await.is_ok());
        assert!(matches!(c.check(soon()).await, Err(Failure::Crashed(_))));
        assert!(c.check(soon()).await.is_ok(), "a new checker answers");
        assert_eq!(c.starts(), 2);
        c.shutdown().await;
    }

    #[tokio::test]
    async fn a_hung_checker_is_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let c = fake(
            dir.path(),
            &format!(
                "echo $$ > {}; while :; do sleep 1; done",
                pid_file.display()
            ),
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        assert_eq!(c.check(deadline).await, Err(Failure::Hung));
        assert!(
            c.proc_.lock().await.is_none(),
            "the hung checker is dropped"
        );
        // Its process group was killed: the shell (the group's leader) and its `sleep`.
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let running = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        let mut waited = 0;
        while running(pid) {
            waited += 1;
            assert!(waited < 200, "the hung checker {pid} still runs");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn a_declined_check_keeps_the_checker() {
        let dir = tempfile::tempdir().unwrap();
        let c = fake(
            dir.path(),
            r#"while read -r line; do id=${line#*:}; id=${id%\}}; echo "{\"id\":$id,\"fallback\":\"project references\"}"; done"#,
        );
        assert_eq!(
            c.check(soon()).await,
            Err(Failure::Declined("project references".into()))
        );
        assert_eq!(
            c.check(soon()).await,
            Err(Failure::Declined("project references".into()))
        );
        assert_eq!(c.starts(), 1);
        c.shutdown().await;
    }
}

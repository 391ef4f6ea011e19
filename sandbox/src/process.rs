//! Supervisor for a workspace's long-running dev server.
//!
//! States: `stopped → starting → running`, and `crashed` when the process exits without being
//! asked to. A crashed server stays crashed (with its exit code) until a client starts or
//! restarts it: restarting forever would hide the error the fix loop needs to see. A start
//! that fails before the server is ready (a port clash, a flaky first start) is retried on
//! another port, up to [`MAX_START_ATTEMPTS`] starts, before it is reported crashed with the
//! server's own last error line.
//!
//! `running` means the process we started is the one answering: the listening socket on
//! its port belongs to its process tree (`crate::ports::listener_owner`, from the kernel's
//! tables) and answers HTTP. Anyone else's listener on the port, however it got there, never
//! makes a server ready. Start, stop and restart are serialised per workspace; starting a
//! server that is starting or running is a no-op.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use crate::api_error::{ApiError, ApiResult};
use crate::errors::strip_ansi;
use crate::exec::{kill_group, quota_message, spawn_shell};
use crate::jail::{spawn_disk_watch, Jail};
use crate::logs::{now_ms, LineSplitter, LogBuffer, Source, Stream};
use crate::ports::{listener_owner, Owner, PortAllocator};

/// The status the API reports (`byte_protocol::process`); `Status` for short here.
pub use byte_protocol::process::{ServerInfo, ServerStatus as Status};

/// The command used when a start request names none.
pub const DEFAULT_DEV_COMMAND: &str = "npm run dev -- --port {port} --host 127.0.0.1 --strictPort";

/// How often a running server's workspace is measured against the disk quota.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(5);

/// How often a starting server's port is probed.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// How long the readiness check's HTTP request may take.
const HTTP_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts of a dev server that exits before it is ready, each on a fresh port, before the
/// server is reported crashed.
pub const MAX_START_ATTEMPTS: u32 = 3;

/// Shared with the monitor task of the current process.
struct Shared {
    info: watch::Sender<ServerInfo>,
    logs: Arc<LogBuffer>,
    ports: Arc<PortAllocator>,
    /// Bumped on every start, so a monitor of an older process cannot overwrite newer state.
    generation: Mutex<u64>,
}

impl Shared {
    fn update_if_current(&self, generation: u64, f: impl FnOnce(&mut ServerInfo)) -> bool {
        let current = self.generation.lock().expect("generation lock");
        if *current != generation {
            return false;
        }
        self.info.send_modify(f);
        true
    }
}

struct Running {
    /// The current attempt's process group (a failed start is retried under a new one).
    pgid: Arc<AtomicI32>,
    stopping: Arc<AtomicBool>,
    /// `Some(exit code)` once the process has exited and its group was swept.
    exited: watch::Receiver<Option<Option<i32>>>,
}

pub struct Supervisor {
    cwd: PathBuf,
    jail: Arc<Jail>,
    shared: Arc<Shared>,
    /// Serialises start/stop/restart.
    op: tokio::sync::Mutex<Option<Running>>,
    /// The last command template (with `{port}`), reused by restart.
    template: Mutex<Option<String>>,
}

impl Supervisor {
    pub fn new(
        cwd: PathBuf,
        logs: Arc<LogBuffer>,
        ports: Arc<PortAllocator>,
        jail: Arc<Jail>,
    ) -> Self {
        let (info, _) = watch::channel(ServerInfo::stopped());
        Supervisor {
            cwd,
            jail,
            shared: Arc::new(Shared {
                info,
                logs,
                ports,
                generation: Mutex::new(0),
            }),
            op: tokio::sync::Mutex::new(None),
            template: Mutex::new(None),
        }
    }

    pub fn info(&self) -> ServerInfo {
        self.shared.info.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<ServerInfo> {
        self.shared.info.subscribe()
    }

    /// Waits until the server is no longer `starting` (or `timeout` passes) and returns the
    /// state then.
    pub async fn wait_ready(&self, timeout: Duration) -> ServerInfo {
        let mut rx = self.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|i| i.status != Status::Starting)).await;
        let info = rx.borrow().clone();
        info
    }

    pub async fn start(&self, command: Option<String>) -> ApiResult<ServerInfo> {
        let mut running = self.op.lock().await;
        let info = self.info();
        if matches!(info.status, Status::Starting | Status::Running) {
            return Ok(info);
        }
        // A crashed process has exited already; forget it.
        *running = None;
        self.start_locked(&mut running, command).await
    }

    pub async fn stop(&self) -> ServerInfo {
        let mut running = self.op.lock().await;
        self.stop_locked(&mut running, Duration::from_secs(5)).await;
        self.info()
    }

    pub async fn restart(&self, command: Option<String>) -> ApiResult<ServerInfo> {
        let mut running = self.op.lock().await;
        self.stop_locked(&mut running, Duration::from_secs(5)).await;
        self.shared.info.send_modify(|i| i.restarts += 1);
        self.start_locked(&mut running, command).await
    }

    /// Stops the server with a short grace period (agent shutdown, workspace deletion).
    pub async fn shutdown(&self) {
        let mut running = self.op.lock().await;
        self.stop_locked(&mut running, Duration::from_secs(2)).await;
    }

    async fn start_locked(
        &self,
        running: &mut Option<Running>,
        command: Option<String>,
    ) -> ApiResult<ServerInfo> {
        let template = {
            let mut saved = self.template.lock().expect("template lock");
            let template = command
                .or_else(|| saved.clone())
                .unwrap_or_else(|| DEFAULT_DEV_COMMAND.to_string());
            *saved = Some(template.clone());
            template
        };
        let first = spawn_attempt(&self.shared, &self.jail, &self.cwd, &template)?;
        let generation = {
            let mut g = self.shared.generation.lock().expect("generation lock");
            *g += 1;
            let restarts = self.shared.info.borrow().restarts;
            self.shared.info.send_replace(ServerInfo {
                status: Status::Starting,
                port: Some(first.port),
                pid: Some(first.pid),
                exit_code: None,
                restarts,
                started_at: Some(now_ms()),
                command: Some(first.command.clone()),
                error: None,
            });
            *g
        };

        let stopping = Arc::new(AtomicBool::new(false));
        let pgid = Arc::new(AtomicI32::new(first.pid as i32));
        let (exit_tx, exited) = watch::channel(None);
        let monitor = Monitor {
            shared: self.shared.clone(),
            jail: self.jail.clone(),
            cwd: self.cwd.clone(),
            template,
            generation,
            stopping: stopping.clone(),
            pgid: pgid.clone(),
        };
        tokio::spawn(monitor.run(first, exit_tx));
        *running = Some(Running {
            pgid,
            stopping,
            exited,
        });
        Ok(self.info())
    }

    async fn stop_locked(&self, running: &mut Option<Running>, grace: Duration) {
        if let Some(mut proc_) = running.take() {
            proc_.stopping.store(true, Ordering::SeqCst);
            let already_exited = proc_.exited.borrow().is_some();
            if !already_exited {
                kill_group(proc_.pgid.load(Ordering::SeqCst), libc::SIGTERM);
                let exited = tokio::time::timeout(grace, proc_.exited.wait_for(|e| e.is_some()))
                    .await
                    .is_ok();
                if !exited {
                    kill_group(proc_.pgid.load(Ordering::SeqCst), libc::SIGKILL);
                    let _ = tokio::time::timeout(
                        Duration::from_secs(2),
                        proc_.exited.wait_for(|e| e.is_some()),
                    )
                    .await;
                }
                self.shared
                    .logs
                    .push(Stream::System, Source::Server, "dev server stopped");
            }
            let code = proc_.exited.borrow().unwrap_or(None);
            let mut g = self.shared.generation.lock().expect("generation lock");
            *g += 1;
            self.shared.info.send_modify(|i| {
                if i.status != Status::Crashed {
                    i.exit_code = code;
                }
                i.status = Status::Stopped;
                i.port = None;
                i.pid = None;
            });
        } else {
            self.shared.info.send_modify(|i| {
                i.status = Status::Stopped;
                i.port = None;
                i.pid = None;
            });
        }
    }
}

/// One spawned dev-server process.
struct Attempt {
    child: tokio::process::Child,
    pid: u32,
    port: u16,
    command: String,
    /// Log sequence number at its start: its own output comes after.
    log_from: u64,
    /// On the reaper's list while the attempt lives (it is dropped after its wait).
    _reaped: crate::reaper::Watched,
}

/// Allocates a port and starts the command on it, with its output pumped into the log.
fn spawn_attempt(
    shared: &Arc<Shared>,
    jail: &Jail,
    cwd: &std::path::Path,
    template: &str,
) -> ApiResult<Attempt> {
    let ports = &shared.ports;
    let port = ports.allocate().ok_or_else(|| {
        ApiError::unavailable(
            "no free port left in SANDBOX_PORT_RANGE (outside the kernel's ephemeral range)",
        )
    })?;
    let command = template.replace("{port}", &port.to_string());
    let env = vec![("PORT".to_string(), port.to_string())];
    let log_from = shared.logs.push(
        Stream::System,
        Source::Server,
        &format!("starting dev server on port {port}: {command}"),
    );
    let (mut child, reaped) = match spawn_shell(jail, &command, cwd, &env) {
        Ok(spawned) => spawned,
        Err(e) => {
            ports.release(port);
            return Err(ApiError::io("cannot start the dev server", e));
        }
    };
    let Some(pid) = child.id() else {
        ports.release(port);
        return Err(ApiError::internal(
            "the dev server exited before it could be tracked",
        ));
    };
    if let Some(out) = child.stdout.take() {
        tokio::spawn(pump_lines(out, shared.logs.clone(), Stream::Stdout));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(pump_lines(err, shared.logs.clone(), Stream::Stderr));
    }
    Ok(Attempt {
        child,
        pid,
        port,
        command,
        log_from,
        _reaped: reaped,
    })
}

/// Watches one start of the dev server: readiness, a failed start retried on another port,
/// then the process until it exits.
struct Monitor {
    shared: Arc<Shared>,
    jail: Arc<Jail>,
    cwd: PathBuf,
    template: String,
    generation: u64,
    stopping: Arc<AtomicBool>,
    pgid: Arc<AtomicI32>,
}

impl Monitor {
    async fn run(self, first: Attempt, exit_tx: watch::Sender<Option<Option<i32>>>) {
        let mut attempt = first;
        let mut number = 1;
        let code = loop {
            let pgid = attempt.pid as i32;
            let disk_watch = self.jail.is_confined().then(|| {
                let logs = self.shared.logs.clone();
                let limit = self.jail.limits().disk_bytes;
                spawn_disk_watch(self.cwd.clone(), limit, DISK_CHECK_EVERY, move |used| {
                    logs.push(Stream::System, Source::Server, &quota_message(used, limit));
                    kill_group(pgid, libc::SIGKILL);
                })
            });
            let (status, ready) = self.watch(&mut attempt).await;
            drop(disk_watch);
            // The leader is gone; whatever it left in its group goes too.
            kill_group(pgid, libc::SIGKILL);
            if ready {
                // SIGKILL is delivered asynchronously: wait for our socket to close before
                // reporting the exit or handing the port to someone else.
                wait_port_closed(attempt.port).await;
            }
            let code = status.ok().and_then(|s| s.code());
            let stopping = self.stopping.load(Ordering::SeqCst);
            if !ready && !stopping && number < MAX_START_ATTEMPTS {
                let why = failure_line(&self.shared.logs, attempt.log_from)
                    .unwrap_or_else(|| exit_text(code));
                // The next port is taken before this one is released, so it differs.
                match spawn_attempt(&self.shared, &self.jail, &self.cwd, &self.template) {
                    Ok(next) => {
                        self.shared.ports.release(attempt.port);
                        self.shared.logs.push(
                            Stream::System,
                            Source::Server,
                            &format!(
                                "dev server did not start on port {} ({why}); retrying on port {}",
                                attempt.port, next.port
                            ),
                        );
                        number += 1;
                        self.pgid.store(next.pid as i32, Ordering::SeqCst);
                        let current = self.shared.update_if_current(self.generation, |i| {
                            i.port = Some(next.port);
                            i.pid = Some(next.pid);
                            i.command = Some(next.command.clone());
                        });
                        attempt = next;
                        if !current || self.stopping.load(Ordering::SeqCst) {
                            // Stopped while we were starting it again.
                            self.stopping.store(true, Ordering::SeqCst);
                            kill_group(attempt.pid as i32, libc::SIGKILL);
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e.message, "dev server retry could not start");
                    }
                }
            }
            self.shared.ports.release(attempt.port);
            if !self.stopping.load(Ordering::SeqCst) {
                let error = failure_line(&self.shared.logs, attempt.log_from);
                let described = exit_text(code);
                let message = match (&error, ready, number) {
                    (_, true, _) => format!("dev server exited unexpectedly with {described}"),
                    (Some(e), false, n) => format!(
                        "dev server failed to start ({n} attempts, last on port {}): {e}",
                        attempt.port
                    ),
                    (None, false, n) => format!(
                        "dev server failed to start ({n} attempts, last on port {}): exited with {described}",
                        attempt.port
                    ),
                };
                self.shared
                    .logs
                    .push(Stream::System, Source::Server, &message);
                self.shared.update_if_current(self.generation, |i| {
                    i.status = Status::Crashed;
                    i.exit_code = code;
                    i.error = error.or_else(|| (!ready).then_some(message));
                });
            }
            break code;
        };
        let _ = exit_tx.send(Some(code));
    }

    /// Waits for the process to exit, marking the server running once it is ready: the
    /// listening socket on its port belongs to this process tree and answers HTTP. A port
    /// held by anyone else never counts (the server then fails with "port in use", and the
    /// start is retried elsewhere). Returns the exit status and whether it was ever ready.
    async fn watch(
        &self,
        attempt: &mut Attempt,
    ) -> (std::io::Result<std::process::ExitStatus>, bool) {
        let (port, pid) = (attempt.port, attempt.pid);
        let mut ready = false;
        let mut told_foreign = false;
        let mut probe = tokio::time::interval(PROBE_INTERVAL);
        // A line naming the port (Vite's `Local: http://127.0.0.1:<port>/`) checks at once.
        let mut output = self.shared.logs.subscribe();
        let needle = format!(":{port}");
        let mut output_open = true;
        loop {
            tokio::select! {
                status = attempt.child.wait() => return (status, ready),
                line = output.recv(), if !ready && output_open => {
                    let names_port = match line {
                        Ok(l) => l.source == Source::Server && l.line.contains(&needle),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                        Err(_) => {
                            output_open = false;
                            false
                        }
                    };
                    if names_port {
                        probe.reset_immediately();
                    }
                }
                _ = probe.tick(), if !ready => {
                    let owner = tokio::task::spawn_blocking(move || listener_owner(port, pid))
                        .await
                        .unwrap_or(Owner::Unknown);
                    let ours = match owner {
                        Owner::Ours => true,
                        // The tree's open files could not be read: fall back on the server
                        // naming its own port in its output.
                        Owner::Unknown => printed_port(&self.shared.logs, attempt.log_from, port),
                        Owner::Foreign => {
                            if !told_foreign {
                                told_foreign = true;
                                self.shared.logs.push(
                                    Stream::System,
                                    Source::Server,
                                    &format!("port {port} is held by another process; not ready until the dev server holds it"),
                                );
                            }
                            false
                        }
                        Owner::Nobody => false,
                    };
                    if ours && answers_http(port).await {
                        ready = true;
                        let became_ready = self.shared.update_if_current(self.generation, |i| {
                            if i.status == Status::Starting {
                                i.status = Status::Running;
                            }
                        });
                        if became_ready {
                            self.shared.logs.push(
                                Stream::System,
                                Source::Server,
                                &format!("dev server ready on port {port}"),
                            );
                        }
                    }
                }
            }
        }
    }
}

fn exit_text(code: Option<i32>) -> String {
    code.map_or("a signal".to_string(), |c| format!("code {c}"))
}

/// Waits (at most 3 s) until nothing accepts connections on `port`.
async fn wait_port_closed(port: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline
        && tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// True when something on 127.0.0.1:`port` answers an HTTP request with an HTTP status line.
async fn answers_http(port: u16) -> bool {
    use tokio::io::AsyncWriteExt;
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let request = format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 8];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1."))
    };
    matches!(
        tokio::time::timeout(HTTP_CHECK_TIMEOUT, attempt).await,
        Ok(Some(true))
    )
}

/// True when the server's output since `from` names `port` (Vite's `Local: http://…:port/`).
fn printed_port(logs: &LogBuffer, from: u64, port: u16) -> bool {
    let needle = format!(":{port}");
    logs.since(from).0.iter().any(|l| {
        l.source == Source::Server && l.stream != Stream::System && l.line.contains(&needle)
    })
}

/// The dev server's own last line that reads like an error (else its last line) since `from`,
/// without colour codes, at most 300 characters.
fn failure_line(logs: &LogBuffer, from: u64) -> Option<String> {
    let (lines, _) = logs.since(from);
    let own: Vec<String> = lines
        .iter()
        .filter(|l| l.source == Source::Server && l.stream != Stream::System)
        .map(|l| strip_ansi(&l.line).trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let errorish = |l: &&String| {
        let lower = l.to_ascii_lowercase();
        lower.contains("error") || lower.contains("in use") || lower.contains("eaddrinuse")
    };
    let line = own.iter().rev().find(errorish).or(own.last())?;
    Some(line.chars().take(300).collect())
}

async fn pump_lines<R: AsyncRead + Unpin>(mut reader: R, logs: Arc<LogBuffer>, stream: Stream) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut lines = LineSplitter::default();
    let emit = |line: &str| {
        logs.push(stream, Source::Server, line);
    };
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => lines.feed(&buf[..n], emit),
        }
    }
    lines.finish(emit);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn supervisor(dir: &std::path::Path) -> (Supervisor, Arc<LogBuffer>) {
        let logs = Arc::new(LogBuffer::new(1000));
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        let ports = Arc::new(PortAllocator::with_ephemeral(
            base..=base.saturating_add(20),
            None,
        ));
        (
            // Process handling without the jail; the jail has its own tests (tests/jail.rs).
            Supervisor::new(
                dir.to_path_buf(),
                logs.clone(),
                ports,
                Jail::unconfined(Default::default()),
            ),
            logs,
        )
    }

    /// A dev server stand-in: python is not guaranteed, node is (the agent needs it anyway).
    const SERVER: &str = "exec node -e \"require('http').createServer((q,s)=>s.end('hi')).listen(process.env.PORT,'127.0.0.1',()=>console.log('listening {port}'))\"";

    #[tokio::test]
    async fn start_ready_stop() {
        let dir = tempfile::tempdir().unwrap();
        let (sup, logs) = supervisor(dir.path());
        let info = sup.start(Some(SERVER.into())).await.unwrap();
        assert_eq!(info.status, Status::Starting);
        let port = info.port.unwrap();
        let again = sup.start(Some("false".into())).await.unwrap();
        assert_eq!(again.pid, info.pid, "start is idempotent");

        let ready = sup.wait_ready(Duration::from_secs(10)).await;
        assert_eq!(ready.status, Status::Running);
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        let stopped = sup.stop().await;
        assert_eq!(stopped.status, Status::Stopped);
        assert_eq!(stopped.port, None);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "server is gone"
        );
        let text: Vec<String> = logs.since(0).0.into_iter().map(|l| l.line).collect();
        assert!(
            text.iter().any(|l| l == &format!("listening {port}")),
            "{text:?}"
        );
    }

    #[tokio::test]
    async fn crash_is_reported_not_restarted() {
        let dir = tempfile::tempdir().unwrap();
        let (sup, logs) = supervisor(dir.path());
        sup.start(Some(
            "echo starting; sleep 0.2; echo fatal >&2; exit 7".into(),
        ))
        .await
        .unwrap();
        let mut rx = sup.subscribe();
        tokio::time::timeout(
            Duration::from_secs(5),
            rx.wait_for(|i| i.status == Status::Crashed),
        )
        .await
        .expect("crash reported")
        .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let info = sup.info();
        assert_eq!(
            (info.status, info.exit_code, info.restarts),
            (Status::Crashed, Some(7), 0)
        );
        let lines: Vec<_> = logs
            .since(0)
            .0
            .into_iter()
            .map(|l| (l.stream, l.line))
            .collect();
        assert!(lines.contains(&(Stream::Stderr, "fatal".into())));

        // An explicit restart runs it again and counts.
        let info = sup.restart(Some(SERVER.into())).await.unwrap();
        assert_eq!(info.restarts, 1);
        assert_eq!(
            sup.wait_ready(Duration::from_secs(10)).await.status,
            Status::Running
        );
        sup.shutdown().await;
        assert_eq!(sup.info().status, Status::Stopped);
    }

    #[tokio::test]
    async fn stop_kills_children_that_ignore_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let (sup, _) = supervisor(dir.path());
        let info = sup
            .start(Some(format!(
                "(trap '' TERM; sleep 60) & echo $! > child.pid; {SERVER}"
            )))
            .await
            .unwrap();
        assert_eq!(
            sup.wait_ready(Duration::from_secs(10)).await.status,
            Status::Running
        );
        let pid: i32 = std::fs::read_to_string(dir.path().join("child.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        sup.stop().await;
        assert_eq!(sup.info().status, Status::Stopped);
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while !gone(pid) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            gone(pid),
            "a child that ignores SIGTERM is killed with its group"
        );
        assert!(gone(info.pid.unwrap() as i32));
    }

    /// Like `SERVER`, but exits 1 with Vite's message when the port is taken.
    const STRICT_SERVER: &str = "exec node -e \"require('http').createServer((q,s)=>s.end('ours')).on('error',()=>{console.error('error: Port '+process.env.PORT+' is already in use');process.exit(1)}).listen(process.env.PORT,'127.0.0.1')\"";

    fn log_text(logs: &LogBuffer) -> Vec<String> {
        logs.since(0).0.into_iter().map(|l| l.line).collect()
    }

    async fn wait_for_log(logs: &LogBuffer, needle: &str) {
        let mut rx = logs.subscribe();
        if log_text(logs).iter().any(|l| l.contains(needle)) {
            return;
        }
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match rx.recv().await {
                    Ok(line) if line.line.contains(needle) => return,
                    Ok(_) => {}
                    Err(_) => {
                        if log_text(logs).iter().any(|l| l.contains(needle)) {
                            return;
                        }
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no log line with {needle:?}: {:?}", log_text(logs)));
    }

    /// A foreign HTTP server on `port` answering "foreign" to everything, until dropped.
    fn squat(port: u16) -> std::thread::JoinHandle<()> {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { break };
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                if buf.starts_with(b"QUIT") {
                    break;
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nforeign",
                );
            }
        })
    }

    fn get_body(port: u16) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.rsplit("\r\n\r\n").next().unwrap_or("").to_string()
    }

    #[tokio::test]
    async fn a_foreign_listener_on_our_port_is_never_ready_and_the_start_moves_on() {
        let dir = tempfile::tempdir().unwrap();
        let (sup, logs) = supervisor(dir.path());
        // The server waits for the gate, so the squatter can take its port first.
        let info = sup
            .start(Some(format!(
                "while [ ! -e gate ]; do sleep 0.02; done; {STRICT_SERVER}"
            )))
            .await
            .unwrap();
        let squatted = info.port.unwrap();
        let squatter = squat(squatted);
        // The readiness check has seen the squatter and refused it.
        wait_for_log(
            &logs,
            &format!("port {squatted} is held by another process"),
        )
        .await;
        assert_eq!(sup.info().status, Status::Starting);
        std::fs::write(dir.path().join("gate"), "").unwrap();

        let ready = sup.wait_ready(Duration::from_secs(20)).await;
        assert_eq!(ready.status, Status::Running, "{:?}", log_text(&logs));
        let port = ready.port.unwrap();
        assert_ne!(port, squatted);
        assert_eq!(get_body(port), "ours");
        let text = log_text(&logs);
        assert!(
            !text.contains(&format!("dev server ready on port {squatted}")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|l| l
                .starts_with(&format!("dev server did not start on port {squatted}"))
                && l.contains("already in use")),
            "{text:?}"
        );
        sup.shutdown().await;
        // Ends the squatter's accept loop.
        let mut quit = std::net::TcpStream::connect(("127.0.0.1", squatted)).unwrap();
        std::io::Write::write_all(&mut quit, b"QUIT").unwrap();
        squatter.join().unwrap();
    }

    #[tokio::test]
    async fn a_crashed_first_start_is_retried_on_another_port() {
        let dir = tempfile::tempdir().unwrap();
        let (sup, logs) = supervisor(dir.path());
        let first = sup
            .start(Some(format!(
                "if [ ! -e tried ]; then touch tried; echo 'boom: first start failed' >&2; exit 1; fi; {SERVER}"
            )))
            .await
            .unwrap();
        let ready = sup.wait_ready(Duration::from_secs(20)).await;
        assert_eq!(ready.status, Status::Running, "{:?}", log_text(&logs));
        assert_ne!(ready.port, first.port);
        assert_eq!(
            (ready.exit_code, ready.restarts, ready.error.clone()),
            (None, 0, None)
        );
        assert!(log_text(&logs)
            .iter()
            .any(|l| l.contains("retrying on port") && l.contains("boom: first start failed")));
        sup.shutdown().await;
    }

    #[tokio::test]
    async fn a_start_that_keeps_failing_is_reported_with_the_servers_own_error() {
        let dir = tempfile::tempdir().unwrap();
        let (sup, logs) = supervisor(dir.path());
        sup.start(Some(
            "echo 'vite v7'; echo \"error: Port $PORT is already in use\" >&2; exit 1".into(),
        ))
        .await
        .unwrap();
        let down = sup.wait_ready(Duration::from_secs(20)).await;
        assert_eq!((down.status, down.exit_code), (Status::Crashed, Some(1)));
        let port = down.port.unwrap();
        assert_eq!(
            down.error.as_deref(),
            Some(format!("error: Port {port} is already in use").as_str())
        );
        let text = log_text(&logs);
        let starts = text
            .iter()
            .filter(|l| l.starts_with("starting dev server"))
            .count();
        assert_eq!(starts as u32, MAX_START_ATTEMPTS, "{text:?}");
        assert!(!text.iter().any(|l| l.contains("ready on port")));
    }

    fn gone(pid: i32) -> bool {
        (unsafe { libc::kill(pid, 0) }) != 0 || is_zombie(pid)
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
    }
}

//! Supervisor for a workspace's long-running dev server.
//!
//! States: `stopped → starting → running`, and `crashed` when the process exits without being
//! asked to. A crashed server stays crashed (with its exit code) until a client starts or
//! restarts it: restarting forever would hide the error the fix loop needs to see.
//! `running` means the allocated port accepts TCP connections. Start, stop and restart are
//! serialised per workspace; starting a server that is starting or running is a no-op.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use crate::api_error::{ApiError, ApiResult};
use crate::exec::{kill_group, quota_message, spawn_shell};
use crate::jail::{spawn_disk_watch, Jail};
use crate::logs::{now_ms, LineSplitter, LogBuffer, Source, Stream};
use crate::ports::PortAllocator;

/// The status the API reports (`byte_protocol::process`); `Status` for short here.
pub use byte_protocol::process::{ServerInfo, ServerStatus as Status};

/// The command used when a start request names none.
pub const DEFAULT_DEV_COMMAND: &str = "npm run dev -- --port {port} --host 127.0.0.1 --strictPort";

/// How often a running server's workspace is measured against the disk quota.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(5);

/// How often a starting server's port is probed.
const PROBE_INTERVAL: Duration = Duration::from_millis(150);

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
    pgid: i32,
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
        let ports = &self.shared.ports;
        let port = ports
            .allocate()
            .ok_or_else(|| ApiError::unavailable("no free port left in SANDBOX_PORT_RANGE"))?;
        let command = template.replace("{port}", &port.to_string());
        let env = vec![("PORT".to_string(), port.to_string())];
        let mut child = match spawn_shell(&self.jail, &command, &self.cwd, &env) {
            Ok(child) => child,
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
        let pgid = pid as i32;

        let generation = {
            let mut g = self.shared.generation.lock().expect("generation lock");
            *g += 1;
            let restarts = self.shared.info.borrow().restarts;
            self.shared.info.send_replace(ServerInfo {
                status: Status::Starting,
                port: Some(port),
                pid: Some(pid),
                exit_code: None,
                restarts,
                started_at: Some(now_ms()),
                command: Some(command.clone()),
            });
            *g
        };
        let logs = &self.shared.logs;
        logs.push(
            Stream::System,
            Source::Server,
            &format!("starting dev server on port {port}: {command}"),
        );
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pump_lines(out, logs.clone(), Stream::Stdout));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pump_lines(err, logs.clone(), Stream::Stderr));
        }

        let stopping = Arc::new(AtomicBool::new(false));
        let (exit_tx, exited) = watch::channel(None);
        let shared = self.shared.clone();
        let stop_flag = stopping.clone();
        let disk_watch = self.jail.is_confined().then(|| {
            let logs = logs.clone();
            let limit = self.jail.limits().disk_bytes;
            spawn_disk_watch(self.cwd.clone(), limit, DISK_CHECK_EVERY, move |used| {
                logs.push(Stream::System, Source::Server, &quota_message(used, limit));
                kill_group(pgid, libc::SIGKILL);
            })
        });
        tokio::spawn(async move {
            let _disk_watch = disk_watch;
            let mut ready = false;
            let mut probe = tokio::time::interval(PROBE_INTERVAL);
            let status = loop {
                tokio::select! {
                    status = child.wait() => break status,
                    _ = probe.tick(), if !ready => {
                        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                            ready = true;
                            let became_ready = shared.update_if_current(generation, |i| {
                                if i.status == Status::Starting {
                                    i.status = Status::Running;
                                }
                            });
                            if became_ready {
                                shared.logs.push(Stream::System, Source::Server, &format!("dev server ready on port {port}"));
                            }
                        }
                    }
                }
            };
            // The leader is gone; whatever it left in its group goes too. SIGKILL is
            // delivered asynchronously, so wait for the port to close before reporting the
            // exit or handing the port to someone else.
            kill_group(pgid, libc::SIGKILL);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            while tokio::time::Instant::now() < deadline
                && tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            shared.ports.release(port);
            let code = status.ok().and_then(|s| s.code());
            if !stop_flag.load(Ordering::SeqCst) {
                let described = code.map_or("a signal".to_string(), |c| format!("code {c}"));
                shared.logs.push(
                    Stream::System,
                    Source::Server,
                    &format!("dev server exited unexpectedly with {described}"),
                );
                shared.update_if_current(generation, |i| {
                    i.status = Status::Crashed;
                    i.exit_code = code;
                });
            }
            let _ = exit_tx.send(Some(code));
        });

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
                kill_group(proc_.pgid, libc::SIGTERM);
                let exited = tokio::time::timeout(grace, proc_.exited.wait_for(|e| e.is_some()))
                    .await
                    .is_ok();
                if !exited {
                    kill_group(proc_.pgid, libc::SIGKILL);
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
        let ports = Arc::new(PortAllocator::new(base..=base.saturating_add(20)));
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
    const SERVER: &str = "exec node -e \"require('net').createServer(s=>s.end('hi')).listen(process.env.PORT,'127.0.0.1',()=>console.log('listening {port}'))\"";

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

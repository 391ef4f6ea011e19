//! The jail, attacked through the real agent: each test runs a workspace command that tries
//! to escape or exhaust the machine and asserts that the attempt fails or is contained, and
//! that the agent stays healthy and the app in another workspace still previews.
//!
//! The layout mimics `make dev`: a project directory with `.dev.vars` and `.wrangler/state`,
//! and the workspaces under `.wrangler/workspaces`. Needs `bwrap` (scripts/ensure-tools.sh
//! installs it).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::host_pids_running;

const SECRET: &str = "jail-test-agent-secret";
const DEV_VARS_SECRET: &str = "JWT_SECRET=jail-test-jwt-secret-8c1f";
const STATE_SECRET: &str = "d1-state-secret-71aa";
const OTHER_SECRET: &str = "other-workspace-secret-5e2d";
const HOST_ENV_SECRET: &str = "host-env-secret-90b3";
const MAX_PROCESSES: u64 = 64;
const FILE_SIZE: u64 = 1024 * 1024;
const DISK: u64 = 24 * 1024 * 1024;

/// A tiny dev server: answers every request with the content of `page.txt`.
const SERVER_JS: &str = "require('http').createServer((q, s) => s.end(require('fs').readFileSync('page.txt'))).listen(process.env.PORT, '127.0.0.1')";

static PORT_BLOCK: AtomicU16 = AtomicU16::new(0);

struct Agent {
    child: Child,
    base: String,
    http: reqwest::Client,
    /// The project directory (holds `.dev.vars`).
    project: PathBuf,
    /// SANDBOX_ROOT.
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Not after a test killed and reaped it: the pid may be someone else's by now.
        if let Ok(None) = self.child.try_wait() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.child.wait();
        }
    }
}

fn layout() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let project = dir.path().join("project");
    let root = project.join(".wrangler/workspaces");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(project.join(".wrangler/state")).unwrap();
    std::fs::write(project.join(".dev.vars"), format!("{DEV_VARS_SECRET}\n")).unwrap();
    std::fs::write(project.join(".wrangler/state/db.sqlite"), STATE_SECRET).unwrap();
    // Its own (empty) npm cache: nothing here installs packages.
    let cache = dir.path().join("npm-cache");
    std::fs::create_dir(&cache).unwrap();
    (dir, project, root, cache)
}

fn agent_command(root: &Path, cache: &Path) -> Command {
    let block = PORT_BLOCK.fetch_add(1, Ordering::SeqCst);
    let lo = 27000 + (std::process::id() % 40) as u16 * 100 + block * 5;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_byte-sandbox"));
    cmd.env("SANDBOX_SECRET", SECRET)
        .env("SANDBOX_LISTEN", "127.0.0.1:0")
        .env("SANDBOX_ROOT", root)
        .env("SANDBOX_TEMPLATES_DIR", root)
        .env("SANDBOX_PORT_RANGE", format!("{lo}-{}", lo + 4))
        .env("SANDBOX_NPM_CACHE", cache)
        .env("SANDBOX_MAX_PROCESSES", MAX_PROCESSES.to_string())
        .env("SANDBOX_FILE_SIZE_BYTES", FILE_SIZE.to_string())
        .env("SANDBOX_DISK_BYTES", DISK.to_string())
        .env("SANDBOX_MEMORY_BYTES", (1u64 << 30).to_string())
        .env("SANDBOX_TMP_BYTES", (8u64 << 20).to_string())
        .env("SANDBOX_LOG", "warn")
        .env("HOST_ONLY_VAR", HOST_ENV_SECRET)
        .env_remove("SANDBOX_UNCONFINED")
        .env_remove("SANDBOX_BWRAP")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

impl Agent {
    /// Starts the agent with workspace `app` serving "preview-ok" and workspace `other`
    /// holding a secret file.
    async fn start() -> Self {
        Self::start_with(&[], |_| {}).await
    }

    /// [`Agent::start`] with extra variables, after `prepare(root)` ran on the empty
    /// `SANDBOX_ROOT`.
    async fn start_with(env: &[(&str, &str)], prepare: impl FnOnce(&Path)) -> Self {
        let (dir, project, root, cache) = layout();
        prepare(&root);
        let mut child = agent_command(&root, &cache)
            .envs(env.iter().copied())
            .spawn()
            .expect("start byte-sandbox");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line.trim().rsplit(' ').next().unwrap_or("").to_string();
        if !base.starts_with("http://127.0.0.1:") {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("byte-sandbox did not start: {line:?} {err}");
        }
        let agent = Agent {
            child,
            base,
            http: reqwest::Client::new(),
            project,
            root,
            _dir: dir,
        };
        for ws in ["app", "other"] {
            let r = agent
                .call("PUT", &format!("/v1/workspaces/{ws}"), json!({}))
                .await;
            assert_eq!(r.0, 200, "{}", r.1);
        }
        agent
            .write(
                "app",
                &[("server.js", SERVER_JS), ("page.txt", "preview-ok")],
            )
            .await;
        agent.write("other", &[("secret.txt", OTHER_SECRET)]).await;
        let (s, b) = agent
            .call(
                "POST",
                "/v1/workspaces/app/process/start",
                json!({ "command": "exec node server.js" }),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        agent.assert_previews().await;
        agent
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(SECRET)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn write(&self, ws: &str, files: &[(&str, &str)]) {
        let files: Vec<Value> = files
            .iter()
            .map(|(p, c)| json!({ "path": p, "content": c }))
            .collect();
        let (s, b) = self
            .call(
                "POST",
                &format!("/v1/workspaces/{ws}/files"),
                json!({ "files": files }),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }

    /// Runs `command` in workspace `app`; returns (exit code, stdout, stderr, whole reply).
    async fn exec(&self, command: &str) -> (Option<i64>, String, String, Value) {
        self.exec_in("app", command, 60_000).await
    }

    async fn exec_in(
        &self,
        ws: &str,
        command: &str,
        timeout_ms: u64,
    ) -> (Option<i64>, String, String, Value) {
        let (s, b) = self
            .call(
                "POST",
                &format!("/v1/workspaces/{ws}/exec"),
                json!({ "command": command, "timeoutMs": timeout_ms }),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        (
            b["exitCode"].as_i64(),
            b["stdout"].as_str().unwrap_or("").to_string(),
            b["stderr"].as_str().unwrap_or("").to_string(),
            b,
        )
    }

    /// The agent is healthy and the app's dev server answers through the preview proxy.
    async fn assert_previews(&self) {
        let health = self
            .http
            .get(format!("{}/health", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self
                .http
                .get(format!("{}/v1/workspaces/app/preview/", self.base))
                .bearer_auth(SECRET)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            if status == 200 && body == "preview-ok" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the app no longer previews: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn assert_gone_soon(marker: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !host_pids_running(marker).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(host_pids_running(marker), Vec::<i32>::new(), "{what}");
}

#[tokio::test]
async fn project_secrets_are_invisible_by_relative_and_absolute_paths() {
    let agent = Agent::start().await;
    let project = agent.project.display().to_string();
    for command in [
        "cat ../../.dev.vars".to_string(),
        "cat ../../../.dev.vars".to_string(),
        "cat /.dev.vars".to_string(),
        format!("cat {project}/.dev.vars"),
        format!("cat {project}/.wrangler/state/db.sqlite"),
        format!("ls -la {project}"),
        format!(
            "cat {}/.dev.vars",
            std::env::current_dir().unwrap().display()
        ),
    ] {
        let (code, out, err, _) = agent.exec(&command).await;
        assert_ne!(code, Some(0), "`{command}` succeeded: {out}");
        assert!(
            !out.contains("jail-test-jwt")
                && !out.contains(STATE_SECRET)
                && !err.contains("jail-test-jwt"),
            "`{command}` leaked: {out} {err}"
        );
    }
    // The system is there, read-only, but its secrets are not.
    let (code, out, _, b) = agent
        .exec("test -x /usr/bin/node && node -e 'console.log(1+1)'")
        .await;
    assert_eq!((code, out.as_str()), (Some(0), "2\n"), "{b}");
    let (code, _, _, _) = agent.exec("cat /etc/shadow").await;
    assert_ne!(code, Some(0), "/etc/shadow is readable");
    agent.assert_previews().await;
}

#[tokio::test]
async fn other_workspaces_cannot_be_read_or_written() {
    let agent = Agent::start().await;
    let root = agent.root.display().to_string();
    for command in [
        "cat ../other/secret.txt".to_string(),
        format!("cat {root}/other/secret.txt"),
        format!("ls {root}"),
        "echo pwned > ../other/secret.txt".to_string(),
        "echo pwned > ../other/new.txt".to_string(),
        format!("echo pwned > {root}/other/secret.txt"),
    ] {
        let (code, out, _, _) = agent.exec(&command).await;
        assert_ne!(code, Some(0), "`{command}` succeeded: {out}");
        assert!(!out.contains(OTHER_SECRET), "`{command}` leaked: {out}");
    }
    // (The host's /tmp, where this test's project lives, is the jail's private tmpfs: this
    // succeeds there and must change nothing on the host.)
    agent.exec(&format!("mkdir -p {root}/other/x")).await;
    assert_eq!(
        std::fs::read_to_string(agent.root.join("other/secret.txt")).unwrap(),
        OTHER_SECRET
    );
    assert!(!agent.root.join("other/new.txt").exists());
    assert!(!agent.root.join("other/x").exists());
    // The workspace itself is writable, and writes land in it.
    let (code, _, _, b) = agent.exec("mkdir -p out && echo mine > out/f.txt").await;
    assert_eq!(code, Some(0), "{b}");
    assert_eq!(
        std::fs::read_to_string(agent.root.join("app/out/f.txt")).unwrap(),
        "mine\n"
    );
    agent.assert_previews().await;
}

#[tokio::test]
async fn host_processes_and_environment_are_invisible() {
    let agent = Agent::start().await;
    let agent_pid = agent.child.id();
    // Only the run's own processes (its namespace's init, the shell, ls) are in /proc.
    let (code, out, _, b) = agent.exec("ls /proc | grep -c '^[0-9]'").await;
    assert_eq!(code, Some(0), "{b}");
    let visible: u32 = out.trim().parse().unwrap();
    assert!(
        visible <= 5,
        "{visible} processes visible: the host's pids leak"
    );
    let (_, out, _, _) = agent
        .exec(&format!(
            "cat /proc/{agent_pid}/environ /proc/{agent_pid}/cmdline; cat /proc/*/environ | tr '\\0' '\\n'; env"
        ))
        .await;
    for leaked in [SECRET, HOST_ENV_SECRET, "HOST_ONLY_VAR"] {
        assert!(!out.contains(leaked), "{leaked} visible inside: {out}");
    }
    // Nor can a jailed process signal the agent (it cannot name it).
    let (_, _, _, _) = agent.exec(&format!("kill -9 {agent_pid}")).await;
    agent.assert_previews().await;
}

#[tokio::test]
async fn writes_outside_the_workspace_fail() {
    let agent = Agent::start().await;
    let host_tmp = format!("/tmp/byte-jail-test-{}", std::process::id());
    let project = agent.project.display().to_string();
    for command in [
        "echo x > /usr/pwned".to_string(),
        "echo x > /etc/pwned".to_string(),
        "echo x > /pwned".to_string(),
        "echo x > ../pwned".to_string(),
        format!("echo x > {project}/pwned"),
        "echo x >> /etc/hosts".to_string(),
    ] {
        let (code, _, _, b) = agent.exec(&command).await;
        assert_ne!(code, Some(0), "`{command}` succeeded: {b}");
    }
    assert!(!agent.project.join("pwned").exists());
    assert!(!agent.root.join("pwned").exists());
    assert!(!Path::new("/usr/pwned").exists() && !Path::new("/etc/pwned").exists());
    // /tmp is writable but private to the run.
    let (code, _, _, b) = agent
        .exec(&format!("echo x > {host_tmp} && cat {host_tmp}"))
        .await;
    assert_eq!(code, Some(0), "{b}");
    assert!(
        !Path::new(&host_tmp).exists(),
        "the jail's /tmp is the host's"
    );
    agent.assert_previews().await;
}

#[tokio::test]
async fn a_fork_bomb_is_bounded_and_the_agent_stays_healthy() {
    let agent = Agent::start().await;
    // Counted: far more sleepers than the limit are asked for; each one started appends a
    // line (a shell builtin, no fork), and the shell dies when it cannot fork.
    let (code, _, _, b) = agent
        .exec("i=0; while [ $i -lt 300 ]; do sleep 63.0421 & echo x >> started; i=$((i+1)); done")
        .await;
    assert_ne!(code, Some(0), "300 processes started: {b}");
    let started = std::fs::read_to_string(agent.root.join("app/started"))
        .unwrap()
        .lines()
        .count() as u64;
    assert!(
        started > 0 && started <= MAX_PROCESSES,
        "{started} processes ran with a limit of {MAX_PROCESSES}"
    );
    assert_gone_soon("63.0421", "sleepers outlived their run").await;
    // The real thing, stopped by its timeout.
    let (_, _, _, b) = agent
        .exec_in("app", "bomb() { bomb | bomb & }; bomb; sleep 3", 20_000)
        .await;
    assert!(b["exitCode"].is_number() || b["timedOut"] == true, "{b}");
    agent.assert_previews().await;
    let (code, out, _, _) = agent.exec_in("other", "echo still-works", 10_000).await;
    assert_eq!((code, out.as_str()), (Some(0), "still-works\n"));
}

#[tokio::test]
async fn setsid_children_die_with_their_run() {
    let agent = Agent::start().await;
    // A command that detaches a child into a session of its own and exits at once.
    let (code, _, _, b) = agent
        .exec("setsid sleep 64.0137 </dev/null >/dev/null 2>&1 & echo detached")
        .await;
    assert_eq!(code, Some(0), "{b}");
    assert_gone_soon("64.0137", "a setsid child outlived its command").await;
    // One killed by a timeout.
    let (_, _, _, b) = agent
        .exec_in(
            "app",
            "setsid sleep 64.0138 </dev/null >/dev/null 2>&1 & sleep 30",
            500,
        )
        .await;
    assert_eq!(b["timedOut"], true, "{b}");
    assert_gone_soon("64.0138", "a setsid child outlived its timed-out command").await;
    // And one started by a dev server that is stopped.
    let (s, b) = agent
        .call(
            "POST",
            "/v1/workspaces/other/process/start",
            json!({ "command": "setsid sleep 64.0139 </dev/null >/dev/null 2>&1 & exec node -e 'setInterval(()=>{}, 1000)'" }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while host_pids_running("64.0139").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the dev server's child never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, b) = agent
        .call("POST", "/v1/workspaces/other/process/stop", json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_gone_soon("64.0139", "a setsid child outlived its dev server").await;
    agent.assert_previews().await;
}

#[tokio::test]
async fn file_size_disk_and_memory_limits_hold() {
    let agent = Agent::start().await;
    // One file over RLIMIT_FSIZE: the write fails and the file stops at the limit.
    let (code, _, _, b) = agent
        .exec(&format!("head -c {} /dev/zero > big", FILE_SIZE * 2))
        .await;
    assert_ne!(code, Some(0), "{b}");
    let size = std::fs::metadata(agent.root.join("app/big")).unwrap().len();
    assert!(
        size <= FILE_SIZE,
        "wrote {size} bytes with a limit of {FILE_SIZE}"
    );
    // Many files under the size limit: the disk quota stops the run.
    let (_, out, err, b) = agent
        .exec_in(
            "app",
            "mkdir -p fill; i=0; while [ $i -lt 2000 ]; do \
             head -c 900000 /dev/zero > fill/$i || exit 9; i=$((i+1)); sleep 0.02; done; echo finished",
            120_000,
        )
        .await;
    assert!(
        !out.contains("finished"),
        "the quota never stopped the run: {b}"
    );
    assert_eq!(b["timedOut"], false, "{b}");
    assert!(err.contains("disk quota"), "{b}");
    // Nor can the file API take it further.
    let (s, b) = agent
        .call(
            "POST",
            "/v1/workspaces/app/files",
            json!({ "files": [{ "path": "more.txt", "content": "x" }] }),
        )
        .await;
    assert_eq!(s, 413, "{b}");
    std::fs::remove_dir_all(agent.root.join("app/fill")).unwrap();
    // Memory: allocating past RLIMIT_DATA fails inside node instead of eating the host.
    let (code, out, _, b) = agent
        .exec(
            "node -e \"const a=[]; try { for (let i=0;i<64;i++) a.push(Buffer.alloc(1<<26, 1)); console.log('allocated', a.length) } catch (e) { console.log('refused') }\"",
        )
        .await;
    assert!(
        out.contains("refused") || code != Some(0),
        "4 GiB allocated under a 1 GiB limit: {b}"
    );
    // /tmp is bounded too.
    let (code, _, _, b) = agent.exec("head -c 20000000 /dev/zero > /tmp/fill").await;
    assert_ne!(code, Some(0), "{b}");
    agent.assert_previews().await;
}

#[test]
fn refuses_to_start_without_a_working_jail_unless_told_unconfined() {
    let (_dir, _project, root, cache) = layout();
    let out = agent_command(&root, &cache)
        .env("SANDBOX_BWRAP", "/nonexistent/bwrap")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "it announced itself ready");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SANDBOX_UNCONFINED"), "{err}");

    // A "bwrap" that cannot build the jail fails the self-test, with bwrap's error.
    let out = agent_command(&root, &cache)
        .env("SANDBOX_BWRAP", "/bin/false")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("jail does not work"), "{err}");

    let mut child = agent_command(&root, &cache)
        .env("SANDBOX_BWRAP", "/nonexistent/bwrap")
        .env("SANDBOX_UNCONFINED", "1")
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line}");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    child.wait().unwrap();
    assert!(err.contains("UNCONFINED"), "no loud warning: {err}");
}

/// A detached runaway started by a run (`node -e` with `marker` on its command line).
fn lingerer(marker: &str) -> String {
    format!("node -e 'setInterval(() => {{}}, 1000)' {marker}")
}

async fn wait_started(marker: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while host_pids_running(marker).len() < count {
        assert!(
            Instant::now() < deadline,
            "only {:?} of {count} processes with {marker} started",
            host_pids_running(marker)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kills the agent with SIGKILL (no code of its runs) while a dev server, a command and a
/// `setsid` escapee run, and checks that none of them survives it.
async fn killed_agent_leaves_nothing(env: &[(&str, &str)], marker: &str, escapee: bool) {
    let mut agent = Agent::start_with(env, |_| {}).await;
    let (s, b) = agent
        .call(
            "POST",
            "/v1/workspaces/other/process/start",
            json!({ "command": format!("exec {}-server", lingerer(marker)) }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let detached = if escapee {
        format!(
            "setsid {}-escapee </dev/null >/dev/null 2>&1 & ",
            lingerer(marker)
        )
    } else {
        String::new()
    };
    let command = format!("{detached}exec {}-command", lingerer(marker));
    let (http, url) = (
        agent.http.clone(),
        format!("{}/v1/workspaces/app/exec", agent.base),
    );
    // Never answered: the agent dies first.
    let pending = tokio::spawn(async move {
        let _ = http
            .post(url)
            .bearer_auth(SECRET)
            .json(&json!({ "command": command, "timeoutMs": 600000 }))
            .send()
            .await;
    });
    wait_started(marker, if escapee { 3 } else { 2 }).await;
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGKILL) };
    let _ = agent.child.wait();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !host_pids_running(marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes outlived the killed agent: {:?}",
            host_pids_running(marker)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pending.abort();
}

#[tokio::test]
async fn nothing_outlives_a_killed_agent() {
    killed_agent_leaves_nothing(&[], &format!("outlive-jailed-{}", std::process::id()), true).await;
}

/// Unconfined runs have no pid namespace (a `setsid` escapee is not contained there, which
/// the README says), but their process groups still die with the agent.
#[tokio::test]
async fn nothing_outlives_a_killed_unconfined_agent() {
    killed_agent_leaves_nothing(
        &[("SANDBOX_UNCONFINED", "1")],
        &format!("outlive-unconfined-{}", std::process::id()),
        false,
    )
    .await;
}

/// A workspace made before the jail (owned by root) is given to the jail's uid when the
/// agent starts, except files shared with the prepared dependencies' store: those keep
/// their owner and stay read-only, so no jailed process can change what other workspaces
/// read.
#[tokio::test]
async fn re_owning_an_old_workspace_leaves_shared_dependencies_read_only() {
    use std::os::unix::fs::MetadataExt;
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only a root agent re-owns workspaces");
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let shared = store.path().join("index.js");
    std::fs::write(&shared, "module.exports = 'store';\n").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o444)).unwrap();
    let agent = Agent::start_with(&[], |root| {
        let ws = root.join("old");
        std::fs::create_dir_all(ws.join("node_modules/dep")).unwrap();
        std::fs::write(ws.join("own.txt"), "own").unwrap();
        std::fs::hard_link(&shared, ws.join("node_modules/dep/index.js")).unwrap();
    })
    .await;
    let ws = agent.root.join("old");
    let jail_uid = std::fs::metadata(agent.root.join("app")).unwrap().uid();
    assert_ne!(jail_uid, 0);
    assert_eq!(std::fs::metadata(&ws).unwrap().uid(), jail_uid, "re-owned");
    assert_eq!(
        std::fs::metadata(ws.join("own.txt")).unwrap().uid(),
        jail_uid
    );
    let meta = std::fs::metadata(&shared).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o777),
        (0, 0o444),
        "the shared inode is untouched"
    );
    for attack in [
        "echo pwned >> node_modules/dep/index.js",
        "chmod u+w node_modules/dep/index.js",
        "chown 1000 node_modules/dep/index.js",
    ] {
        let (code, out, _, b) = agent.exec_in("old", attack, 30_000).await;
        assert_ne!(code, Some(0), "`{attack}` succeeded: {out} {b}");
    }
    // The workspace may still replace the file (npm does): its own copy, not the store's.
    let (code, _, _, b) = agent
        .exec_in(
            "old",
            "rm -f node_modules/dep/index.js && echo mine > node_modules/dep/index.js",
            30_000,
        )
        .await;
    assert_eq!(code, Some(0), "{b}");
    assert_eq!(
        std::fs::read_to_string(&shared).unwrap(),
        "module.exports = 'store';\n"
    );
    let meta = std::fs::metadata(&shared).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o444));
}

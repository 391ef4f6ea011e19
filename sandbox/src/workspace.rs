//! Workspaces and their registry.
//!
//! A workspace is a directory `SANDBOX_ROOT/<id>` plus in-memory state: its log, its dev
//! server supervisor, the process groups of running commands, and which files were written
//! when (to tell current errors from stale ones). Creation from a template is atomic: files
//! are copied into a hidden temporary directory that is renamed into place, so a workspace
//! either exists complete or not at all. A workspace made from a template gets the
//! template's prepared `node_modules` (`crate::deps`) linked in before the rename.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::api_error::{ApiError, ApiResult};
use crate::config::Config;
use crate::deps::{link_tree, may_share, DepStore, Prepared};
use crate::errors::{parse_lines, strip_ansi, Diagnostic, Kind, PathMapper};
use crate::exec::ProcessGroups;
use crate::jail::{chown_tree, Jail};
use crate::logs::{LogBuffer, LogLine, Source, Stream};
use crate::paths::WorkspaceId;
use crate::ports::PortAllocator;
use crate::process::{Status, Supervisor};
use crate::proxy::HttpClient;

/// Entries of a template directory that are not app files.
const TEMPLATE_SKIP: &[&str] = &["node_modules", "dist", ".git", "template.json"];
/// Extensions of files the dev server transforms, worth asking it about.
const PROBED_EXTENSIONS: &[&str] = &[
    "js", "jsx", "mjs", "cjs", "ts", "tsx", "mts", "cts", "css", "vue", "svelte",
];
const MAX_PROBES: usize = 50;
/// How often file writes re-measure the workspace against its disk quota.
const DISK_MEASURE_EVERY: Duration = Duration::from_secs(10);
/// How long a written file keeps being re-checked by the errors endpoint.
const RECENT_WRITE: Duration = Duration::from_secs(30);

pub struct Workspace {
    pub id: WorkspaceId,
    /// Canonical path of the workspace directory.
    pub root: PathBuf,
    pub logs: Arc<LogBuffer>,
    pub server: Supervisor,
    /// The warm type checker (`crate::checker`).
    pub checker: Arc<crate::checker::Checker>,
    pub execs: ProcessGroups,
    /// Set when the workspace is deleted, so live log streams end.
    pub closed: tokio::sync::watch::Sender<bool>,
    mapper: PathMapper,
    freshness: Mutex<Freshness>,
    /// Whether the dev server has seen the latest writes (read-after-write for the preview).
    pub preview: Arc<crate::hmr::Freshness>,
    /// The last measure of the workspace's disk use, and when it was taken.
    disk: tokio::sync::Mutex<Option<(tokio::time::Instant, u64)>>,
    /// The key of the prepared dependencies `node_modules` was linked from, while no command
    /// has run since (see `crate::deps`).
    linked_deps: Mutex<Option<String>>,
}

/// What the errors endpoint needs to drop stale errors.
#[derive(Default)]
struct Freshness {
    /// Per file: the log sequence number from which its errors are current (its last write
    /// through the API).
    file_since: HashMap<String, u64>,
    /// Per file: when the dev server last transformed it without error; older transform
    /// errors (not runtime errors) about it are stale.
    transform_clean_since: HashMap<String, u64>,
    /// Sequence number of the last write of any file.
    any_since: u64,
    /// Recently written files and when: each `errors` call asks the dev server about them
    /// again (cheap, it caches transforms), so a watcher slower than the preview's wait
    /// only delays an error instead of hiding it.
    recent: HashMap<String, tokio::time::Instant>,
}

impl Workspace {
    fn new(
        id: WorkspaceId,
        configured_root: PathBuf,
        root: PathBuf,
        log_lines: usize,
        ports: Arc<PortAllocator>,
        jail: Arc<Jail>,
    ) -> Self {
        let logs = Arc::new(LogBuffer::new(log_lines));
        // Jailed tools print paths under the jail's mount point.
        let mut roots = vec![configured_root, root.clone()];
        roots.extend(jail.inside_root().map(PathBuf::from));
        let mapper = PathMapper::new(&roots);
        let checker = Arc::new(crate::checker::Checker::new(jail.clone(), root.clone()));
        let server = Supervisor::new(root.clone(), logs.clone(), ports, jail);
        Workspace {
            id,
            root,
            logs,
            server,
            checker,
            execs: ProcessGroups::default(),
            closed: tokio::sync::watch::channel(false).0,
            mapper,
            freshness: Mutex::default(),
            preview: Arc::default(),
            disk: tokio::sync::Mutex::new(None),
            linked_deps: Mutex::new(None),
        }
    }

    /// A command is about to run: `node_modules` may no longer be the prepared tree.
    pub fn forget_linked_deps(&self) {
        *self.linked_deps.lock().expect("deps lock") = None;
    }

    /// The template whose prepared dependencies are in place and still match `package.json`
    /// and `package-lock.json`, so a dependency install has nothing to do.
    pub fn deps_up_to_date(&self) -> bool {
        let linked = self.linked_deps.lock().expect("deps lock").clone();
        let Some(key) = linked else {
            return false;
        };
        let node_modules = std::fs::symlink_metadata(self.root.join("node_modules"));
        node_modules.is_ok_and(|m| m.is_dir())
            && crate::deps::key_of_dir(&self.root).as_deref() == Some(key.as_str())
    }

    /// Drops the last disk measure (a command just ran and may have written anything).
    pub async fn forget_disk_measure(&self) {
        *self.disk.lock().await = None;
    }

    /// Refuses a write of `adding` bytes that would take the workspace over `limit` (its disk
    /// quota). The workspace is measured at most every `DISK_MEASURE_EVERY` and after every
    /// command; writes in between are added to the last measure (a running dev server's own
    /// writes are bounded by its disk watch).
    pub async fn check_disk_room(&self, adding: u64, limit: u64) -> ApiResult<()> {
        let mut last = self.disk.lock().await;
        let (at, used) = match *last {
            Some((at, used)) if at.elapsed() < DISK_MEASURE_EVERY => (at, used),
            _ => {
                let root = self.root.clone();
                let used = tokio::task::spawn_blocking(move || crate::jail::disk_usage(&root))
                    .await
                    .map_err(|_| ApiError::internal("measuring the workspace was interrupted"))?;
                (tokio::time::Instant::now(), used)
            }
        };
        let after = used.saturating_add(adding);
        if after > limit {
            *last = Some((at, used));
            return Err(ApiError::validation_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the workspace would use {after} bytes, over its disk quota of {limit} bytes \
                     (SANDBOX_DISK_BYTES); delete files (node_modules included) first"
                ),
            ));
        }
        *last = Some((at, after));
        Ok(())
    }

    pub fn mapper(&self) -> &PathMapper {
        &self.mapper
    }

    /// Records that `paths` were just written: their older errors are stale.
    pub fn record_writes<'a>(&self, paths: impl IntoIterator<Item = &'a str>) {
        let seq = self.logs.next_seq();
        let paths: Vec<&str> = paths.into_iter().collect();
        {
            let mut f = self.freshness.lock().expect("freshness lock");
            for p in &paths {
                f.file_since.insert(p.to_string(), seq);
                f.recent.insert(p.to_string(), tokio::time::Instant::now());
            }
            f.any_since = seq;
        }
        self.preview.written(paths);
    }

    /// Makes sure an HMR client watches the dev server on `port` (see `crate::hmr`).
    pub fn watch_dev_server(&self, port: u16) {
        if self.preview.claim(port) {
            crate::hmr::spawn_watch(self.preview.clone(), port);
        }
    }

    /// Waits until the dev server has reported the writes made so far, so what it serves
    /// next reflects them (at once when nothing it served was written; see `crate::hmr`).
    pub async fn settle_writes(&self) {
        let root = self.root.clone();
        self.preview
            .wait(|file| {
                if let Ok(rel) = crate::paths::RelPath::parse(file) {
                    let _ = crate::files::touch(&root, &rel);
                }
            })
            .await;
    }

    /// Current errors, newest occurrence of each kept, in log order. With the dev server
    /// running, files written in the last 30 s and files with dev-server errors are first
    /// requested from it, so a syntax error shows up without a browser attached and a fixed
    /// file's old error goes away.
    pub async fn errors(&self, client: &HttpClient, since: u64) -> Vec<Diagnostic> {
        let info = self.server.info();
        if let (Status::Running, Some(port)) = (info.status, info.port) {
            self.watch_dev_server(port);
            self.settle_writes().await;
            let mut targets: BTreeSet<String> = {
                let mut f = self.freshness.lock().expect("freshness lock");
                f.recent.retain(|_, at| at.elapsed() < RECENT_WRITE);
                f.recent.keys().cloned().collect()
            };
            for (_, d) in self.collect_errors(since) {
                if matches!(d.kind, Kind::Vite | Kind::Esbuild | Kind::Build) {
                    if let Some(file) = d.file {
                        targets.insert(file);
                    }
                }
            }
            self.probe(client, port, targets).await;
        }
        self.collect_errors(since)
            .into_iter()
            .map(|(_, d)| d)
            .collect()
    }

    async fn probe(&self, client: &HttpClient, port: u16, files: BTreeSet<String>) {
        let files: Vec<String> = files
            .into_iter()
            .filter(|f| !f.starts_with("node_modules/"))
            .filter(|f| {
                let ext = f.rsplit('.').next().unwrap_or("");
                f.contains('.') && PROBED_EXTENSIONS.contains(&ext)
            })
            .take(MAX_PROBES)
            .collect();
        if files.is_empty() {
            return;
        }
        let before = self.logs.next_seq();
        for file in &files {
            // Transformed now: its later writes wait for the dev server to report them.
            self.preview.served(port, file.clone());
        }
        let probes = files.iter().map(|file| async move {
            let Ok(req) = Request::get(format!("http://127.0.0.1:{port}/{}", url_path(file)))
                .header("host", format!("127.0.0.1:{port}"))
                .header("accept", "*/*")
                .body(Body::empty())
            else {
                return (file.clone(), None);
            };
            let status =
                match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
                    Ok(Ok(resp)) => {
                        let status = resp.status();
                        // Drain so the connection can be reused.
                        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                        Some(status)
                    }
                    _ => None,
                };
            (file.clone(), status)
        });
        let results = futures_util::future::join_all(probes).await;
        let mut failed = false;
        {
            let mut f = self.freshness.lock().expect("freshness lock");
            for (file, status) in &results {
                match status {
                    Some(s) if s.is_success() || *s == StatusCode::NOT_MODIFIED => {
                        // Transformed cleanly now: earlier transform errors about it are stale.
                        f.transform_clean_since.insert(file.clone(), before);
                    }
                    Some(s) if s.is_server_error() => failed = true,
                    _ => {}
                }
            }
        }
        if failed {
            // The dev server logs the error as it answers; let those lines arrive.
            self.wait_for_quiet_log(Duration::from_millis(150), Duration::from_secs(2))
                .await;
        }
    }

    async fn wait_for_quiet_log(&self, quiet: Duration, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        let mut last = self.logs.next_seq();
        loop {
            tokio::time::sleep(quiet).await;
            let now = self.logs.next_seq();
            if now == last || tokio::time::Instant::now() >= deadline {
                return;
            }
            last = now;
        }
    }

    /// Parses the held log lines (from `since`) into errors with their sequence numbers and
    /// drops stale ones.
    fn collect_errors(&self, since: u64) -> Vec<(u64, Diagnostic)> {
        let (lines, _) = self.logs.since(since);
        // Dev-server output from before its latest start belongs to a dead process.
        let server_start = lines
            .iter()
            .rev()
            .find(|l| {
                l.source == Source::Server
                    && l.stream == Stream::System
                    && l.line.starts_with("starting dev server")
            })
            .map_or(0, |l| l.seq);
        let mut groups: HashMap<(Source, Stream), Vec<&LogLine>> = HashMap::new();
        for line in &lines {
            if line.stream == Stream::System
                || (line.source == Source::Server && line.seq < server_start)
            {
                continue;
            }
            groups
                .entry((line.source, line.stream))
                .or_default()
                .push(line);
        }
        let mut found: Vec<(u64, Diagnostic)> = Vec::new();
        for group in groups.values() {
            let text: Vec<String> = group.iter().map(|l| strip_ansi(&l.line)).collect();
            let refs: Vec<&str> = text.iter().map(String::as_str).collect();
            for (idx, diag) in parse_lines(&refs, &self.mapper) {
                found.push((group[idx].seq, diag));
            }
        }
        let f = self.freshness.lock().expect("freshness lock");
        found.retain(|(seq, d)| match &d.file {
            Some(file) => {
                let written = f.file_since.get(file).is_none_or(|since| seq >= since);
                let transform_ok = d.kind == Kind::Runtime
                    || d.kind == Kind::Typescript
                    || f.transform_clean_since
                        .get(file)
                        .is_none_or(|since| seq >= since);
                written && transform_ok
            }
            None => *seq >= f.any_since,
        });
        drop(f);
        // Newest occurrence of each error wins; output in log order.
        found.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        let mut seen = std::collections::HashSet::new();
        found.retain(|(_, d)| seen.insert(d.key()));
        found.reverse();
        found
    }
}

pub struct Registry {
    config: Arc<Config>,
    jail: Arc<Jail>,
    /// `SANDBOX_ROOT` as configured (made absolute) and canonical.
    configured_root: PathBuf,
    root: PathBuf,
    ports: Arc<PortAllocator>,
    deps: Arc<DepStore>,
    map: Mutex<HashMap<WorkspaceId, Arc<Workspace>>>,
    /// Serialises creation and deletion.
    lifecycle: tokio::sync::Mutex<()>,
}

static TEMP_DIRS: AtomicU64 = AtomicU64::new(0);

impl Registry {
    /// Creates `SANDBOX_ROOT` if needed and registers the workspaces already in it (given to
    /// the jail's uid if they were not).
    pub fn new(config: Arc<Config>, jail: Arc<Jail>) -> io::Result<Self> {
        std::fs::create_dir_all(&config.root)?;
        let configured_root = std::path::absolute(&config.root)?;
        let root = config.root.canonicalize()?;
        let ports = Arc::new(PortAllocator::new(config.port_range.clone()));
        let deps = Arc::new(DepStore::new(
            config.deps_dir(),
            config.templates_dir.clone(),
            jail.clone(),
        ));
        let registry = Registry {
            deps,
            config,
            jail,
            configured_root,
            root,
            ports,
            map: Mutex::new(HashMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
        };
        for entry in std::fs::read_dir(&registry.root)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name();
            if let Some(id) = name.to_str().and_then(|n| WorkspaceId::parse(n).ok()) {
                if let Some((uid, gid)) = registry.jail.owner() {
                    let meta = entry.metadata()?;
                    if std::os::unix::fs::MetadataExt::uid(&meta) != uid
                        || std::os::unix::fs::MetadataExt::gid(&meta) != gid
                    {
                        // Made before the jail (or by another uid): no process runs in it yet.
                        chown_tree(&entry.path(), Some((uid, gid)))?;
                    }
                }
                let ws = registry.make(id.clone())?;
                registry
                    .map
                    .lock()
                    .expect("registry lock")
                    .insert(id, Arc::new(ws));
            } else if name.to_string_lossy().starts_with(".creating-") {
                // Left by a crash during creation.
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(registry)
    }

    fn make(&self, id: WorkspaceId) -> io::Result<Workspace> {
        let dir = self.root.join(id.as_str());
        let canonical = dir.canonicalize()?;
        Ok(Workspace::new(
            id.clone(),
            self.configured_root.join(id.as_str()),
            canonical,
            self.config.log_lines,
            self.ports.clone(),
            self.jail.clone(),
        ))
    }

    pub fn count(&self) -> usize {
        self.map.lock().expect("registry lock").len()
    }

    pub fn get(&self, id: &WorkspaceId) -> ApiResult<Arc<Workspace>> {
        self.map
            .lock()
            .expect("registry lock")
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no workspace `{id}`")))
    }

    /// Creates the workspace (from a template when given). Idempotent: an existing
    /// workspace is returned untouched with `created == false`.
    pub async fn create(
        &self,
        id: WorkspaceId,
        template: Option<&str>,
    ) -> ApiResult<(Arc<Workspace>, bool)> {
        let template_dir = match template {
            Some(name) => Some(self.template_dir(name)?),
            None => None,
        };
        if let Ok(ws) = self.get(&id) {
            return Ok((ws, false));
        }
        // The template's prepared dependencies (installed once, by the first workspace that
        // needs them or at start). Without them the workspace's install runs npm as usual.
        let prepared: Option<Prepared> = match template {
            Some(name) => match self.deps.prepare(name).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("{e}; the workspace installs its own dependencies");
                    None
                }
            },
            None => None,
        };
        let _guard = self.lifecycle.lock().await;
        if let Ok(ws) = self.get(&id) {
            return Ok((ws, false));
        }
        let final_dir = self.root.join(id.as_str());
        if !final_dir.exists() {
            let tmp = self.root.join(format!(
                ".creating-{}-{}",
                id,
                TEMP_DIRS.fetch_add(1, Ordering::Relaxed)
            ));
            let owner = self.jail.owner();
            // Hard links only where jailed processes cannot change the shared files.
            let copy_deps = prepared.as_ref().is_some_and(|p| {
                self.jail.is_confined() && !may_share(&p.node_modules, owner.map(|(uid, _)| uid))
            });
            let store = prepared
                .as_ref()
                .map(|p| (p.node_modules.clone(), p.lockfile.clone()));
            let result = tokio::task::spawn_blocking({
                let tmp = tmp.clone();
                let final_dir = final_dir.clone();
                move || -> io::Result<()> {
                    std::fs::create_dir(&tmp)?;
                    if let Some(src) = template_dir {
                        copy_tree(&src, &tmp)?;
                    }
                    chown_tree(&tmp, owner)?;
                    // After the chown: it must not reach the store's inodes.
                    if let Some((store, lockfile)) = store {
                        link_tree(&store, &tmp.join("node_modules"), owner, copy_deps)?;
                        // The lockfile as the install left it, as if the workspace had run it.
                        let lock = tmp.join("package-lock.json");
                        std::fs::copy(&lockfile, &lock)?;
                        if let Some((uid, gid)) = owner {
                            std::os::unix::fs::lchown(&lock, Some(uid), Some(gid))?;
                        }
                    }
                    std::fs::rename(&tmp, &final_dir)
                }
            })
            .await
            .map_err(|_| ApiError::internal("workspace creation was interrupted"))?;
            if let Err(e) = result {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(ApiError::io("cannot create the workspace", e));
            }
        }
        let ws = Arc::new(
            self.make(id.clone())
                .map_err(|e| ApiError::io("cannot open the workspace", e))?,
        );
        *ws.linked_deps.lock().expect("deps lock") = prepared.map(|p| p.key);
        self.map
            .lock()
            .expect("registry lock")
            .insert(id, ws.clone());
        // The type checker's first, full check runs while the app is being written.
        ws.checker.prewarm();
        Ok((ws, true))
    }

    fn template_dir(&self, name: &str) -> ApiResult<PathBuf> {
        // Template names follow the workspace id rules, so they are one plain directory name.
        WorkspaceId::parse(name)
            .map_err(|_| ApiError::field("template", format!("invalid template name `{name}`")))?;
        let dir = self.config.templates_dir.join(name);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(ApiError::not_found(format!("unknown template `{name}`")))
        }
    }

    /// Stops everything the workspace runs and removes its directory.
    pub async fn delete(&self, id: &WorkspaceId) -> ApiResult<()> {
        let _guard = self.lifecycle.lock().await;
        let ws = self.get(id)?;
        self.map.lock().expect("registry lock").remove(id);
        ws.closed.send_replace(true);
        ws.execs.kill_all(libc::SIGKILL);
        ws.checker.shutdown().await;
        ws.server.shutdown().await;
        let root = ws.root.clone();
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&root))
            .await
            .map_err(|_| ApiError::internal("workspace deletion was interrupted"))?
            .or_else(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| ApiError::io("cannot remove the workspace", e))
    }

    pub fn jail(&self) -> &Arc<Jail> {
        &self.jail
    }

    pub fn deps(&self) -> &Arc<DepStore> {
        &self.deps
    }

    /// Agent shutdown: kill every command and stop every dev server.
    pub async fn shutdown(&self) {
        let all: Vec<Arc<Workspace>> = self
            .map
            .lock()
            .expect("registry lock")
            .values()
            .cloned()
            .collect();
        self.deps.shutdown();
        for ws in &all {
            ws.execs.kill_all(libc::SIGKILL);
        }
        futures_util::future::join_all(all.iter().map(|ws| ws.checker.shutdown())).await;
        futures_util::future::join_all(all.iter().map(|ws| ws.server.shutdown())).await;
    }
}

/// Percent-encodes a relative path for a URL, keeping `/` and unreserved characters.
fn url_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~@+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Copies regular files and directories from `src` into `dst` (which exists), skipping
/// [`TEMPLATE_SKIP`] entries at the top and symlinks everywhere.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let mut stack = vec![(src.to_path_buf(), dst.to_path_buf(), true)];
    while let Some((from, to, top)) = stack.pop() {
        for entry in std::fs::read_dir(&from)? {
            let entry = entry?;
            let name = entry.file_name();
            if top && TEMPLATE_SKIP.iter().any(|s| name == *s) {
                continue;
            }
            let ft = entry.file_type()?;
            let target = to.join(&name);
            if ft.is_dir() {
                if name == "node_modules" {
                    continue;
                }
                std::fs::create_dir(&target)?;
                stack.push((entry.path(), target, false));
            } else if ft.is_file() {
                std::fs::copy(entry.path(), &target)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_from_template_is_atomic_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let templates = dir.path().join("templates");
        std::fs::create_dir_all(templates.join("demo/src")).unwrap();
        std::fs::create_dir_all(templates.join("demo/node_modules/x")).unwrap();
        std::fs::write(templates.join("demo/src/App.tsx"), "app").unwrap();
        std::fs::write(templates.join("demo/template.json"), "{}").unwrap();
        std::fs::write(templates.join("demo/node_modules/x/i.js"), "").unwrap();
        let mut config = Config::new("s", dir.path().join("root"));
        config.templates_dir = templates;
        let reg = Registry::new(Arc::new(config), Jail::unconfined(Default::default())).unwrap();

        let id = WorkspaceId::parse("w1").unwrap();
        let (ws, created) = reg.create(id.clone(), Some("demo")).await.unwrap();
        assert!(created);
        assert_eq!(
            std::fs::read_to_string(ws.root.join("src/App.tsx")).unwrap(),
            "app"
        );
        assert!(!ws.root.join("template.json").exists());
        assert!(!ws.root.join("node_modules").exists());
        let (_, created) = reg.create(id.clone(), Some("demo")).await.unwrap();
        assert!(!created);
        assert_eq!(reg.count(), 1);

        let err = reg
            .create(WorkspaceId::parse("w2").unwrap(), Some("nope"))
            .await
            .err()
            .unwrap();
        assert_eq!(err.code, "E002");
        let err = reg
            .create(WorkspaceId::parse("w2").unwrap(), Some("../templates"))
            .await
            .err()
            .unwrap();
        assert_eq!(err.code, "E004");
        assert!(!dir.path().join("root/w2").exists());

        // A restarted agent finds existing workspaces.
        let mut config = Config::new("s", dir.path().join("root"));
        config.templates_dir = dir.path().join("templates");
        let again = Registry::new(Arc::new(config), Jail::unconfined(Default::default())).unwrap();
        assert!(again.get(&id).is_ok());

        reg.delete(&id).await.unwrap();
        assert!(!dir.path().join("root/w1").exists());
        assert_eq!(reg.delete(&id).await.unwrap_err().code, "E002");
    }

    #[test]
    fn probe_urls_are_encoded() {
        assert_eq!(url_path("src/My File#1.tsx"), "src/My%20File%231.tsx");
        assert_eq!(url_path("src/é.ts"), "src/%C3%A9.ts");
        assert_eq!(url_path("src/App.tsx"), "src/App.tsx");
    }

    #[test]
    fn stale_errors_are_dropped_after_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let ws = Workspace::new(
            WorkspaceId::parse("w").unwrap(),
            root.clone(),
            root.clone(),
            100,
            Arc::new(PortAllocator::new(1..=1)),
            Jail::unconfined(Default::default()),
        );
        ws.logs.push(
            Stream::Stdout,
            Source::Exec,
            "src/A.tsx(1,1): error TS1005: ';' expected.",
        );
        ws.logs.push(
            Stream::Stdout,
            Source::Exec,
            "src/B.tsx(2,1): error TS1005: ';' expected.",
        );
        assert_eq!(ws.collect_errors(0).len(), 2);
        ws.record_writes(["src/A.tsx"]);
        let left = ws.collect_errors(0);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1.file.as_deref(), Some("src/B.tsx"));
        // The same error reported again after the write is current.
        ws.logs.push(
            Stream::Stdout,
            Source::Exec,
            "src/A.tsx(1,1): error TS1005: ';' expected.",
        );
        assert_eq!(ws.collect_errors(0).len(), 2);
    }
}

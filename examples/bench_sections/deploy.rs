//! Issue 11's figures (`BENCH_ONLY=deploy`): one-click deploy of the starter template
//! (`react-vite`) with its sandbox already running, under `wrangler dev` with `HOSTING=loader`.
//!
//! - **click-to-live**: `POST /api/apps/:id/deploy` → build + store + publish → the first 200 on
//!   `http://<label>.apps.localhost:<port>/` serving the new build (each run changes
//!   `src/App.tsx`, so the build is real and its script's hash new);
//! - **publish-only**: `POST …/deployments/:n/rollback` (no build) → the first 200 serving the
//!   rolled-back content, to an artifact whose isolate was never loaded and to one served before;
//! - **first request** of a new deployment (loads its isolate) and warm requests, next to warm
//!   requests to the same app's preview (its Vite dev server).
//!
//! Each deployment's steps are timed on the client from the app's WebSocket events
//! (`deploy_started`, `deploy_progress` building/storing/publishing, `deploy_complete`), so the
//! figures come with where the time went.

use super::harness::{self, Instance, User};
use super::ms;
use futures_util::StreamExt;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Measured click-to-live runs (after one warm-up deployment, not counted).
const CLICK_RUNS: usize = 4;
/// New deployments whose first request is timed.
const FIRST_REQUEST_RUNS: usize = 3;
/// Rollbacks of each kind (to a never-loaded artifact, to one served before).
const ROLLBACKS: usize = 3;
/// Warm requests per median.
const WARM_REQUESTS: usize = 20;
/// How often the deployed address is polled while waiting for the new content.
const POLL: Duration = Duration::from_millis(25);

/// When each deploy event of the app arrived: (deployment number, event) → instant.
type Arrivals = Arc<Mutex<HashMap<(u64, String), Instant>>>;

struct Bench {
    app: &'static Instance,
    user: User,
    id: String,
    port: String,
    deployed_host: String,
    preview_host: String,
    /// Pooled, resolving both hostnames to the instance (Node and glibc do not resolve
    /// `*.localhost`), so warm figures carry no connection set-up.
    client: Client,
    arrivals: Arrivals,
    /// The marker each deployment's `src/App.tsx` carries.
    markers: HashMap<u64, String>,
}

/// A run's steps, relative to the request that started it.
struct Steps {
    started: Duration,
    building: Option<Duration>,
    storing: Duration,
    publishing: Duration,
    complete: Duration,
    first_200: Duration,
}

impl Bench {
    async fn new() -> Bench {
        print!("starting byte-sandbox + wrangler dev (HOSTING=loader) … ");
        std::io::stdout().flush().unwrap();
        let app: &'static Instance = Box::leak(Box::new(Instance::start(&[
            ("SANDBOX_BACKEND", "local".into()),
            ("SANDBOX_URL", harness::sandbox_agent()),
            ("SANDBOX_SECRET", harness::SANDBOX_SECRET.into()),
            ("RATE_LIMIT_DEPLOY", "1000/3600".into()),
            ("RATE_LIMIT_PREVIEW", "1000000/60".into()),
            ("RATE_LIMIT_API", "1000000/60".into()),
        ])));
        println!("{}", app.base);
        let user = app.user("bench-deploy").await;
        let id = app.app(&user, "deploy bench", "public").await;
        let label = id.trim_start_matches("app_").to_string();
        let deployed_host = format!("{label}.apps.localhost");
        let preview_host = format!("{label}.preview.localhost");
        let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .resolve(&deployed_host, addr)
            .resolve(&preview_host, addr)
            .build()
            .unwrap();
        let port = app.base.rsplit(':').next().unwrap().to_string();
        let b = Bench {
            app,
            user,
            id,
            port,
            deployed_host,
            preview_host,
            client,
            arrivals: Default::default(),
            markers: HashMap::new(),
        };
        b.listen().await;
        b
    }

    /// Records the arrival of every deploy event on the app's WebSocket.
    async fn listen(&self) {
        use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
        let addr = self.app.base.trim_start_matches("http://").to_string();
        let mut req = format!("ws://{addr}/api/agent/{}/ws", self.id)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "Authorization",
            format!("Bearer {}", self.user.token).parse().unwrap(),
        );
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async(req, tcp)
            .await
            .expect("the app's WebSocket");
        let arrivals = self.arrivals.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                let at = Instant::now();
                let Message::Text(t) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&t) else {
                    continue;
                };
                let (Some(kind), Some(n)) = (v["type"].as_str(), v["deployment"].as_u64()) else {
                    continue;
                };
                let name = match v["step"].as_str() {
                    Some(step) => format!("{kind}:{step}"),
                    None => kind.to_string(),
                };
                arrivals.lock().unwrap().entry((n, name)).or_insert(at);
            }
        });
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        self.app
            .call(method, path, &self.user.token, body.as_ref())
            .await
    }

    async fn sandbox_ready(&self) {
        let r = self
            .call(
                Method::POST,
                &format!("/api/apps/{}/sandbox", self.id),
                Some(json!({ "template": "react-vite" })),
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let s: Value = self
                .call(Method::GET, &format!("/api/apps/{}/sandbox", self.id), None)
                .await
                .json()
                .await
                .unwrap();
            match s["status"].as_str().unwrap() {
                "ready" => return,
                "failed" | "stopped" => panic!("the sandbox did not come up: {s}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "sandbox still {}", s["status"]);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Writes a new `src/App.tsx`; its marker, for the next deployment.
    async fn change_app(&self, k: usize) -> String {
        let marker = format!("DEPLOYBENCH{}x{k}", std::process::id());
        let content = format!("export default function App() {{\n  return <h1>{marker}</h1>\n}}\n");
        let r = self
            .call(
                Method::POST,
                &format!("/api/apps/{}/sandbox/files", self.id),
                Some(json!({ "files": [{ "path": "src/App.tsx", "content": content }] })),
            )
            .await;
        assert!(r.status().is_success(), "{:?}", r.text().await);
        marker
    }

    /// Sends `path` (deploy or rollback); the new deployment's number.
    async fn start(&self, path: &str) -> u64 {
        let r = self.call(Method::POST, path, None).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
        r.json::<Value>().await.unwrap()["number"].as_u64().unwrap()
    }

    async fn deploy(&self) -> u64 {
        self.start(&format!("/api/apps/{}/deploy", self.id)).await
    }

    async fn rollback(&self, to: u64) -> u64 {
        self.start(&format!("/api/apps/{}/deployments/{to}/rollback", self.id))
            .await
    }

    /// Waits (on the history, never the address) until deployment `n` is live.
    async fn settled(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let v: Value = self
                .call(
                    Method::GET,
                    &format!("/api/apps/{}/deployments", self.id),
                    None,
                )
                .await
                .json()
                .await
                .unwrap();
            let d = v["deployments"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["number"] == n)
                .cloned()
                .unwrap_or_default();
            match d["status"].as_str() {
                Some("live") => return,
                Some("building") | None => {}
                _ => panic!("deployment {n} did not go live: {d}"),
            }
            assert!(Instant::now() < deadline, "deployment {n} still building");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET path` on the deployed address, as a browser navigates.
    async fn visit(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("http://{}:{}{path}", self.deployed_host, self.port))
            .header("Accept", "text/html,*/*")
            .header("Sec-Fetch-Mode", "navigate")
            .send()
            .await
            .unwrap()
    }

    /// The deployed page's main script, when the address answers 200.
    async fn served_script(&self) -> Option<String> {
        let r = self.visit("/").await;
        if r.status() != StatusCode::OK {
            return None;
        }
        let html = r.text().await.unwrap();
        html.split("src=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
            .map(str::to_string)
    }

    /// Polls the address from `t0` until it serves a page other than `old`'s; when that 200
    /// arrived. Then checks (untimed) that its script carries deployment `n`'s marker.
    async fn first_200(&self, t0: Instant, old: Option<&str>, n: u64, marker: &str) -> Duration {
        let (at, script) = loop {
            if let Some(s) = self.served_script().await {
                if Some(s.as_str()) != old {
                    break (t0.elapsed(), s);
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "deployment {n} never served"
            );
            tokio::time::sleep(POLL).await;
        };
        let js = self.visit(&script).await.text().await.unwrap();
        assert!(js.contains(marker), "deployment {n} serves another build");
        at
    }

    /// Deployment `n`'s steps from the recorded events, relative to `t0`.
    async fn steps(&self, n: u64, t0: Instant, first_200: Duration) -> Steps {
        // `deploy_complete` is sent after the record turns live, so it may trail the first 200.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let a = self.arrivals.lock().unwrap();
                let at = |k: &str| a.get(&(n, k.to_string())).map(|i| i.duration_since(t0));
                if let (Some(started), Some(storing), Some(publishing), Some(complete)) = (
                    at("deploy_started"),
                    at("deploy_progress:storing"),
                    at("deploy_progress:publishing"),
                    at("deploy_complete"),
                ) {
                    return Steps {
                        started,
                        building: at("deploy_progress:building"),
                        storing,
                        publishing,
                        complete,
                        first_200,
                    };
                }
            }
            assert!(
                Instant::now() < deadline,
                "deployment {n}'s events never arrived"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new build, deployed and timed until its first 200.
    async fn click_to_live(&mut self, k: usize) -> Steps {
        let marker = self.change_app(k).await;
        let old = self.served_script().await;
        let t0 = Instant::now();
        let n = self.deploy().await;
        let first = self.first_200(t0, old.as_deref(), n, &marker).await;
        self.markers.insert(n, marker);
        self.steps(n, t0, first).await
    }

    /// A new build, deployed without touching its address; its number.
    async fn deploy_unvisited(&mut self, k: usize) -> u64 {
        let marker = self.change_app(k).await;
        let n = self.deploy().await;
        self.settled(n).await;
        self.markers.insert(n, marker);
        n
    }

    /// A rollback to `to`, timed until its first 200.
    async fn publish_only(&self, to: u64) -> Steps {
        let old = self.served_script().await;
        let t0 = Instant::now();
        let n = self.rollback(to).await;
        let first = self
            .first_200(t0, old.as_deref(), n, &self.markers[&to])
            .await;
        self.steps(n, t0, first).await
    }

    /// The latency of `GET /` on `host`, `count` times.
    async fn gets(&self, host: &str, count: usize) -> Vec<Duration> {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let t = Instant::now();
            let r = self
                .client
                .get(format!("http://{host}:{}/", self.port))
                .header("Accept", "text/html,*/*")
                .header("Sec-Fetch-Mode", "navigate")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{host}");
            r.bytes().await.unwrap();
            out.push(t.elapsed());
        }
        out
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn max(v: &[Duration]) -> Duration {
    v.iter().copied().max().unwrap()
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn row(name: &str, v: &[Duration], show: fn(Duration) -> String) {
    println!(
        "{:<58} {:>10} {:>10}",
        format!("{name} ({} runs)", v.len()),
        show(median(v)),
        show(max(v))
    );
}

/// Where the time of `runs` went: the median of each step.
fn profile(what: &str, runs: &[Steps]) {
    let step = |f: &dyn Fn(&Steps) -> Duration| median(&runs.iter().map(f).collect::<Vec<_>>());
    let gap = |a: Duration, b: Duration| b.saturating_sub(a);
    let building = runs.iter().all(|s| s.building.is_some());
    let mut parts = vec![("request → deploy_started", step(&|s| s.started))];
    if building {
        parts.push((
            "build in the sandbox (→ storing)",
            step(&|s| gap(s.building.unwrap(), s.storing)),
        ));
    }
    parts.extend([
        (
            "store in R2 (storing → publishing)",
            step(&|s| gap(s.storing, s.publishing)),
        ),
        (
            "publish + record (→ deploy_complete)",
            step(&|s| gap(s.publishing, s.complete)),
        ),
        (
            "deploy_complete → first 200",
            step(&|s| s.first_200.saturating_sub(s.complete)),
        ),
    ]);
    let list: Vec<String> = parts
        .iter()
        .map(|(name, d)| format!("{name} {}", ms(*d)))
        .collect();
    println!("  {what}, median per step: {}", list.join("; "));
}

pub async fn figures() {
    println!();
    let mut b = Bench::new().await;
    print!("starting the app's sandbox (react-vite) … ");
    std::io::stdout().flush().unwrap();
    let t = Instant::now();
    b.sandbox_ready().await;
    println!("ready in {}", secs(t.elapsed()));

    // 1. Click-to-live; the first deployment warms the build (and the loader) and is not counted.
    let mut k = 0;
    let mut next = || {
        k += 1;
        k
    };
    print!("deploying (1 warm-up + {CLICK_RUNS} runs) … ");
    std::io::stdout().flush().unwrap();
    b.click_to_live(next()).await;
    let mut clicks = Vec::new();
    for _ in 0..CLICK_RUNS {
        clicks.push(b.click_to_live(next()).await);
    }
    println!("done");

    // 2. A new deployment's first request (its isolate loads) and warm requests, next to the
    //    preview's warm requests.
    let mut firsts = Vec::new();
    let mut warm = Vec::new();
    let mut served = Vec::new();
    for _ in 0..FIRST_REQUEST_RUNS {
        let n = b.deploy_unvisited(next()).await;
        firsts.extend(b.gets(&b.deployed_host, 1).await);
        warm.extend(b.gets(&b.deployed_host, WARM_REQUESTS).await);
        served.push(n);
    }
    b.gets(&b.preview_host, 3).await;
    let preview = b
        .gets(&b.preview_host, WARM_REQUESTS * FIRST_REQUEST_RUNS)
        .await;

    // 3. Publish-only: rollbacks to artifacts never loaded (deployed after one more, and never
    //    visited: the request before each rollback loads only the one live then), then to
    //    artifacts served before.
    let mut unvisited = Vec::new();
    for _ in 0..=ROLLBACKS {
        unvisited.push(b.deploy_unvisited(next()).await);
    }
    let mut cold = Vec::new();
    for &to in &unvisited[..ROLLBACKS] {
        cold.push(b.publish_only(to).await);
    }
    let mut again = Vec::new();
    for &to in served.iter().take(ROLLBACKS) {
        again.push(b.publish_only(to).await);
    }

    let click: Vec<Duration> = clicks.iter().map(|s| s.first_200).collect();
    let cold_t: Vec<Duration> = cold.iter().map(|s| s.first_200).collect();
    let again_t: Vec<Duration> = again.iter().map(|s| s.first_200).collect();
    println!(
        "{:<58} {:>10} {:>10}",
        "deploy (react-vite, sandbox running, HOSTING=loader)", "median", "max"
    );
    row(
        "click-to-live: deploy → first 200 of the new build",
        &click,
        secs,
    );
    row(
        "publish-only: rollback → first 200 (never-loaded artifact)",
        &cold_t,
        ms,
    );
    row(
        "publish-only: rollback → first 200 (artifact served before)",
        &again_t,
        ms,
    );
    row("deployed app: a new deployment's first GET /", &firsts, ms);
    row("deployed app: warm GET /", &warm, ms);
    row("preview of the same app: warm GET /", &preview, ms);
    profile("click-to-live", &clicks);
    profile("rollback to a never-loaded artifact", &cold);
    let (c, p) = (median(&click), median(&cold_t));
    println!(
        "targets: click-to-live ≤ 10 s: {}; publish ≤ 1 s: {}",
        if c <= Duration::from_secs(10) {
            "met"
        } else {
            "NOT met"
        },
        if p <= Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
    let r = b
        .call(Method::DELETE, &format!("/api/apps/{}/sandbox", b.id), None)
        .await;
    assert!(r.status().is_success() || r.status() == StatusCode::NOT_FOUND);
}

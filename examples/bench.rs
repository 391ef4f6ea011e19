//! `make bench`: figures, not tests. Starts a fresh `wrangler dev`, seeds 10,000 apps in D1, and
//! measures `GET /api/apps` (search + page) next to `GET /api/health` the same way; prints the
//! built Worker's gzip size; then the parser's, the sandbox's, the code generator's, the
//! deployments' and the orchestrator hub's figures (`bench_sections/`). Everything runs on loopback.

#[path = "support/bench_tokens.rs"]
mod bench_tokens;
#[path = "bench_sections/deploy.rs"]
mod deploy;
#[path = "../tests/it/fake_llm.rs"]
#[allow(dead_code)]
mod fake_llm;
#[path = "../tests/it/fakes.rs"]
#[allow(dead_code)]
mod fakes;
#[path = "../tests/it/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "bench_sections/hub.rs"]
mod hub;
#[path = "../tests/it/hub_client.rs"]
#[allow(dead_code)]
mod hub_client;
#[path = "bench_sections/plan.rs"]
mod plan;

use harness::Instance;
use reqwest::Method;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

const APPS: usize = 10_000;
const REQUESTS: usize = 1_000;

/// Clients of the throughput run (`BENCH_CONCURRENCY`, default 4).
fn concurrency() -> usize {
    std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(4)
}

/// One endpoint's figures: latency from one client (no queueing), then throughput and latency
/// under load from `concurrency()` clients.
struct Figures {
    p50: Duration,
    p99: Duration,
    loaded_p50: Duration,
    rps: f64,
}

async fn run(
    app: &'static Instance,
    path: &'static str,
    token: Option<String>,
    clients: usize,
) -> (Vec<Duration>, Duration) {
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..clients {
        let token = token.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(REQUESTS / clients);
            for _ in 0..REQUESTS / clients {
                let t = Instant::now();
                let mut r = app.req(Method::GET, path);
                if let Some(t) = &token {
                    r = r.bearer_auth(t);
                }
                let resp = r.send().await.expect("request");
                assert_eq!(resp.status(), 200, "{path}");
                resp.bytes().await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await.unwrap());
    }
    let wall = start.elapsed();
    lat.sort();
    (lat, wall)
}

async fn measure(app: &'static Instance, path: &'static str, token: Option<String>) -> Figures {
    let _ = run(app, path, token.clone(), 1).await; // warm-up
    let (seq, _) = run(app, path, token.clone(), 1).await;
    let (loaded, wall) = run(app, path, token, concurrency()).await;
    Figures {
        p50: seq[seq.len() / 2],
        p99: seq[seq.len() * 99 / 100],
        loaded_p50: loaded[loaded.len() / 2],
        rps: loaded.len() as f64 / wall.as_secs_f64(),
    }
}

fn sh(cmd: &str) -> String {
    Command::new("bash")
        .arg("-c")
        .arg(cmd)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    println!(
        "machine: {} | {} cores | {} RAM",
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
        sh("nproc"),
        sh("free -h | awk '/Mem:/ {print $2}'")
    );
    // `BENCH_ONLY=agent` runs just the code generator's figures, `BENCH_ONLY=sandbox` just the
    // sandbox's (with `SANDBOX_UNCONFINED=1` too, the same without the jail, for comparison),
    // `BENCH_ONLY=deploy` just the deployments', `BENCH_ONLY=hub` just the orchestrator hub's,
    // `BENCH_ONLY=plan` just the orchestrator's plan.
    match std::env::var("BENCH_ONLY").as_deref() {
        Ok("agent") => return agent_figures().await,
        Ok("tokens") => return bench_tokens::token_figures(),
        Ok("sandbox") => return sandbox_figures().await,
        Ok("deploy") => return deploy::figures().await,
        Ok("hub") => return hub::figures().await,
        Ok("plan") => return plan::figures(),
        _ => {}
    }
    print!("starting wrangler dev with fresh state … ");
    std::io::stdout().flush().unwrap();
    let app: &'static Instance = Box::leak(Box::new(Instance::start(&[
        ("RATE_LIMIT_API", "1000000/60".into()),
        ("RATE_LIMIT_AUTH", "1000000/60".into()),
        ("MAX_APPS_PER_USER", "100000".into()),
    ])));
    println!("{}", app.base);
    let user = app.user("bench").await;

    print!("seeding {APPS} apps … ");
    std::io::stdout().flush().unwrap();
    let seed = app.state.join("seed.sql");
    let mut sql = String::new();
    for chunk in (0..APPS).collect::<Vec<_>>().chunks(500) {
        sql.push_str("INSERT INTO apps (id, user_id, title, description, visibility, tags, files, config) VALUES ");
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| {
                let vis = if i % 3 == 0 { "public" } else { "private" };
                format!("('app_{i:032x}', '{}', 'Bench app {i}', 'Generated app number {i} for the list benchmark', '{vis}', '[]', '{{}}', '{{}}')", user.id)
            })
            .collect();
        sql.push_str(&rows.join(","));
        sql.push_str(";\n");
    }
    std::fs::write(&seed, sql).unwrap();
    let wrangler =
        std::env::var("WRANGLER").unwrap_or_else(|_| "node_modules/.bin/wrangler".into());
    let ok = Command::new(wrangler)
        .args(["d1", "execute", "DB", "--local", "--persist-to"])
        .arg(&app.state)
        .arg("--file")
        .arg(&seed)
        .env("CI", "true")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "seeding failed");
    println!("done");

    let list_path = "/api/apps?search=app%201&sort=updated&page=3&limit=20";
    let list = measure(app, list_path, Some(user.token.clone())).await;
    let health = measure(app, "/api/health", None).await;
    if std::env::var("BENCH_DETAIL").is_ok() {
        for p in [
            "/api/apps?limit=20",
            "/api/auth/me",
            "/api/auth/providers",
            "/api/apps/public?limit=20&search=app%201",
        ] {
            let f = measure(app, p, Some(user.token.clone())).await;
            println!("detail {p}: p50 {} p99 {}", ms(f.p50), ms(f.p99));
        }
    }
    let wasm = sh("gzip -9c build/index_bg.wasm | wc -c")
        .parse::<f64>()
        .unwrap_or(0.0);
    let js = sh("gzip -9c build/index.js | wc -c")
        .parse::<f64>()
        .unwrap_or(0.0);
    let gz = (wasm + js) / (1024.0 * 1024.0);

    let c = concurrency();
    println!();
    println!("{REQUESTS} requests per run: latency from 1 client, then {c} concurrent clients; D1 holds {APPS} apps of one user");
    println!(
        "{:<58} {:>9} {:>9} {:>12} {:>9}",
        "endpoint",
        "p50",
        "p99",
        format!("p50 ({c} cl.)"),
        "req/s"
    );
    for (name, f) in [
        (format!("GET {list_path}"), &list),
        ("GET /api/health (baseline)".to_string(), &health),
    ] {
        println!(
            "{:<58} {:>9} {:>9} {:>12} {:>9.0}",
            name,
            ms(f.p50),
            ms(f.p99),
            ms(f.loaded_p50),
            f.rps
        );
    }
    let ratio = list.p50.as_secs_f64() / health.p50.as_secs_f64();
    let loaded_ratio = list.loaded_p50.as_secs_f64() / health.loaded_p50.as_secs_f64();
    println!();
    println!(
        "list p50 / health p50 = {ratio:.2}x (1 client), {loaded_ratio:.2}x ({c} clients)   (target ≤ 2x: {})",
        if ratio <= 2.0 { "met" } else { "NOT met" }
    );
    println!(
        "Worker gzip size = {gz:.2} MiB (wasm + JS)   (target ≤ 1.5 MB: {})",
        if gz <= 1.5 { "met" } else { "NOT met" }
    );

    parser_figures();
    sandbox_figures().await;
    agent_figures().await;
    deploy::figures().await;
    hub::figures().await;
    plan::figures();
}

/// The code generator's own overhead: from the fake model's last content chunk of a phase
/// (the model answers instantly) to the client holding `file_generated` for every file of that
/// phase, each of which is sent only after the file is in the sandbox and in storage.
async fn agent_figures() {
    bench_tokens::token_figures();
    println!();
    print!("starting wrangler dev for the code generator … ");
    std::io::stdout().flush().unwrap();
    let fake = fake_llm::url();
    let app: &'static Instance = Box::leak(Box::new(Instance::start(&[
        ("SANDBOX_BACKEND", "local".into()),
        ("SANDBOX_URL", harness::sandbox_agent()),
        ("SANDBOX_SECRET", harness::SANDBOX_SECRET.into()),
        ("OPENAI_COMPATIBLE_BASE_URL", format!("{fake}/v1")),
        ("MODEL_CONFIG", fake_llm::scripted_model_config()),
        ("RATE_LIMIT_AI", "1000/60".into()),
    ])));
    println!("{}", app.base);
    let user = app.user("bench-agent").await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let mut samples: Vec<Duration> = Vec::new();
    let mut files_per_phase = Vec::new();
    // Prompt → preview_ready per run, and per phase its last token → its checks done
    // (phase_complete is sent once the phase's install, dev-server and type checks passed).
    let mut to_preview: Vec<Duration> = Vec::new();
    let mut checks: Vec<Duration> = Vec::new();
    // The same per phase number (a first phase's checks come soon after its sandbox started).
    let mut by_phase: Vec<(u32, Duration)> = Vec::new();
    for round in 0..3 {
        let id = app
            .app(&user, &format!("agent bench {round}"), "private")
            .await;
        let mark = format!("MARKbench{}x{round}", std::process::id());
        let started = Instant::now();
        let mut completed: std::collections::BTreeMap<u32, Instant> = Default::default();
        let mut r = client
            .post(app.url(&format!("/api/agent/chat/{id}")))
            .bearer_auth(&user.token)
            .json(&serde_json::json!({ "message": format!("scripted-bench {mark}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Per phase (1-based): when its last file_generated arrived, and how many files.
        let mut phase = 0u32;
        let mut last_file: std::collections::BTreeMap<u32, (Instant, usize)> = Default::default();
        let mut buf = String::new();
        let mut done = false;
        while !done {
            let Some(c) = r.chunk().await.unwrap() else {
                break;
            };
            let now = Instant::now();
            buf.push_str(&String::from_utf8_lossy(&c));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                let name = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("event: "))
                    .unwrap_or_default();
                match name {
                    "phase_start" if !frame.contains("\"planning\"") => phase += 1,
                    "file_generated" => {
                        let e = last_file.entry(phase).or_insert((now, 0));
                        *e = (now, e.1 + 1);
                    }
                    "phase_complete" if !frame.contains("\"planning\"") => {
                        completed.insert(phase, now);
                    }
                    "preview_ready" => to_preview.push(now - started),
                    "error" => panic!("the run failed: {frame}"),
                    "done" => done = true,
                    _ => {}
                }
            }
        }
        for (p, (at, n)) in last_file {
            let token = fake_llm::last_token_at(&mark, p).expect("the fake stamped the phase");
            samples.push(at.saturating_duration_since(token));
            files_per_phase.push(n);
            if let Some(done) = completed.get(&p) {
                checks.push(done.saturating_duration_since(token));
                by_phase.push((p, done.saturating_duration_since(token)));
            }
        }
        app.req(Method::DELETE, &format!("/api/apps/{id}/sandbox"))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap();
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    let max = *samples.last().unwrap();
    println!("{:<58} {:>10} {:>10}", "code generator", "median", "max");
    println!(
        "{:<58} {:>10} {:>10}",
        format!(
            "last token → phase's {}-{} files in sandbox ({} phases)",
            files_per_phase.iter().min().unwrap(),
            files_per_phase.iter().max().unwrap(),
            samples.len()
        ),
        ms(median),
        ms(max)
    );
    println!(
        "phase overhead median {}   (target ≤ 300 ms: {})",
        ms(median),
        if median <= Duration::from_millis(300) {
            "met"
        } else {
            "NOT met"
        }
    );
    to_preview.sort();
    checks.sort();
    if let (Some(p), Some(c)) = (
        to_preview.get(to_preview.len() / 2),
        checks.get(checks.len() / 2),
    ) {
        println!(
            "{:<58} {:>10} {:>10}",
            format!(
                "prompt → preview_ready ({} runs, 2 phases, 12 files)",
                to_preview.len()
            ),
            format!("{:.1} s", p.as_secs_f64()),
            format!("{:.1} s", to_preview.last().unwrap().as_secs_f64())
        );
        println!(
            "{:<58} {:>10} {:>10}",
            format!("last token → phase's checks done ({} phases)", checks.len()),
            ms(*c),
            ms(*checks.last().unwrap())
        );
        by_phase.sort();
        println!(
            "  checks per phase: {}",
            by_phase
                .iter()
                .map(|(p, d)| format!("phase {p} {}", ms(*d)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "before (issue 12, 22-file app): prompt → preview 27–47 s, ~4 s of checks per phase; targets ≤ 12 s ({}), ≤ 1.5 s per phase ({})",
            if *p <= Duration::from_secs(12) { "met" } else { "NOT met" },
            if *c <= Duration::from_millis(1500) { "met" } else { "NOT met" }
        );
    }
}

/// Streaming files-format parser throughput on a large generated stream, fed in 1 KiB chunks as
/// a model's stream would arrive.
fn parser_figures() {
    use byte_platform::domain::codegen::files_format::{write_file, Event, Parser};
    let line = "  const value = items.map((item) => item.id).filter(Boolean); // generated code\n";
    let content = line.repeat(2_000);
    let mut stream = String::new();
    for i in 0..200 {
        write_file(&mut stream, &format!("src/generated/file{i}.tsx"), &content).unwrap();
    }
    let bytes = stream.as_bytes();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut parser = Parser::new();
        let mut events = Vec::new();
        for chunk in bytes.chunks(1024) {
            parser.feed_into(chunk, &mut events);
        }
        let files = events
            .iter()
            .filter(|e| matches!(e, Event::FileComplete { .. }))
            .count();
        assert_eq!(files, 200);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mbps = bytes.len() as f64 / (1024.0 * 1024.0) / best;
    println!();
    println!(
        "files-format parser: {:.1} MiB stream in 1 KiB chunks → {mbps:.0} MiB/s (best of 5)   (target ≥ 100 MB/s: {})",
        bytes.len() as f64 / (1024.0 * 1024.0),
        if mbps >= 100.0 { "met" } else { "NOT met" }
    );
}

/// Sandbox figures, the platform next to the same work done by hand on the same template,
/// alternating, one pair per round: create from template → preview 200 (the platform through
/// the Worker and byte-sandbox; by hand: the template copied, byte-sandbox's own install
/// command, Vite started with byte-sandbox's own command line, the same npm cache) and a
/// write of `src/App.tsx` → the preview serving the new text (by hand: an atomic write, then
/// Vite asked directly). Before each write both sides idle 300 ms (not counted), so no write
/// falls in Vite's watcher throttle window of the previous one.
async fn sandbox_figures() {
    println!();
    print!("starting byte-sandbox + wrangler dev … ");
    std::io::stdout().flush().unwrap();
    let app = harness::sandbox_instance();
    println!("{}", app.base);
    let user = app.user("bench-sbx").await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/react-vite");
    let scratch = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-by-hand");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let http = reqwest::Client::new();
    let (mut creates, mut writes) = (Vec::new(), Vec::new());
    let (mut hand_creates, mut hand_writes) = (Vec::new(), Vec::new());
    // Where a platform write's time goes: the POST's answer, and a preview GET with nothing
    // written (the Worker's own cost per request), next to the same GET of Vite directly.
    let (mut posts, mut plain_gets, mut hand_gets) = (Vec::new(), Vec::new(), Vec::new());
    // The first round warms npm's cache (and the platform's prepared dependencies) and is
    // not counted.
    for round in 0..4 {
        let counted = round > 0;
        // Alternate which side goes first.
        for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            if side == 0 {
                let id = app.app(&user, &format!("bench {round}"), "public").await;
                let host = format!("{}.preview.localhost", id.trim_start_matches("app_"));
                let client = app.client_for_host(&host);
                let t = Instant::now();
                let r = app
                    .req(Method::POST, &format!("/api/apps/{id}/sandbox"))
                    .bearer_auth(&user.token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                wait_200(&client, &format!("http://{host}:{port}/"), t).await;
                if counted {
                    creates.push(t.elapsed());
                }
                for i in 0..5 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let marker = format!("BENCH-{round}-{i}");
                    let t = Instant::now();
                    let r = app
                        .req(Method::POST, &format!("/api/apps/{id}/sandbox/files"))
                        .bearer_auth(&user.token)
                        .json(&serde_json::json!({ "files": [{ "path": "src/App.tsx", "content": app_tsx(&marker) }] }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    let posted = t.elapsed();
                    wait_text(
                        &client,
                        &format!("http://{host}:{port}/src/App.tsx"),
                        &marker,
                        t,
                    )
                    .await;
                    if counted {
                        writes.push(t.elapsed());
                        posts.push(posted);
                        let t = Instant::now();
                        wait_text(
                            &client,
                            &format!("http://{host}:{port}/src/App.tsx"),
                            &marker,
                            t,
                        )
                        .await;
                        plain_gets.push(t.elapsed());
                    }
                }
                app.req(Method::DELETE, &format!("/api/apps/{id}/sandbox"))
                    .bearer_auth(&user.token)
                    .send()
                    .await
                    .unwrap();
            } else {
                let dir = scratch.join(format!("app-{round}"));
                let t = Instant::now();
                copy_template(&template, &dir);
                let install = Command::new("sh")
                    .arg("-c")
                    .arg("npm install --prefer-offline --no-audit --no-fund")
                    .current_dir(&dir)
                    .output()
                    .unwrap();
                assert!(
                    install.status.success(),
                    "{}",
                    String::from_utf8_lossy(&install.stderr)
                );
                let vite_port = free_port_outside_ephemeral();
                let mut vite = Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "exec npm run dev -- --port {vite_port} --host 127.0.0.1 --strictPort"
                    ))
                    .current_dir(&dir)
                    .process_group(0)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                // Stops this Vite even if the bench panics.
                let _stop = StopGroup(vite.id() as i32);
                wait_200(&http, &format!("http://127.0.0.1:{vite_port}/"), t).await;
                if counted {
                    hand_creates.push(t.elapsed());
                }
                for i in 0..5 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let marker = format!("HAND-{round}-{i}");
                    let t = Instant::now();
                    let tmp = dir.join("src/.App.tsx.tmp");
                    std::fs::write(&tmp, app_tsx(&marker)).unwrap();
                    std::fs::rename(&tmp, dir.join("src/App.tsx")).unwrap();
                    wait_text(
                        &http,
                        &format!("http://127.0.0.1:{vite_port}/src/App.tsx"),
                        &marker,
                        t,
                    )
                    .await;
                    if counted {
                        hand_writes.push(t.elapsed());
                        let t = Instant::now();
                        wait_text(
                            &http,
                            &format!("http://127.0.0.1:{vite_port}/src/App.tsx"),
                            &marker,
                            t,
                        )
                        .await;
                        hand_gets.push(t.elapsed());
                    }
                }
                unsafe { libc::killpg(vite.id() as i32, libc::SIGTERM) };
                let _ = vite.wait();
            }
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (c, hc) = (median(&mut creates), median(&mut hand_creates));
    let (w, hw) = (median(&mut writes), median(&mut hand_writes));
    println!(
        "{:<52} {:>10} {:>10} {:>7}",
        "sandbox (medians, alternating rounds)", "platform", "by hand", "ratio"
    );
    let row = |what: String, p: Duration, h: Duration| {
        println!(
            "{:<52} {:>10} {:>10} {:>6.2}×",
            what,
            ms(p),
            ms(h),
            p.as_secs_f64() / h.as_secs_f64()
        );
    };
    row(
        format!(
            "create from template → preview 200 ({} runs)",
            creates.len()
        ),
        c,
        hc,
    );
    row(
        format!(
            "write src/App.tsx → preview serves it ({} runs)",
            writes.len()
        ),
        w,
        hw,
    );
    let (post, get, hand_get) = (
        median(&mut posts),
        median(&mut plain_gets),
        median(&mut hand_gets),
    );
    println!(
        "{:<52} {:>10} {:>10}",
        "  of which: POST files answered (through the Worker)",
        ms(post),
        "-"
    );
    row(
        "  a preview GET with nothing written (for scale)".to_string(),
        get,
        hand_get,
    );
    let (cr, wr) = (
        c.as_secs_f64() / hc.as_secs_f64(),
        w.as_secs_f64() / hw.as_secs_f64(),
    );
    println!(
        "targets: create ≤ 0.5× by hand: {}; write ≤ 1.3× Vite direct: {}",
        if cr <= 0.5 { "met" } else { "NOT met" },
        if wr <= 1.3 { "met" } else { "NOT met" }
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

struct StopGroup(i32);

impl Drop for StopGroup {
    fn drop(&mut self) {
        unsafe { libc::killpg(self.0, libc::SIGTERM) };
    }
}

fn app_tsx(marker: &str) -> String {
    format!("export default function App() {{ return <h1>{marker}</h1>; }}\n")
}

async fn wait_200(client: &reqwest::Client, url: &str, since: Instant) {
    loop {
        if let Ok(r) = client.get(url).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            since.elapsed() < Duration::from_secs(300),
            "{url} never answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_text(client: &reqwest::Client, url: &str, marker: &str, since: Instant) {
    loop {
        if let Ok(r) = client.get(url).send().await {
            if r.text().await.is_ok_and(|body| body.contains(marker)) {
                return;
            }
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "change never served at {url}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The template's files as byte-sandbox copies them (no node_modules, dist, template.json).
fn copy_template(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        let name = entry.file_name();
        if ["node_modules", "dist", ".git", "template.json"]
            .iter()
            .any(|s| name == *s)
        {
            continue;
        }
        let status = Command::new("cp")
            .arg("-r")
            .arg(entry.path())
            .arg(dst.join(&name))
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// A free port below the kernel's ephemeral range, as byte-sandbox picks them.
fn free_port_outside_ephemeral() -> u16 {
    (23000..24000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port")
}

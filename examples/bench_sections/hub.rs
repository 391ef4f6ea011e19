//! Issue 13's hub figures (`BENCH_ONLY=hub`): from a ticket `PATCH` (sent by the client) to the
//! last of [`CLIENTS`] subscribed loopback WebSocket clients holding its `ticket_updated`, per
//! change; p50 and p99 over [`RUNS`] changes (target p99 ≤ 100 ms). Twice: connections placed
//! at random over the default `ORCH_HUB_SHARDS` shards, and connections carrying the
//! `?projectId=` placement hint (all on the project's shard).

use super::harness::{Instance, User};
use super::hub_client::{patch_title, project_sql, seed_sql, Client, Read};
use super::ms;
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const CLIENTS: usize = 1000;
const RUNS: usize = 100;
/// Connections opened at once while connecting the clients.
const OPENING: usize = 50;

/// Opens, authenticates and subscribes [`CLIENTS`] clients; each reports (run, arrival) for
/// every `ticket_updated` whose new title is `bench-<run>`.
async fn connect(
    app: &'static Instance,
    user: &User,
    project: &str,
    hinted: bool,
) -> (
    mpsc::UnboundedReceiver<(usize, Instant)>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let path = if hinted {
        format!("/api/orchestrator/ws?projectId={project}")
    } else {
        "/api/orchestrator/ws".to_string()
    };
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    for i in 0..CLIENTS {
        if i >= OPENING {
            ready_rx.recv().await.expect("a client connected");
        }
        let (tx, ready_tx) = (tx.clone(), ready_tx.clone());
        let (path, token, project) = (path.clone(), user.token.clone(), project.to_string());
        tasks.push(tokio::spawn(async move {
            let mut c = Client::open_with(app, &path, &[]).await.expect("upgrade");
            c.send(
                serde_json::json!({"type": "authenticate", "token": token, "projectId": project}),
            )
            .await;
            let ok = c.expect("auth_success").await;
            assert_eq!(ok["subscriptions"][0], project.as_str());
            let _ = ready_tx.send(());
            loop {
                match c.read().await {
                    Read::Msg(v) if v["type"] == "ticket_updated" => {
                        let at = Instant::now();
                        let title = v["changes"]
                            .as_array()
                            .and_then(|c| c.iter().find(|c| c["field"] == "title"));
                        let run = title
                            .and_then(|t| t["newValue"].as_str())
                            .and_then(|t| t.strip_prefix("bench-"))
                            .and_then(|n| n.parse().ok());
                        if let Some(run) = run {
                            let _ = tx.send((run, at));
                        }
                    }
                    Read::Msg(_) => {}
                    Read::Closed(_) => return,
                }
            }
        }));
    }
    for _ in 0..OPENING.min(CLIENTS) {
        ready_rx.recv().await.expect("a client connected");
    }
    (rx, tasks)
}

struct Figures {
    p50: Duration,
    p99: Duration,
    patch_p50: Duration,
}

async fn measure(app: &'static Instance, user: &User, hinted: bool) -> Figures {
    let (s, sql) = project_sql(user, &[], "Bench project");
    seed_sql(app, &sql);
    let started = Instant::now();
    let (mut rx, tasks) = connect(app, user, &s.project, hinted).await;
    println!(
        "  {CLIENTS} clients connected, authenticated and subscribed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut last = Vec::new();
    let mut patch = Vec::new();
    // One warm-up change, not counted.
    for run in 0..=RUNS {
        let t0 = Instant::now();
        patch_title(app, user, &s.ticket, &format!("bench-{run}")).await;
        patch.push(t0.elapsed());
        let mut seen = 0;
        let mut latest = t0;
        while seen < CLIENTS {
            let (r, at) = rx.recv().await.expect("a delivery");
            if r == run {
                seen += 1;
                latest = latest.max(at);
            }
        }
        if run > 0 {
            last.push(latest - t0);
        }
    }
    for t in tasks {
        t.abort();
    }
    last.sort();
    patch.sort();
    Figures {
        p50: last[last.len() / 2],
        p99: last[last.len() * 99 / 100],
        patch_p50: patch[patch.len() / 2],
    }
}

pub async fn figures() {
    println!();
    print!("starting wrangler dev for the orchestrator hub … ");
    std::io::stdout().flush().unwrap();
    let app: &'static Instance = Box::leak(Box::new(Instance::start(&[
        ("RATE_LIMIT_API", "1000000/60".into()),
        ("RATE_LIMIT_AUTH", "1000000/60".into()),
    ])));
    println!("{}", app.base);
    let user = app.user("bench-hub").await;
    println!(
        "hub fan-out: PATCH /api/orchestrator/tickets/:id → the last of {CLIENTS} subscribed WebSocket clients holding ticket_updated, {RUNS} changes"
    );
    for (hinted, label) in [
        (false, "random placement over ORCH_HUB_SHARDS=8"),
        (true, "?projectId= hint (one shard)"),
    ] {
        println!(" {label}:");
        let f = measure(app, &user, hinted).await;
        println!(
            "  last client: p50 {} p99 {}   (target p99 ≤ 100 ms: {})   PATCH answered p50 {}",
            ms(f.p50),
            ms(f.p99),
            if f.p99 <= Duration::from_millis(100) {
                "met"
            } else {
                "NOT met"
            },
            ms(f.patch_p50)
        );
    }
}

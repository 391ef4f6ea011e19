//! The orchestrator hub (`GET /api/orchestrator/ws`) with real WebSocket clients against a
//! `wrangler dev` whose hub runs on short intervals (authenticate within 2 s, a heartbeat every
//! second, expiry after 3 s without a pong) over 4 shards: authentication and its deadline, a
//! wrong token, the cookie session, subscriptions refused for others' projects, fan-out of REST
//! changes to exactly the subscribers of the project (across shards), heartbeats, pongs and
//! expiry, and reconnection.
//!
//! Projects and tickets are seeded straight into D1 (the REST API that creates them is tested
//! with it); every event comes from a real `PATCH /api/orchestrator/tickets/:id`. No test waits
//! on a clock: each waits for the message or the close it expects.

use crate::harness::Instance;
use crate::hub_client::{patch_title, project_sql, seed_sql, Client, Seeded};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::OnceLock;

pub const HUB_SHARDS: u32 = 4;

/// The instance of these tests: short hub intervals, four shards.
pub fn hub_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| {
        Instance::start(&[
            ("ORCH_HUB_SHARDS", HUB_SHARDS.to_string()),
            ("ORCH_AUTH_TIMEOUT_SECONDS", "2".into()),
            ("ORCH_HEARTBEAT_SECONDS", "1".into()),
            ("ORCH_EXPIRY_SECONDS", "3".into()),
            ("RATE_LIMIT_API", "1000000/60".into()),
            ("RATE_LIMIT_AUTH", "1000000/60".into()),
        ])
    })
}

/// The ticket_updated of a title change.
fn assert_title_change(v: &Value, s: &Seeded, old: &str, new: &str) {
    assert_eq!(v["type"], "ticket_updated", "{v}");
    assert_eq!(
        (v["projectId"].as_str(), v["ticketId"].as_str()),
        (Some(s.project.as_str()), Some(s.ticket.as_str()))
    );
    let changes = v["changes"].as_array().unwrap();
    let title = changes
        .iter()
        .find(|c| c["field"] == "title")
        .unwrap_or_else(|| panic!("no title change in {v}"));
    assert_eq!(
        (title["oldValue"].as_str(), title["newValue"].as_str()),
        (Some(old), Some(new))
    );
}

#[tokio::test]
async fn a_plain_get_is_refused_with_426() {
    let app = hub_instance();
    let r = app
        .req(Method::GET, "/api/orchestrator/ws")
        .send()
        .await
        .unwrap();
    let body = crate::harness::expect_error(r, 426, "E004").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("WebSocket"));
}

#[tokio::test]
async fn authenticate_answers_auth_success_and_a_wrong_token_closes() {
    let app = hub_instance();
    let u = app.user("hub-auth").await;
    let (_c, ok) = Client::signed_in(app, &u, None).await;
    assert_eq!(ok["userId"], u.id.as_str());
    assert!(ok["connectionId"]
        .as_str()
        .is_some_and(|c| c.starts_with("conn_")));
    assert_eq!(ok["subscriptions"], json!([]));

    let mut c = Client::open(app).await;
    c.send(json!({"type": "authenticate", "token": "not-a-token"}))
        .await;
    c.expect_error("E001", false).await;
    c.expect_close(4001).await;

    // A token signed with another key is refused the same way.
    let mut c = Client::open(app).await;
    let forged = format!("{}x", &u.token[..u.token.len() - 1]);
    c.send(json!({"type": "authenticate", "token": forged}))
        .await;
    c.expect_error("E001", false).await;
    c.expect_close(4001).await;

    // So is anything before authenticate.
    let mut c = Client::open(app).await;
    c.send(json!({"type": "subscribe", "projectId": "prj_00000000000000000000000000000000"}))
        .await;
    c.expect_error("E001", false).await;
    c.expect_close(4001).await;
}

#[tokio::test]
async fn a_connection_that_does_not_authenticate_is_closed() {
    let app = hub_instance();
    let mut c = Client::open(app).await;
    c.expect_error("E001", false).await;
    c.expect_close(4008).await;
}

#[tokio::test]
async fn a_signed_out_token_is_refused() {
    let app = hub_instance();
    let u = app.user("hub-out").await;
    let r = app
        .req(Method::POST, "/api/auth/logout")
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut c = Client::open(app).await;
    c.send(json!({"type": "authenticate", "token": u.token}))
        .await;
    c.expect_error("E001", false).await;
    c.expect_close(4001).await;
}

#[tokio::test]
async fn the_session_cookie_authenticates_from_this_site_only() {
    let app = hub_instance();
    let u = app.user("hub-cookie").await;
    let cookie = ("Cookie", format!("byte_session={}", u.token));
    let mut c = Client::open_with(
        app,
        "/api/orchestrator/ws",
        &[cookie.clone(), ("Origin", app.base.clone())],
    )
    .await
    .unwrap();
    c.send(json!({"type": "authenticate"})).await;
    let ok = c.expect("auth_success").await;
    assert_eq!(ok["userId"], u.id.as_str());

    let mut c = Client::open_with(
        app,
        "/api/orchestrator/ws",
        &[cookie, ("Origin", "https://evil.test".into())],
    )
    .await
    .unwrap();
    c.send(json!({"type": "authenticate", "token": ""})).await;
    c.expect_error("E001", false).await;
    c.expect_close(4001).await;
}

#[tokio::test]
async fn others_projects_cannot_be_subscribed_and_the_connection_stays() {
    let app = hub_instance();
    let (owner, other) = (app.user("hub-own").await, app.user("hub-other").await);
    let (s, sql) = project_sql(&owner, &[], "Owned");
    seed_sql(app, &sql);
    let (mut c, _) = Client::signed_in(app, &other, None).await;
    c.send(json!({"type": "subscribe", "projectId": s.project}))
        .await;
    c.expect_error("E002", true).await;
    // A malformed or unknown id reads the same.
    c.send(json!({"type": "subscribe", "projectId": "proj-123"}))
        .await;
    c.expect_error("E002", true).await;
    c.send(json!({"type": "subscribe", "projectId": "prj_0123456789abcdef0123456789abcdef"}))
        .await;
    c.expect_error("E002", true).await;
    // Invalid messages are recoverable too.
    c.send_text("{nope").await;
    c.expect_error("E004", true).await;
    c.send(json!({"type": "dance"})).await;
    c.expect_error("E004", true).await;
    c.expect_nothing_pending().await;
    // On authenticate, the project is left out and named in an error.
    let (mut c, ok) = Client::signed_in(app, &other, Some(&s.project)).await;
    assert_eq!(ok["subscriptions"], json!([]));
    c.expect_error("E002", true).await;
    // The owner's change reaches neither connection.
    let (mut owner_c, ok) = Client::signed_in(app, &owner, Some(&s.project)).await;
    assert_eq!(ok["subscriptions"], json!([s.project]));
    patch_title(app, &owner, &s.ticket, "Renamed").await;
    assert_title_change(
        &owner_c.expect("ticket_updated").await,
        &s,
        "First ticket",
        "Renamed",
    );
    c.expect_nothing_pending().await;
}

#[tokio::test]
async fn rest_changes_reach_exactly_the_subscribers_of_their_project() {
    let app = hub_instance();
    let (alice, bob, carol) = (
        app.user("hub-alice").await,
        app.user("hub-bob").await,
        app.user("hub-carol").await,
    );
    // Alice's project is shared with Carol; Bob has his own.
    let (pa, sql_a) = project_sql(&alice, &[&carol], "Alice's");
    let (pb, sql_b) = project_sql(&bob, &[], "Bob's");
    seed_sql(app, &format!("{sql_a}{sql_b}"));

    // Several of Alice's tabs (spread over the shards), Carol's, and Bob's.
    let mut watchers = Vec::new();
    for _ in 0..6 {
        let (mut c, _) = Client::signed_in(app, &alice, None).await;
        c.subscribe(&pa.project).await;
        watchers.push(c);
    }
    let (mut carol_c, _) = Client::signed_in(app, &carol, None).await;
    carol_c.subscribe(&pa.project).await;
    let (mut bob_c, _) = Client::signed_in(app, &bob, None).await;
    bob_c.subscribe(&pb.project).await;
    let (mut alice_idle, _) = Client::signed_in(app, &alice, None).await;
    // A placement hint lands on the project's shard; it subscribes to nothing by itself.
    let mut hinted = Client::open_with(
        app,
        &format!("/api/orchestrator/ws?projectId={}", pa.project),
        &[],
    )
    .await
    .unwrap();
    hinted
        .send(json!({"type": "authenticate", "token": alice.token}))
        .await;
    assert_eq!(
        hinted.expect("auth_success").await["subscriptions"],
        json!([])
    );

    patch_title(app, &alice, &pa.ticket, "Alpha").await;
    for c in watchers.iter_mut().chain([&mut carol_c]) {
        assert_title_change(
            &c.expect("ticket_updated").await,
            &pa,
            "First ticket",
            "Alpha",
        );
    }
    for c in [&mut bob_c, &mut alice_idle, &mut hinted] {
        c.expect_nothing_pending().await;
    }

    patch_title(app, &bob, &pb.ticket, "Beta").await;
    assert_title_change(
        &bob_c.expect("ticket_updated").await,
        &pb,
        "First ticket",
        "Beta",
    );
    for c in watchers.iter_mut().chain([&mut carol_c, &mut alice_idle]) {
        c.expect_nothing_pending().await;
    }

    // Unsubscribed and closed connections get nothing more; the others still do.
    let mut first = watchers.remove(0);
    first
        .send(json!({"type": "unsubscribe", "projectId": pa.project}))
        .await;
    assert_eq!(
        first.expect("unsubscribed").await["projectId"],
        pa.project.as_str()
    );
    drop(watchers.remove(0));
    patch_title(app, &carol, &pa.ticket, "Gamma").await;
    for c in watchers.iter_mut().chain([&mut carol_c]) {
        assert_title_change(&c.expect("ticket_updated").await, &pa, "Alpha", "Gamma");
    }
    first.expect_nothing_pending().await;
}

#[tokio::test]
async fn heartbeats_are_answered_or_the_connection_expires() {
    let app = hub_instance();
    let u = app.user("hub-beat").await;
    let (mut live, _) = Client::signed_in(app, &u, None).await;
    let (mut silent, _) = Client::signed_in(app, &u, None).await;
    silent.silent = true;
    // Both at once: the live one reads (answering heartbeats) while the silent one waits.
    let quiet = async {
        // The silent one sees heartbeats, then the close for want of a pong.
        silent.expect_error("E004", false).await;
        silent.expect_close(4009).await;
        assert!(silent.heartbeats >= 1, "heartbeats came first");
    };
    let answering = async {
        // The live one outlives several expiry periods' worth of heartbeats.
        live.heartbeats_until(8).await;
        live.send(json!({"type": "ping", "timestamp": 1})).await;
        live.expect("pong").await;
    };
    tokio::join!(quiet, answering);
}

#[tokio::test]
async fn a_new_connection_resubscribes_and_gets_later_events() {
    let app = hub_instance();
    let u = app.user("hub-again").await;
    let (s, sql) = project_sql(&u, &[], "Again");
    seed_sql(app, &sql);
    let (mut c, ok) = Client::signed_in(app, &u, Some(&s.project)).await;
    assert_eq!(ok["subscriptions"], json!([s.project]));
    patch_title(app, &u, &s.ticket, "One").await;
    assert_title_change(&c.expect("ticket_updated").await, &s, "First ticket", "One");
    c.close().await;
    drop(c);
    // Changed while nobody listened.
    patch_title(app, &u, &s.ticket, "Two").await;
    let (mut c, ok) = Client::signed_in(app, &u, None).await;
    assert_eq!(ok["subscriptions"], json!([]));
    c.subscribe(&s.project).await;
    patch_title(app, &u, &s.ticket, "Three").await;
    assert_title_change(&c.expect("ticket_updated").await, &s, "Two", "Three");
}

//! Host tests of the hub's connection policy over in-memory ports: authentication, its deadline,
//! subscriptions and their access checks, fan-out, heartbeats and expiry, presence versions, the
//! per-connection order, and the directory's convergence.

use super::*;
use futures_executor::block_on;
use std::cell::RefCell;

const P1: &str = "prj_00000000000000000000000000000001";
const P2: &str = "prj_00000000000000000000000000000002";
const HIDDEN: &str = "prj_0000000000000000000000000000dead";
const T0: i64 = 1_733_140_000_000;

fn settings() -> HubSettings {
    HubSettings {
        auth_timeout_ms: 10_000,
        heartbeat_ms: 30_000,
        expiry_ms: 120_000,
    }
}

fn who(user: &str) -> Who {
    Who {
        user: UserId::from(user),
        session: SessionId::from(format!("ses_{user}")),
        expires_s: T0 / 1000 + 3600,
    }
}

/// Tokens are `good:<user>`; the user sees P1 and P2 but not HIDDEN; the directory records.
#[derive(Default)]
struct Ports {
    presence: RefCell<Vec<Presence>>,
    revoked: bool,
    failing: bool,
}

impl HubPorts for Ports {
    async fn verify(&self, token: &str) -> Result<Who, String> {
        token
            .strip_prefix("good:")
            .map(who)
            .ok_or_else(|| "invalid authentication token".to_string())
    }
    async fn session_live(&self, _: &Who) -> Result<bool, ()> {
        Ok(!self.revoked)
    }
    async fn can_view(&self, _: &UserId, p: &ProjectId) -> Result<bool, ()> {
        if self.failing {
            return Err(());
        }
        Ok(p.as_str() != HIDDEN)
    }
    async fn presence(&self, change: &Presence) -> Result<(), ()> {
        self.presence.borrow_mut().push(change.clone());
        Ok(())
    }
}

/// Sends `text` and runs any check to its end, as the object does; the effects of this
/// message.
fn send(hub: &mut Hub, ports: &Ports, id: &str, text: &str, now: i64) -> Effects {
    let e = match hub.receive(id, text, now) {
        Step::Done(e) => e,
        Step::Check(c) => hub.settle(block_on(c.run(ports)), now),
        Step::Queued => panic!("queued"),
    };
    assert_eq!(hub.next_queued(id), None, "nothing waited");
    e
}

fn types(e: &Effects) -> Vec<String> {
    e.send
        .iter()
        .map(|m| {
            serde_json::to_value(m).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn code(m: &HubMessage) -> (&str, bool) {
    match m {
        HubMessage::Error {
            error, recoverable, ..
        } => (error.as_str(), *recoverable),
        other => panic!("not an error: {other:?}"),
    }
}

fn authed(hub: &mut Hub, ports: &Ports, id: &str, user: &str) -> Effects {
    hub.open(id, 0, None, T0);
    let e = send(
        hub,
        ports,
        id,
        &format!(r#"{{"type":"authenticate","token":"good:{user}","clientType":"web"}}"#),
        T0,
    );
    assert_eq!(types(&e), ["auth_success"]);
    e
}

fn sub(p: &str) -> String {
    format!(r#"{{"type":"subscribe","projectId":"{p}"}}"#)
}

#[test]
fn authenticate_succeeds_and_subscribes_the_optional_project() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    let c = hub.open("c1", 2, None, T0);
    assert_eq!(c.at_ms, T0 + 10_000);
    assert_eq!(hub.next_due(T0), Some(T0 + 10_000));
    let e = send(
        &mut hub,
        &ports,
        "c1",
        &format!(r#"{{"type":"authenticate","token":"good:usr_a","projectId":"{P1}"}}"#),
        T0 + 5,
    );
    assert_eq!(
        e.send,
        vec![HubMessage::AuthSuccess {
            user_id: "usr_a".into(),
            connection_id: "c1".into(),
            subscriptions: vec![P1.into()],
        }]
    );
    assert!(e.presence.is_empty(), "the join stands: {:?}", e.presence);
    let saved = e.save.unwrap();
    assert_eq!(saved.who, Some(who("usr_a")));
    assert_eq!(saved.subs, vec![ProjectId::from(P1)]);
    // The directory heard of the shard before the client was told.
    let p = ports.presence.borrow();
    assert_eq!(p.len(), 1);
    assert!(p[0].present && p[0].project == P1);
    assert_eq!(hub.deliver(&P1.into(), T0).0, vec!["c1"]);
}

#[test]
fn a_hidden_or_malformed_project_on_authenticate_is_a_recoverable_error() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    hub.open("c1", 0, None, T0);
    let e = send(
        &mut hub,
        &ports,
        "c1",
        &format!(r#"{{"type":"authenticate","token":"good:usr_a","projectId":"{HIDDEN}"}}"#),
        T0,
    );
    assert_eq!(types(&e), ["auth_success", "error"]);
    assert_eq!(code(&e.send[1]), ("E002", true));
    assert!(
        matches!(&e.send[0], HubMessage::AuthSuccess { subscriptions, .. } if subscriptions.is_empty())
    );
    // The pending presence was withdrawn.
    assert_eq!(e.presence.len(), 1);
    assert!(!e.presence[0].present);
    hub.open("c2", 0, None, T0);
    let e = send(
        &mut hub,
        &ports,
        "c2",
        r#"{"type":"authenticate","token":"good:usr_a","projectId":"proj-123"}"#,
        T0,
    );
    assert_eq!(types(&e), ["auth_success", "error"]);
    assert_eq!(code(&e.send[1]), ("E002", true));
}

#[test]
fn anything_before_authenticate_or_a_bad_token_closes() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    for (i, text) in [
        sub(P1),
        "not json".to_string(),
        r#"{"type":"ping"}"#.to_string(),
        r#"{"type":"authenticate","token":"forged"}"#.to_string(),
        r#"{"type":"authenticate","token":""}"#.to_string(),
        r#"{"type":"authenticate"}"#.to_string(),
    ]
    .iter()
    .enumerate()
    {
        let id = format!("c{i}");
        hub.open(&id, 0, None, T0);
        let e = send(&mut hub, &ports, &id, text, T0);
        assert_eq!(types(&e), ["error"], "{text}");
        assert_eq!(code(&e.send[0]), ("E001", false), "{text}");
        assert_eq!(e.close.unwrap().0, CLOSE_UNAUTHENTICATED, "{text}");
        assert!(hub.conn(&id).is_none());
    }
    assert!(hub.is_empty());
}

#[test]
fn the_cookie_session_authenticates_a_message_without_token() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    hub.open("c1", 0, Some(who("usr_c")), T0);
    let e = send(
        &mut hub,
        &ports,
        "c1",
        r#"{"type":"authenticate","token":""}"#,
        T0,
    );
    assert!(matches!(&e.send[0], HubMessage::AuthSuccess { user_id, .. } if user_id == "usr_c"));
    // An explicit token still wins over the cookie.
    hub.open("c2", 0, Some(who("usr_c")), T0);
    let e = send(
        &mut hub,
        &ports,
        "c2",
        r#"{"type":"authenticate","token":"forged"}"#,
        T0,
    );
    assert_eq!(code(&e.send[0]), ("E001", false));
}

#[test]
fn the_authentication_deadline_closes_silent_connections_only() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    hub.open("quiet", 0, None, T0);
    authed(&mut hub, &ports, "ok", "usr_a");
    let t = hub.tick(T0 + 9_999);
    assert!(t.close.is_empty());
    let t = hub.tick(T0 + 10_000);
    assert_eq!(t.close.len(), 1);
    let (id, err, close, _) = &t.close[0];
    assert_eq!((id.as_str(), *close), ("quiet", CLOSE_AUTH_TIMEOUT));
    assert_eq!(code(err), ("E001", false));
    assert!(hub.conn("quiet").is_none() && hub.conn("ok").is_some());
    // A late authenticate (the alarm not yet run) is refused the same way.
    hub.open("late", 0, None, T0);
    let e = send(
        &mut hub,
        &ports,
        "late",
        r#"{"type":"authenticate","token":"good:u"}"#,
        T0 + 10_001,
    );
    assert_eq!(e.close.unwrap().0, CLOSE_AUTH_TIMEOUT);
}

#[test]
fn subscribe_checks_access_and_stays_connected_when_refused() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    authed(&mut hub, &ports, "c1", "usr_a");
    let e = send(&mut hub, &ports, "c1", &sub(HIDDEN), T0);
    assert_eq!(code(&e.send[0]), ("E002", true));
    assert!(e.close.is_none() && hub.conn("c1").is_some());
    let e = send(&mut hub, &ports, "c1", &sub("prj_nope"), T0);
    assert_eq!(code(&e.send[0]), ("E002", true));
    let e = send(&mut hub, &ports, "c1", &sub(P1), T0);
    assert!(e.presence.is_empty(), "the join stands: {:?}", e.presence);
    assert_eq!(
        e.send,
        vec![HubMessage::Subscribed {
            project_id: P1.into()
        }]
    );
    // Subscribing again is idempotent (no second check).
    assert_eq!(
        hub.receive("c1", &sub(P1), T0),
        Step::Done(Effects {
            send: vec![HubMessage::Subscribed {
                project_id: P1.into()
            }],
            ..Effects::default()
        })
    );
    let failing = Ports {
        failing: true,
        ..Ports::default()
    };
    let e = send(&mut hub, &failing, "c1", &sub(P2), T0);
    assert_eq!(code(&e.send[0]), ("E000", true));
    assert!(hub.deliver(&P2.into(), T0).0.is_empty());
}

#[test]
fn a_signed_out_session_is_closed_on_subscribe() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    authed(&mut hub, &ports, "c1", "usr_a");
    send(&mut hub, &ports, "c1", &sub(P1), T0);
    let revoked = Ports {
        revoked: true,
        ..Ports::default()
    };
    let e = send(&mut hub, &revoked, "c1", &sub(P2), T0);
    assert_eq!(code(&e.send[0]), ("E001", false));
    assert_eq!(e.close.unwrap().0, CLOSE_UNAUTHENTICATED);
    // Both its presences are withdrawn.
    let gone: Vec<_> = e
        .presence
        .iter()
        .map(|p| (p.project.as_str(), p.present))
        .collect();
    assert_eq!(gone.len(), 2);
    assert!(gone.iter().all(|(_, present)| !present));
}

#[test]
fn events_reach_exactly_the_subscribers_of_their_project() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    for (id, user) in [
        ("a1", "usr_a"),
        ("a2", "usr_a"),
        ("b1", "usr_b"),
        ("idle", "usr_c"),
    ] {
        authed(&mut hub, &ports, id, user);
    }
    hub.open("pending", 0, None, T0);
    send(&mut hub, &ports, "a1", &sub(P1), T0);
    send(&mut hub, &ports, "a2", &sub(P1), T0);
    send(&mut hub, &ports, "a2", &sub(P2), T0);
    send(&mut hub, &ports, "b1", &sub(P2), T0);
    let (to, present, _) = hub.deliver(&P1.into(), T0);
    assert_eq!((to, present), (vec!["a1", "a2"], true));
    assert_eq!(hub.deliver(&P2.into(), T0).0, vec!["a2", "b1"]);
    let (to, present, _) = hub.deliver(&HIDDEN.into(), T0);
    assert!(to.is_empty() && !present);
    // Unsubscribing and closing take them out; the last one out withdraws the presence.
    let e = send(
        &mut hub,
        &ports,
        "a1",
        &format!(r#"{{"type":"unsubscribe","projectId":"{P1}"}}"#),
        T0,
    );
    assert_eq!(types(&e), ["unsubscribed"]);
    assert!(e.presence.is_empty(), "a2 is still there");
    assert_eq!(e.save.unwrap().subs, Vec::<ProjectId>::new());
    let gone = hub.closed("a2", T0);
    assert_eq!(gone.len(), 1);
    assert_eq!((gone[0].project.as_str(), gone[0].present), (P1, false));
    let (to, present, _) = hub.deliver(&P1.into(), T0);
    assert!(to.is_empty() && !present);
    assert_eq!(hub.deliver(&P2.into(), T0).0, vec!["b1"]);
    assert!(hub.closed("a2", T0).is_empty(), "closing twice is harmless");
}

#[test]
fn heartbeats_go_out_on_schedule_and_pongs_keep_connections_alive() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    authed(&mut hub, &ports, "live", "usr_a");
    authed(&mut hub, &ports, "dead", "usr_b");
    hub.open("pending", 0, None, T0);
    let t = hub.tick(T0 + 1);
    assert_eq!(t.heartbeat, vec!["dead", "live"], "authenticated ones only");
    assert_eq!(
        hub.next_due(T0 + 1),
        Some(T0 + 10_000),
        "the auth deadline first"
    );
    hub.tick(T0 + 10_000);
    assert_eq!(hub.next_due(T0 + 10_000), Some(T0 + 30_001));
    assert!(hub.tick(T0 + 20_000).heartbeat.is_empty(), "not due yet");
    let mut now = T0 + 1;
    while now + 30_000 < T0 + 120_000 {
        now += 30_000;
        let t = hub.tick(now);
        assert_eq!(t.heartbeat.len(), 2);
        let e = send(
            &mut hub,
            &ports,
            "live",
            r#"{"type":"pong","timestamp":1}"#,
            now,
        );
        assert_eq!(e.save.unwrap().at_ms, now);
        assert!(e.send.is_empty());
    }
    let t = hub.tick(T0 + 120_000);
    assert_eq!(t.close.len(), 1);
    assert_eq!(
        (t.close[0].0.as_str(), t.close[0].2),
        ("dead", CLOSE_EXPIRED)
    );
    assert!(hub.conn("live").is_some());
    // A ping is answered with a pong and counts as a sign of life.
    let e = send(&mut hub, &ports, "live", r#"{"type":"ping"}"#, T0 + 121_000);
    assert!(
        matches!(&e.send[0], HubMessage::Pong { timestamp } if timestamp == "2024-12-02T11:48:41.000Z")
    );
    hub.closed("live", T0);
    assert_eq!(hub.next_due(T0), None, "nothing left to wake for");
}

#[test]
fn invalid_messages_after_authenticate_are_recoverable() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    authed(&mut hub, &ports, "c1", "usr_a");
    for text in [
        "{",
        "[]",
        r#"{"type":"dance"}"#,
        r#"{"type":"subscribe"}"#,
        r#"{"type":"authenticate","token":"good:usr_a"}"#,
    ] {
        let e = send(&mut hub, &ports, "c1", text, T0);
        assert_eq!(code(&e.send[0]), ("E004", true), "{text}");
        assert!(e.close.is_none());
    }
    let e = send(
        &mut hub,
        &ports,
        "c1",
        &"x".repeat(MAX_MESSAGE_BYTES + 1),
        T0,
    );
    assert_eq!(e.close.unwrap().0, CLOSE_TOO_BIG);
    let m = parse_client(r#"{"type":"dance"}"#).unwrap_err();
    assert!(m.contains("authenticate, subscribe"), "{m}");
}

#[test]
fn subscriptions_are_bounded_per_connection() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    authed(&mut hub, &ports, "c1", "usr_a");
    for i in 0..MAX_SUBSCRIPTIONS {
        let e = send(&mut hub, &ports, "c1", &sub(&format!("prj_{i:032x}")), T0);
        assert_eq!(types(&e), ["subscribed"]);
    }
    let e = send(
        &mut hub,
        &ports,
        "c1",
        &sub(&format!("prj_{:032x}", 999)),
        T0,
    );
    assert_eq!(code(&e.send[0]), ("E004", true));
    // The record still fits a socket attachment (2 KiB) with long ids.
    let conn = hub.conn("c1").unwrap().clone();
    let mut big = conn;
    big.cookie = Some(who(&format!("usr_{:032x}", 1)));
    big.who = big.cookie.clone();
    big.id = format!("conn_{:032x}", 1);
    assert!(serde_json::to_string(&big).unwrap().len() < 2048);
}

#[test]
fn a_connections_messages_wait_for_its_check_in_flight() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    authed(&mut hub, &ports, "c1", "usr_a");
    let Step::Check(check) = hub.receive("c1", &sub(P1), T0) else {
        panic!("a check")
    };
    // Meanwhile: unsubscribe from it, then a ping.
    let unsub = format!(r#"{{"type":"unsubscribe","projectId":"{P1}"}}"#);
    assert_eq!(hub.receive("c1", &unsub, T0), Step::Queued);
    assert_eq!(hub.receive("c1", r#"{"type":"ping"}"#, T0), Step::Queued);
    let e = hub.settle(block_on(check.run(&ports)), T0);
    assert_eq!(types(&e), ["subscribed"]);
    let next = hub.next_queued("c1").unwrap();
    let Step::Done(e) = hub.process("c1", &next, T0) else {
        panic!()
    };
    assert_eq!(types(&e), ["unsubscribed"]);
    assert_eq!(e.presence.len(), 1);
    assert!(!e.presence[0].present);
    let next = hub.next_queued("c1").unwrap();
    assert!(matches!(hub.process("c1", &next, T0), Step::Done(e) if types(&e) == ["pong"]));
    assert_eq!(hub.next_queued("c1"), None);
    // No longer busy: the next message is processed at once.
    assert!(matches!(
        hub.receive("c1", r#"{"type":"pong"}"#, T0),
        Step::Done(_)
    ));
    // The queue is bounded.
    let Step::Check(_) = hub.receive("c1", &sub(P2), T0) else {
        panic!()
    };
    for _ in 0..MAX_QUEUED {
        assert_eq!(hub.receive("c1", r#"{"type":"ping"}"#, T0), Step::Queued);
    }
    let Step::Done(e) = hub.receive("c1", r#"{"type":"ping"}"#, T0) else {
        panic!()
    };
    assert_eq!(code(&e.send[0]), ("E003", true));
}

#[test]
fn a_close_during_a_check_leaves_nothing_behind() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    authed(&mut hub, &ports, "c1", "usr_a");
    let Step::Check(check) = hub.receive("c1", &sub(P1), T0) else {
        panic!()
    };
    assert!(
        hub.closed("c1", T0).is_empty(),
        "still subscribing: present"
    );
    let e = hub.settle(block_on(check.run(&ports)), T0);
    assert!(e.send.is_empty() && e.save.is_none());
    assert_eq!(e.presence.len(), 1);
    assert!(!e.presence[0].present);
    let (to, present, _) = hub.deliver(&P1.into(), T0);
    assert!(to.is_empty() && !present);
}

/// Whatever order a shard's presence changes reach the directory in, it ends as the shard is.
#[test]
fn the_directory_converges_on_the_newest_presence() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    authed(&mut hub, &ports, "a", "usr_a");
    authed(&mut hub, &ports, "b", "usr_b");
    let mut changes = Vec::new();
    // a subscribes, leaves; b subscribes while a's leave is in flight; b leaves; a returns.
    let e = send(&mut hub, &ports, "a", &sub(P1), T0);
    assert!(e.presence.is_empty(), "the join stands");
    changes.extend(e.presence);
    changes.extend(hub.closed("a", T0 + 1));
    let e = send(&mut hub, &ports, "b", &sub(P1), T0 + 1);
    changes.extend(e.presence);
    changes.extend(hub.closed("b", T0 + 1));
    authed(&mut hub, &ports, "a", "usr_a");
    send(&mut hub, &ports, "a", &sub(P1), T0 + 2);
    changes.splice(0..0, ports.presence.borrow().iter().cloned());
    let last = changes.iter().max_by_key(|c| c.version).unwrap().clone();
    assert!(last.present);
    let versions: BTreeSet<u64> = changes.iter().map(|c| c.version).collect();
    assert_eq!(versions.len(), changes.len(), "no version twice");
    // Every order of arrival (rotations and the reverse) converges.
    let mut orders = vec![changes.clone(), changes.iter().rev().cloned().collect()];
    for r in 1..changes.len() {
        let mut o = changes.clone();
        o.rotate_left(r);
        orders.push(o);
    }
    for order in orders {
        let mut d = Directory::default();
        for c in &order {
            d.apply(4, c.present, c.version);
        }
        assert_eq!(d.targets(), vec![4]);
    }
    // A delivery report of "absent" older than the newest join changes nothing; a newer one
    // drops the shard.
    let mut d = Directory::default();
    d.apply(4, true, last.version);
    assert!(!d.absent_as_of(4, last.version - 1));
    assert_eq!(d.targets(), vec![4]);
    let (_, present, now) = hub.deliver(&P1.into(), T0 + 3);
    assert!(present && now >= last.version);
    hub.closed("a", T0 + 3);
    let (_, present, now) = hub.deliver(&P1.into(), T0 + 3);
    assert!(!present);
    assert!(d.absent_as_of(4, now));
    assert!(d.targets().is_empty());
    assert!(
        !d.apply(4, true, last.version),
        "a stale join stays ignored"
    );
    let stored: Vec<_> = d.marks().collect();
    assert_eq!(Directory::from_marks(stored), d);
}

#[test]
fn a_woken_shard_rebuilds_from_its_records() {
    let (mut hub, ports) = (Hub::new(settings()), Ports::default());
    authed(&mut hub, &ports, "a", "usr_a");
    let e = send(&mut hub, &ports, "a", &sub(P1), T0);
    let record = e.save.unwrap();
    hub.open("p", 0, None, T0);
    let pending = hub.conn("p").unwrap().clone();
    let json = serde_json::to_string(&record).unwrap();
    let mut woken = Hub::new(settings());
    woken.load([serde_json::from_str::<Conn>(&json).unwrap(), pending]);
    assert_eq!(woken.len(), 2);
    assert_eq!(woken.deliver(&P1.into(), T0).0, vec!["a"]);
    // A woken shard does not know when it last sent heartbeats: the first tick sends them.
    assert_eq!(woken.tick(T0 + 1).heartbeat, vec!["a"]);
    let t = woken.tick(T0 + 10_000);
    assert_eq!(t.close[0].0, "p");
}

#[test]
fn timestamps_are_rfc3339_utc() {
    assert_eq!(timestamp(T0), "2024-12-02T11:46:40.000Z");
    let v = Versions::default();
    assert_eq!(v.now(T0), T0 as u64 * 1000);
}

//! The orchestrator hub's connection policy, for one hub shard: who each connection is, what it
//! subscribed to, its deadlines (authenticate within `ORCH_AUTH_TIMEOUT_SECONDS`, answer
//! heartbeats within `ORCH_EXPIRY_SECONDS`), and which connections an event reaches. The
//! `OrchestratorWebSocket` object is a shell around [`Hub`]: it hands it client messages, alarms
//! and closes, runs the [`Check`]s it asks for (token, session, access, directory) through
//! [`HubPorts`], and carries out the [`Effects`] it returns.
//!
//! Invariants (tested below):
//! - a connection that has not authenticated receives nothing but its own errors, and any
//!   message other than a valid `authenticate` closes it ([`CLOSE_UNAUTHENTICATED`]); so does the
//!   authentication deadline ([`CLOSE_AUTH_TIMEOUT`]);
//! - a connection is subscribed to a project only after `can_view` said yes *and* the shard's
//!   presence for that project reached the project's directory, so every event published after
//!   `subscribed` reaches it; an event reaches exactly the connections subscribed to its project;
//! - the shard's presence for a project is `true` while any connection is subscribed or
//!   subscribing to it; every change is stamped with a version from one monotonic clock
//!   ([`Versions`]), so the directory, keeping the newest per shard, ends where the shard is
//!   whatever order the messages arrive in;
//! - one connection's messages take effect in the order sent (a message arriving while an
//!   earlier one is being checked waits, at most [`MAX_QUEUED`] of them);
//! - the state a woken object needs is the connections' [`Conn`] records (each socket's
//!   serialized attachment): [`Hub::load`] rebuilds everything else from them.

use super::protocol::{ClientMessage, HubMessage};
use crate::domain::error::ErrorCode;
use crate::domain::ids::{ProjectId, SessionId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// A client message longer than this is refused and the connection closed ([`CLOSE_TOO_BIG`]).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Projects one connection may be subscribed to at once (its record must fit the 2 KiB a socket
/// attachment may hold).
pub const MAX_SUBSCRIPTIONS: usize = 20;
/// Messages of one connection waiting while an earlier one is checked.
pub const MAX_QUEUED: usize = 32;

/// Close codes: no (valid) authentication, or the session ended.
pub const CLOSE_UNAUTHENTICATED: u16 = 4001;
/// No `authenticate` within the deadline.
pub const CLOSE_AUTH_TIMEOUT: u16 = 4008;
/// No `pong` within the expiry.
pub const CLOSE_EXPIRED: u16 = 4009;
/// A message over [`MAX_MESSAGE_BYTES`].
pub const CLOSE_TOO_BIG: u16 = 1009;

/// The hub's timing (`ORCH_AUTH_TIMEOUT_SECONDS`, `ORCH_HEARTBEAT_SECONDS`,
/// `ORCH_EXPIRY_SECONDS`), in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubSettings {
    pub auth_timeout_ms: i64,
    pub heartbeat_ms: i64,
    pub expiry_ms: i64,
}

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            auth_timeout_ms: 10_000,
            heartbeat_ms: 30_000,
            expiry_ms: 120_000,
        }
    }
}

/// Who a connection acts for: a verified, live session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    #[serde(rename = "u")]
    pub user: UserId,
    #[serde(rename = "s")]
    pub session: SessionId,
    /// When the session's token expires (epoch seconds).
    #[serde(rename = "e")]
    pub expires_s: i64,
}

/// One connection, as its socket's attachment holds it (short names: an attachment is at most
/// 2 KiB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conn {
    #[serde(rename = "i")]
    pub id: String,
    /// The shard it landed on (what the shard registers under in directories).
    #[serde(rename = "h")]
    pub shard: u32,
    /// The session the upgrade request's cookie carried (confirmed by the Worker), used when
    /// `authenticate` comes without a token.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<Who>,
    /// Set once `authenticate` succeeded.
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub who: Option<Who>,
    /// Before authentication: when it must have happened. After: the last sign of life (a
    /// `pong`, a `ping`, or the authentication itself).
    #[serde(rename = "t")]
    pub at_ms: i64,
    #[serde(rename = "p", default)]
    pub subs: Vec<ProjectId>,
}

/// A change of this shard's presence in a project's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub project: ProjectId,
    pub present: bool,
    pub version: u64,
}

/// The shard's version clock: microseconds since the epoch, and never twice the same value
/// (within an isolate; across a restart the wall clock has moved on).
#[derive(Debug, Default)]
pub struct Versions {
    last: u64,
}

impl Versions {
    pub fn next(&mut self, now_ms: i64) -> u64 {
        self.last = (now_ms.max(0) as u64 * 1000).max(self.last + 1);
        self.last
    }

    /// A version no earlier than any handed out (what an "absent" report is stamped with).
    pub fn now(&self, now_ms: i64) -> u64 {
        (now_ms.max(0) as u64 * 1000).max(self.last)
    }
}

/// What the shard must check (I/O) before a message takes effect.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Authenticate {
        id: String,
        /// `None`: use the upgrade's cookie session.
        token: Option<String>,
        cookie: Option<Who>,
        /// The project to subscribe at once, with the version of its join.
        project: Option<(ProjectId, u64)>,
        /// A `projectId` that is no project id (answered E002 once authenticated).
        malformed: Option<String>,
    },
    Subscribe {
        id: String,
        who: Who,
        project: ProjectId,
        version: u64,
    },
}

/// The I/O a [`Check`] needs.
#[allow(async_fn_in_trait)]
pub trait HubPorts {
    /// Verifies a session token as every API route does (signature, algorithm, expiry,
    /// revocation); `Err` is the reason to tell the client.
    async fn verify(&self, token: &str) -> Result<Who, String>;
    /// Whether the session is still live (not signed out); `Err`: it could not be checked.
    async fn session_live(&self, who: &Who) -> Result<bool, ()>;
    /// Whether `user` may see `project` (`services::orchestrator_access::can_view`).
    async fn can_view(&self, user: &UserId, project: &ProjectId) -> Result<bool, ()>;
    /// Records this shard's presence in the project's directory.
    async fn presence(&self, change: &Presence) -> Result<(), ()>;
}

/// How a subscription check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Allowed, and the directory knows the shard.
    Granted,
    /// The user may not see it (or it does not exist).
    Hidden,
    /// It could not be checked (storage failed): the client may try again.
    Failed,
}

/// A [`Check`]'s outcome, for [`Hub::settle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    Authenticate {
        id: String,
        who: Result<Who, String>,
        project: Option<(ProjectId, Access)>,
        malformed: Option<String>,
    },
    Subscribe {
        id: String,
        project: ProjectId,
        /// `None`: the session was signed out.
        access: Option<Access>,
    },
}

impl Check {
    /// Runs the check's I/O.
    pub async fn run(self, ports: &impl HubPorts) -> Checked {
        async fn grant(ports: &impl HubPorts, user: &UserId, p: &ProjectId, v: u64) -> Access {
            match ports.can_view(user, p).await {
                Ok(true) => {}
                Ok(false) => return Access::Hidden,
                Err(()) => return Access::Failed,
            }
            let change = Presence {
                project: p.clone(),
                present: true,
                version: v,
            };
            match ports.presence(&change).await {
                Ok(()) => Access::Granted,
                Err(()) => Access::Failed,
            }
        }
        match self {
            Check::Authenticate {
                id,
                token,
                cookie,
                project,
                malformed,
            } => {
                let who = match (token, cookie) {
                    (Some(t), _) => ports.verify(&t).await,
                    (None, Some(c)) => Ok(c),
                    (None, None) => Err(
                        "no token: send your session token in `token` (or open the socket with your session cookie)"
                            .into(),
                    ),
                };
                let project = match (&who, project) {
                    (Ok(w), Some((p, v))) => {
                        let access = grant(ports, &w.user, &p, v).await;
                        Some((p, access))
                    }
                    (Err(_), Some((p, _))) => Some((p, Access::Hidden)),
                    (_, None) => None,
                };
                Checked::Authenticate {
                    id,
                    who,
                    project,
                    malformed,
                }
            }
            Check::Subscribe {
                id,
                who,
                project,
                version,
            } => {
                let access = match ports.session_live(&who).await {
                    Ok(false) => None,
                    Ok(true) => Some(grant(ports, &who.user, &project, version).await),
                    Err(()) => Some(Access::Failed),
                };
                Checked::Subscribe {
                    id,
                    project,
                    access,
                }
            }
        }
    }
}

/// What a message, a check or a tick asks the shell to do.
#[derive(Debug, Default, PartialEq)]
pub struct Effects {
    /// Messages to the connection concerned.
    pub send: Vec<HubMessage>,
    /// Its new record, to store as the socket's attachment.
    pub save: Option<Conn>,
    /// Close it with this code and reason (after sending).
    pub close: Option<(u16, String)>,
    /// Directory changes to send (in order).
    pub presence: Vec<Presence>,
}

/// What to do with a client message.
#[derive(Debug, PartialEq)]
pub enum Step {
    Done(Effects),
    /// Run the check, then [`Hub::settle`] its outcome.
    Check(Check),
    /// An earlier message of the connection is being checked: this one waits.
    Queued,
}

/// A heartbeat round ([`Hub::tick`]).
#[derive(Debug, Default, PartialEq)]
pub struct Tick {
    /// Connections to send the heartbeat to.
    pub heartbeat: Vec<String>,
    /// Connections to close: id, error to send first, close code and reason.
    pub close: Vec<(String, HubMessage, u16, String)>,
    pub presence: Vec<Presence>,
}

/// Who is subscribed (or subscribing) to a project on this shard.
#[derive(Debug, Default)]
struct Members {
    live: BTreeSet<String>,
    pending: usize,
}

impl Members {
    fn is_empty(&self) -> bool {
        self.live.is_empty() && self.pending == 0
    }
}

/// One shard's connections and subscriptions.
#[derive(Debug, Default)]
pub struct Hub {
    settings: HubSettings,
    conns: HashMap<String, Conn>,
    members: HashMap<ProjectId, Members>,
    /// Connections with a check in flight, and their waiting messages.
    busy: HashMap<String, VecDeque<String>>,
    versions: Versions,
    /// When the last heartbeat went out (none since this object woke: `None`).
    last_heartbeat_ms: Option<i64>,
}

/// An `error` message.
pub fn error(code: ErrorCode, message: impl Into<String>, recoverable: bool) -> HubMessage {
    HubMessage::Error {
        error: format!("{code:?}"),
        message: message.into(),
        recoverable,
    }
}

/// The timestamp of `heartbeat` and `pong` messages: RFC 3339, milliseconds, UTC.
pub fn timestamp(now_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

const TYPES: &str = "authenticate, subscribe, unsubscribe, pong, ping";

/// Parses a client message; the error says what was wrong (E004).
pub fn parse_client(text: &str) -> Result<ClientMessage, String> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("not JSON ({e}): messages are JSON objects with a `type`"))?;
    let Some(kind) = v.get("type").and_then(|t| t.as_str()).map(str::to_string) else {
        return Err(format!(
            "a message is a JSON object with a string `type` (one of {TYPES})"
        ));
    };
    if !TYPES.split(", ").any(|t| t == kind) {
        return Err(format!(
            "unknown message type {kind:?}; expected one of {TYPES}"
        ));
    }
    serde_json::from_value(v).map_err(|e| format!("invalid {kind} message: {e}"))
}

impl Hub {
    pub fn new(settings: HubSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    pub fn settings(&self) -> HubSettings {
        self.settings
    }

    /// Rebuilds the shard from its sockets' records (a woken object).
    pub fn load(&mut self, conns: impl IntoIterator<Item = Conn>) {
        for c in conns {
            for p in &c.subs {
                self.members
                    .entry(p.clone())
                    .or_default()
                    .live
                    .insert(c.id.clone());
            }
            self.conns.insert(c.id.clone(), c);
        }
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// A new connection, not yet authenticated: its record (to attach to the socket).
    pub fn open(&mut self, id: &str, shard: u32, cookie: Option<Who>, now_ms: i64) -> Conn {
        let c = Conn {
            id: id.to_string(),
            shard,
            cookie,
            who: None,
            at_ms: now_ms + self.settings.auth_timeout_ms,
            subs: Vec::new(),
        };
        self.conns.insert(id.to_string(), c.clone());
        c
    }

    pub fn conn(&self, id: &str) -> Option<&Conn> {
        self.conns.get(id)
    }

    /// A client message: queued behind a check in flight, or processed.
    pub fn receive(&mut self, id: &str, text: &str, now_ms: i64) -> Step {
        if let Some(q) = self.busy.get_mut(id) {
            if q.len() >= MAX_QUEUED {
                return Step::Done(Effects {
                    send: vec![error(
                        ErrorCode::E003,
                        "too many messages waiting for an answer; wait for the answers before sending more",
                        true,
                    )],
                    ..Effects::default()
                });
            }
            q.push_back(text.to_string());
            return Step::Queued;
        }
        self.process(id, text, now_ms)
    }

    /// The connection's next waiting message, once its check settled (`None`: nothing waits,
    /// and the connection is no longer busy).
    pub fn next_queued(&mut self, id: &str) -> Option<String> {
        let q = self.busy.get_mut(id)?;
        match q.pop_front() {
            Some(t) => Some(t),
            None => {
                self.busy.remove(id);
                None
            }
        }
    }

    /// Processes a message now (see [`Hub::receive`]).
    pub fn process(&mut self, id: &str, text: &str, now_ms: i64) -> Step {
        let Some(conn) = self.conns.get(id) else {
            return Step::Done(Effects::default());
        };
        if text.len() > MAX_MESSAGE_BYTES {
            let mut e = self.drop_conn(id, now_ms);
            e.send.push(error(
                ErrorCode::E004,
                format!("message too big: at most {MAX_MESSAGE_BYTES} bytes"),
                false,
            ));
            e.close = Some((CLOSE_TOO_BIG, "message too big".into()));
            return Step::Done(e);
        }
        let parsed = parse_client(text);
        let Some(who) = conn.who.clone() else {
            if conn.at_ms <= now_ms {
                let mut e = self.drop_conn(id, now_ms);
                e.send.push(auth_timeout());
                e.close = Some((CLOSE_AUTH_TIMEOUT, "authentication timeout".into()));
                return Step::Done(e);
            }
            return match parsed {
                Ok(ClientMessage::Authenticate {
                    token, project_id, ..
                }) => {
                    let cookie = conn.cookie.clone();
                    let project = project_id
                        .as_deref()
                        .and_then(ProjectId::parse)
                        .map(|p| {
                            let v = self.add_pending(&p, now_ms);
                            (p, v)
                        });
                    // A malformed id is answered once authenticated (a stranger learns nothing).
                    let malformed = project_id.filter(|_| project.is_none());
                    self.busy.entry(id.to_string()).or_default();
                    let token = Some(token.trim().to_string()).filter(|t| !t.is_empty());
                    Step::Check(Check::Authenticate {
                        id: id.to_string(),
                        token,
                        cookie,
                        project,
                        malformed,
                    })
                }
                Ok(_) => Step::Done(self.refuse_unauthenticated(
                    id,
                    "authenticate first: the first message must be {\"type\":\"authenticate\",\"token\":…}",
                    now_ms,
                )),
                Err(why) => Step::Done(self.refuse_unauthenticated(
                    id,
                    &format!("{why}; the first message must be an authenticate message"),
                    now_ms,
                )),
            };
        };
        let msg = match parsed {
            Ok(m) => m,
            Err(why) => {
                return Step::Done(Effects {
                    send: vec![error(ErrorCode::E004, why, true)],
                    ..Effects::default()
                })
            }
        };
        let reply = |m: HubMessage| {
            Step::Done(Effects {
                send: vec![m],
                ..Effects::default()
            })
        };
        match msg {
            ClientMessage::Authenticate { .. } => {
                reply(error(ErrorCode::E004, "already authenticated", true))
            }
            ClientMessage::Ping { .. } => {
                let mut e = self.touch(id, now_ms);
                e.send.push(HubMessage::Pong {
                    timestamp: timestamp(now_ms),
                });
                Step::Done(e)
            }
            ClientMessage::Pong { .. } => Step::Done(self.touch(id, now_ms)),
            ClientMessage::Subscribe { project_id } => {
                if who.expires_s.saturating_mul(1000) <= now_ms {
                    return Step::Done(self.session_ended(id, now_ms));
                }
                let Some(project) = ProjectId::parse(&project_id) else {
                    return reply(not_found(&project_id));
                };
                if conn.subs.contains(&project) {
                    return reply(HubMessage::Subscribed {
                        project_id: project,
                    });
                }
                if conn.subs.len() >= MAX_SUBSCRIPTIONS {
                    return reply(error(
                        ErrorCode::E004,
                        format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection; unsubscribe from one first"),
                        true,
                    ));
                }
                let version = self.add_pending(&project, now_ms);
                self.busy.entry(id.to_string()).or_default();
                Step::Check(Check::Subscribe {
                    id: id.to_string(),
                    who,
                    project,
                    version,
                })
            }
            ClientMessage::Unsubscribe { project_id } => {
                let mut e = Effects::default();
                if let Some(project) = ProjectId::parse(&project_id) {
                    let conn = self.conns.get_mut(id).expect("checked above");
                    if let Some(i) = conn.subs.iter().position(|p| *p == project) {
                        conn.subs.remove(i);
                        e.save = Some(conn.clone());
                        self.remove_live(&project, id, now_ms, &mut e.presence);
                    }
                }
                e.send.push(HubMessage::Unsubscribed {
                    project_id: ProjectId::from(project_id),
                });
                Step::Done(e)
            }
        }
    }

    /// Applies a check's outcome.
    pub fn settle(&mut self, checked: Checked, now_ms: i64) -> Effects {
        let mut e = Effects::default();
        match checked {
            Checked::Authenticate {
                id,
                who,
                project,
                malformed,
            } => {
                // The pending subscription becomes live (the directory already knows the
                // shard: no presence change), or is over.
                let exists = self.conns.contains_key(&id);
                let admit = exists && who.is_ok() && matches!(project, Some((_, Access::Granted)));
                if let Some((p, _)) = &project {
                    if admit {
                        self.admit(p, &id);
                    } else {
                        self.remove_pending(p, now_ms, &mut e.presence);
                    }
                }
                if !exists {
                    return e;
                }
                let who = match who {
                    Ok(w) => w,
                    Err(why) => {
                        let mut closed = self.refuse_unauthenticated(
                            &id,
                            &format!("authentication failed: {why}"),
                            now_ms,
                        );
                        closed.presence.splice(0..0, e.presence);
                        return closed;
                    }
                };
                let conn = self.conns.get_mut(&id).expect("present");
                conn.who = Some(who.clone());
                conn.at_ms = now_ms;
                if let (true, Some((p, _))) = (admit, &project) {
                    conn.subs.push(p.clone());
                }
                let conn = self.conns.get(&id).expect("present");
                e.save = Some(conn.clone());
                e.send.push(HubMessage::AuthSuccess {
                    user_id: who.user,
                    connection_id: id.clone(),
                    subscriptions: conn.subs.clone(),
                });
                match project {
                    Some((p, Access::Hidden)) => e.send.push(not_found(p.as_str())),
                    Some((p, Access::Failed)) => e.send.push(could_not_check(&p)),
                    _ => {}
                }
                if let Some(m) = malformed {
                    e.send.push(not_found(&m));
                }
                e
            }
            Checked::Subscribe {
                id,
                project,
                access,
            } => {
                let exists = self.conns.contains_key(&id);
                if exists && access == Some(Access::Granted) {
                    self.admit(&project, &id);
                } else {
                    self.remove_pending(&project, now_ms, &mut e.presence);
                }
                if !exists {
                    return e;
                }
                match access {
                    None => {
                        let mut closed = self.session_ended(&id, now_ms);
                        closed.presence.splice(0..0, e.presence);
                        return closed;
                    }
                    Some(Access::Hidden) => e.send.push(not_found(project.as_str())),
                    Some(Access::Failed) => e.send.push(could_not_check(&project)),
                    Some(Access::Granted) => {
                        let conn = self.conns.get_mut(&id).expect("present");
                        if !conn.subs.contains(&project) {
                            conn.subs.push(project.clone());
                        }
                        e.save = Some(conn.clone());
                        e.send.push(HubMessage::Subscribed {
                            project_id: project,
                        });
                    }
                }
                e
            }
        }
    }

    /// The socket closed (or failed): the connection is forgotten.
    pub fn closed(&mut self, id: &str, now_ms: i64) -> Vec<Presence> {
        self.drop_conn(id, now_ms).presence
    }

    /// The connections an event of `project` goes to, and whether this shard still has any
    /// subscriber (or one subscribing) there, as of the returned version.
    pub fn deliver(&self, project: &ProjectId, now_ms: i64) -> (Vec<&str>, bool, u64) {
        match self.members.get(project) {
            Some(m) if !m.is_empty() => (
                m.live.iter().map(String::as_str).collect(),
                true,
                self.versions.now(now_ms),
            ),
            _ => (Vec::new(), false, self.versions.now(now_ms)),
        }
    }

    /// The alarm: expired deadlines close their connections; heartbeats go out when due.
    pub fn tick(&mut self, now_ms: i64) -> Tick {
        let mut t = Tick::default();
        let s = self.settings;
        let mut closing = Vec::new();
        for c in self.conns.values() {
            match &c.who {
                None if c.at_ms <= now_ms => closing.push((
                    c.id.clone(),
                    auth_timeout(),
                    CLOSE_AUTH_TIMEOUT,
                    "authentication timeout".to_string(),
                )),
                Some(_) if c.at_ms + s.expiry_ms <= now_ms => closing.push((
                    c.id.clone(),
                    error(
                        ErrorCode::E004,
                        "no pong in time: the connection expired; connect again",
                        false,
                    ),
                    CLOSE_EXPIRED,
                    "heartbeat timeout".to_string(),
                )),
                Some(w) if w.expires_s.saturating_mul(1000) <= now_ms => closing.push((
                    c.id.clone(),
                    error(
                        ErrorCode::E001,
                        "the session token expired; sign in again",
                        false,
                    ),
                    CLOSE_UNAUTHENTICATED,
                    "session expired".to_string(),
                )),
                _ => {}
            }
        }
        for (id, ..) in &closing {
            t.presence.extend(self.drop_conn(id, now_ms).presence);
        }
        t.close = closing;
        let due = self
            .last_heartbeat_ms
            .is_none_or(|last| last + s.heartbeat_ms <= now_ms);
        if due {
            t.heartbeat = self
                .conns
                .values()
                .filter(|c| c.who.is_some())
                .map(|c| c.id.clone())
                .collect();
            t.heartbeat.sort();
            if !t.heartbeat.is_empty() {
                self.last_heartbeat_ms = Some(now_ms);
            }
        }
        t
    }

    /// When the alarm must fire next (`None`: no connection, nothing to do).
    pub fn next_due(&self, now_ms: i64) -> Option<i64> {
        let s = self.settings;
        let mut due: Option<i64> = None;
        let mut at = |t: i64| due = Some(due.map_or(t, |d| d.min(t)));
        let mut any_authed = false;
        for c in self.conns.values() {
            match &c.who {
                None => at(c.at_ms),
                Some(w) => {
                    any_authed = true;
                    at(c.at_ms + s.expiry_ms);
                    at(w.expires_s.saturating_mul(1000));
                }
            }
        }
        if any_authed {
            at(self.last_heartbeat_ms.unwrap_or(now_ms) + s.heartbeat_ms);
        }
        due
    }

    fn touch(&mut self, id: &str, now_ms: i64) -> Effects {
        let conn = self.conns.get_mut(id).expect("authenticated connection");
        conn.at_ms = now_ms;
        Effects {
            save: Some(conn.clone()),
            ..Effects::default()
        }
    }

    fn refuse_unauthenticated(&mut self, id: &str, why: &str, now_ms: i64) -> Effects {
        let mut e = self.drop_conn(id, now_ms);
        e.send.push(error(ErrorCode::E001, why, false));
        e.close = Some((CLOSE_UNAUTHENTICATED, "not authenticated".into()));
        e
    }

    fn session_ended(&mut self, id: &str, now_ms: i64) -> Effects {
        let mut e = self.drop_conn(id, now_ms);
        e.send.push(error(
            ErrorCode::E001,
            "the session expired or was signed out; sign in again",
            false,
        ));
        e.close = Some((CLOSE_UNAUTHENTICATED, "session ended".into()));
        e
    }

    /// Forgets a connection (it is closing): its subscriptions go.
    fn drop_conn(&mut self, id: &str, now_ms: i64) -> Effects {
        let mut e = Effects::default();
        self.busy.remove(id);
        if let Some(c) = self.conns.remove(id) {
            for p in &c.subs {
                self.remove_live(p, id, now_ms, &mut e.presence);
            }
        }
        e
    }

    /// A subscription is being checked: the shard is present for it meanwhile. Returns the
    /// version of the join to send.
    fn add_pending(&mut self, p: &ProjectId, now_ms: i64) -> u64 {
        self.members.entry(p.clone()).or_default().pending += 1;
        self.versions.next(now_ms)
    }

    /// A checked subscription takes effect: pending becomes live (presence unchanged).
    fn admit(&mut self, p: &ProjectId, id: &str) {
        let m = self.members.entry(p.clone()).or_default();
        m.pending = m.pending.saturating_sub(1);
        m.live.insert(id.to_string());
    }

    fn remove_pending(&mut self, p: &ProjectId, now_ms: i64, out: &mut Vec<Presence>) {
        if let Some(m) = self.members.get_mut(p) {
            m.pending = m.pending.saturating_sub(1);
        }
        self.leave_if_empty(p, now_ms, out);
    }

    fn remove_live(&mut self, p: &ProjectId, id: &str, now_ms: i64, out: &mut Vec<Presence>) {
        if let Some(m) = self.members.get_mut(p) {
            m.live.remove(id);
        }
        self.leave_if_empty(p, now_ms, out);
    }

    fn leave_if_empty(&mut self, p: &ProjectId, now_ms: i64, out: &mut Vec<Presence>) {
        if self.members.get(p).is_some_and(Members::is_empty) {
            self.members.remove(p);
            out.push(Presence {
                project: p.clone(),
                present: false,
                version: self.versions.next(now_ms),
            });
        }
    }
}

fn not_found(project: &str) -> HubMessage {
    error(
        ErrorCode::E002,
        format!("project {project} not found"),
        true,
    )
}

fn auth_timeout() -> HubMessage {
    error(
        ErrorCode::E001,
        "no authenticate message in time; connect again and authenticate first",
        false,
    )
}

fn could_not_check(p: &ProjectId) -> HubMessage {
    error(
        ErrorCode::E000,
        format!("could not subscribe to {p} just now; try again"),
        true,
    )
}

/// A project's directory: which shards have subscribers of the project. Each shard's newest
/// presence (by version) wins, so late or reordered messages change nothing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Directory {
    /// shard → (present, version); absent entries stay as tombstones (at most one per shard).
    marks: BTreeMap<u32, (bool, u64)>,
}

impl Directory {
    pub fn from_marks(marks: impl IntoIterator<Item = (u32, bool, u64)>) -> Self {
        Self {
            marks: marks.into_iter().map(|(s, p, v)| (s, (p, v))).collect(),
        }
    }

    /// Records a shard's presence; whether anything changed (and must be stored).
    pub fn apply(&mut self, shard: u32, present: bool, version: u64) -> bool {
        match self.marks.get(&shard) {
            Some((_, v)) if *v >= version => false,
            _ => {
                self.marks.insert(shard, (present, version));
                true
            }
        }
    }

    /// A shard reported, on a delivery, that it had no subscriber as of `version`: it is
    /// dropped unless a newer presence arrived since. Whether anything changed.
    pub fn absent_as_of(&mut self, shard: u32, version: u64) -> bool {
        match self.marks.get(&shard) {
            Some((true, v)) if *v <= version => {
                self.marks.insert(shard, (false, version));
                true
            }
            _ => false,
        }
    }

    /// The shards an event goes to.
    pub fn targets(&self) -> Vec<u32> {
        self.marks
            .iter()
            .filter(|(_, (p, _))| *p)
            .map(|(s, _)| *s)
            .collect()
    }

    pub fn marks(&self) -> impl Iterator<Item = (u32, bool, u64)> + '_ {
        self.marks.iter().map(|(s, (p, v))| (*s, *p, *v))
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;

//! Bounded fan-out of event messages to WebSocket clients: every message sent to a socket is
//! counted, the client acknowledges what it has received, and a socket that lets too many go
//! unacknowledged is dropped with one last message saying why, while the others carry on.
//!
//! Why a count and not the runtime's buffer: workerd's `WebSocket` offers `send` (synchronous:
//! the message joins a queue inside the runtime, written out as the peer reads), `close`,
//! attachments and (hibernation API) tags, but no `bufferedAmount` or any other view of that
//! queue (workerd issue #988, open), and workers-rs exposes none either. A client that stops
//! reading is invisible to the object, and its queue grows without bound. So the client says
//! how far it got: `{"type":"ack","received":N}`, N counting every message it has received on
//! this socket. What is sent but not yet acknowledged is an upper bound of what waits in the
//! runtime's queue for that client.
//!
//! Invariants:
//! - a socket never has more than [`SocketFanOut::cap`] counted messages unacknowledged: the
//!   message that would exceed it is not sent; the socket gets the caller's `lagged` message
//!   instead (an `error` event) and is closed with [`CLOSE_LAGGED`], and nothing is sent to it
//!   again;
//! - the `state` and replay a socket is sent when it opens (bounded by event storage) are
//!   acknowledged in advance, as an SSE consumer's replay is outside its bound;
//! - acknowledgements only move forward and never past what was sent (a client cannot buy
//!   room by acknowledging the future);
//! - the counts live in the object's memory: after it wakes from hibernation (which it does
//!   only when no run is sending), a socket starts a fresh count, so the bound restarts rather
//!   than lapses. A socket without a key (accepted before keys existed) is closed with
//!   [`CLOSE_RECONNECT`] so that it comes back with one.
//!
//! What this cannot do: a client that acknowledges messages it never read defeats the count
//! (only itself is then behind; the runtime's queue is what grows). Without a signal from the
//! runtime this is the strongest bound available.
//!
//! Single-threaded, as a Durable Object is.

use std::collections::HashMap;

/// Messages a socket may have unacknowledged before it is dropped.
pub const MAX_UNACKED_MESSAGES: u64 = 1024;

/// Close code for a socket dropped for falling behind: 1013 "try again later" (RFC 6455 §7.4.2
/// registry), as a client should reconnect with `?since=` and carry on.
pub const CLOSE_LAGGED: u16 = 1013;

/// Close code for a socket without a key: 1012 "service restart"; it reconnects.
pub const CLOSE_RECONNECT: u16 = 1012;

/// One connected WebSocket as the fan-out sees it.
pub trait Socket {
    /// The key that tells this socket apart (stable while it is open); `None` if it has none.
    fn key(&self) -> Option<String>;
    fn send(&self, text: &str);
    fn close(&self, code: u16, reason: &str);
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Window {
    sent: u64,
    acked: u64,
    /// Closed for falling behind: nothing more is sent.
    dropped: bool,
}

/// The counts of the object's WebSockets.
#[derive(Debug)]
pub struct SocketFanOut {
    windows: HashMap<String, Window>,
    cap: u64,
}

impl Default for SocketFanOut {
    fn default() -> Self {
        Self::new(MAX_UNACKED_MESSAGES)
    }
}

/// What became of one message for one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Sent,
    /// The socket fell behind: it got the lagged message and was closed.
    Dropped,
    /// Dropped earlier, or without a key: nothing was sent.
    Skipped,
}

impl SocketFanOut {
    pub fn new(cap: u64) -> Self {
        Self {
            windows: HashMap::new(),
            cap: cap.max(1),
        }
    }

    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// A socket just opened and was sent `replayed` messages (the state and the stored events
    /// it asked for), which count as acknowledged.
    pub fn open(&mut self, key: &str, replayed: u64) {
        self.windows.insert(
            key.to_string(),
            Window {
                sent: replayed,
                acked: replayed,
                dropped: false,
            },
        );
    }

    /// The client has received `received` messages on this socket.
    pub fn ack(&mut self, key: &str, received: u64) {
        let w = self.windows.entry(key.to_string()).or_default();
        w.acked = w.acked.max(received.min(w.sent));
    }

    /// Messages sent to the socket and not yet acknowledged (`None`: not tracked).
    pub fn unacked(&self, key: &str) -> Option<u64> {
        self.windows.get(key).map(|w| w.sent - w.acked)
    }

    /// The socket closed: its count goes.
    pub fn forget(&mut self, key: &str) {
        self.windows.remove(key);
    }

    /// Sends `text` to `ws` unless that would put it over the bound; then `lagged()` is its
    /// last message and it is closed.
    pub fn send(&mut self, ws: &impl Socket, text: &str, lagged: impl Fn() -> String) -> Sent {
        let Some(key) = ws.key() else {
            ws.close(CLOSE_RECONNECT, "reconnect");
            return Sent::Skipped;
        };
        let cap = self.cap;
        let w = self.windows.entry(key).or_default();
        if w.dropped {
            return Sent::Skipped;
        }
        if w.sent - w.acked >= cap {
            w.dropped = true;
            ws.send(&lagged());
            ws.close(CLOSE_LAGGED, "fell behind");
            return Sent::Dropped;
        }
        w.sent += 1;
        ws.send(text);
        Sent::Sent
    }

    /// Sends `text` to every socket (see [`SocketFanOut::send`]); returns how many were
    /// dropped for falling behind.
    pub fn publish<S: Socket>(
        &mut self,
        sockets: &[S],
        text: &str,
        lagged: impl Fn() -> String,
    ) -> usize {
        let mut dropped = 0;
        for ws in sockets {
            if self.send(ws, text, &lagged) == Sent::Dropped {
                dropped += 1;
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A socket that records what it was sent and how it was closed.
    #[derive(Default)]
    struct FakeSocket {
        key: Option<String>,
        got: RefCell<Vec<String>>,
        closed: RefCell<Option<(u16, String)>>,
    }

    impl FakeSocket {
        fn new(key: &str) -> Self {
            Self {
                key: Some(key.into()),
                ..Default::default()
            }
        }
        fn received(&self) -> u64 {
            self.got.borrow().len() as u64
        }
    }

    impl Socket for &FakeSocket {
        fn key(&self) -> Option<String> {
            self.key.clone()
        }
        fn send(&self, text: &str) {
            assert!(self.closed.borrow().is_none(), "sent after close: {text}");
            self.got.borrow_mut().push(text.into());
        }
        fn close(&self, code: u16, reason: &str) {
            *self.closed.borrow_mut() = Some((code, reason.into()));
        }
    }

    fn lagged() -> String {
        "lagged".into()
    }

    #[test]
    fn a_socket_that_acknowledges_gets_everything_and_its_replay_is_outside_the_bound() {
        let mut f = SocketFanOut::new(3);
        let ws = FakeSocket::new("a");
        // The state and 10 replayed events were sent on opening: more than the bound.
        for i in 0..11 {
            (&ws).send(&format!("r{i}"));
        }
        f.open("a", 11);
        assert_eq!(f.unacked("a"), Some(0));
        for i in 0..20 {
            assert_eq!(f.send(&&ws, &format!("e{i}"), lagged), Sent::Sent);
            // The client acknowledges every other message.
            if i % 2 == 1 {
                f.ack("a", ws.received());
            }
        }
        assert_eq!(ws.received(), 31);
        assert!(ws.closed.borrow().is_none());
        assert_eq!(ws.got.borrow().last().unwrap(), "e19");
    }

    #[test]
    fn a_socket_that_stops_acknowledging_is_dropped_with_a_last_message_and_others_carry_on() {
        let mut f = SocketFanOut::new(3);
        let (slow, fast) = (FakeSocket::new("slow"), FakeSocket::new("fast"));
        f.open("slow", 1);
        f.open("fast", 1);
        let sockets = [&slow, &fast];
        let mut dropped = 0;
        for i in 0..8 {
            dropped += f.publish(&sockets, &format!("e{i}"), lagged);
            f.ack("fast", 1 + fast.received());
        }
        assert_eq!(dropped, 1);
        assert_eq!(*slow.got.borrow(), ["e0", "e1", "e2", "lagged"]);
        assert_eq!(
            *slow.closed.borrow(),
            Some((CLOSE_LAGGED, "fell behind".to_string()))
        );
        let fast_got: Vec<String> = (0..8).map(|i| format!("e{i}")).collect();
        assert_eq!(*fast.got.borrow(), fast_got);
        assert!(fast.closed.borrow().is_none());
        // Memory stays bounded: nothing more reaches the dropped socket, even if it acks now.
        f.ack("slow", 4);
        assert_eq!(f.send(&&slow, "late", lagged), Sent::Skipped);
        assert_eq!(slow.received(), 4);
        // Once it is gone, its count goes.
        f.forget("slow");
        assert_eq!(f.unacked("slow"), None);
    }

    #[test]
    fn acknowledgements_move_forward_only_and_never_past_what_was_sent() {
        let mut f = SocketFanOut::new(4);
        let ws = FakeSocket::new("a");
        f.open("a", 2);
        for _ in 0..3 {
            f.send(&&ws, "e", lagged);
        }
        assert_eq!(f.unacked("a"), Some(3));
        // Acknowledging the future buys nothing beyond what was sent.
        f.ack("a", 1_000);
        assert_eq!(f.unacked("a"), Some(0));
        for _ in 0..4 {
            assert_eq!(f.send(&&ws, "e", lagged), Sent::Sent);
        }
        // An old acknowledgement does not move the count back.
        f.ack("a", 3);
        assert_eq!(f.unacked("a"), Some(4));
        assert_eq!(f.send(&&ws, "e", lagged), Sent::Dropped);
    }

    #[test]
    fn after_a_wake_the_count_restarts_and_sockets_without_a_key_reconnect() {
        let mut f = SocketFanOut::new(2);
        // Unknown to this (woken) object: a fresh count, still bounded.
        let ws = FakeSocket::new("woken");
        assert_eq!(f.send(&&ws, "e0", lagged), Sent::Sent);
        assert_eq!(f.send(&&ws, "e1", lagged), Sent::Sent);
        assert_eq!(f.send(&&ws, "e2", lagged), Sent::Dropped);
        // The client's count (which includes what it got before the wake) is clamped.
        let mut g = SocketFanOut::new(2);
        let ws2 = FakeSocket::new("woken2");
        g.send(&&ws2, "e0", lagged);
        g.ack("woken2", 500);
        assert_eq!(g.unacked("woken2"), Some(0));
        let legacy = FakeSocket::default();
        assert_eq!(f.send(&&legacy, "e", lagged), Sent::Skipped);
        assert_eq!(legacy.received(), 0);
        assert_eq!(
            *legacy.closed.borrow(),
            Some((CLOSE_RECONNECT, "reconnect".to_string()))
        );
    }
}

//! Bounded fan-out of event frames to live SSE consumers: each consumer has its own queue,
//! read as a [`Stream`]; [`FanOut::publish`] appends a frame to every queue.
//!
//! Invariants:
//! - a consumer never holds more than [`FanOut::cap`] live frames: one that falls that far
//!   behind is dropped: its queue keeps what it had, gets one last frame (the caller's `error`
//!   event saying why, so the client knows to reconnect with `Last-Event-ID`) and then ends;
//! - the replay a consumer is given when it subscribes (stored events it missed, bounded by
//!   storage) does not count against the bound, so a reconnect after a long absence is not
//!   dropped for the backlog it asked for;
//! - a consumer whose stream was dropped (the client went away) is forgotten at the next
//!   publish; [`FanOut::close`] ends every stream after what it already holds.
//!
//! Single-threaded (`Rc`/`RefCell`), as a Durable Object is.

use futures_util::Stream;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Live frames a consumer may lag behind before it is dropped.
pub const MAX_QUEUED_FRAMES: usize = 1024;

#[derive(Default)]
struct Queue {
    frames: VecDeque<Vec<u8>>,
    /// How many of the frames at the front are the subscription's replay.
    replay: usize,
    /// No more frames will come: the stream ends once `frames` is empty.
    closed: bool,
    waker: Option<Waker>,
}

impl Queue {
    fn push(&mut self, frame: Vec<u8>) {
        self.frames.push_back(frame);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn close(&mut self) {
        self.closed = true;
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn live(&self) -> usize {
        self.frames.len() - self.replay
    }
}

/// One consumer's stream of frames.
pub struct Consumer(Rc<RefCell<Queue>>);

impl Stream for Consumer {
    type Item = Vec<u8>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        let mut q = self.0.borrow_mut();
        match q.frames.pop_front() {
            Some(f) => {
                q.replay = q.replay.saturating_sub(1);
                Poll::Ready(Some(f))
            }
            None if q.closed => Poll::Ready(None),
            None => {
                q.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The live consumers of one event source.
pub struct FanOut {
    queues: Vec<Rc<RefCell<Queue>>>,
    cap: usize,
}

impl Default for FanOut {
    fn default() -> Self {
        Self::new(MAX_QUEUED_FRAMES)
    }
}

impl FanOut {
    pub fn new(cap: usize) -> Self {
        Self {
            queues: Vec::new(),
            cap: cap.max(1),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// A consumer starting with `replay` (outside the bound); `live`: whether it stays
    /// subscribed to what is published next (else its stream ends after the replay).
    pub fn subscribe(&mut self, replay: Vec<Vec<u8>>, live: bool) -> Consumer {
        let q = Rc::new(RefCell::new(Queue {
            replay: replay.len(),
            frames: replay.into(),
            closed: !live,
            waker: None,
        }));
        if live {
            self.queues.push(q.clone());
        }
        Consumer(q)
    }

    /// Consumers currently subscribed.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Sends `frame` to every consumer. One already [`FanOut::cap`] frames behind is dropped
    /// instead, its last frame `lagged()`. Returns how many were dropped for lagging.
    pub fn publish(&mut self, frame: &[u8], lagged: impl Fn() -> Vec<u8>) -> usize {
        let cap = self.cap;
        let mut dropped = 0;
        self.queues.retain(|q| {
            // Only this list holds it: the consumer's stream is gone.
            if Rc::strong_count(q) == 1 {
                return false;
            }
            let mut q = q.borrow_mut();
            if q.live() >= cap {
                q.push(lagged());
                q.close();
                dropped += 1;
                return false;
            }
            q.push(frame.to_vec());
            true
        });
        dropped
    }

    /// Ends every consumer's stream after the frames it holds.
    pub fn close(&mut self) {
        for q in self.queues.drain(..) {
            q.borrow_mut().close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn drain(c: &mut Consumer) -> (Vec<String>, bool) {
        let mut out = Vec::new();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        loop {
            match c.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(f)) => out.push(String::from_utf8(f).unwrap()),
                Poll::Ready(None) => return (out, true),
                Poll::Pending => return (out, false),
            }
        }
    }

    fn lagged() -> Vec<u8> {
        b"lagged".to_vec()
    }

    #[test]
    fn a_consumer_that_keeps_up_gets_everything_in_order() {
        let mut f = FanOut::new(3);
        let mut c = f.subscribe(vec![b"r1".to_vec(), b"r2".to_vec()], true);
        for i in 0..10 {
            assert_eq!(f.publish(format!("e{i}").as_bytes(), lagged), 0);
            let (got, ended) = drain(&mut c);
            let expected: Vec<String> = if i == 0 {
                vec!["r1".into(), "r2".into(), "e0".into()]
            } else {
                vec![format!("e{i}")]
            };
            assert_eq!((got, ended), (expected, false));
        }
        f.close();
        assert_eq!(drain(&mut c), (vec![], true));
        assert!(f.is_empty());
    }

    #[test]
    fn a_slow_consumer_is_dropped_with_a_last_frame_and_others_carry_on() {
        let mut f = FanOut::new(3);
        // The replay (larger than the bound) does not count against it.
        let replay: Vec<Vec<u8>> = (0..5).map(|i| format!("r{i}").into_bytes()).collect();
        let mut slow = f.subscribe(replay, true);
        let mut fast = f.subscribe(vec![], true);
        let mut fast_got = Vec::new();
        let mut dropped = 0;
        for i in 0..6 {
            dropped += f.publish(format!("e{i}").as_bytes(), lagged);
            fast_got.extend(drain(&mut fast).0);
        }
        assert_eq!(dropped, 1);
        assert_eq!(f.len(), 1, "only the fast consumer is left");
        let (got, ended) = drain(&mut slow);
        assert!(ended, "the slow consumer's stream ends");
        assert_eq!(
            got,
            ["r0", "r1", "r2", "r3", "r4", "e0", "e1", "e2", "lagged"],
            "what it held, then why it was dropped"
        );
        assert_eq!(fast_got, ["e0", "e1", "e2", "e3", "e4", "e5"]);
        // Memory stays bounded: nothing more reaches the dropped consumer.
        f.publish(b"e6", lagged);
        assert_eq!(drain(&mut slow), (vec![], true));
    }

    #[test]
    fn gone_consumers_are_forgotten_and_replay_only_ends() {
        let mut f = FanOut::new(2);
        let c = f.subscribe(vec![], true);
        drop(c);
        assert_eq!(f.publish(b"x", lagged), 0);
        assert!(f.is_empty());
        let mut once = f.subscribe(vec![b"r".to_vec()], false);
        assert!(f.is_empty());
        assert_eq!(drain(&mut once), (vec!["r".to_string()], true));
        // Read as an async stream too.
        let mut f = FanOut::new(4);
        let c = f.subscribe(vec![b"a".to_vec()], true);
        f.publish(b"b", lagged);
        f.close();
        let all: Vec<Vec<u8>> = futures_executor::block_on(c.collect());
        assert_eq!(all, [b"a".to_vec(), b"b".to_vec()]);
    }
}

//! Per-workspace log: a bounded ring of numbered lines from commands and the dev server, plus a
//! broadcast channel for live subscribers (Server-Sent Events).
//!
//! Sequence numbers start at 1 and never repeat within a workspace, so a client that keeps
//! `nextSeq` can resume without gaps or duplicates (as long as the lines are still held).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

/// Longest line kept; longer lines are cut (minified bundles print very long lines).
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// The wire types of a log line (`stream` and `source` keep their short local names).
pub use byte_protocol::logs::{LogLine, LogSource as Source, LogStream as Stream};

pub struct LogBuffer {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<LogLine>,
}

struct Inner {
    lines: VecDeque<LogLine>,
    next_seq: u64,
    capacity: usize,
}

impl LogBuffer {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(1024);
        LogBuffer {
            inner: Mutex::new(Inner {
                lines: VecDeque::new(),
                next_seq: 1,
                capacity: capacity.max(1),
            }),
            tx,
        }
    }

    /// Appends one line and returns its sequence number.
    pub fn push(&self, stream: Stream, source: Source, line: &str) -> u64 {
        let line = clip_line(line);
        let mut inner = self.inner.lock().expect("log lock");
        let entry = LogLine {
            seq: inner.next_seq,
            ts: now_ms(),
            stream,
            source,
            line,
        };
        inner.next_seq += 1;
        if inner.lines.len() == inner.capacity {
            inner.lines.pop_front();
        }
        inner.lines.push_back(entry.clone());
        // Sent under the lock so subscribers see lines in sequence order.
        let _ = self.tx.send(entry.clone());
        entry.seq
    }

    /// Lines with `seq >= since` still held, and the sequence number the next line will get.
    pub fn since(&self, since: u64) -> (Vec<LogLine>, u64) {
        let inner = self.inner.lock().expect("log lock");
        let first = inner.lines.front().map(|l| l.seq).unwrap_or(inner.next_seq);
        let skip = since.saturating_sub(first) as usize;
        (
            inner.lines.iter().skip(skip).cloned().collect(),
            inner.next_seq,
        )
    }

    pub fn next_seq(&self) -> u64 {
        self.inner.lock().expect("log lock").next_seq
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.tx.subscribe()
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn clip_line(line: &str) -> String {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.len() <= MAX_LINE_BYTES {
        return line.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} …[line truncated]", &line[..end])
}

/// Splits a byte stream into lines as chunks arrive. A partial line longer than
/// [`MAX_LINE_BYTES`] is emitted early so memory stays bounded.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn feed(&mut self, chunk: &[u8], mut emit: impl FnMut(&str)) {
        for &b in chunk {
            if b == b'\n' {
                emit(&String::from_utf8_lossy(&self.pending));
                self.pending.clear();
            } else {
                self.pending.push(b);
                if self.pending.len() >= MAX_LINE_BYTES {
                    emit(&String::from_utf8_lossy(&self.pending));
                    self.pending.clear();
                }
            }
        }
    }

    pub fn finish(&mut self, mut emit: impl FnMut(&str)) {
        if !self.pending.is_empty() {
            emit(&String::from_utf8_lossy(&self.pending));
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_last_lines_with_stable_numbers() {
        let log = LogBuffer::new(3);
        for i in 0..5 {
            log.push(Stream::Stdout, Source::Exec, &format!("line {i}"));
        }
        let (lines, next) = log.since(0);
        assert_eq!(next, 6);
        assert_eq!(
            lines.iter().map(|l| l.seq).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(lines[0].line, "line 2");
        let (lines, _) = log.since(5);
        assert_eq!(lines.len(), 1);
        assert!(log.since(6).0.is_empty());
        assert!(log.since(100).0.is_empty());
    }

    #[test]
    fn subscribers_get_live_lines() {
        let log = LogBuffer::new(10);
        let mut rx = log.subscribe();
        log.push(Stream::Stderr, Source::Server, "boom\r");
        let got = rx.try_recv().unwrap();
        assert_eq!(
            (got.seq, got.line.as_str(), got.stream),
            (1, "boom", Stream::Stderr)
        );
    }

    #[test]
    fn splitter_handles_chunks_and_long_lines() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        s.feed(b"ab", |l| out.push(l.to_string()));
        s.feed(b"c\nde\n\nf", |l| out.push(l.to_string()));
        s.finish(|l| out.push(l.to_string()));
        assert_eq!(out, vec!["abc", "de", "", "f"]);

        let mut out = Vec::new();
        s.feed(&vec![b'x'; MAX_LINE_BYTES + 10], |l| out.push(l.len()));
        s.finish(|l| out.push(l.len()));
        assert_eq!(out, vec![MAX_LINE_BYTES, 10]);
    }

    #[test]
    fn long_lines_are_clipped() {
        let log = LogBuffer::new(2);
        log.push(Stream::Stdout, Source::Exec, &"é".repeat(MAX_LINE_BYTES));
        let (lines, _) = log.since(0);
        assert!(lines[0].line.len() < MAX_LINE_BYTES + 32);
        assert!(lines[0].line.ends_with("…[line truncated]"));
    }
}

//! Dev-server port allocation from `SANDBOX_PORT_RANGE`.
//!
//! One agent may serve many workspaces (local development), so ports are handed out
//! round-robin, never twice at once, and only after a test bind on 127.0.0.1 shows nothing
//! else is listening there (a foreign listener would otherwise answer our readiness probe).

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::Mutex;

pub struct PortAllocator {
    range: RangeInclusive<u16>,
    state: Mutex<State>,
}

struct State {
    used: HashSet<u16>,
    next: u16,
}

impl PortAllocator {
    pub fn new(range: RangeInclusive<u16>) -> Self {
        let next = *range.start();
        PortAllocator {
            range,
            state: Mutex::new(State {
                used: HashSet::new(),
                next,
            }),
        }
    }

    /// A free port, or `None` when every port in the range is taken.
    pub fn allocate(&self) -> Option<u16> {
        let mut state = self.state.lock().expect("ports lock");
        let (lo, hi) = (*self.range.start(), *self.range.end());
        let span = u32::from(hi - lo) + 1;
        for _ in 0..span {
            let port = state.next;
            state.next = if port >= hi { lo } else { port + 1 };
            if !state.used.contains(&port) && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            {
                state.used.insert(port);
                return Some(port);
            }
        }
        None
    }

    pub fn release(&self, port: u16) {
        self.state.lock().expect("ports lock").used.remove(&port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_distinct_free_ports_and_skips_busy_ones() {
        // Find a few consecutive ports that are free right now.
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        let lo = if base > 60000 { 40000 } else { base };
        let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, lo + 1));
        let ports = PortAllocator::new(lo..=lo + 3);
        let mut got = Vec::new();
        while let Some(p) = ports.allocate() {
            got.push(p);
        }
        if busy.is_ok() {
            assert!(
                !got.contains(&(lo + 1)),
                "a port with a listener is skipped"
            );
        }
        let unique: HashSet<_> = got.iter().collect();
        assert_eq!(unique.len(), got.len());
        assert!(got.len() <= 4);
        let first = got[0];
        ports.release(first);
        assert_eq!(ports.allocate(), Some(first), "released ports come back");
    }
}

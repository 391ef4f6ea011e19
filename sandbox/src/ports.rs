//! Dev-server ports: allocation from `SANDBOX_PORT_RANGE`, and who listens on a port.
//!
//! One agent may serve many workspaces (local development), so ports are handed out
//! round-robin, never twice at once, and only after a test bind on 127.0.0.1 shows nothing
//! else is listening there. Ports inside the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`) are never handed out: any outgoing connection
//! on the machine may take one of those at any moment, between our test bind and the dev
//! server's own `listen`.
//!
//! A free port at allocation time proves nothing about who answers on it later, so the
//! dev server counts as ready only when [`listener_owner`] finds the listening socket among
//! the open files of the process tree we started (the kernel's own record, which a foreign
//! listener cannot fake).

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::Mutex;

pub struct PortAllocator {
    range: RangeInclusive<u16>,
    /// Ports of the range the kernel may use for outgoing connections; skipped.
    ephemeral: Option<RangeInclusive<u16>>,
    state: Mutex<State>,
}

struct State {
    used: HashSet<u16>,
    next: u16,
}

/// The kernel's ephemeral port range, if it can be read.
pub fn ephemeral_range() -> Option<RangeInclusive<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    parse_ephemeral(&text)
}

fn parse_ephemeral(text: &str) -> Option<RangeInclusive<u16>> {
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    let (lo, hi) = (parts.next()?.ok()?, parts.next()?.ok()?);
    (lo <= hi).then_some(lo..=hi)
}

/// How many ports of `range` lie outside `ephemeral`.
pub fn usable_ports(range: &RangeInclusive<u16>, ephemeral: Option<&RangeInclusive<u16>>) -> u32 {
    (*range.start()..=*range.end())
        .filter(|p| ephemeral.is_none_or(|e| !e.contains(p)))
        .count() as u32
}

impl PortAllocator {
    /// An allocator over `range` minus the kernel's ephemeral range.
    pub fn new(range: RangeInclusive<u16>) -> Self {
        Self::with_ephemeral(range, ephemeral_range())
    }

    pub fn with_ephemeral(
        range: RangeInclusive<u16>,
        ephemeral: Option<RangeInclusive<u16>>,
    ) -> Self {
        let next = *range.start();
        PortAllocator {
            range,
            ephemeral,
            state: Mutex::new(State {
                used: HashSet::new(),
                next,
            }),
        }
    }

    /// A free port, or `None` when every usable port in the range is taken.
    pub fn allocate(&self) -> Option<u16> {
        let mut state = self.state.lock().expect("ports lock");
        let (lo, hi) = (*self.range.start(), *self.range.end());
        let span = u32::from(hi - lo) + 1;
        for _ in 0..span {
            let port = state.next;
            state.next = if port >= hi { lo } else { port + 1 };
            if self.ephemeral.as_ref().is_some_and(|e| e.contains(&port)) {
                continue;
            }
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

/// Who listens on a TCP port, as far as the process tree of one of our processes goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Nothing listens on the port.
    Nobody,
    /// A process of the tree holds the listening socket.
    Ours,
    /// Something listens, and no process of the tree holds the socket.
    Foreign,
    /// Something listens, but the tree's open files could not all be read.
    Unknown,
}

/// Finds who listens on `port` (IPv4 or IPv6, any address): a process descending from
/// `root_pid` (itself included), someone else, or nobody. Reads `/proc/net/tcp{,6}` for the
/// listening sockets' inodes and `/proc/<pid>/fd` of the tree for the same inodes.
pub fn listener_owner(port: u16, root_pid: u32) -> Owner {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return Owner::Nobody;
    }
    let mut unreadable = false;
    for pid in descendants(root_pid) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            unreadable = true;
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            let inode = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok());
            if inode.is_some_and(|i| inodes.contains(&i)) {
                return Owner::Ours;
            }
        }
    }
    if unreadable {
        Owner::Unknown
    } else {
        Owner::Foreign
    }
}

/// Inodes of the sockets listening on `port` in a `/proc/net/tcp` table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let local_port = f.get(1)?.rsplit(':').next()?;
            let listening = *f.get(3)? == "0A";
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| f.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

/// `root` and every process descending from it (from the `ppid` of each `/proc/<pid>/stat`).
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            out.extend(kids.iter().copied().filter(|k| *k != root));
        }
        i += 1;
    }
    out
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
        let ports = PortAllocator::with_ephemeral(lo..=lo + 3, None);
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

    #[test]
    fn ephemeral_ports_are_never_handed_out() {
        assert_eq!(parse_ephemeral("32768\t60999\n"), Some(32768..=60999));
        assert_eq!(parse_ephemeral("nonsense"), None);
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let base = probe.local_addr().unwrap().port().min(60000);
        drop(probe);
        // Pretend the middle two ports of four are ephemeral.
        let ports = PortAllocator::with_ephemeral(base..=base + 3, Some(base + 1..=base + 2));
        let mut got = Vec::new();
        while let Some(p) = ports.allocate() {
            got.push(p);
        }
        assert!(got.iter().all(|p| *p == base || *p == base + 3), "{got:?}");
        assert_eq!(
            usable_ports(&(base..=base + 3), Some(&(base + 1..=base + 2))),
            2
        );
        assert_eq!(usable_ports(&(10..=20), None), 11);
    }

    #[test]
    fn a_listener_is_told_apart_from_ours_and_nobodys() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_owner(port, std::process::id()), Owner::Ours);
        // A child of ours (here: a sleeping shell) holds nothing: the listener is foreign
        // from its point of view.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert_eq!(listener_owner(port, child.id()), Owner::Foreign);
        let _ = child.kill();
        let _ = child.wait();
        drop(listener);
        assert_eq!(listener_owner(port, std::process::id()), Owner::Nobody);
    }

    #[test]
    fn proc_net_tcp_lines_are_parsed() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:A028 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:A028 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 0xA028), vec![123456]);
        assert!(listening_inodes(table, 80).is_empty());
    }
}

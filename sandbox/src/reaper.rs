//! No workspace process outlives the agent, however the agent ends.
//!
//! Every command, type checker and dev server runs as the leader of a process group of its
//! own (`crate::jail::Jail::command`). A graceful stop kills those groups; a killed agent
//! (SIGKILL, a crash, the OOM killer) runs no code at all, so something else must. bwrap's
//! `--die-with-parent` covers only jailed runs, and only through `PR_SET_PDEATHSIG`, which
//! the kernel ties to the thread that forked the child rather than to the process, and which
//! bwrap sets after it started (a child forked just before the agent died never gets it).
//! Unconfined runs (`SANDBOX_UNCONFINED=1`, the unit tests) had nothing at all: `sh -c 'npm
//! run dev'` in its own group kept running, Vite included.
//!
//! So the agent forks a **reaper** once, before it starts any workspace process: a tiny
//! single-threaded process in a session of its own (a signal to the agent's group or terminal
//! does not reach it) that holds the read end of a pipe whose write end only the agent holds
//! (close-on-exec, so no child inherits it). The agent tells it each group it starts
//! ([`watch`]) and each group it has reaped ([`Watched`] dropped); when the pipe reports
//! end-of-file — the agent is gone, however it ended — the reaper SIGKILLs every group still
//! listed and exits. A jailed group's death ends its pid namespace and so everything in it.
//!
//! After `fork` in a multi-threaded process the child may only make async-signal-safe calls:
//! the reaper uses raw syscalls and a fixed array on its stack, never the allocator or a lock.
//! A group is forgotten as soon as its leader has been waited for, so the reaper never kills
//! a process group whose number was reused by someone else.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

/// Groups the reaper can hold at once (more running groups than this are not reaped).
const CAPACITY: usize = 8192;

static REAPER: OnceLock<Option<Mutex<OwnedFd>>> = OnceLock::new();

/// Starts the reaper (once per process; later calls do nothing). Without it (fork failed,
/// logged) groups are still killed by every orderly stop, just not after a crash.
pub fn start() {
    REAPER.get_or_init(|| match spawn() {
        Ok(fd) => Some(Mutex::new(fd)),
        Err(e) => {
            tracing::warn!("cannot start the process reaper: {e}; a killed agent may leave workspace processes running");
            None
        }
    });
}

/// Whether the reaper is running.
pub fn is_running() -> bool {
    REAPER.get().is_some_and(Option::is_some)
}

/// A process group the reaper kills if the agent dies; dropping it (once the leader has been
/// waited for) takes it off the list.
#[must_use = "the group is forgotten when this is dropped"]
pub struct Watched(i32);

/// Puts group `pgid` on the reaper's list.
pub fn watch(pgid: i32) -> Watched {
    send(pgid);
    Watched(pgid)
}

impl Drop for Watched {
    fn drop(&mut self) {
        send(-self.0);
    }
}

fn send(record: i32) {
    if record == 0 || record.unsigned_abs() <= 1 {
        return;
    }
    let Some(Some(fd)) = REAPER.get() else {
        return;
    };
    let fd = fd.lock().unwrap_or_else(|e| e.into_inner());
    let bytes = record.to_ne_bytes();
    // A 4-byte write to a pipe is atomic; the reaper drains it continuously.
    loop {
        // SAFETY: writes 4 bytes from a live buffer to an fd we own.
        let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

fn spawn() -> io::Result<OwnedFd> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    // SAFETY: the child runs only async-signal-safe code (`reaper_main`) and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = io::Error::last_os_error();
        unsafe {
            libc::close(read_end);
            libc::close(write_end);
        }
        return Err(e);
    }
    if pid == 0 {
        // SAFETY: in the forked child; see `reaper_main`.
        unsafe { reaper_main(read_end) }
    }
    // SAFETY: the parent owns both ends; the read end is the child's now.
    unsafe { libc::close(read_end) };
    tracing::debug!(pid, "process reaper started");
    Ok(unsafe { OwnedFd::from_raw_fd(write_end) })
}

/// The reaper's whole life. Async-signal-safe calls only (see the module header).
unsafe fn reaper_main(read_end: i32) -> ! {
    const INPUT: i32 = 3;
    libc::setsid();
    let mut ignore: libc::sigaction = std::mem::zeroed();
    ignore.sa_sigaction = libc::SIG_IGN;
    for sig in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
    ] {
        libc::sigaction(sig, &ignore, std::ptr::null_mut());
    }
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    // Hold nothing of the agent's but the pipe (and stderr): its listening socket, its
    // children's pipes and the pipe's write end must close when the agent dies.
    if read_end != INPUT {
        libc::dup2(read_end, INPUT);
    }
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
    if null >= 0 {
        libc::dup2(null, 0);
        libc::dup2(null, 1);
    }
    if libc::syscall(libc::SYS_close_range, INPUT + 1, u32::MAX, 0) != 0 {
        for fd in INPUT + 1..4096 {
            libc::close(fd);
        }
    }
    let name = c"byte-sandbox-reaper";
    libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0);

    let mut groups = [0i32; CAPACITY];
    let mut len = 0usize;
    let mut buf = [0u8; 1024];
    let mut pending = 0usize;
    loop {
        let n = libc::read(
            INPUT,
            buf.as_mut_ptr().add(pending).cast(),
            buf.len() - pending,
        );
        if n < 0 && *libc::__errno_location() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        let end = pending + n as usize;
        let mut at = 0;
        while at + 4 <= end {
            let record = i32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
            at += 4;
            if record > 0 {
                if len < CAPACITY {
                    groups[len] = record;
                    len += 1;
                }
            } else if let Some(i) = groups[..len].iter().position(|g| *g == -record) {
                len -= 1;
                groups[i] = groups[len];
            }
        }
        // Keep a partial record (never expected: every write is 4 bytes).
        pending = end - at;
        buf.copy_within(at..end, 0);
    }
    // The agent is gone. A jailed group's leader is bwrap, whose child (the pid namespace's
    // init) runs in a session and group of its own and otherwise dies only through its own
    // `PR_SET_PDEATHSIG`: its group is killed too, so the namespace ends even if that
    // signal was never set (bwrap sets it only once it runs). Children are read before
    // anything is killed, while they are still the leaders' children.
    let mut children = [0i32; CAPACITY];
    let mut found = 0usize;
    for &pgid in &groups[..len] {
        found += children_of(pgid, &mut children[found..]);
    }
    for &pgid in &groups[..len] {
        if pgid > 1 {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    for &child in &children[..found] {
        if child > 1 {
            libc::kill(-child, libc::SIGKILL);
            libc::kill(child, libc::SIGKILL);
        }
    }
    libc::_exit(0)
}

/// The children of process `pid` (`/proc/<pid>/task/<pid>/children`), written into `out`;
/// returns how many. Async-signal-safe: no allocation.
unsafe fn children_of(pid: i32, out: &mut [i32]) -> usize {
    if pid <= 1 || out.is_empty() {
        return 0;
    }
    // "/proc/" + pid + "/task/" + pid + "/children\0"
    let mut path = [0u8; 64];
    let mut at = 0;
    let mut push = |bytes: &[u8], at: &mut usize| {
        for &b in bytes {
            path[*at] = b;
            *at += 1;
        }
    };
    let mut digits = [0u8; 12];
    let mut n = 0;
    let mut v = pid as u32;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    digits[..n].reverse();
    push(b"/proc/", &mut at);
    push(&digits[..n], &mut at);
    push(b"/task/", &mut at);
    push(&digits[..n], &mut at);
    push(b"/children\0", &mut at);
    let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return 0;
    }
    let mut text = [0u8; 4096];
    let mut len = 0usize;
    while len < text.len() {
        let n = libc::read(fd, text.as_mut_ptr().add(len).cast(), text.len() - len);
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    libc::close(fd);
    let mut count = 0;
    let mut value: i64 = -1;
    for &b in &text[..len] {
        if b.is_ascii_digit() {
            value = value.max(0) * 10 + i64::from(b - b'0');
        } else if value >= 0 {
            if count < out.len() && value <= i64::from(i32::MAX) {
                out[count] = value as i32;
                count += 1;
            }
            value = -1;
        }
    }
    if value >= 0 && count < out.len() && value <= i64::from(i32::MAX) {
        out[count] = value as i32;
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_read_from_proc() {
        let mut parent = std::process::Command::new("sh")
            .arg("-c")
            .arg("sleep 30 & wait")
            .spawn()
            .unwrap();
        let pid = parent.id() as i32;
        let mut out = [0i32; 8];
        let cmdline = |pid: i32| {
            String::from_utf8_lossy(
                &std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default(),
            )
            .into_owned()
        };
        let mut found = 0;
        for _ in 0..250 {
            // SAFETY: reads /proc into a local buffer.
            found = unsafe { children_of(pid, &mut out) };
            // Until it has exec'd, the child is a copy of the shell.
            if found > 0 && cmdline(out[0]).starts_with("sleep") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(found, 1, "the shell's one child");
        assert!(cmdline(out[0]).starts_with("sleep"), "{}", cmdline(out[0]));
        unsafe {
            libc::kill(out[0], libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
        }
        let _ = parent.wait();
        assert_eq!(unsafe { children_of(1, &mut out) }, 0, "init is never read");
    }
}

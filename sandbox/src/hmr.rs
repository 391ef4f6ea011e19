//! Read-after-write for the preview, from what the dev server says.
//!
//! Vite caches each module's transform until its file watcher reports the file changed; a
//! request that reaches it between our write and that report gets the old text. Only files
//! Vite has transformed can be stale (anything else is read from disk when asked for), and
//! for each change of such a file Vite sends exactly one `update` or `full-reload` message
//! (`error` when its handling failed) to every HMR client once it has invalidated what
//! depended on it (Vite's `handleHMRUpdate`; files it never transformed get no message).
//!
//! So the agent keeps its own HMR client on each running dev server ([`spawn_watch`]), and the
//! workspace remembers which files the preview has served. A write of `n` served files owes
//! `n` messages, counted in write order after those owed by earlier writes; a preview request
//! waits until the messages received cover every write before it ([`Freshness::wait`]). No
//! timer decides freshness: the bound ([`SETTLE_LIMIT`]) only keeps a request from hanging on a
//! message Vite never sends (a plugin that swallowed the update), and with no HMR client
//! (not Vite, or not connected yet) a write of a served file falls back to the old fixed
//! settle delay.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// Longest a preview request waits for the dev server to report a write.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(1);
/// Vite's watcher (chokidar) drops a change of a file that comes within 50 ms of the last
/// change it reported for that file, so a file rewritten that soon is never reported. A write
/// not reported after this long gets its modification time set again (the throttle window
/// has passed), which the watcher reports.
pub const NUDGE_AFTER: Duration = Duration::from_millis(120);
/// chokidar's change throttle (50 ms) plus a margin: a write this soon after the dev server
/// reported a change is nudged as soon as the window has passed.
pub const WATCHER_THROTTLE: Duration = Duration::from_millis(60);
/// Without an HMR client: how long a watcher is given to notice a write of a served file.
pub const BLIND_SETTLE: Duration = Duration::from_millis(300);
/// File kinds a dev server transforms and caches.
pub const TRANSFORMED: &[&str] = &[
    "js", "jsx", "mjs", "cjs", "ts", "tsx", "mts", "cts", "css", "vue", "svelte", "json",
];

/// One workspace's freshness state.
pub struct Freshness {
    /// Messages received from the current dev server's HMR channel.
    received: watch::Sender<u64>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The port whose HMR channel is watched (connected or connecting).
    port: Option<u16>,
    connected: bool,
    /// Messages owed by the writes so far: a request waits until `received` reaches it.
    owed: u64,
    /// When the oldest write still owed was made.
    oldest_owed: Option<tokio::time::Instant>,
    /// The served files written since the messages last covered every write.
    owed_files: Vec<String>,
    /// When those files are touched again if still unreported.
    nudge_at: Option<tokio::time::Instant>,
    /// When the last change message arrived.
    last_message: Option<tokio::time::Instant>,
    /// The last write of a served file while no HMR client was connected.
    blind_write: Option<tokio::time::Instant>,
    /// Files the preview has served (workspace-relative), per port.
    served: HashSet<String>,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness {
            received: watch::channel(0).0,
            state: Mutex::default(),
        }
    }
}

/// The workspace file a preview path names, if it is a transformed kind (`/src/App.tsx?t=1`
/// → `src/App.tsx`).
pub fn served_file(path_and_query: &str) -> Option<String> {
    let path = path_and_query
        .split(['?', '#'])
        .next()?
        .trim_start_matches('/');
    let ext = path.rsplit_once('.')?.1;
    (TRANSFORMED.contains(&ext) && !path.starts_with('@') && !path.starts_with("node_modules/"))
        .then(|| percent_decode(path))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Freshness {
    /// The preview served `file` from the dev server on `port`.
    pub fn served(&self, port: u16, file: String) {
        let mut s = self.state.lock().expect("freshness lock");
        if s.port == Some(port) {
            s.served.insert(file);
        }
    }

    /// Whether an HMR client should be started for `port` (none watches it yet); marks it
    /// watched. A new port forgets the old server's state.
    pub fn claim(&self, port: u16) -> bool {
        let mut s = self.state.lock().expect("freshness lock");
        if s.port == Some(port) {
            return false;
        }
        let received = *self.received.borrow();
        *s = State {
            port: Some(port),
            owed: received,
            ..State::default()
        };
        true
    }

    fn set_connected(&self, port: u16, connected: bool) {
        let mut s = self.state.lock().expect("freshness lock");
        if s.port == Some(port) {
            s.connected = connected;
            if !connected {
                // A later request starts a new client.
                s.port = None;
                s.served.clear();
            }
        }
    }

    fn message(&self, port: u16) {
        let mut s = self.state.lock().expect("freshness lock");
        if s.port == Some(port) {
            s.last_message = Some(tokio::time::Instant::now());
            self.received.send_modify(|n| *n += 1);
        }
    }

    /// Files were written: those the dev server has served owe one message each.
    pub fn written<'a>(&self, files: impl IntoIterator<Item = &'a str>) {
        let mut s = self.state.lock().expect("freshness lock");
        let written: Vec<String> = files
            .into_iter()
            .filter(|f| s.served.contains(*f))
            .map(str::to_string)
            .collect();
        if written.is_empty() {
            return;
        }
        let now = tokio::time::Instant::now();
        if !s.connected {
            s.blind_write = Some(now);
            return;
        }
        let received = *self.received.borrow();
        if s.owed <= received {
            s.owed = received;
            s.oldest_owed = Some(now);
            s.owed_files.clear();
            s.nudge_at = None;
        }
        s.owed += written.len() as u64;
        s.owed_files.extend(written);
        // Inside the watcher's throttle window the change will be dropped: nudge once the
        // window has passed; otherwise only if the report is late.
        let nudge_at = match s.last_message {
            Some(at) if now < at + WATCHER_THROTTLE => at + WATCHER_THROTTLE,
            _ => now + NUDGE_AFTER,
        };
        s.nudge_at = Some(s.nudge_at.map_or(nudge_at, |n| n.max(nudge_at)));
    }

    /// Waits until the dev server has reported every write made so far (see the module);
    /// `touch` sets a file's modification time again (workspace-relative path).
    pub async fn wait(&self, touch: impl Fn(&str)) {
        let (owed, since, blind, nudge_at) = {
            let s = self.state.lock().expect("freshness lock");
            (s.owed, s.oldest_owed, s.blind_write, s.nudge_at)
        };
        if let Some(at) = blind {
            tokio::time::sleep_until(at + BLIND_SETTLE).await;
        }
        let mut rx = self.received.subscribe();
        if *rx.borrow() >= owed {
            return;
        }
        let since = since.unwrap_or_else(tokio::time::Instant::now);
        let nudge_at = nudge_at.unwrap_or(since + NUDGE_AFTER);
        let reported = tokio::time::timeout_at(nudge_at, rx.wait_for(|n| *n >= owed))
            .await
            .is_ok();
        if reported {
            return;
        }
        let files = {
            let mut s = self.state.lock().expect("freshness lock");
            // Nudge once per batch of writes.
            if s.owed == owed {
                std::mem::take(&mut s.owed_files)
            } else {
                Vec::new()
            }
        };
        for file in &files {
            touch(file);
        }
        let reported = tokio::time::timeout_at(since + SETTLE_LIMIT, rx.wait_for(|n| *n >= owed))
            .await
            .is_ok();
        if !reported {
            // Vite sent fewer messages than owed: forgive the debt rather than make every
            // later request wait for it.
            let received = *self.received.borrow();
            let mut s = self.state.lock().expect("freshness lock");
            if s.owed <= owed {
                tracing::debug!(
                    owed,
                    received,
                    "dev server did not report a write; not waiting further"
                );
                s.owed = received;
                s.owed_files.clear();
                s.nudge_at = None;
            }
        }
    }
}

/// Connects an HMR client to the Vite dev server on `port` and counts its change messages
/// into `freshness` until the connection ends. A server that is not Vite (no `/@vite/client`
/// with a token) gets none.
pub fn spawn_watch(freshness: std::sync::Arc<Freshness>, port: u16) {
    tokio::spawn(async move {
        match connect(port).await {
            Some(mut socket) => {
                freshness.set_connected(port, true);
                while let Some(Ok(msg)) = socket.next().await {
                    if let Message::Text(text) = msg {
                        tracing::debug!(port, message = %text.chars().take(80).collect::<String>(), "hmr message");
                        if counts(&text) {
                            freshness.message(port);
                        }
                    }
                }
            }
            None => {
                // Not Vite (or no token): the port stays claimed, so no request retries;
                // writes of served files then get the blind settle delay.
                tracing::debug!(port, "no HMR channel on the dev server");
                return;
            }
        }
        freshness.set_connected(port, false);
    });
}

/// Messages Vite sends once per change of a file it transformed.
fn counts(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Payload {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Payload>(text)
        .is_ok_and(|p| matches!(p.kind.as_str(), "update" | "full-reload" | "error"))
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(port: u16) -> Option<Socket> {
    let attempt = async {
        let token = ws_token(port).await?;
        let mut req = format!("ws://127.0.0.1:{port}/?token={token}")
            .into_client_request()
            .ok()?;
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("vite-hmr"),
        );
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let _ = stream.set_nodelay(true);
        let (socket, _) = tokio_tungstenite::client_async(req, stream).await.ok()?;
        Some(socket)
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .ok()
        .flatten()
}

/// The HMR token Vite embeds in its client (`const wsToken = "…"`).
async fn ws_token(port: u16) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!(
        "GET /@vite/client HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut body = Vec::new();
    stream.take(4 << 20).read_to_end(&mut body).await.ok()?;
    token_in(&String::from_utf8_lossy(&body))
}

fn token_in(client: &str) -> Option<String> {
    let rest = &client[client.find("wsToken = ")? + "wsToken = ".len()..];
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let token: String = rest[1..].chars().take_while(|c| *c != quote).collect();
    (!token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_files_are_named_from_preview_paths() {
        assert_eq!(
            served_file("/src/App.tsx?t=123").as_deref(),
            Some("src/App.tsx")
        );
        assert_eq!(
            served_file("/src/index.css?direct").as_deref(),
            Some("src/index.css")
        );
        assert_eq!(
            served_file("/src/My%20File.tsx").as_deref(),
            Some("src/My File.tsx")
        );
        assert_eq!(served_file("/"), None);
        assert_eq!(served_file("/index.html"), None);
        assert_eq!(served_file("/@vite/client"), None);
        assert_eq!(served_file("/node_modules/.vite/deps/react.js?v=1"), None);
    }

    #[test]
    fn the_token_is_read_from_vites_client() {
        assert_eq!(
            token_in("const base = \"/\";\nconst wsToken = \"aB3_x-9\";\n").as_deref(),
            Some("aB3_x-9")
        );
        assert_eq!(token_in("const wsToken = \"a b\";"), None);
        assert_eq!(token_in("nothing here"), None);
    }

    #[test]
    fn change_messages_are_told_apart() {
        assert!(counts(r#"{"type":"update","updates":[]}"#));
        assert!(counts(r#"{"type":"full-reload","path":"*"}"#));
        assert!(!counts(r#"{"type":"connected"}"#));
        assert!(!counts(r#"{"type":"custom","event":"x"}"#));
        assert!(!counts("not json"));
    }

    #[tokio::test]
    async fn a_request_waits_for_the_messages_its_writes_owe_in_order() {
        let f = std::sync::Arc::new(Freshness::default());
        assert!(f.claim(7));
        assert!(!f.claim(7), "one client per port");
        f.set_connected(7, true);
        // Unserved files owe nothing.
        f.written(["src/App.tsx"]);
        f.wait(|_| panic!("nothing to nudge")).await;

        f.served(7, "src/App.tsx".into());
        f.served(7, "src/b.ts".into());
        f.written(["src/App.tsx", "src/b.ts", "index.html"]);
        f.written(["src/App.tsx"]);
        let waiter = tokio::spawn({
            let f = f.clone();
            async move { f.wait(|_| {}).await }
        });
        for _ in 0..2 {
            f.message(7);
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished(), "two of three messages");
        f.message(7);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the third message ends the wait")
            .unwrap();
        // A message for another port does not count.
        f.written(["src/b.ts"]);
        f.message(8);
        assert_eq!(*f.received.borrow(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreported_write_is_nudged_once_then_forgiven() {
        let f = Freshness::default();
        f.claim(7);
        f.set_connected(7, true);
        f.served(7, "src/App.tsx".into());
        f.written(["src/App.tsx"]);
        let touched = Mutex::new(Vec::new());
        f.wait(|p| touched.lock().unwrap().push(p.to_string()))
            .await;
        assert_eq!(*touched.lock().unwrap(), ["src/App.tsx"]);
        // The debt is forgiven: the next request neither waits nor nudges.
        f.wait(|_| panic!("nothing owed")).await;
    }
}

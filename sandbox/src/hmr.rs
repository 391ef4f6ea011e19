//! Read-after-write for the preview, from what the dev server says.
//!
//! Vite caches each module's transform until its file watcher reports the file changed; a
//! request that reaches it between our write and that report gets the old text. Only files
//! Vite has transformed can be stale (anything else is read from disk when asked for), and
//! for each change of such a file Vite sends exactly one `update` or `full-reload` message
//! (`error` when its handling failed) to every HMR client once it has invalidated what
//! depended on it (Vite's `handleHMRUpdate`; files it never transformed get no message).
//!
//! A request for a written module need not wait for that report: Vite's transform of a
//! TypeScript/JavaScript module carries an inline source map whose `sourcesContent` is the
//! source it transformed. So a `GET` of a module with a write still unreported is first asked
//! of Vite by the agent ([`content_is_current`]); when the source in its answer is exactly the
//! bytes last written (SHA-256), Vite's cached transform is the new one and the request goes
//! on at once (served from that cache). Anything else (another source, no source map, an
//! error) proves nothing, and the request waits for the report as below.
//!
//! So the agent keeps its own HMR client on each running dev server ([`spawn_watch`]), and the
//! workspace remembers which files the preview has served. A write of `n` served files owes
//! `n` messages, counted in write order after those owed by earlier writes; a preview request
//! waits until the messages received cover every write before it ([`Freshness::wait`]). No
//! timer decides freshness: the bound ([`SETTLE_LIMIT`]) only keeps a request from hanging on a
//! message Vite never sends (a plugin that swallowed the update), and with no HMR client
//! (not Vite, or not connected yet) a write of a served file falls back to the old fixed
//! settle delay.

use std::collections::{HashMap, HashSet};
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
    /// The SHA-256 of the last content written to each served file written since the
    /// messages last covered every write.
    owed_content: HashMap<String, [u8; 32]>,
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
        let files: Vec<&str> = files.into_iter().collect();
        // Whatever was known of these files' content is not (a delete, or a write whose
        // content `written_content` gives next).
        for f in &files {
            s.owed_content.remove(*f);
        }
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
            s.owed_content.clear();
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
                s.owed_content.clear();
                s.nudge_at = None;
            }
        }
    }

    /// The content just written to files (after [`Freshness::written`]): remembered for
    /// those whose write is still owed a report.
    pub fn written_content<'a>(&self, files: impl IntoIterator<Item = (&'a str, [u8; 32])>) {
        let mut s = self.state.lock().expect("freshness lock");
        for (file, hash) in files {
            if s.connected && s.owed_files.iter().any(|f| f == file) {
                s.owed_content.insert(file.to_string(), hash);
            } else {
                s.owed_content.remove(file);
            }
        }
    }

    /// The content last written to `file` while that write is still owed a report (the
    /// dev server may still serve the old transform); `None` when nothing is owed for it.
    pub fn owed_content(&self, file: &str) -> Option<[u8; 32]> {
        let s = self.state.lock().expect("freshness lock");
        let received = *self.received.borrow();
        (s.connected && s.owed > received)
            .then(|| s.owed_content.get(file).copied())
            .flatten()
    }
}

/// The source Vite transformed into `module`: the only `sourcesContent` entry of its inline
/// source map (`//# sourceMappingURL=data:application/json;base64,…`), if it has one.
pub fn transformed_source(module: &[u8]) -> Option<String> {
    use base64::Engine;
    const MARK: &[u8] = b"sourceMappingURL=data:application/json;base64,";
    let at = module.windows(MARK.len()).rposition(|w| w == MARK)? + MARK.len();
    let encoded: Vec<u8> = module[at..]
        .iter()
        .copied()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        .collect();
    let json = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Map {
        sources_content: Vec<Option<String>>,
    }
    let map: Map = serde_json::from_slice(&json).ok()?;
    match map.sources_content.as_slice() {
        [Some(source)] => Some(source.clone()),
        _ => None,
    }
}

/// Largest module the content check reads.
const CONTENT_CHECK_LIMIT: usize = 8 << 20;

/// Asks the dev server on `port` for `path_and_query` (a module) and tells whether the source
/// it transformed has SHA-256 `hash`: then its cached transform is of that content and a
/// request for it gets it. `false` proves nothing (see the module).
pub async fn content_is_current(
    client: &crate::proxy::HttpClient,
    port: u16,
    path_and_query: &str,
    hash: [u8; 32],
) -> bool {
    use http_body_util::BodyExt;
    use sha2::Digest;
    let Ok(req) = axum::http::Request::get(format!("http://127.0.0.1:{port}{path_and_query}"))
        .header("host", format!("127.0.0.1:{port}"))
        .header("accept", "*/*")
        .body(axum::body::Body::empty())
    else {
        return false;
    };
    let attempt = async {
        let resp = client.request(req).await.ok()?;
        if resp.status() != axum::http::StatusCode::OK {
            return None;
        }
        let body = http_body_util::Limited::new(resp.into_body(), CONTENT_CHECK_LIMIT)
            .collect()
            .await
            .ok()?
            .to_bytes();
        let source = transformed_source(&body)?;
        Some(<[u8; 32]>::from(sha2::Sha256::digest(source.as_bytes())) == hash)
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
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

    #[test]
    fn the_transformed_source_is_read_from_the_inline_source_map() {
        use base64::Engine;
        let map = serde_json::json!({
            "version": 3, "sources": ["App.tsx"], "mappings": "AAAA",
            "sourcesContent": ["export default 1;\n"],
        });
        let encoded = base64::engine::general_purpose::STANDARD.encode(map.to_string());
        let module =
            format!("const x = 1;\n//# sourceMappingURL=data:application/json;base64,{encoded}\n");
        assert_eq!(
            transformed_source(module.as_bytes()).as_deref(),
            Some("export default 1;\n")
        );
        assert_eq!(transformed_source(b"body { color: red }"), None);
        assert_eq!(
            transformed_source(b"//# sourceMappingURL=data:application/json;base64,!!!"),
            None
        );
        // Two sources: which one is the file is not known.
        let two = serde_json::json!({ "sourcesContent": ["a", "b"] });
        let encoded = base64::engine::general_purpose::STANDARD.encode(two.to_string());
        let module = format!("//# sourceMappingURL=data:application/json;base64,{encoded}");
        assert_eq!(transformed_source(module.as_bytes()), None);
    }

    #[tokio::test]
    async fn written_content_is_remembered_only_while_its_write_is_owed() {
        let f = Freshness::default();
        f.claim(7);
        f.set_connected(7, true);
        f.served(7, "src/App.tsx".into());
        f.written(["src/App.tsx", "src/other.ts"]);
        f.written_content([("src/App.tsx", [1; 32]), ("src/other.ts", [2; 32])]);
        assert_eq!(f.owed_content("src/App.tsx"), Some([1; 32]));
        assert_eq!(
            f.owed_content("src/other.ts"),
            None,
            "never served: not owed"
        );
        f.written(["src/App.tsx"]);
        f.written_content([("src/App.tsx", [3; 32])]);
        assert_eq!(
            f.owed_content("src/App.tsx"),
            Some([3; 32]),
            "the last write"
        );
        // A delete: nothing is known of the file's content.
        f.written(["src/App.tsx"]);
        assert_eq!(f.owed_content("src/App.tsx"), None, "deleted");
        f.written(["src/App.tsx"]);
        f.written_content([("src/App.tsx", [4; 32])]);
        for _ in 0..4 {
            f.message(7);
        }
        assert_eq!(f.owed_content("src/App.tsx"), None, "reported");
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

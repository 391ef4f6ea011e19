//! The line-based format the model writes files in, parsed incrementally, and the writers that
//! produce it.
//!
//! ```text
//! ===FILE: src/App.tsx===
//! …whole file, verbatim…
//! ===END FILE===
//! ===DIFF: src/main.tsx===
//! --- a/src/main.tsx
//! +++ b/src/main.tsx
//! @@ -1,3 +1,4 @@
//! …
//! ===END DIFF===
//! ===DELETE: src/old.ts===
//! ```
//!
//! Invariants:
//! - a block becomes a [`Event::FileComplete`] / [`Event::DiffComplete`] only when its own closing
//!   marker arrives: a stream cut inside a block, or a block interrupted by the next block's
//!   opening marker, never yields a complete file;
//! - every path is checked by [`validate_path`] ([`super::paths`]) before anything about its block
//!   is emitted; a rejected block is consumed silently and the rest of the stream still lands;
//! - a diff block's body is parsed by [`UnifiedDiff::parse`] ([`super::diff`]) when the block
//!   closes, and a malformed one is rejected whole; applying it is the caller's business;
//! - chunk boundaries do not matter: feeding a stream byte by byte or all at once gives the same
//!   completed files (only how [`Event::Text`] and [`Event::FileChunk`] are coalesced differs);
//! - the parser copies each byte at most twice (into the block, then into a live chunk) and
//!   allocates per feed, not per byte or per line.
//!
//! Markers are matched leniently where models are sloppy (surrounding spaces, keyword case, a
//! path wrapped in backticks or quotes, `\r\n`, a code fence wrapped around a file's content) and
//! strictly where leniency would corrupt content (a marker must start its line: an indented
//! `===END FILE===` is content).

use super::paths::{validate_path, MAX_PATH_BYTES};
use std::borrow::Cow;
use std::fmt;

// An [`Event::DiffComplete`] carries one, so consumers of the format name it from here too.
pub use super::diff::UnifiedDiff;

/// Largest file or diff one block may carry unless configured otherwise.
pub const DEFAULT_MAX_BLOCK_BYTES: usize = 2 * 1024 * 1024;

/// What the parser reports, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Lines outside any block (model chatter), coalesced per feed, with their line endings.
    Text(String),
    /// A file block with a valid path opened.
    FileStart { path: String },
    /// More of an open file, for live display. The chunks of a file concatenate to its content,
    /// except that a code fence the parser strips may appear in (or, when it turns out not to be
    /// a wrapper, be missing from) the chunks: [`Event::FileComplete`] is authoritative.
    FileChunk { path: String, text: String },
    /// A file block closed properly: the whole file.
    FileComplete { path: String, content: String },
    /// A diff block closed properly and parsed. Applying it needs the current file.
    DiffComplete { path: String, diff: UnifiedDiff },
    /// The model asked for a file to be deleted.
    Delete { path: String },
    /// A block named a path [`validate_path`] refuses; the block's content was skipped.
    /// `path` is the raw path (truncated), for reporting only.
    PathRejected { path: String, reason: String },
    /// A block with a valid path was discarded: not closed before the next block, larger than
    /// the limit, or (for diffs) malformed. Nothing of it may be applied.
    BlockRejected { path: String, reason: String },
}

/// How a stream can fail as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// The stream ended inside the block for `path`: that block is discarded.
    Truncated { path: String },
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Truncated { path } => write!(
                f,
                "output ended inside the block for {path} (no closing marker); that file was not written"
            ),
        }
    }
}

impl std::error::Error for StreamError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Diff,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker<'a> {
    Start(Kind, &'a str),
    /// `None` is a bare `===END===`, which closes whatever is open.
    End(Option<Kind>),
}

/// Recognises a marker line. `line` may carry its line ending.
fn parse_marker(line: &str) -> Option<Marker<'_>> {
    let t = line.trim_end();
    if t.len() < 6 || !t.starts_with("===") || !t.ends_with("===") {
        return None;
    }
    let inner = t[3..t.len() - 3].trim_matches(|c: char| c == '=' || c.is_whitespace());
    if inner.eq_ignore_ascii_case("END FILE") {
        return Some(Marker::End(Some(Kind::File)));
    }
    if inner.eq_ignore_ascii_case("END DIFF") {
        return Some(Marker::End(Some(Kind::Diff)));
    }
    if inner.eq_ignore_ascii_case("END") {
        return Some(Marker::End(None));
    }
    let (keyword, path) = inner.split_once(':')?;
    let kind = match keyword.trim() {
        k if k.eq_ignore_ascii_case("FILE") => Kind::File,
        k if k.eq_ignore_ascii_case("DIFF") => Kind::Diff,
        k if k.eq_ignore_ascii_case("DELETE") => Kind::Delete,
        _ => return None,
    };
    Some(Marker::Start(kind, unquote(path.trim())))
}

/// Strips one layer of matching backticks or quotes that models like to put around paths.
fn unquote(s: &str) -> &str {
    for q in ['`', '"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].trim();
        }
    }
    s
}

/// The backtick (or tilde) run that opens a fenced block, if `line` is a fence opener.
fn fence_opener(line: &str) -> Option<&str> {
    let t = line.trim_end();
    let ch = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let run = t.len() - t.trim_start_matches(ch).len();
    if run < 3 {
        return None;
    }
    // What follows is an info string (`tsx`, `typescript title="x"`), never another backtick.
    if t[run..].contains('`') {
        return None;
    }
    Some(&t[..run])
}

/// At most `max` bytes of `s` (cut at a char boundary), with an ellipsis when shortened.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    format!("{}…", &s[..s.floor_char_boundary(max)])
}

#[derive(Debug)]
struct FileBlock {
    path: String,
    content: String,
    /// How much of `content` has gone out as [`Event::FileChunk`]s.
    emitted: usize,
    /// No line has been seen yet (the only place an opening fence is recognised).
    first_line: bool,
    /// Whether wrapper fences are stripped (not for Markdown, whose content may be one code block).
    strip_fences: bool,
    /// The fence run of a stripped opening line, and that whole line (restored if no closing
    /// fence turns up).
    open_fence: Option<(String, String)>,
    /// A line that closes the fence, held back until we know whether the block ends after it.
    held: Option<String>,
}

impl FileBlock {
    fn new(path: String) -> Self {
        let lower = path.to_ascii_lowercase();
        let strip_fences =
            !(lower.ends_with(".md") || lower.ends_with(".mdx") || lower.ends_with(".markdown"));
        Self {
            path,
            content: String::new(),
            emitted: 0,
            first_line: true,
            strip_fences,
            open_fence: None,
            held: None,
        }
    }

    /// Adds a content line; the caller checks the size.
    fn push(&mut self, line: &str) {
        let first = std::mem::replace(&mut self.first_line, false);
        if self.strip_fences {
            if first {
                if let Some(run) = fence_opener(line) {
                    self.open_fence = Some((run.to_string(), line.to_string()));
                    return;
                }
            }
            if let Some((run, _)) = &self.open_fence {
                if let Some(h) = self.held.take() {
                    self.content.push_str(&h);
                }
                if line.trim_end() == run {
                    self.held = Some(line.to_string());
                    return;
                }
            }
        }
        self.content.push_str(line);
    }

    fn size(&self) -> usize {
        self.content.len() + self.held.as_ref().map_or(0, String::len)
    }

    /// The final content: a held closing fence is dropped with its opener; an opener that was
    /// never closed was content after all.
    fn finish(self) -> String {
        match (self.open_fence, self.held) {
            (Some(_), Some(_)) | (None, _) => self.content,
            (Some((_, open_line)), None) => {
                let mut s = open_line;
                s.push_str(&self.content);
                s
            }
        }
    }
}

#[derive(Debug)]
enum State {
    Outside,
    File(FileBlock),
    Diff {
        path: String,
        body: String,
    },
    /// A block being skipped (rejected path or discarded content) until its end marker.
    Skip {
        kind: Kind,
        path: String,
    },
}

/// The incremental parser. Feed it chunks as they arrive, then call [`Parser::finish`].
#[derive(Debug)]
pub struct Parser {
    state: State,
    /// The incomplete last line of what was fed so far.
    pending: Vec<u8>,
    /// Text lines waiting to go out as one [`Event::Text`].
    text: String,
    max_block_bytes: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    pub fn new() -> Self {
        Self::with_max_block_bytes(DEFAULT_MAX_BLOCK_BYTES)
    }

    /// A parser that discards any file or diff larger than `max` bytes.
    pub fn with_max_block_bytes(max: usize) -> Self {
        Self {
            state: State::Outside,
            pending: Vec::new(),
            text: String::new(),
            max_block_bytes: max,
        }
    }

    /// Whether the parser is inside a block (so ending the stream now would truncate it).
    pub fn in_block(&self) -> bool {
        !matches!(self.state, State::Outside)
    }

    /// Feeds a chunk of text.
    pub fn feed_str(&mut self, chunk: &str) -> Vec<Event> {
        self.feed(chunk.as_bytes())
    }

    /// Feeds a chunk of bytes; it may end anywhere, even inside a UTF-8 sequence.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        self.feed_into(chunk, &mut out);
        out
    }

    /// Like [`Parser::feed`], appending to `out` (lets a hot loop reuse one vector).
    pub fn feed_into(&mut self, mut chunk: &[u8], out: &mut Vec<Event>) {
        if !self.pending.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                None => {
                    self.pending.extend_from_slice(chunk);
                    self.flush_live(out);
                    return;
                }
                Some(i) => {
                    self.pending.extend_from_slice(&chunk[..=i]);
                    let mut line = std::mem::take(&mut self.pending);
                    self.on_line(&String::from_utf8_lossy(&line), out);
                    line.clear();
                    self.pending = line; // keep the allocation
                    chunk = &chunk[i + 1..];
                }
            }
        }
        match memchr::memrchr(b'\n', chunk) {
            Some(last) => {
                // Everything up to the last newline is whole lines, hence whole UTF-8 sequences:
                // validate once and walk the lines without copying.
                let whole: Cow<str> = String::from_utf8_lossy(&chunk[..=last]);
                let mut rest: &str = &whole;
                while !rest.is_empty() {
                    let end = memchr::memchr(b'\n', rest.as_bytes()).map_or(rest.len(), |i| i + 1);
                    let (line, tail) = rest.split_at(end);
                    self.on_line(line, out);
                    rest = tail;
                }
                self.pending.extend_from_slice(&chunk[last + 1..]);
            }
            None => self.pending.extend_from_slice(chunk),
        }
        self.flush_live(out);
    }

    /// Ends the stream. A last line without a newline still counts (a closing marker often ends
    /// the output). Fails if the stream stopped inside a block; the parser is then reset.
    pub fn finish(&mut self) -> Result<Vec<Event>, StreamError> {
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.on_line(&String::from_utf8_lossy(&line), &mut out);
        }
        self.flush_text(&mut out);
        match std::mem::replace(&mut self.state, State::Outside) {
            State::Outside => Ok(out),
            State::File(FileBlock { path, .. })
            | State::Diff { path, .. }
            | State::Skip { path, .. } => Err(StreamError::Truncated { path }),
        }
    }

    fn flush_text(&mut self, out: &mut Vec<Event>) {
        if !self.text.is_empty() {
            out.push(Event::Text(std::mem::take(&mut self.text)));
        }
    }

    /// Emits what a live viewer should see now: pending text, or the new part of an open file.
    fn flush_live(&mut self, out: &mut Vec<Event>) {
        self.flush_text(out);
        if let State::File(b) = &mut self.state {
            if b.content.len() > b.emitted {
                out.push(Event::FileChunk {
                    path: b.path.clone(),
                    text: b.content[b.emitted..].to_string(),
                });
                b.emitted = b.content.len();
            }
        }
    }

    fn emit(&mut self, out: &mut Vec<Event>, event: Event) {
        self.flush_text(out);
        out.push(event);
    }

    fn on_line(&mut self, line: &str, out: &mut Vec<Event>) {
        let marker = if line.starts_with("===") {
            parse_marker(line)
        } else {
            None
        };
        let Some(marker) = marker else {
            // The hot path: an ordinary line.
            let max = self.max_block_bytes;
            let overflow = match &mut self.state {
                State::Outside => {
                    self.text.push_str(line);
                    false
                }
                State::File(b) => {
                    b.push(line);
                    b.size() > max
                }
                State::Diff { body, .. } => {
                    body.push_str(line);
                    body.len() > max
                }
                State::Skip { .. } => false,
            };
            if overflow {
                let reason = format!("block is larger than {max} bytes");
                self.discard_current(out, reason);
            }
            return;
        };
        self.on_marker(marker, line, out);
    }

    /// Drops the open block, reports it, and skips the rest of it.
    fn discard_current(&mut self, out: &mut Vec<Event>, reason: String) {
        let (kind, path) = match std::mem::replace(&mut self.state, State::Outside) {
            State::File(b) => (Kind::File, b.path),
            State::Diff { path, .. } => (Kind::Diff, path),
            other => {
                self.state = other;
                return;
            }
        };
        self.emit(
            out,
            Event::BlockRejected {
                path: path.clone(),
                reason,
            },
        );
        self.state = State::Skip { kind, path };
    }

    fn on_marker(&mut self, marker: Marker<'_>, line: &str, out: &mut Vec<Event>) {
        let state = std::mem::replace(&mut self.state, State::Outside);
        match (state, marker) {
            (State::Outside, Marker::Start(kind, path)) => self.start(kind, path, out),
            // A stray end marker outside any block is chatter.
            (State::Outside, Marker::End(_)) => self.text.push_str(line),

            (State::File(b), Marker::End(None | Some(Kind::File))) => {
                self.flush_live_block(b, out);
            }
            (State::File(b), Marker::Start(kind, path)) => {
                self.flush_chunk(&b, out);
                self.emit(
                    out,
                    Event::BlockRejected {
                        path: b.path,
                        reason: "the block was not closed with ===END FILE=== before the next block started".into(),
                    },
                );
                self.start(kind, path, out);
            }
            (State::File(mut b), Marker::End(Some(_))) => {
                // `===END DIFF===` inside a file is content: only the matching marker closes.
                b.push(line);
                self.state = State::File(b);
            }

            (State::Diff { path, body }, Marker::End(None | Some(Kind::Diff))) => {
                match UnifiedDiff::parse(&body) {
                    Ok(diff) => self.emit(out, Event::DiffComplete { path, diff }),
                    Err(e) => self.emit(
                        out,
                        Event::BlockRejected {
                            path,
                            reason: format!("malformed diff: {e}"),
                        },
                    ),
                }
            }
            (State::Diff { path, .. }, Marker::Start(kind, next)) => {
                self.emit(
                    out,
                    Event::BlockRejected {
                        path,
                        reason: "the block was not closed with ===END DIFF=== before the next block started".into(),
                    },
                );
                self.start(kind, next, out);
            }
            (State::Diff { path, mut body }, Marker::End(Some(_))) => {
                body.push_str(line);
                self.state = State::Diff { path, body };
            }

            (State::Skip { kind, .. }, Marker::End(end)) if end.is_none() || end == Some(kind) => {}
            (State::Skip { kind, path }, Marker::End(_)) => self.state = State::Skip { kind, path },
            (State::Skip { .. }, Marker::Start(kind, path)) => self.start(kind, path, out),
        }
    }

    fn flush_chunk(&mut self, b: &FileBlock, out: &mut Vec<Event>) {
        if b.content.len() > b.emitted {
            out.push(Event::FileChunk {
                path: b.path.clone(),
                text: b.content[b.emitted..].to_string(),
            });
        }
    }

    /// Closes a file block: the last chunk, then the complete file.
    fn flush_live_block(&mut self, b: FileBlock, out: &mut Vec<Event>) {
        self.flush_chunk(&b, out);
        let path = b.path.clone();
        let content = b.finish();
        out.push(Event::FileComplete { path, content });
    }

    fn start(&mut self, kind: Kind, raw_path: &str, out: &mut Vec<Event>) {
        let path = match validate_path(raw_path) {
            Ok(p) => p,
            Err(reason) => {
                let shown = cut(raw_path, MAX_PATH_BYTES);
                self.emit(
                    out,
                    Event::PathRejected {
                        path: shown.clone(),
                        reason,
                    },
                );
                if kind != Kind::Delete {
                    self.state = State::Skip { kind, path: shown };
                }
                return;
            }
        };
        match kind {
            Kind::Delete => self.emit(out, Event::Delete { path }),
            Kind::File => {
                self.emit(out, Event::FileStart { path: path.clone() });
                self.state = State::File(FileBlock::new(path));
            }
            Kind::Diff => {
                self.state = State::Diff {
                    path,
                    body: String::new(),
                }
            }
        }
    }
}

/// Parses a whole (non-streamed) output: every event, and whether it ended inside a block.
pub fn parse_all(text: &str) -> (Vec<Event>, Result<(), StreamError>) {
    let mut p = Parser::new();
    let mut events = p.feed_str(text);
    match p.finish() {
        Ok(more) => {
            events.extend(more);
            (events, Ok(()))
        }
        Err(e) => (events, Err(e)),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing the format (the fake model, tests, and prompts that show the model an example).

/// Whether `content` has a line the parser would read as a marker, so it cannot be carried
/// verbatim inside a block.
fn has_marker_line(content: &str) -> bool {
    content
        .split_inclusive('\n')
        .any(|l| l.starts_with("===") && parse_marker(l).is_some())
}

/// Appends a file block. Content without a final newline gets one (the format is line-based).
pub fn write_file(out: &mut String, path: &str, content: &str) -> Result<(), String> {
    let path = validate_path(path)?;
    if has_marker_line(content) {
        return Err(format!(
            "{path}: content has a line that reads as a block marker"
        ));
    }
    out.push_str("===FILE: ");
    out.push_str(&path);
    out.push_str("===\n");
    out.push_str(content);
    if !content.is_empty() && !content.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("===END FILE===\n");
    Ok(())
}

/// Appends a diff block.
pub fn write_diff(out: &mut String, path: &str, diff: &UnifiedDiff) -> Result<(), String> {
    let path = validate_path(path)?;
    let body = diff.to_string();
    if has_marker_line(&body) {
        return Err(format!(
            "{path}: diff has a line that reads as a block marker"
        ));
    }
    out.push_str("===DIFF: ");
    out.push_str(&path);
    out.push_str("===\n");
    out.push_str(&body);
    out.push_str("===END DIFF===\n");
    Ok(())
}

/// Appends a delete marker.
pub fn write_delete(out: &mut String, path: &str) -> Result<(), String> {
    let path = validate_path(path)?;
    out.push_str("===DELETE: ");
    out.push_str(&path);
    out.push_str("===\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Completed results of a stream, with chunks concatenated per path: what a consumer keeps.
    #[derive(Debug, Default, PartialEq)]
    struct Outcome {
        text: String,
        starts: Vec<String>,
        chunks: std::collections::BTreeMap<String, String>,
        done: Vec<Event>,
        error: Option<StreamError>,
    }

    fn collect(events: Vec<Event>, o: &mut Outcome) {
        for e in events {
            match e {
                Event::Text(t) => o.text.push_str(&t),
                Event::FileStart { path } => o.starts.push(path),
                Event::FileChunk { path, text } => {
                    o.chunks.entry(path).or_default().push_str(&text)
                }
                other => o.done.push(other),
            }
        }
    }

    fn run_chunks(chunks: &[&[u8]]) -> Outcome {
        let mut p = Parser::new();
        let mut o = Outcome::default();
        for c in chunks {
            collect(p.feed(c), &mut o);
        }
        match p.finish() {
            Ok(ev) => collect(ev, &mut o),
            Err(e) => o.error = Some(e),
        }
        o
    }

    fn run(s: &str) -> Outcome {
        run_chunks(&[s.as_bytes()])
    }

    fn file(path: &str, content: &str) -> Event {
        Event::FileComplete {
            path: path.into(),
            content: content.into(),
        }
    }

    const SAMPLE: &str = r"Sure! Here is the app.
===FILE: src/App.tsx===
export default function App() {
  return <h1>héllo ✓</h1>;
}
===END FILE===
Now the entry point:
===DIFF: src/main.tsx===
--- a/src/main.tsx
+++ b/src/main.tsx
@@ -1,3 +1,4 @@
 import App from './App';
-render(App);
+import './index.css';
+render(App);
 // end
===END DIFF===
===DELETE: src/old.ts===
Done.
";

    #[test]
    fn parses_every_block_kind_and_keeps_chatter_as_text() {
        let o = run(SAMPLE);
        assert_eq!(o.error, None);
        assert_eq!(
            o.text,
            "Sure! Here is the app.\nNow the entry point:\nDone.\n"
        );
        assert_eq!(o.starts, vec!["src/App.tsx"]);
        let app = "export default function App() {\n  return <h1>héllo ✓</h1>;\n}\n";
        assert_eq!(o.chunks["src/App.tsx"], app);
        assert_eq!(o.done.len(), 3);
        assert_eq!(o.done[0], file("src/App.tsx", app));
        let Event::DiffComplete { path, diff } = &o.done[1] else {
            panic!("{:?}", o.done[1])
        };
        assert_eq!(path, "src/main.tsx");
        assert_eq!(
            diff.apply("import App from './App';\nrender(App);\n// end\n")
                .unwrap(),
            "import App from './App';\nimport './index.css';\nrender(App);\n// end\n"
        );
        assert_eq!(
            o.done[2],
            Event::Delete {
                path: "src/old.ts".into()
            }
        );
    }

    #[test]
    fn events_come_out_in_stream_order() {
        let mut p = Parser::new();
        let ev = p.feed_str(SAMPLE);
        let kinds: Vec<&str> = ev
            .iter()
            .map(|e| match e {
                Event::Text(_) => "text",
                Event::FileStart { .. } => "start",
                Event::FileChunk { .. } => "chunk",
                Event::FileComplete { .. } => "complete",
                Event::DiffComplete { .. } => "diff",
                Event::Delete { .. } => "delete",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            ["text", "start", "chunk", "complete", "text", "diff", "delete", "text"]
        );
        assert_eq!(p.finish().unwrap(), vec![]);
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let whole = run(SAMPLE);
        let bytes = SAMPLE.as_bytes();
        for i in 0..=bytes.len() {
            let o = run_chunks(&[&bytes[..i], &bytes[i..]]);
            assert_eq!(o, whole, "split at {i}");
        }
        // Byte by byte, including inside the multi-byte characters.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run_chunks(&singles), whole);
        let threes: Vec<&[u8]> = bytes.chunks(3).collect();
        assert_eq!(run_chunks(&threes), whole);
    }

    #[test]
    fn a_file_is_emitted_the_moment_its_marker_closes() {
        let mut p = Parser::new();
        let ev = p.feed_str("===FILE: a.txt===\nx\n===END FILE===\n===FILE: b.txt===\ny");
        assert!(ev.contains(&file("a.txt", "x\n")));
        assert!(!ev
            .iter()
            .any(|e| matches!(e, Event::FileComplete { path, .. } if path == "b.txt")));
        // The partial line "y" is not shown before its newline (it might be a marker).
        assert!(!ev
            .iter()
            .any(|e| matches!(e, Event::FileChunk { text, .. } if text.contains('y'))));
        let ev = p.feed_str("\n===END FILE===");
        assert_eq!(
            ev,
            vec![Event::FileChunk {
                path: "b.txt".into(),
                text: "y\n".into()
            }]
        );
        // The last marker has no newline: finish still closes the block.
        assert_eq!(p.finish().unwrap(), vec![file("b.txt", "y\n")]);
    }

    #[test]
    fn truncated_blocks_never_complete() {
        for s in [
            "===FILE: a.txt===\nhello\n",
            "===FILE: a.txt===\nhello\n===END FI",
            "===FILE: a.txt===",
            "===DIFF: a.txt===\n@@ -1 +1 @@\n-a\n+b\n",
        ] {
            let o = run(s);
            assert_eq!(
                o.error,
                Some(StreamError::Truncated {
                    path: "a.txt".into()
                }),
                "{s:?}"
            );
            assert!(
                !o.done
                    .iter()
                    .any(|e| matches!(e, Event::FileComplete { .. } | Event::DiffComplete { .. })),
                "{s:?}"
            );
        }
        let mut p = Parser::new();
        p.feed_str("===FILE: a.txt===\n");
        assert!(p.in_block());
        assert!(p.finish().is_err());
        assert!(!p.in_block(), "finish resets the parser");
        assert!(StreamError::Truncated { path: "a".into() }
            .to_string()
            .contains("not written"));
    }

    #[test]
    fn rejected_paths_are_skipped_and_the_rest_lands() {
        let s = "===FILE: ../../etc/passwd===\nroot:x:0:0\n===END FILE===\n\
                 ===FILE: src/ok.ts===\nok\n===END FILE===\n\
                 ===DIFF: /abs.ts===\n@@ -1 +1 @@\n-a\n+b\n===END DIFF===\n\
                 ===DELETE: node_modules/x/index.js===\n\
                 ===FILE: src/ok2.ts===\nok2\n===END FILE===\n";
        let o = run(s);
        assert_eq!(o.error, None);
        let rejected: Vec<&str> = o
            .done
            .iter()
            .filter_map(|e| match e {
                Event::PathRejected { path, .. } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            rejected,
            ["../../etc/passwd", "/abs.ts", "node_modules/x/index.js"]
        );
        assert!(o.done.contains(&file("src/ok.ts", "ok\n")));
        assert!(o.done.contains(&file("src/ok2.ts", "ok2\n")));
        // Nothing of the rejected block leaks into chunks or text.
        assert!(!o.chunks.values().any(|c| c.contains("root")));
        assert!(!o.text.contains("root"));
        assert_eq!(o.starts, ["src/ok.ts", "src/ok2.ts"]);
    }

    #[test]
    fn an_unclosed_block_interrupted_by_the_next_is_discarded() {
        let s = "===FILE: a.ts===\nhalf\n===FILE: b.ts===\nb\n===END FILE===\n\
                 ===DIFF: c.ts===\n@@ -1 +1 @@\n-a\n+b\n===DELETE: d.ts===\n";
        let o = run(s);
        assert_eq!(o.error, None);
        assert!(
            matches!(&o.done[0], Event::BlockRejected { path, reason } if path == "a.ts" && reason.contains("END FILE"))
        );
        assert_eq!(o.done[1], file("b.ts", "b\n"));
        assert!(matches!(&o.done[2], Event::BlockRejected { path, .. } if path == "c.ts"));
        assert_eq!(
            o.done[3],
            Event::Delete {
                path: "d.ts".into()
            }
        );
        assert_eq!(o.done.len(), 4);
    }

    #[test]
    fn lenient_marker_spellings() {
        let s = "=== FILE: `src/a.ts` ===  \r\nA\r\n=== end file ===\r\n\
                 ====FILE: \"src/b.ts\"====\nB\n===END===\n\
                 ===file:./src//c.ts===\nC\n===End File===\n";
        let o = run(s);
        assert_eq!(o.error, None);
        assert_eq!(
            o.done,
            vec![
                // Content keeps its own line endings verbatim.
                file("src/a.ts", "A\r\n"),
                file("src/b.ts", "B\n"),
                file("src/c.ts", "C\n"),
            ]
        );
    }

    #[test]
    fn marker_lookalikes_are_content() {
        let content = "  ===END FILE===\n=== heading ===\n===\n======\n==END FILE==\n===END DIFF===\nx ===FILE: y===\n";
        let s = format!("===FILE: notes.txt===\n{content}===END FILE===\n");
        let o = run(&s);
        assert_eq!(o.done, vec![file("notes.txt", content)]);
        // Stray end markers outside blocks are chatter.
        let o = run("===END FILE===\n===END===\nhi\n");
        assert_eq!(o.text, "===END FILE===\n===END===\nhi\n");
        assert!(o.done.is_empty());
    }

    #[test]
    fn wrapper_fences_are_stripped_but_inner_fences_kept() {
        let o = run("===FILE: a.ts===\n```tsx\nconst a = 1;\n```\n===END FILE===\n");
        assert_eq!(o.done, vec![file("a.ts", "const a = 1;\n")]);
        // A fence line in the middle is content.
        let o = run("===FILE: a.ts===\n```ts\nx\n```\ny\n```\n===END FILE===\n");
        assert_eq!(o.done, vec![file("a.ts", "x\n```\ny\n")]);
        // An opening fence with no closing one was content after all.
        let o = run("===FILE: a.ts===\n```\nx\n===END FILE===\n");
        assert_eq!(o.done, vec![file("a.ts", "```\nx\n")]);
        // Markdown keeps its fences: a README can be one code block.
        let md = "```sh\nnpm i\n```\n";
        let o = run(&format!("===FILE: README.md===\n{md}===END FILE===\n"));
        assert_eq!(o.done, vec![file("README.md", md)]);
        // A four-backtick wrapper closes only with four.
        let o = run("===FILE: a.ts===\n````\n```\n````\n===END FILE===\n");
        assert_eq!(o.done, vec![file("a.ts", "```\n")]);
    }

    #[test]
    fn empty_files_and_crlf_markers() {
        let o = run("===FILE: .gitkeep===\n===END FILE===\n");
        assert_eq!(o.done, vec![file(".gitkeep", "")]);
        let o = run("===FILE: a===\r\nx\r\n===END FILE===\r\n");
        assert_eq!(o.done, vec![file("a", "x\r\n")]);
    }

    #[test]
    fn oversized_blocks_are_rejected_and_skipped() {
        let mut p = Parser::with_max_block_bytes(10);
        let mut o = Outcome::default();
        collect(
            p.feed_str("===FILE: big===\n0123456789\nmore\n===END FILE===\n===FILE: s===\nok\n===END FILE===\n"),
            &mut o,
        );
        collect(p.finish().unwrap(), &mut o);
        assert!(
            matches!(&o.done[0], Event::BlockRejected { path, reason } if path == "big" && reason.contains("10 bytes"))
        );
        assert_eq!(o.done[1], file("s", "ok\n"));
        let mut p = Parser::with_max_block_bytes(10);
        let ev = p.feed_str("===DIFF: d===\n@@ -1 +1 @@\n-aaaaaaa\n+b\n===END DIFF===\n");
        assert!(ev.iter().any(|e| matches!(e, Event::BlockRejected { .. })));
        assert!(!ev.iter().any(|e| matches!(e, Event::DiffComplete { .. })));
    }

    #[test]
    fn malformed_diffs_are_rejected_with_the_reason() {
        let o = run("===DIFF: a.ts===\nthis is the whole file, not a diff\n===END DIFF===\n");
        assert!(
            matches!(&o.done[0], Event::BlockRejected { path, reason } if path == "a.ts" && reason.contains("no @@ hunks"))
        );
        let o = run("===DIFF: a.ts===\n@@ -1 +1 @@\n-a\n?b\n===END DIFF===\n");
        assert!(
            matches!(&o.done[0], Event::BlockRejected { reason, .. } if reason.contains("diff line 3"))
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let o = run_chunks(&[b"===FILE: a===\nok\xff\n===END FILE===\n"]);
        assert_eq!(o.done, vec![file("a", "ok\u{fffd}\n")]);
    }

    #[test]
    fn parse_all_reports_truncation_with_the_events() {
        let (ev, r) = parse_all("===FILE: a===\nx\n===END FILE===\n===FILE: b===\n");
        assert!(ev.contains(&file("a", "x\n")));
        assert_eq!(r, Err(StreamError::Truncated { path: "b".into() }));
    }

    use crate::domain::codegen::diff::tests::Lcg;

    #[test]
    fn write_helpers_round_trip_and_refuse_markers() {
        let mut s = String::new();
        write_file(&mut s, "./src/a.ts", "no newline").unwrap();
        write_file(&mut s, "empty", "").unwrap();
        let d = UnifiedDiff::compute("b.ts", "x\ny\n", "x\nz\n");
        write_diff(&mut s, "b.ts", &d).unwrap();
        write_delete(&mut s, "c.ts").unwrap();
        let o = run(&s);
        assert_eq!(o.error, None);
        assert_eq!(o.done[0], file("src/a.ts", "no newline\n"));
        assert_eq!(o.done[1], file("empty", ""));
        assert_eq!(
            o.done[2],
            Event::DiffComplete {
                path: "b.ts".into(),
                diff: UnifiedDiff::parse(&d.to_string()).unwrap()
            }
        );
        assert_eq!(
            o.done[3],
            Event::Delete {
                path: "c.ts".into()
            }
        );
        assert!(write_file(&mut s, "x", "a\n===END FILE===\n").is_err());
        assert!(write_file(&mut s, "x", "===FILE: y===\n").is_err());
        assert!(write_file(&mut s, "../x", "a").is_err());
        assert!(write_delete(&mut s, "/x").is_err());
    }

    #[test]
    fn multi_megabyte_stream_in_odd_chunks() {
        // ~6 MB: 3000 files of ~2 KB with multi-byte text, chatter between them.
        let mut stream = String::new();
        let mut want = Vec::new();
        for i in 0..3000 {
            let mut content = String::new();
            for j in 0..40 {
                content.push_str(&format!("const v{j} = \"ünïcødé {i} {j}\"; // ===\n"));
            }
            let path = format!("src/gen/dir{}/file{i}.ts", i % 17);
            stream.push_str(&format!("Writing file {i} ✓\n"));
            write_file(&mut stream, &path, &content).unwrap();
            want.push(file(&path, &content));
        }
        assert!(stream.len() > 5_000_000);
        let bytes = stream.as_bytes();
        let mut p = Parser::new();
        let mut got = Vec::new();
        let mut out = Vec::new();
        let mut g = Lcg(42);
        let mut i = 0;
        while i < bytes.len() {
            let n = (1 + g.next() % 9000) as usize;
            let end = (i + n).min(bytes.len());
            out.clear();
            p.feed_into(&bytes[i..end], &mut out);
            got.extend(
                out.drain(..)
                    .filter(|e| matches!(e, Event::FileComplete { .. })),
            );
            i = end;
        }
        got.extend(p.finish().unwrap());
        assert_eq!(got.len(), want.len());
        assert!(got == want);
    }
}

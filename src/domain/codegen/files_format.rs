//! The line-based format the model writes files in, parsed incrementally, and the unified diffs
//! it carries for edits.
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
//! - every path is checked by [`validate_path`] before anything about its block is emitted; a
//!   rejected block is consumed silently and the rest of the stream still lands;
//! - chunk boundaries do not matter: feeding a stream byte by byte or all at once gives the same
//!   completed files (only how [`Event::Text`] and [`Event::FileChunk`] are coalesced differs);
//! - the parser copies each byte at most twice (into the block, then into a live chunk) and
//!   allocates per feed, not per byte or per line.
//!
//! Markers are matched leniently where models are sloppy (surrounding spaces, keyword case, a
//! path wrapped in backticks or quotes, `\r\n`, a code fence wrapped around a file's content) and
//! strictly where leniency would corrupt content (a marker must start its line: an indented
//! `===END FILE===` is content).

use std::borrow::Cow;
use std::fmt;

/// Longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 512;
/// Most path components accepted.
pub const MAX_PATH_DEPTH: usize = 32;
/// Longest single path component, in bytes (the usual file-system limit).
const MAX_COMPONENT_BYTES: usize = 255;
/// Largest file or diff one block may carry unless configured otherwise.
pub const DEFAULT_MAX_BLOCK_BYTES: usize = 2 * 1024 * 1024;

/// Characters allowed in a path besides ASCII letters and digits. Enough for real front-end
/// trees (`[id].tsx`, `(group)/`, `@scope`, `+page.svelte`, `$slug.tsx`), and nothing a shell or
/// URL would interpret as syntax.
const PATH_PUNCTUATION: &str = "._-@+$[]()";

/// Checks a path the model (or a user) names and returns its normal form: relative,
/// `/`-separated, with `.` components and repeated slashes removed.
///
/// The error is a sentence suitable for showing to the model so it can correct itself.
pub fn validate_path(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("path is empty".into());
    }
    if raw.len() > MAX_PATH_BYTES {
        return Err(format!("path is longer than {MAX_PATH_BYTES} bytes"));
    }
    if raw.contains('\0') {
        return Err("path contains a NUL character".into());
    }
    if raw.chars().any(char::is_control) {
        return Err("path contains a control character".into());
    }
    if raw.contains('\\') {
        return Err("path contains a backslash; use / as the separator".into());
    }
    if raw.starts_with('/') {
        return Err("path is absolute; paths are relative to the app root".into());
    }
    let b = raw.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err("path has a drive prefix; paths are relative to the app root".into());
    }
    if raw.ends_with('/') {
        return Err("path names a directory, not a file".into());
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        if part.is_empty() || part == "." {
            continue;
        }
        if part == ".." {
            return Err("path contains a `..` component".into());
        }
        if part.bytes().all(|c| c == b'.') {
            return Err(format!("path component `{part}` is made only of dots"));
        }
        if part.len() > MAX_COMPONENT_BYTES {
            return Err(format!(
                "path component is longer than {MAX_COMPONENT_BYTES} bytes"
            ));
        }
        if let Some(c) = part
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && !PATH_PUNCTUATION.contains(*c))
        {
            return Err(format!(
                "path contains the character {c:?}; use letters, digits and {}",
                PATH_PUNCTUATION
                    .chars()
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        if part.starts_with('-') {
            return Err(format!(
                "path component `{part}` starts with `-` (it would read as a command option)"
            ));
        }
        // Case-insensitive: the sandbox or a developer's checkout may be on a case-insensitive
        // file system, where `.GIT` is `.git`.
        if part.eq_ignore_ascii_case(".git") {
            return Err("path is inside .git/, which generated code must not touch".into());
        }
        if part.eq_ignore_ascii_case("node_modules") {
            return Err("path is inside node_modules/, which the package manager owns".into());
        }
        parts.push(part);
    }
    if parts.is_empty() {
        return Err("path names the app root, not a file".into());
    }
    if parts.len() > MAX_PATH_DEPTH {
        return Err(format!(
            "path is nested deeper than {MAX_PATH_DEPTH} directories"
        ));
    }
    Ok(parts.join("/"))
}

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

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
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

// ---------------------------------------------------------------------------------------------
// Unified diffs.

/// One line of a hunk, without its line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HunkLine {
    Context(String),
    Remove(String),
    Add(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// 1-based first old line from the header; `None` for a bare `@@` (located by context).
    pub old_start: Option<usize>,
    pub new_start: Option<usize>,
    pub lines: Vec<HunkLine>,
    /// The hunk's last old-side line is the file's last line and has no newline.
    pub old_missing_newline: bool,
    /// The hunk's last new-side line is the file's last line and has no newline.
    pub new_missing_newline: bool,
}

impl Hunk {
    fn old_len(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| !matches!(l, HunkLine::Add(_)))
            .count()
    }

    fn new_len(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| !matches!(l, HunkLine::Remove(_)))
            .count()
    }

    fn header(&self) -> String {
        match (self.old_start, self.new_start) {
            (Some(o), Some(n)) => {
                format!("@@ -{},{} +{},{} @@", o, self.old_len(), n, self.new_len())
            }
            (Some(o), None) => format!("@@ -{},{} +{},{} @@", o, self.old_len(), o, self.new_len()),
            _ => "@@".to_string(),
        }
    }
}

/// A unified diff of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedDiff {
    /// The `---` header path as written (`/dev/null` for a new file), if there was one.
    pub old_path: Option<String>,
    /// The `+++` header path as written (`/dev/null` for a deletion), if there was one.
    pub new_path: Option<String>,
    pub hunks: Vec<Hunk>,
}

/// Why a diff could not be parsed or applied. Messages are written to be fed back to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffError {
    /// Line `line` (1-based, within the diff) is not valid diff syntax.
    Malformed { line: usize, message: String },
    /// The diff has no `@@` hunk.
    NoHunks,
    /// Hunk `hunk` (1-based) does not match the file.
    HunkFailed { hunk: usize, message: String },
    /// A new-file diff (`--- /dev/null`) was applied to a file that has content.
    FileExists,
}

impl fmt::Display for DiffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiffError::Malformed { line, message } => write!(f, "diff line {line}: {message}"),
            DiffError::NoHunks => write!(f, "the diff has no @@ hunks"),
            DiffError::HunkFailed { hunk, message } => write!(f, "hunk {hunk} {message}"),
            DiffError::FileExists => write!(
                f,
                "the diff creates a new file (--- /dev/null) but the file already exists; send the whole file or diff against its current content"
            ),
        }
    }
}

impl std::error::Error for DiffError {}

fn strip_eol(line: &str) -> &str {
    let l = line.strip_suffix('\n').unwrap_or(line);
    l.strip_suffix('\r').unwrap_or(l)
}

fn header_path(rest: &str) -> String {
    // `--- a/file\t2024-01-01 …`: the timestamp after a tab is not part of the path.
    rest.split('\t').next().unwrap_or("").trim().to_string()
}

type Range = (usize, Option<usize>);

fn parse_range(s: &str, sign: char) -> Option<Range> {
    let s = s.strip_prefix(sign)?;
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, Some(b.parse().ok()?))),
        None => Some((s.parse().ok()?, None)),
    }
}

/// `@@ -a,b +c,d @@ section` → the two ranges; a bare `@@` (or `@@ @@`) → none.
fn parse_hunk_header(line: &str) -> Result<Option<(Range, Range)>, String> {
    let rest = &line[2..];
    let inner = match rest.find("@@") {
        Some(i) => &rest[..i],
        None => rest,
    };
    let inner = inner.trim();
    if inner.is_empty() {
        return Ok(None);
    }
    let mut it = inner.split_whitespace();
    let bad = || {
        format!(
            "malformed hunk header `{}`; expected `@@ -a,b +c,d @@`",
            cut(line, 80)
        )
    };
    let old = it
        .next()
        .and_then(|s| parse_range(s, '-'))
        .ok_or_else(bad)?;
    let new = it
        .next()
        .and_then(|s| parse_range(s, '+'))
        .ok_or_else(bad)?;
    if it.next().is_some() {
        return Err(bad());
    }
    Ok(Some((old, new)))
}

/// A hunk being read: its lines, which context lines were bare (an empty line, whose leading
/// space a model or editor stripped), and the header's declared counts.
struct HunkBuilder {
    hunk: Hunk,
    bare: Vec<bool>,
    declared: Option<(usize, usize)>,
    /// A `\ No newline` marker has been seen: nothing but another marker may follow in this hunk.
    sealed: bool,
}

impl HunkBuilder {
    fn counts_reached(&self) -> bool {
        self.declared
            .is_some_and(|(o, n)| self.hunk.old_len() >= o && self.hunk.new_len() >= n)
    }

    fn finish(mut self, number: usize) -> Result<Hunk, DiffError> {
        // Trailing bare empty lines are padding (a blank line before the end marker) unless the
        // header says the hunk needs them.
        while self.bare.last() == Some(&true) {
            let needed = match self.declared {
                Some((o, _)) => self.hunk.old_len() > o,
                None => true,
            };
            if !needed {
                break;
            }
            self.bare.pop();
            self.hunk.lines.pop();
        }
        if self.hunk.lines.is_empty() {
            return Err(DiffError::HunkFailed {
                hunk: number,
                message: "is empty".into(),
            });
        }
        Ok(self.hunk)
    }
}

impl UnifiedDiff {
    /// Parses a unified diff of one file. Lines before the first `---`/`@@` that are not diff
    /// headers (`diff --git`, `index …`) are ignored. Header counts are advisory: models miscount,
    /// and the hunk body is what [`UnifiedDiff::apply`] checks strictly against the file.
    pub fn parse(text: &str) -> Result<Self, DiffError> {
        let mut old_path = None;
        let mut new_path = None;
        let mut hunks: Vec<Hunk> = Vec::new();
        let mut current: Option<HunkBuilder> = None;
        let lines: Vec<&str> = text.split_inclusive('\n').map(strip_eol).collect();

        for (i, &line) in lines.iter().enumerate() {
            let n = i + 1;
            if line.starts_with("@@") {
                if let Some(b) = current.take() {
                    hunks.push(b.finish(hunks.len() + 1)?);
                }
                let header = parse_hunk_header(line)
                    .map_err(|message| DiffError::Malformed { line: n, message })?;
                current = Some(HunkBuilder {
                    hunk: Hunk {
                        old_start: header.map(|(o, _)| o.0),
                        new_start: header.map(|(_, nw)| nw.0),
                        lines: Vec::new(),
                        old_missing_newline: false,
                        new_missing_newline: false,
                    },
                    bare: Vec::new(),
                    declared: header.map(|(o, nw)| (o.1.unwrap_or(1), nw.1.unwrap_or(1))),
                    sealed: false,
                });
                continue;
            }
            let Some(b) = current.as_mut() else {
                if let Some(rest) = line.strip_prefix("--- ") {
                    old_path = Some(header_path(rest));
                } else if let Some(rest) = line.strip_prefix("+++ ") {
                    new_path = Some(header_path(rest));
                }
                continue;
            };
            // A second file's headers after a complete hunk: one file per diff block.
            if line.starts_with("--- ")
                && b.counts_reached()
                && lines.get(i + 1).is_some_and(|l| l.starts_with("+++ "))
            {
                return Err(DiffError::Malformed {
                    line: n,
                    message: "a second file header; a DIFF block changes exactly one file".into(),
                });
            }
            if line.starts_with('\\') {
                let Some(last) = b.hunk.lines.last() else {
                    return Err(DiffError::Malformed {
                        line: n,
                        message: "`\\ No newline at end of file` must follow a diff line".into(),
                    });
                };
                match last {
                    HunkLine::Context(_) => {
                        b.hunk.old_missing_newline = true;
                        b.hunk.new_missing_newline = true;
                    }
                    HunkLine::Remove(_) => b.hunk.old_missing_newline = true,
                    HunkLine::Add(_) => b.hunk.new_missing_newline = true,
                }
                b.sealed = true;
                continue;
            }
            let (parsed, bare) = match line.as_bytes().first() {
                None => (HunkLine::Context(String::new()), true),
                Some(b' ') => (HunkLine::Context(line[1..].to_string()), false),
                Some(b'-') => (HunkLine::Remove(line[1..].to_string()), false),
                Some(b'+') => (HunkLine::Add(line[1..].to_string()), false),
                Some(_) => {
                    return Err(DiffError::Malformed {
                        line: n,
                        message: format!(
                            "`{}` is not a diff line; hunk lines start with ' ', '-' or '+'",
                            cut(line, 60)
                        ),
                    })
                }
            };
            if b.sealed && !bare {
                // A line after "\ No newline" can only be the other side's last line
                // (`-old` `\` `+new` `\`), never more context.
                let other_side_ok = matches!(
                    (
                        &parsed,
                        b.hunk.old_missing_newline,
                        b.hunk.new_missing_newline
                    ),
                    (HunkLine::Add(_), true, false) | (HunkLine::Remove(_), false, true)
                );
                if !other_side_ok {
                    return Err(DiffError::Malformed {
                        line: n,
                        message: "a line after `\\ No newline at end of file`, which only the file's last line may carry".into(),
                    });
                }
            }
            b.hunk.lines.push(parsed);
            b.bare.push(bare);
        }
        if let Some(b) = current.take() {
            hunks.push(b.finish(hunks.len() + 1)?);
        }
        // A bare empty line may have been kept after a "\ No newline" marker when it was real
        // trailing padding; `finish` removed it, so nothing more to check here.
        if hunks.is_empty() {
            return Err(DiffError::NoHunks);
        }
        Ok(Self {
            old_path,
            new_path,
            hunks,
        })
    }

    /// The diff creates a file (`--- /dev/null`).
    pub fn is_new_file(&self) -> bool {
        self.old_path.as_deref() == Some("/dev/null")
    }

    /// The diff deletes the file (`+++ /dev/null`).
    pub fn is_deletion(&self) -> bool {
        self.new_path.as_deref() == Some("/dev/null")
    }

    /// A one-hunk diff from `old` to `new` with three lines of context: the common prefix and
    /// suffix are kept, the middle replaced. Not minimal, always correct; for the fake model and
    /// tests. Equal inputs give a diff with no hunks.
    pub fn compute(path: &str, old: &str, new: &str) -> Self {
        const CONTEXT: usize = 3;
        let a: Vec<&str> = old.split_inclusive('\n').collect();
        let b: Vec<&str> = new.split_inclusive('\n').collect();
        let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let suffix = a[prefix..]
            .iter()
            .rev()
            .zip(b[prefix..].iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        let old_path = if old.is_empty() {
            "/dev/null".to_string()
        } else {
            format!("a/{path}")
        };
        let new_path = if new.is_empty() {
            "/dev/null".to_string()
        } else {
            format!("b/{path}")
        };
        if prefix == a.len() && prefix == b.len() {
            return Self {
                old_path: Some(old_path),
                new_path: Some(new_path),
                hunks: Vec::new(),
            };
        }
        let start = prefix.saturating_sub(CONTEXT);
        let a_end = (a.len() - suffix + CONTEXT).min(a.len());
        let tail = a_end - (a.len() - suffix);
        let mut lines = Vec::new();
        for l in &a[start..prefix] {
            lines.push(HunkLine::Context(strip_eol(l).to_string()));
        }
        for l in &a[prefix..a.len() - suffix] {
            lines.push(HunkLine::Remove(strip_eol(l).to_string()));
        }
        for l in &b[prefix..b.len() - suffix] {
            lines.push(HunkLine::Add(strip_eol(l).to_string()));
        }
        for l in &a[a.len() - suffix..a.len() - suffix + tail] {
            lines.push(HunkLine::Context(strip_eol(l).to_string()));
        }
        let old_len = a_end - start;
        let new_len = (b.len() - suffix + tail) - start;
        let hunk = Hunk {
            // Unified diff convention: an empty range starts at the line before it.
            old_start: Some(if old_len == 0 { start } else { start + 1 }),
            new_start: Some(if new_len == 0 { start } else { start + 1 }),
            old_missing_newline: a_end == a.len() && !old.is_empty() && !old.ends_with('\n'),
            new_missing_newline: b.len() - suffix + tail == b.len()
                && !new.is_empty()
                && !new.ends_with('\n'),
            lines,
        };
        Self {
            old_path: Some(old_path),
            new_path: Some(new_path),
            hunks: vec![hunk],
        }
    }

    /// Applies the diff to `original`. Every context and removed line must match exactly (a
    /// trailing `\r` aside); a hunk whose line numbers are off is found by searching outward from
    /// where its header (shifted by earlier hunks' offsets) puts it, nearest first, never
    /// overlapping an earlier hunk. Added lines take the file's line ending.
    pub fn apply(&self, original: &str) -> Result<String, DiffError> {
        if self.is_new_file() && !original.is_empty() {
            return Err(DiffError::FileExists);
        }
        let src: Vec<&str> = original.split_inclusive('\n').collect();
        let eol = if src.first().is_some_and(|l| l.ends_with("\r\n")) {
            "\r\n"
        } else {
            "\n"
        };
        let had_final_newline = original.is_empty() || original.ends_with('\n');
        let mut final_newline = had_final_newline;
        let mut out = String::with_capacity(original.len() + 256);
        let mut cursor = 0usize;
        let mut offset: isize = 0;

        for (i, h) in self.hunks.iter().enumerate() {
            let number = i + 1;
            let fail = |message: String| DiffError::HunkFailed {
                hunk: number,
                message: format!("({}) {message}", h.header()),
            };
            let old: Vec<&str> = h
                .lines
                .iter()
                .filter_map(|l| match l {
                    HunkLine::Context(t) | HunkLine::Remove(t) => Some(t.as_str()),
                    HunkLine::Add(_) => None,
                })
                .collect();
            let pos = if old.is_empty() {
                // Pure insertion: `-a,0` means "after line a". Only the line number places it.
                let start =
                    match h.old_start {
                        Some(s) => s,
                        None if src.is_empty() => 0,
                        None => return Err(fail(
                            "has neither context lines nor line numbers, so it cannot be placed"
                                .into(),
                        )),
                    };
                let p = start as isize + offset;
                if p < cursor as isize || p > src.len() as isize {
                    return Err(fail(format!(
                        "inserts after line {start}, but the file has {} lines",
                        src.len()
                    )));
                }
                p as usize
            } else {
                let expected = match h.old_start {
                    Some(s) => s.max(1) as isize - 1 + offset,
                    None => cursor as isize,
                };
                match find(&src, &old, cursor, expected) {
                    Some(p) => p,
                    None => return Err(fail(mismatch(&src, &old, cursor, expected))),
                }
            };
            let end = pos + old.len();
            if h.old_missing_newline && (end != src.len() || had_final_newline) {
                return Err(fail(
                    "says the file's last line has no newline, but it does (or the hunk is not at the end)".into(),
                ));
            }
            for l in &src[cursor..pos] {
                push_line(&mut out, l, eol);
            }
            let mut k = pos;
            for l in &h.lines {
                match l {
                    HunkLine::Context(_) => {
                        push_line(&mut out, src[k], eol);
                        k += 1;
                    }
                    HunkLine::Remove(_) => k += 1,
                    HunkLine::Add(t) => {
                        out.push_str(t);
                        out.push_str(eol);
                    }
                }
            }
            cursor = end;
            if let Some(s) = h.old_start {
                let declared = if old.is_empty() { s } else { s.max(1) - 1 };
                offset = pos as isize - declared as isize;
            }
            if cursor == src.len() {
                final_newline = if h.new_missing_newline {
                    false
                } else if h.old_missing_newline {
                    true
                } else {
                    had_final_newline
                };
            } else if h.new_missing_newline {
                return Err(fail(
                    "says its last line ends the file without a newline, but the file continues after it".into(),
                ));
            }
        }
        for l in &src[cursor..] {
            push_line(&mut out, l, eol);
        }
        if !final_newline {
            if let Some(s) = out.strip_suffix(eol) {
                out.truncate(s.len());
            }
        }
        Ok(out)
    }
}

fn push_line(out: &mut String, line: &str, eol: &str) {
    out.push_str(line);
    if !line.ends_with('\n') {
        out.push_str(eol);
    }
}

fn matches_at(src: &[&str], old: &[&str], p: usize) -> bool {
    old.iter()
        .zip(&src[p..p + old.len()])
        .all(|(want, have)| strip_eol(have) == *want)
}

/// The position nearest `expected` (not before `min`) where `old` matches, if any.
fn find(src: &[&str], old: &[&str], min: usize, expected: isize) -> Option<usize> {
    if old.len() > src.len() || min > src.len() - old.len() {
        return None;
    }
    let max = (src.len() - old.len()) as isize;
    let min = min as isize;
    let expected = expected.clamp(min, max);
    let span = (expected - min).max(max - expected);
    for d in 0..=span {
        for p in [expected - d, expected + d] {
            if (min..=max).contains(&p) && matches_at(src, old, p as usize) {
                return Some(p as usize);
            }
            if d == 0 {
                break;
            }
        }
    }
    None
}

/// Says where the hunk stops matching at its expected place, so the model can fix its diff.
fn mismatch(src: &[&str], old: &[&str], min: usize, expected: isize) -> String {
    let p = expected.max(min as isize).max(0) as usize;
    for (j, want) in old.iter().enumerate() {
        match src.get(p + j) {
            None => {
                return format!(
                    "does not apply: it expects `{}` at line {}, but the file has only {} lines",
                    cut(want, 120),
                    p + j + 1,
                    src.len()
                )
            }
            Some(have) if strip_eol(have) != *want => {
                return format!(
                    "does not apply: its context and removed lines are not in the file; at line {} the file has `{}` where the hunk expects `{}`",
                    p + j + 1,
                    cut(strip_eol(have), 120),
                    cut(want, 120)
                )
            }
            Some(_) => {}
        }
    }
    "does not apply: its lines are only found overlapping an earlier hunk".into()
}

impl fmt::Display for UnifiedDiff {
    /// The canonical text form, with counts recomputed from the hunk bodies.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.old_path {
            writeln!(f, "--- {p}")?;
        }
        if let Some(p) = &self.new_path {
            writeln!(f, "+++ {p}")?;
        }
        for h in &self.hunks {
            writeln!(f, "{}", h.header())?;
            let last_old = h.lines.iter().rposition(|l| !matches!(l, HunkLine::Add(_)));
            let last_new = h
                .lines
                .iter()
                .rposition(|l| !matches!(l, HunkLine::Remove(_)));
            for (i, l) in h.lines.iter().enumerate() {
                match l {
                    HunkLine::Context(t) => writeln!(f, " {t}")?,
                    HunkLine::Remove(t) => writeln!(f, "-{t}")?,
                    HunkLine::Add(t) => writeln!(f, "+{t}")?,
                }
                let marks = (h.old_missing_newline && last_old == Some(i))
                    || (h.new_missing_newline && last_new == Some(i));
                if marks {
                    writeln!(f, "\\ No newline at end of file")?;
                }
            }
        }
        Ok(())
    }
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

    #[test]
    fn validate_path_accepts_and_normalises() {
        for (raw, want) in [
            ("src/App.tsx", "src/App.tsx"),
            ("./src/App.tsx", "src/App.tsx"),
            ("src//./lib/a.ts", "src/lib/a.ts"),
            (
                "app/[id]/(group)/@slot/+page.svelte",
                "app/[id]/(group)/@slot/+page.svelte",
            ),
            ("routes/$slug.tsx", "routes/$slug.tsx"),
            (".env.example", ".env.example"),
            (".github/workflows/ci.yml", ".github/workflows/ci.yml"),
            ("a.gitignore", "a.gitignore"),
            ("node_modules_backup/x", "node_modules_backup/x"),
        ] {
            assert_eq!(validate_path(raw).as_deref(), Ok(want), "{raw}");
        }
        let deep = vec!["d"; MAX_PATH_DEPTH].join("/");
        assert!(validate_path(&deep).is_ok());
        assert!(validate_path(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn validate_path_refuses_with_reasons() {
        for (raw, why) in [
            ("", "empty"),
            ("../x", ".."),
            ("src/../../x", ".."),
            ("/etc/passwd", "absolute"),
            ("C:/x", "drive"),
            ("c:x", "drive"),
            ("src\\a.ts", "backslash"),
            ("a\0b", "NUL"),
            ("a\nb", "control"),
            ("a\tb", "control"),
            ("a\u{7f}b", "control"),
            ("src/", "directory"),
            (".", "root"),
            ("./", "directory"),
            ("...", "dots"),
            ("a/.../b", "dots"),
            ("node_modules/react/index.js", "node_modules"),
            ("x/Node_Modules/y", "node_modules"),
            (".git/config", ".git"),
            ("a/.GIT/hooks/pre-commit", ".git"),
            ("-rf", "`-`"),
            ("a b.ts", "' '"),
            ("ab:c", "':'"),
            ("~/x", "'~'"),
            ("é.ts", "'é'"),
            ("a%2e", "'%'"),
            ("a*b", "'*'"),
            ("a;b", "';'"),
            ("a|b", "'|'"),
            ("a`b", "'`'"),
            ("a'b", "'\\''"),
        ] {
            let e = validate_path(raw).unwrap_err();
            assert!(e.contains(why), "{raw:?}: {e}");
        }
        assert!(validate_path(&"a".repeat(MAX_PATH_BYTES + 1))
            .unwrap_err()
            .contains("512"));
        assert!(validate_path(&"a".repeat(256)).unwrap_err().contains("255"));
        let deep = vec!["d"; MAX_PATH_DEPTH + 1].join("/");
        assert!(validate_path(&deep).unwrap_err().contains("deeper"));
    }

    // --- diffs ---

    fn diff(s: &str) -> UnifiedDiff {
        UnifiedDiff::parse(s).unwrap()
    }

    #[test]
    fn applies_multiple_hunks() {
        let orig: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let d = diff(
            "--- a/f\n+++ b/f\n@@ -2,3 +2,3 @@\n line 2\n-line 3\n+LINE 3\n line 4\n@@ -15,3 +15,4 @@\n line 15\n line 16\n+inserted\n line 17\n",
        );
        let out = d.apply(&orig).unwrap();
        let want = orig
            .replace("line 3\n", "LINE 3\n")
            .replace("line 16\n", "line 16\ninserted\n");
        assert_eq!(out, want);
    }

    #[test]
    fn hunks_are_found_at_an_offset_but_context_is_never_fuzzed() {
        let orig: String = (1..=30).map(|i| format!("l{i}\n")).collect();
        // The header says line 5, the text is at line 20.
        let d = diff("@@ -5,2 +5,2 @@\n l20\n-l21\n+L21\n");
        assert_eq!(d.apply(&orig).unwrap(), orig.replace("l21\n", "L21\n"));
        // The second hunk's expected place shifts with the first hunk's offset.
        let d = diff("@@ -1,1 +1,1 @@\n-l11\n+X\n@@ -3,1 +3,1 @@\n-l13\n+Y\n");
        assert_eq!(
            d.apply(&orig).unwrap(),
            orig.replace("l11\n", "X\n").replace("l13\n", "Y\n")
        );
        // One character of context differs: refused, with where and what.
        let d = diff("@@ -20,2 +20,2 @@\n l20 \n-l21\n+L21\n");
        let e = d.apply(&orig).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DiffError::HunkFailed { hunk: 1, .. }));
        assert!(msg.contains("line 20") && msg.contains("`l20 `"), "{msg}");
        // Nearest match wins when the context repeats.
        let rep = "x\n}\nx\n}\nx\n}\n";
        let d = diff("@@ -3,2 +3,2 @@\n x\n-}\n+};\n");
        assert_eq!(d.apply(rep).unwrap(), "x\n}\nx\n};\nx\n}\n");
    }

    #[test]
    fn hunks_may_not_overlap_or_go_backwards() {
        let orig = "a\nb\nc\n";
        let d = diff("@@ -2 +2 @@\n-b\n+B\n@@ -1 +1 @@\n-a\n+A\n");
        assert!(matches!(
            d.apply(orig),
            Err(DiffError::HunkFailed { hunk: 2, .. })
        ));
    }

    #[test]
    fn no_newline_at_end_of_file() {
        // Change the last line of a file that has no final newline.
        let d = diff("@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n");
        assert_eq!(d.apply("a\nb").unwrap(), "a\nc");
        // The same hunk refuses a file that does end with a newline.
        assert!(d.apply("a\nb\n").is_err());
        // Add a final newline.
        let d = diff("@@ -1 +1 @@\n-b\n\\ No newline at end of file\n+b\n");
        assert_eq!(d.apply("b").unwrap(), "b\n");
        // Remove it.
        let d = diff("@@ -1 +1 @@\n-b\n+b\n\\ No newline at end of file\n");
        assert_eq!(d.apply("b\n").unwrap(), "b");
        // Context that is the unterminated last line.
        let d = diff("@@ -1,2 +1,3 @@\n-a\n+A\n+A2\n b\n\\ No newline at end of file\n");
        assert_eq!(d.apply("a\nb").unwrap(), "A\nA2\nb");
        // Untouched unterminated ends stay unterminated; appending after one terminates it.
        let d = diff("@@ -1 +1 @@\n-a\n+A\n");
        assert_eq!(d.apply("a\nb").unwrap(), "A\nb");
        let d = diff("@@ -1,2 +1,3 @@\n a\n b\n+c\n");
        assert_eq!(d.apply("a\nb").unwrap(), "a\nb\nc");
        // A "no newline" claim in the middle of a file is refused.
        let d = diff("@@ -1 +1 @@\n-a\n+A\n\\ No newline at end of file\n");
        assert!(d.apply("a\nb\n").is_err());
    }

    #[test]
    fn new_file_and_deletion_diffs() {
        let d = diff("--- /dev/null\n+++ b/src/new.ts\n@@ -0,0 +1,2 @@\n+export const a = 1;\n+export const b = 2;\n");
        assert!(d.is_new_file() && !d.is_deletion());
        assert_eq!(
            d.apply("").unwrap(),
            "export const a = 1;\nexport const b = 2;\n"
        );
        assert_eq!(d.apply("x\n"), Err(DiffError::FileExists));
        let d = diff("--- a/x\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n");
        assert!(d.is_deletion());
        assert_eq!(d.apply("a\nb\n").unwrap(), "");
    }

    #[test]
    fn lenient_about_counts_and_headers_strict_about_syntax() {
        // Wrong counts (models miscount) and git preamble are fine.
        let d = diff("diff --git a/f b/f\nindex 123..456 100644\n--- a/f\t2024-01-01\n+++ b/f\n@@ -1,7 +1,9 @@ fn main\n-a\n+b\n");
        assert_eq!(d.old_path.as_deref(), Some("a/f"));
        assert_eq!(d.apply("a\n").unwrap(), "b\n");
        // Bare @@ hunks are located by their context.
        let d = diff("@@\n x\n-y\n+Y\n@@ @@\n z\n+w\n");
        assert_eq!(d.apply("q\nx\ny\nz\n").unwrap(), "q\nx\nY\nz\nw\n");
        // A blank context line whose leading space was stripped still matches.
        let d = diff("@@ -1,3 +1,3 @@\n a\n\n-b\n+B\n");
        assert_eq!(d.apply("a\n\nb\n").unwrap(), "a\n\nB\n");
        // Trailing blank padding is not context when the counts do not need it.
        let d = diff("@@ -1,1 +1,1 @@\n-a\n+b\n\n\n");
        assert_eq!(d.hunks[0].lines.len(), 2);
        // But it is when they do.
        let d = diff("@@ -1,2 +1,2 @@\n-a\n+b\n\n");
        assert_eq!(d.apply("a\n\n").unwrap(), "b\n\n");
        // Syntax errors say where.
        for (s, line) in [
            ("@@ -x +1 @@\n-a\n", 1),
            ("@@ -1 +1 @@\n-a\nfoo\n", 3),
            ("@@ -1 +1 @@\n\\ No newline at end of file\n", 2),
            (
                "@@ -1 +1 @@\n-a\n+b\n--- a/g\n+++ b/g\n@@ -1 +1 @@\n-c\n+d\n",
                4,
            ),
            ("@@ -1,2 +1,2 @@\n a\n\\ No newline at end of file\n b\n", 4),
        ] {
            match UnifiedDiff::parse(s) {
                Err(DiffError::Malformed { line: l, .. }) => assert_eq!(l, line, "{s:?}"),
                other => panic!("{s:?}: {other:?}"),
            }
        }
        assert_eq!(
            UnifiedDiff::parse("--- a\n+++ b\n"),
            Err(DiffError::NoHunks)
        );
        assert!(matches!(
            UnifiedDiff::parse("@@ -1 +1 @@\n@@ -2 +2 @@\n-a\n"),
            Err(DiffError::HunkFailed { hunk: 1, .. })
        ));
        // A removed SQL comment line (`--- x`) inside a hunk is a removal, not a header.
        let d = diff("@@ -1,2 +1,1 @@\n--- comment\n keep\n");
        assert_eq!(d.apply("-- comment\nkeep\n").unwrap(), "keep\n");
    }

    #[test]
    fn crlf_files_keep_their_line_endings() {
        let d = diff("@@ -1,2 +1,3 @@\n a\n-b\n+B\n+C\n");
        assert_eq!(d.apply("a\r\nb\r\n").unwrap(), "a\r\nB\r\nC\r\n");
        let d = diff("@@ -1,2 +1,2 @@\r\n a\r\n-b\r\n+B\r\n");
        assert_eq!(d.apply("a\nb\n").unwrap(), "a\nB\n");
    }

    #[test]
    fn pure_insertions_use_line_numbers() {
        let d = diff("@@ -2,0 +3,1 @@\n+new\n");
        assert_eq!(d.apply("a\nb\nc\n").unwrap(), "a\nb\nnew\nc\n");
        let d = diff("@@ -9,0 +10,1 @@\n+new\n");
        assert!(d.apply("a\n").is_err());
        let d = diff("@@\n+new\n");
        assert!(d
            .apply("a\n")
            .unwrap_err()
            .to_string()
            .contains("cannot be placed"));
        assert_eq!(d.apply("").unwrap(), "new\n");
    }

    /// A small deterministic generator (no randomness source in tests either).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn text(&mut self) -> String {
            let n = self.next() % 12;
            let mut s = String::new();
            for _ in 0..n {
                s.push_str(["a", "b", "", "c", "}", "  x"][(self.next() % 6) as usize]);
                s.push('\n');
            }
            if self.next().is_multiple_of(3) {
                s.pop();
            }
            s
        }
    }

    #[test]
    fn compute_then_apply_round_trips() {
        let mut g = Lcg(7);
        for _ in 0..3000 {
            let old = g.text();
            let new = g.text();
            let d = UnifiedDiff::compute("f.txt", &old, &new);
            assert_eq!(
                d.apply(&old).as_deref(),
                Ok(new.as_str()),
                "{old:?} -> {new:?}\n{d}"
            );
            if d.hunks.is_empty() {
                continue;
            }
            // And through its text form.
            let text = d.to_string();
            let back = UnifiedDiff::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back.apply(&old).as_deref(), Ok(new.as_str()), "{text}");
        }
    }

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

//! Server-Sent Events both ways: an incremental parser for the streams OpenAI-compatible
//! `/chat/completions` endpoints return (and the decoding of their chunks), and the encoder for
//! the events we stream to our own clients.
//!
//! Invariants:
//! - the parser follows the HTML SSE rules (LF, CRLF or lone CR line endings, a single leading
//!   space stripped from values, comments, multi-line `data`, `id` persisting across events) and
//!   gives the same events however the bytes are split, even between `\r` and `\n` or inside a
//!   UTF-8 sequence;
//! - a line cut off by the end of the stream is never dispatched (a half JSON object must read
//!   as a truncated stream, not as a malformed one); complete `data:` lines not followed by the
//!   blank line are, since some servers close right after `data: [DONE]`;
//! - a [`ChatStream`] only reports success when the provider said it was finished (`[DONE]` or a
//!   `finish_reason`); everything else is [`ChatError::Truncated`], which says whether any
//!   content had arrived (retrying is only safe before).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Largest single event accepted (an OpenAI-compatible chunk is a few hundred bytes).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any (`None` means the default type, `message`).
    pub event: Option<String>,
    pub data: String,
    /// The last `id:` seen on the stream so far (it persists across events, per the spec).
    pub id: Option<String>,
    /// A `retry:` reconnection time sent with this event.
    pub retry_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// An event's data exceeded [`MAX_EVENT_BYTES`] (or the configured limit).
    EventTooLarge { limit: usize },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::EventTooLarge { limit } => {
                write!(f, "server-sent event larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for SseError {}

/// The incremental event-stream parser.
#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    first_line: bool,
    data: String,
    has_data: bool,
    event: Option<String>,
    id: Option<String>,
    retry_ms: Option<u64>,
    max_event_bytes: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    pub fn new() -> Self {
        Self::with_limit(MAX_EVENT_BYTES)
    }

    pub fn with_limit(max_event_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            first_line: true,
            data: String::new(),
            has_data: false,
            event: None,
            id: None,
            retry_ms: None,
            max_event_bytes,
        }
    }

    /// Feeds bytes as they arrive; returns the events they completed.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(i) = memchr::memchr2(b'\r', b'\n', bytes) {
            self.line.extend_from_slice(&bytes[..i]);
            self.take_line(&mut out)?;
            if bytes[i] == b'\r' {
                match bytes.get(i + 1) {
                    Some(b'\n') => {
                        bytes = &bytes[i + 2..];
                        continue;
                    }
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            bytes = &bytes[i + 1..];
        }
        self.line.extend_from_slice(bytes);
        if self.line.len() > self.max_event_bytes {
            return Err(SseError::EventTooLarge {
                limit: self.max_event_bytes,
            });
        }
        Ok(out)
    }

    /// Ends the stream: an unterminated last line is dropped, complete `data` lines still waiting
    /// for their blank line are dispatched.
    pub fn finish(&mut self) -> Option<SseEvent> {
        self.line.clear();
        self.after_cr = false;
        let ev = self.dispatch();
        self.first_line = true;
        ev
    }

    fn take_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let raw = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&raw);
        let mut line: &str = &text;
        if std::mem::replace(&mut self.first_line, false) {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.is_empty() {
            if let Some(ev) = self.dispatch() {
                out.push(ev);
            }
        } else if !line.starts_with(':') {
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "data" => {
                    if self.data.len() + value.len() + 1 > self.max_event_bytes {
                        return Err(SseError::EventTooLarge {
                            limit: self.max_event_bytes,
                        });
                    }
                    self.data.push_str(value);
                    self.data.push('\n');
                    self.has_data = true;
                }
                "event" => self.event = Some(value.to_string()),
                "id" if !value.contains('\0') => self.id = Some(value.to_string()),
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    self.retry_ms = value.parse().ok();
                }
                _ => {}
            }
        }
        drop(text);
        self.line = raw;
        self.line.clear();
        Ok(())
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        let retry_ms = self.retry_ms.take();
        if !self.has_data {
            self.data.clear();
            return None;
        }
        self.has_data = false;
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the LF after the last data line
        Some(SseEvent {
            event,
            data,
            id: self.id.clone(),
            retry_ms,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAI-compatible chat completion chunks.

/// Token counts as providers report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    fn from_json(v: &Value) -> Option<Self> {
        let obj = v.as_object()?;
        let n = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| obj.get(*k).and_then(Value::as_u64))
        };
        let prompt = n(&["prompt_tokens", "input_tokens"]);
        let completion = n(&["completion_tokens", "output_tokens"]);
        let total = n(&["total_tokens"]);
        if prompt.is_none() && completion.is_none() && total.is_none() {
            return None;
        }
        let (p, c) = (prompt.unwrap_or(0), completion.unwrap_or(0));
        Some(Self {
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: total.unwrap_or(p + c),
        })
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    /// `max_tokens` reached: the output is cut.
    Length,
    /// The provider's content policy stopped the output.
    ContentFilter,
    ToolCalls,
    Other(String),
}

impl FinishReason {
    pub fn parse(s: &str) -> Self {
        match s {
            "stop" | "end_turn" | "stop_sequence" | "eos" => FinishReason::Stop,
            "length" | "max_tokens" => FinishReason::Length,
            "content_filter" | "safety" | "refusal" => FinishReason::ContentFilter,
            "tool_calls" | "function_call" | "tool_use" => FinishReason::ToolCalls,
            other => FinishReason::Other(other.to_string()),
        }
    }
}

/// An error object a provider returned, mid-stream or as an error response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderError {
    pub message: String,
    /// The error `type` (`rate_limit_error`, `invalid_request_error`, …).
    pub kind: Option<String>,
    /// The error `code`, numbers rendered as text.
    pub code: Option<String>,
}

impl ProviderError {
    /// Reads `{"error": {...}}`, `{"error": "text"}` or a bare `{"message": ...}`.
    pub fn from_json(v: &Value) -> Option<Self> {
        let e = v.get("error").unwrap_or(v);
        if let Some(s) = e.as_str() {
            return Some(Self {
                message: s.to_string(),
                ..Self::default()
            });
        }
        let obj = e.as_object()?;
        let text = |k: &str| match obj.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let message = text("message")?;
        Some(Self {
            message,
            kind: text("type"),
            code: text("code"),
        })
    }

    /// Parses an HTTP error response body; a body that is not a provider error object is kept
    /// (truncated) as the message.
    pub fn from_body(body: &str) -> Self {
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| Self::from_json(&v))
            .unwrap_or_else(|| Self {
                message: truncate(body.trim(), 500),
                ..Self::default()
            })
    }

    /// Whether the provider refused on content-policy grounds (retrying the same prompt will not
    /// help).
    pub fn is_content_policy(&self) -> bool {
        [&self.kind, &self.code].iter().any(|f| {
            f.as_deref().is_some_and(|s| {
                let s = s.to_ascii_lowercase();
                s.contains("content_filter")
                    || s.contains("content_policy")
                    || s.contains("safety")
                    || s.contains("moderation")
            })
        })
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (&self.kind, &self.code) {
            (Some(k), Some(c)) => write!(f, " ({k}, {c})"),
            (Some(x), None) | (None, Some(x)) => write!(f, " ({x})"),
            (None, None) => Ok(()),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// One decoded `chat.completion.chunk`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatChunk {
    /// `choices[0].delta.content`, when non-empty.
    pub content: Option<String>,
    pub finish_reason: Option<FinishReason>,
    /// Often only in the last chunk (with `stream_options.include_usage`), whose `choices` is empty.
    pub usage: Option<Usage>,
    pub model: Option<String>,
}

/// What one `data:` payload of a completion stream means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    Chunk(ChatChunk),
    /// `data: [DONE]`.
    Done,
    Error(ProviderError),
}

/// Decodes one event's data. `event` is the SSE event name (`error` marks an error payload).
pub fn decode_stream_data(event: Option<&str>, data: &str) -> Result<StreamItem, String> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(StreamItem::Done);
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| format!("stream chunk is not JSON ({e}): {}", truncate(data, 200)))?;
    if v.get("error").is_some_and(|e| !e.is_null()) || event == Some("error") {
        return ProviderError::from_json(&v)
            .map(StreamItem::Error)
            .ok_or_else(|| format!("unreadable error event: {}", truncate(data, 200)));
    }
    if !v.is_object() {
        return Err(format!(
            "stream chunk is not a JSON object: {}",
            truncate(data, 200)
        ));
    }
    let choice = v.get("choices").and_then(|c| c.get(0));
    let content = choice
        .and_then(|c| c.get("delta"))
        .and_then(|d| d.get("content"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let finish_reason = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str)
        .map(FinishReason::parse);
    Ok(StreamItem::Chunk(ChatChunk {
        content,
        finish_reason,
        usage: v.get("usage").and_then(Usage::from_json),
        model: v.get("model").and_then(Value::as_str).map(str::to_string),
    }))
}

/// Why a completion failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatError {
    /// The provider sent an error object.
    Provider(ProviderError),
    /// The response is not what an OpenAI-compatible endpoint sends.
    Malformed(String),
    /// The stream ended before the provider said it was finished.
    Truncated { received_content: bool },
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatError::Provider(e) => write!(f, "model provider error: {e}"),
            ChatError::Malformed(m) => write!(f, "malformed model response: {m}"),
            ChatError::Truncated {
                received_content: true,
            } => write!(f, "the model's response stream was cut off mid-answer"),
            ChatError::Truncated {
                received_content: false,
            } => write!(f, "the model's response stream ended before any content"),
        }
    }
}

impl std::error::Error for ChatError {}

/// How a completed stream ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamSummary {
    pub finish_reason: Option<FinishReason>,
    pub usage: Option<Usage>,
    pub model: Option<String>,
}

/// A streamed chat completion being read: SSE in, content deltas out.
#[derive(Debug, Default)]
pub struct ChatStream {
    sse: SseParser,
    received_content: bool,
    done: bool,
    summary: StreamSummary,
}

impl ChatStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether any content has arrived (after which a retry would repeat visible output).
    pub fn received_content(&self) -> bool {
        self.received_content
    }

    /// Usage reported so far (providers may send it before `[DONE]`).
    pub fn usage(&self) -> Option<Usage> {
        self.summary.usage
    }

    /// Feeds response bytes; returns the content they carried, concatenated.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<String, ChatError> {
        let events = self
            .sse
            .feed(bytes)
            .map_err(|e| ChatError::Malformed(e.to_string()))?;
        let mut text = String::new();
        for ev in events {
            self.on_event(ev, &mut text)?;
        }
        Ok(text)
    }

    fn on_event(&mut self, ev: SseEvent, text: &mut String) -> Result<(), ChatError> {
        if self.done {
            return Ok(()); // nothing after [DONE] counts
        }
        match decode_stream_data(ev.event.as_deref(), &ev.data).map_err(ChatError::Malformed)? {
            StreamItem::Done => self.done = true,
            StreamItem::Error(e) => return Err(ChatError::Provider(e)),
            StreamItem::Chunk(c) => {
                if let Some(t) = c.content {
                    self.received_content = true;
                    text.push_str(&t);
                }
                if c.finish_reason.is_some() {
                    self.summary.finish_reason = c.finish_reason;
                }
                if c.usage.is_some() {
                    self.summary.usage = c.usage;
                }
                if c.model.is_some() && self.summary.model.is_none() {
                    self.summary.model = c.model;
                }
            }
        }
        Ok(())
    }

    /// Ends the stream: the last content (if a final event was waiting), and how it ended.
    pub fn finish(&mut self) -> Result<(String, StreamSummary), ChatError> {
        let mut text = String::new();
        if let Some(ev) = self.sse.finish() {
            self.on_event(ev, &mut text)?;
        }
        if !self.done && self.summary.finish_reason.is_none() {
            return Err(ChatError::Truncated {
                received_content: self.received_content,
            });
        }
        Ok((text, std::mem::take(&mut self.summary)))
    }
}

/// A non-streamed completion.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Completion {
    pub content: String,
    pub finish_reason: Option<FinishReason>,
    pub usage: Option<Usage>,
    pub model: Option<String>,
}

/// Decodes a non-streamed `/chat/completions` response body.
pub fn decode_completion(body: &str) -> Result<Completion, ChatError> {
    let v: Value = serde_json::from_str(body).map_err(|e| {
        ChatError::Malformed(format!(
            "response is not JSON ({e}): {}",
            truncate(body, 200)
        ))
    })?;
    if v.get("error").is_some_and(|e| !e.is_null()) {
        return Err(ChatError::Provider(
            ProviderError::from_json(&v).unwrap_or_else(|| ProviderError {
                message: truncate(body, 500),
                ..ProviderError::default()
            }),
        ));
    }
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| ChatError::Malformed("response has no choices".into()))?;
    let message = choice
        .get("message")
        .ok_or_else(|| ChatError::Malformed("response choice has no message".into()))?;
    let content = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        // Some servers return content parts: [{"type":"text","text":"…"}].
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        Some(_) => return Err(ChatError::Malformed("message content is not text".into())),
    };
    Ok(Completion {
        content,
        finish_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(FinishReason::parse),
        usage: v.get("usage").and_then(Usage::from_json),
        model: v.get("model").and_then(Value::as_str).map(str::to_string),
    })
}

// ---------------------------------------------------------------------------------------------
// Writing events to our clients.

fn push_field(out: &mut String, field: &str, value: &str) {
    // Every line terminator the parser accepts must start a new field, or a value could inject
    // fields of its own.
    for line in value.split(['\n', '\r']) {
        out.push_str(field);
        out.push_str(": ");
        out.push_str(line);
        out.push('\n');
    }
}

fn single_line(s: &str) -> String {
    s.chars().filter(|c| *c != '\n' && *c != '\r').collect()
}

/// `event: <name>\ndata: <data>\n\n`; multi-line data becomes several `data:` lines.
pub fn encode_event(name: &str, data: &str) -> String {
    let mut out = String::with_capacity(name.len() + data.len() + 16);
    out.push_str("event: ");
    out.push_str(&single_line(name));
    out.push('\n');
    push_field(&mut out, "data", data);
    out.push('\n');
    out
}

/// Like [`encode_event`] with an `id:` line, so a client reconnecting with `Last-Event-ID`
/// says where it stopped.
pub fn encode_event_with_id(id: u64, name: &str, data: &str) -> String {
    let mut out = format!("id: {id}\n");
    out.push_str(&encode_event(name, data));
    out
}

/// A comment line (`: keep-alive`), which clients ignore and proxies see as traffic.
pub fn encode_comment(text: &str) -> String {
    format!(": {}\n\n", single_line(text))
}

/// Tells the client how long to wait before reconnecting.
pub fn encode_retry(ms: u64) -> String {
    format!("retry: {ms}\n\n")
}

/// Numbers events so a reconnecting client can resume after the last one it saw.
#[derive(Debug, Clone, Default)]
pub struct SseWriter {
    next_id: u64,
}

impl SseWriter {
    /// Starts numbering after `last_id` (0 for a new stream).
    pub fn new(last_id: u64) -> Self {
        Self {
            next_id: last_id + 1,
        }
    }

    pub fn event(&mut self, name: &str, data: &str) -> String {
        let id = self.next_id;
        self.next_id += 1;
        encode_event_with_id(id, name, data)
    }

    /// The id the next event will carry.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }
}

/// Parses a `Last-Event-ID` header written by [`SseWriter`].
pub fn parse_last_event_id(header: &str) -> Option<u64> {
    header.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(parts: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in parts {
            out.extend(p.feed(c).unwrap());
        }
        out.extend(p.finish());
        out
    }

    fn ev(data: &str) -> SseEvent {
        SseEvent {
            data: data.into(),
            ..SseEvent::default()
        }
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let s = b": keep-alive\n\nevent: delta\nid: 7\ndata: a\ndata:b\ndata:  c\nretry: 1500\nunknown: x\n\ndata\n\n";
        let got = all(&[s]);
        assert_eq!(
            got,
            vec![
                SseEvent {
                    event: Some("delta".into()),
                    data: "a\nb\n c".into(),
                    id: Some("7".into()),
                    retry_ms: Some(1500),
                },
                // A field with no colon is a field with an empty value; the id persists.
                SseEvent {
                    event: None,
                    data: String::new(),
                    id: Some("7".into()),
                    retry_ms: None,
                },
            ]
        );
    }

    #[test]
    fn events_without_data_are_not_dispatched_and_reset_the_type() {
        let got = all(&[b"event: ping\n\ndata: x\n\n"]);
        assert_eq!(got, vec![ev("x")]);
    }

    #[test]
    fn every_line_ending_and_every_split_point() {
        for eol in ["\n", "\r\n", "\r"] {
            let s = format!("data: {{\"a\":\"é\"}}{eol}{eol}: c{eol}data: [DONE]{eol}{eol}");
            let want = vec![ev("{\"a\":\"é\"}"), ev("[DONE]")];
            let b = s.as_bytes();
            for i in 0..=b.len() {
                for j in i..=b.len() {
                    assert_eq!(all(&[&b[..i], &b[i..j], &b[j..]]), want, "{eol:?} {i} {j}");
                }
            }
        }
    }

    #[test]
    fn bom_is_stripped_once() {
        assert_eq!(all(&["\u{feff}data: x\n\n".as_bytes()]), vec![ev("x")]);
        // Split inside the BOM.
        let b = "\u{feff}data: x\n\n".as_bytes();
        assert_eq!(all(&[&b[..2], &b[2..]]), vec![ev("x")]);
    }

    #[test]
    fn end_of_stream_rules() {
        // A complete data line without the blank line is dispatched…
        assert_eq!(all(&[b"data: [DONE]\n"]), vec![ev("[DONE]")]);
        // …an unterminated one is not.
        assert_eq!(all(&[b"data: {\"cho"]), vec![]);
        assert_eq!(all(&[b"data: a\ndata: {\"cho"]), vec![ev("a")]);
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut p = SseParser::with_limit(16);
        assert!(p.feed(b"data: 0123456789\n").is_ok());
        assert_eq!(
            p.feed(b"data: 0123456789\n"),
            Err(SseError::EventTooLarge { limit: 16 })
        );
        let mut p = SseParser::with_limit(16);
        assert!(p.feed(&[b'x'; 17]).is_err());
    }

    const STREAM: &str = concat!(
        ": OPENROUTER PROCESSING\n\n",
        "data: {\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo ✓\"},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3,\"total_tokens\":13}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn chat_stream_yields_content_finish_and_usage() {
        let b = STREAM.as_bytes();
        for size in [1, 2, 7, 64, b.len()] {
            let mut s = ChatStream::new();
            let mut text = String::new();
            for c in b.chunks(size) {
                text.push_str(&s.feed(c).unwrap());
            }
            let (rest, sum) = s.finish().unwrap();
            text.push_str(&rest);
            assert_eq!(text, "Hello ✓");
            assert_eq!(sum.finish_reason, Some(FinishReason::Stop));
            assert_eq!(
                sum.usage,
                Some(Usage {
                    prompt_tokens: 10,
                    completion_tokens: 3,
                    total_tokens: 13
                })
            );
            assert_eq!(sum.model.as_deref(), Some("m-1"));
        }
    }

    #[test]
    fn chat_stream_truncation_says_whether_content_arrived() {
        let mut s = ChatStream::new();
        s.feed(b": keep-alive\n\n").unwrap();
        assert_eq!(
            s.finish(),
            Err(ChatError::Truncated {
                received_content: false
            })
        );
        let mut s = ChatStream::new();
        s.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {\"choi")
            .unwrap();
        assert!(s.received_content());
        assert_eq!(
            s.finish(),
            Err(ChatError::Truncated {
                received_content: true
            })
        );
        // A finish_reason without [DONE] (some servers just close) is complete.
        let mut s = ChatStream::new();
        s.feed(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"length\"}]}\n",
        )
        .unwrap();
        let (_, sum) = s.finish().unwrap();
        assert_eq!(sum.finish_reason, Some(FinishReason::Length));
        // [DONE] alone is complete, and anything after it is ignored.
        let mut s = ChatStream::new();
        assert_eq!(s.feed(b"data: [DONE]\n\ndata: {\"bad\n\n").unwrap(), "");
        assert!(s.finish().is_ok());
    }

    #[test]
    fn chat_stream_errors() {
        let mut s = ChatStream::new();
        s.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n")
            .unwrap();
        let e = s
            .feed(b"data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\",\"code\":529}}\n\n")
            .unwrap_err();
        assert_eq!(
            e,
            ChatError::Provider(ProviderError {
                message: "Overloaded".into(),
                kind: Some("overloaded_error".into()),
                code: Some("529".into()),
            })
        );
        assert!(e.to_string().contains("Overloaded (overloaded_error, 529)"));
        let mut s = ChatStream::new();
        let e = s
            .feed(b"event: error\ndata: {\"message\":\"boom\"}\n\n")
            .unwrap_err();
        assert!(matches!(e, ChatError::Provider(p) if p.message == "boom"));
        let mut s = ChatStream::new();
        assert!(matches!(
            s.feed(b"data: not json\n\n"),
            Err(ChatError::Malformed(m)) if m.contains("not JSON")
        ));
        assert!(matches!(
            ChatStream::new().feed(b"data: [1]\n\n"),
            Err(ChatError::Malformed(_))
        ));
    }

    #[test]
    fn decodes_chunks_leniently() {
        // Null content, missing delta, input/output token names, usage without total.
        let got = decode_stream_data(
            None,
            r#"{"choices":[{"delta":{"content":null},"finish_reason":"end_turn"}],"usage":{"input_tokens":5,"output_tokens":2}}"#,
        )
        .unwrap();
        assert_eq!(
            got,
            StreamItem::Chunk(ChatChunk {
                content: None,
                finish_reason: Some(FinishReason::Stop),
                usage: Some(Usage {
                    prompt_tokens: 5,
                    completion_tokens: 2,
                    total_tokens: 7
                }),
                model: None,
            })
        );
        assert_eq!(
            decode_stream_data(None, r#"{"choices":[]}"#).unwrap(),
            StreamItem::Chunk(ChatChunk::default())
        );
        assert_eq!(
            decode_stream_data(None, " [DONE] ").unwrap(),
            StreamItem::Done
        );
        assert_eq!(
            decode_stream_data(None, r#"{"error":"quota exceeded"}"#).unwrap(),
            StreamItem::Error(ProviderError {
                message: "quota exceeded".into(),
                ..Default::default()
            })
        );
        assert_eq!(
            FinishReason::parse("weird"),
            FinishReason::Other("weird".into())
        );
        assert_eq!(
            FinishReason::parse("content_filter"),
            FinishReason::ContentFilter
        );
    }

    #[test]
    fn non_streamed_completions() {
        let c = decode_completion(
            r#"{"model":"gpt","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
        )
        .unwrap();
        assert_eq!(c.content, "hi");
        assert_eq!(c.finish_reason, Some(FinishReason::Stop));
        assert_eq!(c.usage.unwrap().total_tokens, 2);
        assert_eq!(c.model.as_deref(), Some("gpt"));
        let c = decode_completion(
            r#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]}"#,
        )
        .unwrap();
        assert_eq!(c.content, "ab");
        let c = decode_completion(r#"{"choices":[{"message":{"content":null,"refusal":"no"},"finish_reason":"content_filter"}]}"#).unwrap();
        assert_eq!(c.content, "");
        assert_eq!(c.finish_reason, Some(FinishReason::ContentFilter));
        assert!(matches!(
            decode_completion(r#"{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}"#),
            Err(ChatError::Provider(p)) if p.code.as_deref() == Some("invalid_api_key")
        ));
        assert!(matches!(
            decode_completion("<html>"),
            Err(ChatError::Malformed(_))
        ));
        assert!(
            matches!(decode_completion("{}"), Err(ChatError::Malformed(m)) if m.contains("no choices"))
        );
        assert!(matches!(
            decode_completion(r#"{"choices":[{}]}"#),
            Err(ChatError::Malformed(_))
        ));
    }

    #[test]
    fn provider_error_bodies_and_policy_detection() {
        let e = ProviderError::from_body("<html>502 Bad Gateway</html>");
        assert_eq!(e.message, "<html>502 Bad Gateway</html>");
        assert_eq!(
            ProviderError::from_body(&"x".repeat(2000)).message.len(),
            503
        );
        let e = ProviderError::from_body(
            r#"{"error":{"message":"flagged","type":"invalid_request_error","code":"content_policy_violation"}}"#,
        );
        assert!(e.is_content_policy());
        assert!(!ProviderError::from_body(
            r#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#
        )
        .is_content_policy());
    }

    #[test]
    fn encoder_output_parses_back_and_cannot_be_injected() {
        let data = "{\"a\":1}\nsecond\r\nthird\rfourth";
        let s = encode_event("file\ngenerated", data);
        assert!(s.starts_with("event: filegenerated\ndata: {\"a\":1}\n"));
        let mut p = SseParser::new();
        let got = p.feed(s.as_bytes()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].event.as_deref(), Some("filegenerated"));
        assert_eq!(got[0].data, "{\"a\":1}\nsecond\n\nthird\nfourth");
        // A data value cannot smuggle in an id or a second event.
        let evil = "x\n\nid: 999\nevent: done\ndata: y";
        let got = SseParser::new()
            .feed(encode_event("phase_start", evil).as_bytes())
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, None);
        assert_eq!(got[0].event.as_deref(), Some("phase_start"));
        assert_eq!(encode_comment("keep\nalive"), ": keepalive\n\n");
        assert_eq!(encode_retry(3000), "retry: 3000\n\n");
    }

    #[test]
    fn writer_numbers_events_for_resumption() {
        let mut w = SseWriter::new(0);
        let a = w.event("done", "{}");
        let b = w.event("done", "{}");
        assert!(a.starts_with("id: 1\n") && b.starts_with("id: 2\n"));
        let mut p = SseParser::new();
        let got = p.feed(format!("{a}{b}").as_bytes()).unwrap();
        assert_eq!(got[1].id.as_deref(), Some("2"));
        let w = SseWriter::new(parse_last_event_id(" 41 ").unwrap());
        assert_eq!(w.next_id(), 42);
        assert_eq!(parse_last_event_id("x"), None);
    }
}

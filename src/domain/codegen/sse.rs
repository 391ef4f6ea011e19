//! Server-Sent Events, whatever they carry: an incremental parser for event streams (what
//! OpenAI-compatible `/chat/completions` endpoints return; [`super::chat_stream`] decodes their
//! chunks), and the encoder for the events we stream to our own clients.
//!
//! Invariants:
//! - the parser follows the HTML SSE rules (LF, CRLF or lone CR line endings, a single leading
//!   space stripped from values, comments, multi-line `data`, `id` persisting across events) and
//!   gives the same events however the bytes are split, even between `\r` and `\n` or inside a
//!   UTF-8 sequence;
//! - a line cut off by the end of the stream is never dispatched (a half JSON object must read
//!   as a truncated stream, not as a malformed one); complete `data:` lines not followed by the
//!   blank line are, since some servers close right after `data: [DONE]`;
//! - what the encoder carries cannot change the framing: every line terminator the parser accepts
//!   starts a new `data:` field and event names are made single-line, so a value never injects
//!   an `id:`, an `event:` or a second event.

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
    }

    #[test]
    fn event_ids_parse_back_for_resumption() {
        let a = encode_event_with_id(1, "done", "{}");
        let b = encode_event_with_id(2, "done", "{}");
        assert!(a.starts_with("id: 1\n") && b.starts_with("id: 2\n"));
        let mut p = SseParser::new();
        let got = p.feed(format!("{a}{b}").as_bytes()).unwrap();
        assert_eq!(got[0].id.as_deref(), Some("1"));
        assert_eq!(got[1].id.as_deref(), Some("2"));
    }
}

//! Decoding OpenAI-compatible chat completions: the streamed `chat.completion.chunk`s (read off
//! the SSE parser in [`super::sse`]) into content deltas, the finish reason and token usage; a
//! non-streamed completion body; and the error objects providers send mid-stream or as an HTTP
//! error body.
//!
//! Invariants:
//! - a [`ChatStream`] only reports success when the provider said it was finished (`[DONE]` or a
//!   `finish_reason`); everything else is [`ChatError::Truncated`], which says whether any
//!   content had arrived (retrying is only safe before);
//! - nothing after `[DONE]` counts, and an error object in the stream ends it as
//!   [`ChatError::Provider`], before or after content;
//! - decoding is lenient about what providers vary in (`input_tokens`/`output_tokens`, null or
//!   missing content, content parts, their own finish-reason names), and provider text quoted in
//!   an error is bounded.

use super::sse::{SseEvent, SseParser};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Token counts as providers report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Prompt tokens the provider served from its prompt cache (part of `prompt_tokens`):
    /// OpenAI's `prompt_tokens_details.cached_tokens`, Anthropic's `cache_read_input_tokens`.
    #[serde(default)]
    pub cached_tokens: u64,
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
        let cached = obj
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens"))
            .and_then(Value::as_u64)
            .or_else(|| n(&["cache_read_input_tokens", "cached_tokens"]))
            .unwrap_or(0);
        Some(Self {
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: total.unwrap_or(p + c),
            cached_tokens: cached.min(p),
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

    /// ` (<type or code>)` when the provider sent an identifier-like one (never free text).
    fn label(&self) -> String {
        let ident = |s: &&String| {
            (1..=40).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        };
        match self
            .kind
            .as_ref()
            .filter(ident)
            .or(self.code.as_ref().filter(ident))
        {
            Some(l) => format!(" ({l})"),
            None => String::new(),
        }
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

/// At most `max` bytes of `s` (cut at a char boundary), with an ellipsis when shortened.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    format!("{}…", &s[..s.floor_char_boundary(max)])
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

impl ChatError {
    /// What a user is told (the [`fmt::Display`] text, which quotes the provider, is for the
    /// log): our own words, the provider's error type or code at most.
    pub fn summary(&self) -> String {
        match self {
            ChatError::Provider(e) => {
                format!("the model provider reported an error{}", e.label())
            }
            ChatError::Malformed(_) => {
                "malformed model response (not an OpenAI-compatible answer)".into()
            }
            ChatError::Truncated { .. } => self.to_string(),
        }
    }
}

/// What a user is told about an HTTP error status from the model provider (the provider's own
/// message goes to the log only).
pub fn status_summary(status: u16, e: &ProviderError) -> String {
    let what = match status {
        401 | 403 => "the API key was rejected",
        402 => "the provider account has no credit",
        404 => "the model was not found",
        408 | 504 => "the provider timed out",
        413 => "the request was too large",
        429 => "the provider's rate limit was reached",
        400 | 422 if e.is_content_policy() => "the provider's content policy refused the request",
        500..=599 => "the provider had a server error",
        _ => "the provider refused the request",
    };
    format!("the model provider answered {status}{}: {what}", e.label())
}

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

    /// The usage the provider reported so far (a failed stream may still have sent it).
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

/// Tokens a text is estimated at when a provider reports none: one per four characters,
/// rounded up (the usual rule of thumb for English and code).
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// What one attempt of a model call costs the user's token budget, whatever its outcome
/// (success, failure, time-out or cancellation): the usage the provider reported when it sent
/// one, else the prompt's estimate plus the estimate of the completion that streamed.
///
/// An attempt the provider never accepted (not sent, unreachable, or answered with an error
/// status) costs nothing: nothing was generated. An attempt that was sent and then timed out or
/// was cancelled before any answer still costs its prompt: the provider may be processing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptCost {
    prompt_estimate: u64,
    completion_chars: u64,
    reported: Option<Usage>,
    accepted: bool,
}

impl AttemptCost {
    /// An attempt whose prompt is estimated at `prompt_estimate` tokens, not yet sent.
    pub fn new(prompt_estimate: u64) -> Self {
        Self {
            prompt_estimate,
            ..Self::default()
        }
    }

    /// The request went out (from here on it costs at least its prompt).
    pub fn sent(&mut self) {
        self.accepted = true;
    }

    /// The provider refused the request with an error status: nothing was generated.
    pub fn refused(&mut self) {
        self.accepted = false;
        self.completion_chars = 0;
        self.reported = None;
    }

    /// Content that reached the caller.
    pub fn streamed(&mut self, text: &str) {
        self.completion_chars += text.chars().count() as u64;
    }

    /// The provider's own count (preferred over the estimate).
    pub fn reported(&mut self, usage: Option<Usage>) {
        if usage.is_some() {
            self.reported = usage;
        }
    }

    /// The usage charged: the provider's, else the estimate (zero for a refused attempt).
    pub fn usage(&self) -> Usage {
        if !self.accepted {
            return Usage::default();
        }
        if let Some(u) = self.reported {
            return u;
        }
        let completion = self.completion_chars.div_ceil(4);
        Usage {
            prompt_tokens: self.prompt_estimate,
            completion_tokens: completion,
            total_tokens: self.prompt_estimate + completion,
            cached_tokens: 0,
        }
    }

    pub fn tokens(&self) -> u64 {
        self.usage().total_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    total_tokens: 13,
                    cached_tokens: 0,
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
    fn cached_prompt_tokens_are_counted_where_providers_report_them() {
        for (usage, cached) in [
            (
                r#"{"prompt_tokens":2000,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":1536}}"#,
                1536,
            ),
            (
                r#"{"input_tokens":2000,"output_tokens":5,"cache_read_input_tokens":1800}"#,
                1800,
            ),
            (r#"{"prompt_tokens":2000,"completion_tokens":5}"#, 0),
        ] {
            let v: Value = serde_json::from_str(usage).unwrap();
            let u = Usage::from_json(&v).unwrap();
            assert_eq!(u.cached_tokens, cached, "{usage}");
            assert_eq!(u.prompt_tokens, 2000);
        }
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
                    total_tokens: 7,
                    cached_tokens: 0,
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
    fn attempt_cost_charges_what_streamed_whatever_the_outcome() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("✓✓✓✓"), 1, "characters, not bytes");

        // Not sent (unreachable, bad request): free.
        let c = AttemptCost::new(100);
        assert_eq!(c.tokens(), 0);

        // Sent, then cancelled or timed out before any answer: the prompt.
        let mut c = AttemptCost::new(100);
        c.sent();
        assert_eq!(c.tokens(), 100);

        // A stream cut (or cancelled) mid-answer without usage: prompt + streamed estimate.
        let mut s = ChatStream::new();
        let mut c = AttemptCost::new(100);
        c.sent();
        let text = s.feed(&STREAM.as_bytes()[..STREAM.find("finish_reason\":\"stop").unwrap()]);
        c.streamed(&text.unwrap());
        c.reported(s.usage());
        assert_eq!(
            c.usage(),
            Usage {
                prompt_tokens: 100,
                completion_tokens: 2, // "Hello ✓": 7 characters
                total_tokens: 102,
                cached_tokens: 0,
            }
        );
        assert!(s.finish().is_err(), "the stream was cut");

        // The provider's count wins when it sent one, even on a failed stream.
        let mut c = AttemptCost::new(100);
        c.sent();
        c.streamed("Hello ✓");
        c.reported(None);
        c.reported(Some(Usage {
            prompt_tokens: 10,
            completion_tokens: 3,
            total_tokens: 13,
            cached_tokens: 0,
        }));
        c.reported(None);
        assert_eq!(c.tokens(), 13);

        // An error status: nothing generated, nothing charged.
        let mut c = AttemptCost::new(100);
        c.sent();
        c.refused();
        assert_eq!(c.tokens(), 0);
    }

    #[test]
    fn users_get_summaries_never_the_providers_text() {
        let e = ProviderError::from_body(
            r#"{"error":{"message":"Incorrect API key provided: sk-abc…xyz","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        );
        assert_eq!(
            status_summary(401, &e),
            "the model provider answered 401 (invalid_request_error): the API key was rejected"
        );
        let html = ProviderError::from_body("<html><body>Bad gateway at 10.0.0.7</body></html>");
        assert_eq!(
            status_summary(502, &html),
            "the model provider answered 502: the provider had a server error"
        );
        let policy = ProviderError::from_body(
            r#"{"error":{"message":"flagged","type":"invalid_request_error","code":"content_policy_violation"}}"#,
        );
        assert!(status_summary(400, &policy).ends_with("content policy refused the request"));
        // Free text in the type field is not echoed.
        let odd = ProviderError {
            message: "m".into(),
            kind: Some("see https://x.example/secret?k=1".into()),
            code: None,
        };
        assert_eq!(
            status_summary(418, &odd),
            "the model provider answered 418: the provider refused the request"
        );
        let mid = ChatError::Provider(ProviderError {
            message: "internal detail 42".into(),
            kind: Some("server_error".into()),
            code: None,
        });
        assert_eq!(
            mid.summary(),
            "the model provider reported an error (server_error)"
        );
        assert!(!mid.summary().contains("detail"));
        let bad = ChatError::Malformed("response is not JSON: <raw body>".into());
        assert!(
            bad.summary().starts_with("malformed model response") && !bad.summary().contains("raw")
        );
        let cut = ChatError::Truncated {
            received_content: true,
        };
        assert!(cut.summary().contains("cut off"));
    }
}

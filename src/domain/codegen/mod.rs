//! Code generation, host-tested: the AI pipeline's pure parts and the generation driver. No I/O,
//! clocks or randomness here: the `CodeGeneratorAgent` Durable Object implements the driver's
//! ports (model, sandbox, store, events) and the LLM client supplies bytes, `now` and random
//! values.
//!
//! How a generation flows through these modules:
//! - [`driver`] runs a generation over its ports (see its guarantee after an interruption),
//!   choosing work from [`run`]'s persisted state; routes reach the object through
//!   [`agent_call`];
//! - [`models`] picks the model for an [`models::Operation`] (built-in defaults, `MODEL_CONFIG`,
//!   then the user's saved overrides and the request's `config`) and [`routing`] turns it into an
//!   addressed OpenAI-compatible [`routing::ChatRequest`] (AI Gateway or a direct base URL),
//!   choosing the user's own key, which [`crypto`] unseals, over the platform's;
//! - [`prompts`] builds the messages; [`retry`] says whether a failed call is retried, after how
//!   long, or moved to the fallback model;
//! - [`sse`] parses the streamed response's events (and encodes our own SSE frames for
//!   clients), and [`chat_stream`] decodes them into content deltas, usage and provider errors;
//! - planning replies go to [`blueprint`], which extracts and validates the plan; each phase
//!   then runs [`phase`]'s state machine (with its bounded correction rounds);
//! - code-writing replies go to [`files_format`], which parses the stream incrementally and emits
//!   each file (or diff, or delete) the moment its block closes; [`paths`] rejects unsafe paths
//!   there and in every plan, and [`diff`] parses and applies the unified diffs;
//! - everything clients see is an [`events::AgentEvent`], the same JSON over SSE and WebSocket;
//!   what they send is an [`events::ClientCommand`]; [`fanout`] (SSE) and [`socket_fanout`]
//!   (WebSockets) bound what a client that does not keep up can make the object hold.

pub mod agent_call;
pub mod blueprint;
pub mod chat_stream;
pub mod context;
pub mod crypto;
pub mod diff;
pub mod driver;
#[cfg(test)]
mod driver_tests;
pub mod events;
pub mod fanout;
pub mod files_format;
pub mod models;
pub mod paths;
pub mod phase;
pub mod phase_plan;
pub mod prompts;
pub mod retry;
pub mod routing;
pub mod run;
pub mod socket_fanout;
pub mod sse;

#[cfg(test)]
mod tests {
    use super::chat_stream::{ChatStream, FinishReason};
    use super::files_format::{write_delete, write_diff, write_file, Event, Parser, UnifiedDiff};
    use serde_json::json;

    /// The real pipeline: model output split into arbitrary deltas, carried as an
    /// OpenAI-compatible SSE stream split into arbitrary network chunks, decoded, then parsed.
    #[test]
    fn streamed_deltas_become_files() {
        let mut output = String::from("Writing the app.\n");
        write_file(&mut output, "src/App.tsx", "export const ü = \"✓\";\n").unwrap();
        let diff = UnifiedDiff::compute("src/main.tsx", "a\nb\nc\n", "a\nB\nc\n");
        write_diff(&mut output, "src/main.tsx", &diff).unwrap();
        write_delete(&mut output, "src/old.ts").unwrap();

        // Deltas of 1..7 characters (never splitting a char: deltas are JSON strings).
        let chars: Vec<char> = output.chars().collect();
        let mut sse = String::new();
        let mut i = 0;
        let mut n = 0;
        while i < chars.len() {
            let len = 1 + (n * 5 + 3) % 7;
            let delta: String = chars[i..(i + len).min(chars.len())].iter().collect();
            let chunk = json!({"choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": null}]});
            sse.push_str(&format!("data: {chunk}\n\n"));
            i += len;
            n += 1;
        }
        sse.push_str(
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        );
        sse.push_str("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":99,\"total_tokens\":108}}\n\ndata: [DONE]\n\n");

        for net in [1usize, 13, 4096] {
            let mut stream = ChatStream::new();
            let mut parser = Parser::new();
            let mut events = Vec::new();
            for c in sse.as_bytes().chunks(net) {
                let text = stream.feed(c).unwrap();
                events.extend(parser.feed_str(&text));
            }
            let (rest, summary) = stream.finish().unwrap();
            events.extend(parser.feed_str(&rest));
            events.extend(parser.finish().unwrap());
            assert_eq!(summary.finish_reason, Some(FinishReason::Stop));
            assert_eq!(summary.usage.unwrap().total_tokens, 108);
            let done: Vec<&Event> = events
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        Event::FileComplete { .. }
                            | Event::DiffComplete { .. }
                            | Event::Delete { .. }
                    )
                })
                .collect();
            assert_eq!(done.len(), 3, "network chunks of {net}");
            assert_eq!(
                done[0],
                &Event::FileComplete {
                    path: "src/App.tsx".into(),
                    content: "export const ü = \"✓\";\n".into()
                }
            );
            let Event::DiffComplete { diff, .. } = done[1] else {
                panic!("{:?}", done[1])
            };
            assert_eq!(diff.apply("a\nb\nc\n").unwrap(), "a\nB\nc\n");
        }
    }
}

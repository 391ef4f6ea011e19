//! Log bodies: `GET …/logs?since=` → `{"lines":[…],"nextSeq"}`; the Server-Sent Events of
//! `…/logs/stream` carry one [`LogLine`] per `data:`.
//!
//! Sequence numbers start at 1 and never repeat within a workspace, so a client that keeps
//! `nextSeq` resumes without gaps or duplicates while the lines are still held.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Lines the agent writes itself: command started, dev server ready or exited.
    System,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    Exec,
    Server,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub ts: u64,
    pub stream: LogStream,
    pub source: LogSource,
    pub line: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsReply {
    pub lines: Vec<LogLine>,
    pub next_seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shape() {
        let r = LogsReply {
            lines: vec![LogLine {
                seq: 1,
                ts: 2,
                stream: LogStream::System,
                source: LogSource::Exec,
                line: "$ npm install".into(),
            }],
            next_seq: 2,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({ "lines": [{ "seq": 1, "ts": 2, "stream": "system", "source": "exec", "line": "$ npm install" }], "nextSeq": 2 })
        );
        assert_eq!(serde_json::from_value::<LogsReply>(v).unwrap(), r);
    }
}

//! File bodies: the batch write (`POST …/files`), a read (`GET …/files?path=`), the tree
//! listing and a build's output files.
//!
//! Invariants: paths travel as strings and are checked with [`crate::path::RelPath`] by whoever
//! acts on them (so a refusal names the offending field); content is UTF-8 text unless
//! `encoding` says `base64`; a write leaves `encoding` out when it is the default `utf8`, as
//! the Worker always sent it.

use serde::{Deserialize, Serialize};

/// How a file's `content` is encoded in JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Utf8,
    Base64,
}

impl Encoding {
    pub fn is_utf8(&self) -> bool {
        *self == Encoding::Utf8
    }
}

/// One file of a batch write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInput {
    pub path: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Encoding::is_utf8")]
    pub encoding: Encoding,
}

impl FileInput {
    /// A text file.
    pub fn text(path: impl Into<String>, content: impl Into<String>) -> Self {
        FileInput {
            path: path.into(),
            content: content.into(),
            encoding: Encoding::Utf8,
        }
    }
}

/// `POST …/files` `{"files":[…]}`: validated as a whole before anything is written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteFiles {
    pub files: Vec<FileInput>,
}

/// `POST …/files` → `{"written":[paths]}`, the normal form of each path, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub written: Vec<String>,
}

/// `GET …/files?path=` → one file (`base64` when it is not UTF-8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileContent {
    pub path: String,
    pub content: String,
    pub encoding: Encoding,
    pub size: u64,
}

/// One regular file of a tree listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    pub path: String,
    pub size: u64,
}

/// `GET …/tree` → `{"files":[…],"truncated"}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub files: Vec<TreeEntry>,
    pub truncated: bool,
}

/// One file of a build's output directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Relative to the workspace (`dist/index.html`).
    pub path: String,
    /// Base64 of the file's bytes.
    pub content: String,
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_text_write_is_exactly_what_the_worker_sent() {
        let w = WriteFiles {
            files: vec![FileInput::text("src/App.tsx", "x")],
        };
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            r#"{"files":[{"path":"src/App.tsx","content":"x"}]}"#
        );
        let bin = FileInput {
            encoding: Encoding::Base64,
            ..FileInput::text("a.bin", "AAE=")
        };
        assert_eq!(
            serde_json::to_value(&bin).unwrap(),
            json!({ "path": "a.bin", "content": "AAE=", "encoding": "base64" })
        );
    }

    #[test]
    fn reads_what_clients_send() {
        let w: WriteFiles = serde_json::from_value(json!({
            "files": [
                { "path": "a", "content": "1" },
                { "path": "b", "content": "AAE=", "encoding": "base64" },
                { "path": "c", "content": "", "encoding": "utf8", "extra": true }
            ]
        }))
        .unwrap();
        assert_eq!(
            w.files.iter().map(|f| f.encoding).collect::<Vec<_>>(),
            [Encoding::Utf8, Encoding::Base64, Encoding::Utf8]
        );
        assert!(serde_json::from_value::<WriteFiles>(json!({ "files": "nope" })).is_err());
        assert!(serde_json::from_value::<FileInput>(
            json!({ "path": "a", "content": "", "encoding": "utf16" })
        )
        .is_err());
    }

    #[test]
    fn replies_round_trip() {
        let c = FileContent {
            path: "src/App.tsx".into(),
            content: "export default 1\n".into(),
            encoding: Encoding::Utf8,
            size: 17,
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            json!({ "path": "src/App.tsx", "content": "export default 1\n", "encoding": "utf8", "size": 17 })
        );
        assert_eq!(serde_json::from_value::<FileContent>(v).unwrap(), c);
        let t = Tree {
            files: vec![TreeEntry {
                path: "a".into(),
                size: 1,
            }],
            truncated: false,
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(
            v,
            json!({ "files": [{ "path": "a", "size": 1 }], "truncated": false })
        );
        assert_eq!(serde_json::from_value::<Tree>(v).unwrap(), t);
        let w = Written {
            written: vec!["a".into()],
        };
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            json!({ "written": ["a"] })
        );
    }
}

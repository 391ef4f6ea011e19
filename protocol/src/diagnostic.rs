//! Structured errors: what byte-sandbox parses out of tool output (`tsc`, Vite, esbuild, builds,
//! uncaught runtime errors) and what the code generator feeds back to the model.
//!
//! Wire shape: `{"file","line","column","message","kind"}` with `file`, `line` and `column`
//! `null` when unknown (they are never left out when serialized, and may be left out when
//! read). Lines and columns are 1-based; `file` is relative to the app's root. `kind` is a
//! lowercase string; a kind this crate does not know (from a newer agent) is kept as
//! [`DiagnosticKind::Other`], never an error, so one new kind cannot hide every diagnostic.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which tool reported a [`Diagnostic`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiagnosticKind {
    /// `npm install` failed (reported by the Worker, not parsed by the agent).
    Install,
    Typescript,
    Vite,
    Esbuild,
    Runtime,
    Build,
    /// Any other name, kept verbatim.
    Other(String),
}

impl DiagnosticKind {
    const KNOWN: [DiagnosticKind; 6] = [
        DiagnosticKind::Install,
        DiagnosticKind::Typescript,
        DiagnosticKind::Vite,
        DiagnosticKind::Esbuild,
        DiagnosticKind::Runtime,
        DiagnosticKind::Build,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            DiagnosticKind::Install => "install",
            DiagnosticKind::Typescript => "typescript",
            DiagnosticKind::Vite => "vite",
            DiagnosticKind::Esbuild => "esbuild",
            DiagnosticKind::Runtime => "runtime",
            DiagnosticKind::Build => "build",
            DiagnosticKind::Other(s) => s,
        }
    }

    /// The kind named `name`: a known variant when one matches exactly, else `Other`.
    pub fn parse(name: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|k| k.as_str() == name)
            .unwrap_or_else(|| DiagnosticKind::Other(name.to_string()))
    }
}

impl fmt::Display for DiagnosticKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind reads as its name, so code written when `kind` was a `String` keeps working.
impl Deref for DiagnosticKind {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for DiagnosticKind {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for DiagnosticKind {
    fn from(name: &str) -> Self {
        Self::parse(name)
    }
}

impl From<String> for DiagnosticKind {
    fn from(name: String) -> Self {
        Self::parse(&name)
    }
}

impl PartialEq<str> for DiagnosticKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for DiagnosticKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for DiagnosticKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DiagnosticKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::parse(&name))
    }
}

/// One structured error.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Relative to the app's root; `null` when the tool named no file or one outside the app.
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub line: Option<u32>,
    #[serde(default)]
    pub column: Option<u32>,
    pub message: String,
    pub kind: DiagnosticKind,
}

impl Diagnostic {
    /// Identity for de-duplication: the same error reported by two tools (or twice by one)
    /// has the same place and first message line.
    pub fn key(&self) -> (Option<String>, Option<u32>, Option<u32>, String) {
        let first = self.message.lines().next().unwrap_or("").trim().to_string();
        (self.file.clone(), self.line, self.column, first)
    }
}

/// `GET …/errors` → `{"errors":[…]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorsReply {
    #[serde(default)]
    pub errors: Vec<Diagnostic>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_shape_is_what_the_agent_always_sent() {
        let d = Diagnostic {
            file: Some("src/App.tsx".into()),
            line: Some(3),
            column: Some(7),
            message: "TS2322 Type 'string' is not assignable to type 'number'.".into(),
            kind: DiagnosticKind::Typescript,
        };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({ "file": "src/App.tsx", "line": 3, "column": 7, "message": "TS2322 Type 'string' is not assignable to type 'number'.", "kind": "typescript" })
        );
        let none = Diagnostic {
            file: None,
            line: None,
            column: None,
            message: "m".into(),
            kind: DiagnosticKind::Build,
        };
        assert_eq!(
            serde_json::to_value(&none).unwrap(),
            json!({ "file": null, "line": null, "column": null, "message": "m", "kind": "build" })
        );
    }

    #[test]
    fn kinds_round_trip_and_unknown_ones_survive() {
        for name in [
            "install",
            "typescript",
            "vite",
            "esbuild",
            "runtime",
            "build",
        ] {
            let k = DiagnosticKind::parse(name);
            assert!(!matches!(k, DiagnosticKind::Other(_)), "{name}");
            assert_eq!(serde_json::to_value(&k).unwrap(), json!(name));
            assert_eq!(
                serde_json::from_value::<DiagnosticKind>(json!(name)).unwrap(),
                k
            );
        }
        let r: ErrorsReply = serde_json::from_value(json!({
            "errors": [{ "message": "x", "kind": "lint" }, { "file": "a.ts", "line": 1, "column": null, "message": "y", "kind": "vite" }]
        }))
        .unwrap();
        assert_eq!(r.errors[0].kind, DiagnosticKind::Other("lint".into()));
        assert_eq!(r.errors[0].file, None, "missing fields read as null");
        assert_eq!(
            serde_json::to_value(&r.errors[0].kind).unwrap(),
            json!("lint")
        );
        assert_eq!(r.errors[1].kind, DiagnosticKind::Vite);
        assert_eq!(
            serde_json::from_value::<ErrorsReply>(json!({})).unwrap(),
            ErrorsReply::default()
        );
    }

    #[test]
    fn a_kind_reads_like_the_string_it_used_to_be() {
        // The code generator builds `kind: "install".into()` and formats `{}` / `&d.kind`.
        let k: DiagnosticKind = "install".into();
        assert_eq!(k, DiagnosticKind::Install);
        assert_eq!(k.to_string(), "install");
        let s: &str = &k;
        assert_eq!(s, "install");
        assert!(k == "install");
        assert_eq!(
            DiagnosticKind::from(String::from("other")).as_str(),
            "other"
        );
    }

    #[test]
    fn key_ignores_kind_and_later_lines() {
        let a = Diagnostic {
            file: Some("a.ts".into()),
            line: Some(1),
            column: None,
            message: " boom \n  at x".into(),
            kind: DiagnosticKind::Vite,
        };
        let b = Diagnostic {
            message: "boom".into(),
            kind: DiagnosticKind::Esbuild,
            ..a.clone()
        };
        assert_eq!(a.key(), b.key());
    }
}

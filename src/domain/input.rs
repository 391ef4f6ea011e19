//! Parsing untrusted JSON bodies and query strings into typed values, collecting every offending
//! field at once so a client sees all its mistakes in one 400 response.
//!
//! Invariant: a [`JsonObject`] reader rejects unknown fields, so a typo never silently does nothing.

use super::error::{ApiError, ApiResult};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Parses a body as a JSON object, or says precisely why not.
pub fn parse_object(body: &[u8]) -> ApiResult<JsonObject> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::validation(format!(
            "malformed JSON at line {}, column {}",
            e.line(),
            e.column()
        ))
    })?;
    match value {
        Value::Object(map) => Ok(JsonObject {
            map,
            errors: BTreeMap::new(),
        }),
        _ => Err(ApiError::validation("request body must be a JSON object")),
    }
}

/// A JSON object being taken apart field by field; errors accumulate until [`JsonObject::finish`].
#[derive(Debug)]
pub struct JsonObject {
    map: Map<String, Value>,
    errors: BTreeMap<String, String>,
}

/// What a field held: absent, explicitly `null`, or a value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }
}

impl JsonObject {
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .entry(field.to_string())
            .or_insert_with(|| message.into());
    }

    /// Takes a field as raw JSON: absent, null or a value.
    pub fn take_raw(&mut self, field: &str) -> Patch<Value> {
        match self.map.remove(field) {
            None => Patch::Absent,
            Some(Value::Null) => Patch::Null,
            Some(v) => Patch::Value(v),
        }
    }

    /// A string field, trimmed, with a maximum length in characters.
    pub fn string(&mut self, field: &str, max_chars: usize) -> Patch<String> {
        match self.take_raw(field) {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(Value::String(s)) => {
                let s = s.trim().to_string();
                if s.chars().count() > max_chars {
                    self.error(field, format!("must be at most {max_chars} characters"));
                    Patch::Absent
                } else if s.contains('\0') {
                    self.error(field, "must not contain NUL characters");
                    Patch::Absent
                } else {
                    Patch::Value(s)
                }
            }
            Patch::Value(_) => {
                self.error(field, "must be a string");
                Patch::Absent
            }
        }
    }

    /// A required, non-empty string.
    pub fn required_string(&mut self, field: &str, max_chars: usize) -> Option<String> {
        match self.string(field, max_chars) {
            Patch::Value(s) if !s.is_empty() => Some(s),
            Patch::Value(_) => {
                self.error(field, "must not be empty");
                None
            }
            Patch::Null | Patch::Absent => {
                self.error(field, "is required");
                None
            }
        }
    }

    /// A required email address (at most 254 characters, normalised by [`Email::parse`]).
    pub fn required_email(&mut self, field: &str) -> Option<super::user::Email> {
        let raw = self.required_string(field, 254)?;
        match super::user::Email::parse(&raw) {
            Ok(e) => Some(e),
            Err(m) => {
                self.error(field, m);
                None
            }
        }
    }

    /// An optional secret (a password given to confirm an action), taken verbatim: spaces are
    /// legitimate characters, so nothing is trimmed. Absent or null is `None`.
    pub fn optional_secret(&mut self, field: &str, max_bytes: usize) -> Option<String> {
        match self.take_raw(field) {
            Patch::Value(Value::String(p)) if p.len() <= max_bytes => Some(p),
            Patch::Absent | Patch::Null => None,
            _ => {
                self.error(
                    field,
                    format!("must be a string of at most {max_bytes} bytes"),
                );
                None
            }
        }
    }

    /// A string that must be one of `allowed`.
    pub fn enumeration<T: Copy>(&mut self, field: &str, allowed: &[(&str, T)]) -> Patch<T> {
        match self.string(field, 64) {
            Patch::Value(s) => match allowed.iter().find(|(name, _)| *name == s) {
                Some((_, v)) => Patch::Value(*v),
                None => {
                    let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
                    self.error(field, format!("must be one of: {}", names.join(", ")));
                    Patch::Absent
                }
            },
            other => other.map_absent(),
        }
    }

    pub fn boolean(&mut self, field: &str) -> Patch<bool> {
        match self.take_raw(field) {
            Patch::Value(Value::Bool(b)) => Patch::Value(b),
            Patch::Value(_) => {
                self.error(field, "must be a boolean");
                Patch::Absent
            }
            Patch::Null => Patch::Null,
            Patch::Absent => Patch::Absent,
        }
    }

    /// A finite number within `[lo, hi]`; `null` or absent is `None`.
    pub fn number(&mut self, field: &str, lo: f64, hi: f64) -> Option<f64> {
        match self.take_raw(field) {
            Patch::Value(Value::Number(n)) => match n.as_f64() {
                Some(v) if v.is_finite() && v >= lo && v <= hi => Some(v),
                _ => {
                    self.error(field, format!("must be between {lo} and {hi}"));
                    None
                }
            },
            Patch::Value(_) => {
                self.error(field, "must be a number");
                None
            }
            Patch::Null | Patch::Absent => None,
        }
    }

    /// A whole number within `[lo, hi]`; `null` or absent is `None`.
    pub fn integer(&mut self, field: &str, lo: u64, hi: u64) -> Option<u64> {
        match self.take_raw(field) {
            Patch::Value(Value::Number(n)) => match n.as_u64() {
                Some(v) if (lo..=hi).contains(&v) => Some(v),
                _ => {
                    self.error(field, format!("must be an integer from {lo} to {hi}"));
                    None
                }
            },
            Patch::Value(_) => {
                self.error(field, "must be an integer");
                None
            }
            Patch::Null | Patch::Absent => None,
        }
    }

    /// An array of short strings (tags and the like).
    pub fn string_list(
        &mut self,
        field: &str,
        max_items: usize,
        max_chars: usize,
    ) -> Patch<Vec<String>> {
        match self.take_raw(field) {
            Patch::Value(Value::Array(items)) => {
                if items.len() > max_items {
                    self.error(field, format!("must have at most {max_items} items"));
                    return Patch::Absent;
                }
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s)
                            if !s.trim().is_empty() && s.trim().chars().count() <= max_chars =>
                        {
                            out.push(s.trim().to_string())
                        }
                        _ => {
                            self.error(field, format!("items must be non-empty strings of at most {max_chars} characters"));
                            return Patch::Absent;
                        }
                    }
                }
                Patch::Value(out)
            }
            Patch::Value(_) => {
                self.error(field, "must be an array of strings");
                Patch::Absent
            }
            Patch::Null => Patch::Null,
            Patch::Absent => Patch::Absent,
        }
    }

    /// A JSON object field kept as JSON, bounded in serialized size.
    pub fn object(&mut self, field: &str, max_bytes: usize) -> Patch<Map<String, Value>> {
        match self.take_raw(field) {
            Patch::Value(Value::Object(m)) => {
                let size = serde_json::to_string(&m)
                    .map(|s| s.len())
                    .unwrap_or(usize::MAX);
                if size > max_bytes {
                    self.error(
                        field,
                        format!("must be at most {max_bytes} bytes when serialized"),
                    );
                    Patch::Absent
                } else {
                    Patch::Value(m)
                }
            }
            Patch::Value(_) => {
                self.error(field, "must be an object");
                Patch::Absent
            }
            Patch::Null => Patch::Null,
            Patch::Absent => Patch::Absent,
        }
    }

    /// Ends parsing: any field not taken is unknown; any error fails the whole body.
    pub fn finish(mut self) -> ApiResult<()> {
        let unknown: Vec<String> = self.map.keys().cloned().collect();
        for k in unknown {
            self.error(&k, "unknown field");
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::with_fields(self.errors))
        }
    }
}

impl<T> Patch<T> {
    fn map_absent<U>(self) -> Patch<U> {
        match self {
            Patch::Null => Patch::Null,
            _ => Patch::Absent,
        }
    }
}

/// Query-string pairs, decoded.
pub struct Query {
    pairs: Vec<(String, String)>,
    errors: BTreeMap<String, String>,
}

impl Query {
    pub fn parse(query: &str) -> Self {
        let pairs = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self {
            pairs,
            errors: BTreeMap::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter (`status=a&status=b`), in order.
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .entry(field.to_string())
            .or_insert_with(|| message.into());
    }

    /// A boolean parameter (`true` / `false`), `false` when absent or empty.
    pub fn boolean(&mut self, key: &str) -> bool {
        match self.get(key) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                self.error(key, "must be true or false");
                false
            }
        }
    }

    /// An integer parameter within `[min, max]`, or `default` when absent.
    pub fn int(&mut self, key: &str, default: u32, min: u32, max: u32) -> u32 {
        match self.get(key) {
            None => default,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    self.error(key, format!("must be an integer from {min} to {max}"));
                    default
                }
            },
        }
    }

    pub fn enumeration<T: Copy>(&mut self, key: &str, allowed: &[(&str, T)], default: T) -> T {
        match self.get(key) {
            None | Some("") => default,
            Some(v) => match allowed.iter().find(|(n, _)| *n == v) {
                Some((_, t)) => *t,
                None => {
                    let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
                    self.error(key, format!("must be one of: {}", names.join(", ")));
                    default
                }
            },
        }
    }

    pub fn string(&mut self, key: &str, max_chars: usize) -> Option<String> {
        let v = self.get(key)?.trim().to_string();
        if v.chars().count() > max_chars {
            self.error(key, format!("must be at most {max_chars} characters"));
            return None;
        }
        (!v.is_empty()).then_some(v)
    }

    pub fn finish(self) -> ApiResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::with_fields(self.errors))
        }
    }
}

/// What a query component keeps unescaped: RFC 3986's unreserved characters.
const QUERY_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Encodes a string for use in a URL query component.
pub fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_secrets() {
        let mut o = parse_object(br#"{"email":" A@B.io ","password":" p w ","n":1}"#).unwrap();
        assert_eq!(o.required_email("email").unwrap().as_str(), "a@b.io");
        assert_eq!(
            o.optional_secret("password", 1024).as_deref(),
            Some(" p w ")
        );
        assert_eq!(o.optional_secret("missing", 1024), None);
        assert_eq!(o.optional_secret("n", 1024), None);
        assert!(o.finish().unwrap_err().fields.contains_key("n"));
        let mut o = parse_object(br#"{"email":"nope","password":"xx"}"#).unwrap();
        assert!(o.required_email("email").is_none());
        assert!(o.optional_secret("password", 1).is_none());
        let e = o.finish().unwrap_err();
        assert!(
            e.fields.contains_key("email") && e.fields.contains_key("password"),
            "{e:?}"
        );
    }

    #[test]
    fn collects_all_field_errors_and_unknown_fields() {
        let mut o = parse_object(br#"{"title": 5, "description": "x", "bogus": 1}"#).unwrap();
        assert_eq!(o.required_string("title", 200), None);
        assert_eq!(o.string("description", 1000), Patch::Value("x".into()));
        let e = o.finish().unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.fields["title"], "must be a string");
        assert_eq!(e.fields["bogus"], "unknown field");
    }

    #[test]
    fn length_is_counted_in_characters() {
        let s = "é".repeat(200);
        let mut o = parse_object(format!(r#"{{"t":"{s}"}}"#).as_bytes()).unwrap();
        assert_eq!(o.string("t", 200), Patch::Value(s));
        let mut o = parse_object(format!(r#"{{"t":"{}"}}"#, "a".repeat(201)).as_bytes()).unwrap();
        assert!(o.string("t", 200).is_absent());
        assert!(o.finish().is_err());
    }

    #[test]
    fn malformed_and_non_object_bodies() {
        assert_eq!(
            parse_object(b"{").unwrap_err().code,
            super::super::error::ErrorCode::E004
        );
        assert!(parse_object(b"[1]").unwrap_err().message.contains("object"));
        assert_eq!(
            parse_object(&vec![b' '; MAX_BODY_BYTES + 1])
                .unwrap_err()
                .status,
            413
        );
    }

    #[test]
    fn enum_rejects_unknown_values() {
        let mut o = parse_object(br#"{"visibility":"secret"}"#).unwrap();
        assert!(o
            .enumeration("visibility", &[("public", 1), ("private", 2)])
            .is_absent());
        assert!(o.finish().unwrap_err().fields["visibility"].contains("public, private"));
    }

    #[test]
    fn numbers_and_integers_are_bounded() {
        let mut o =
            parse_object(br#"{"t": 0.5, "u": 1.5, "n": "x", "m": 4000, "k": 2.5}"#).unwrap();
        assert_eq!(o.number("t", 0.0, 1.0), Some(0.5));
        assert_eq!(o.number("u", 0.0, 1.0), None);
        assert_eq!(o.number("n", 0.0, 1.0), None);
        assert_eq!(o.integer("m", 1, 8000), Some(4000));
        assert_eq!(o.integer("k", 1, 8000), None);
        assert_eq!(o.number("absent", 0.0, 1.0), None);
        let e = o.finish().unwrap_err();
        assert_eq!(e.fields["u"], "must be between 0 and 1");
        assert_eq!(e.fields["n"], "must be a number");
        assert_eq!(e.fields["k"], "must be an integer from 1 to 8000");
        assert!(!e.fields.contains_key("absent"));
    }

    #[test]
    fn query_parsing_and_bounds() {
        let mut q = Query::parse("page=0&limit=101&search=a%20b+c&sort=name");
        assert_eq!(q.int("page", 1, 1, u32::MAX), 1);
        assert_eq!(q.int("limit", 20, 1, 100), 20);
        assert_eq!(q.string("search", 200).as_deref(), Some("a b c"));
        let e = q.finish().unwrap_err();
        assert!(e.fields.contains_key("page") && e.fields.contains_key("limit"));
        assert!(Query::parse("page=abc").int("page", 1, 1, 10) == 1);
        let mut q = Query::parse("s=a&t=1&s=b%2Cc&yes=true&no=false&bad=1");
        assert_eq!(q.get_all("s"), ["a", "b,c"]);
        assert!(q.get_all("none").is_empty());
        assert!(q.boolean("yes") && !q.boolean("no") && !q.boolean("absent"));
        assert!(!q.boolean("bad"));
        assert_eq!(
            q.finish().unwrap_err().fields["bad"],
            "must be true or false"
        );
    }

    #[test]
    fn percent_round_trip_and_bad_escapes() {
        let q = Query::parse(&format!(
            "k={}&plus=a+b&bad=%zz%4&pct=100%",
            percent_encode("a b/ü?&=")
        ));
        let get = |k: &str| {
            q.pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("k"), Some("a b/ü?&="));
        assert_eq!(get("plus"), Some("a b"));
        assert_eq!(get("bad"), Some("%zz%4"));
        assert_eq!(get("pct"), Some("100%"));
        assert_eq!(percent_encode("a-b_c.d~e f"), "a-b_c.d~e%20f");
    }
}

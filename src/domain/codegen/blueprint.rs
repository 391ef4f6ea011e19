//! The blueprint: the model's plan for an app (title, template, file plan, phases), pulled out of
//! its reply tolerantly and then validated strictly. How each planned phase then moves through
//! its lifecycle is [`super::phase`].
//!
//! Invariants:
//! - a [`Blueprint`] value is valid: its template is in the catalog, every path passed
//!   [`validate_path`] (and is stored normalised), paths and phase names are unique, there are
//!   1–[`MAX_PHASES`] phases in the spec's kind order and 1–[`MAX_FILES`] files, every phase file is
//!   in the file plan and every planned file is in some phase;
//! - a rejected blueprint lists every problem found (up to [`MAX_PROBLEMS`]), each naming the
//!   field, so one retry can fix them all.

use super::paths::validate_path;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;
use strum::IntoStaticStr;

// The phase state machine lived here before it got its own module; re-exported so the
// `blueprint::` paths callers already use keep working.
pub use super::phase::{parse_max_corrections, PhaseInput, PhaseStatus, DEFAULT_MAX_CORRECTIONS};

pub const MAX_PHASES: usize = 50;
pub const MAX_FILES: usize = 200;
/// Problems reported per rejection (the rest are summarised).
pub const MAX_PROBLEMS: usize = 20;
const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 2000;
const MAX_PURPOSE: usize = 500;
const MAX_PHASE_NAME: usize = 100;
const MAX_FRAMEWORKS: usize = 20;

/// The spec's phase kinds, in the order phases must follow.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    IntoStaticStr,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum PhaseKind {
    Foundation,
    Core,
    Styling,
    Integration,
    Optimization,
}

impl PhaseKind {
    pub const ALL: [PhaseKind; 5] = [
        PhaseKind::Foundation,
        PhaseKind::Core,
        PhaseKind::Styling,
        PhaseKind::Integration,
        PhaseKind::Optimization,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Hand-written, not strum: the model's text is trimmed and case-folded first.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        PhaseKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFile {
    pub path: String,
    pub purpose: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhasePlan {
    pub name: String,
    pub kind: PhaseKind,
    pub description: String,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blueprint {
    pub title: String,
    pub description: String,
    pub template: String,
    pub frameworks: Vec<String>,
    pub files: Vec<PlannedFile>,
    pub phases: Vec<PhasePlan>,
}

/// Why a blueprint was refused: every problem, each a sentence naming its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlueprintError {
    pub problems: Vec<String>,
}

impl BlueprintError {
    fn one(p: impl Into<String>) -> Self {
        Self {
            problems: vec![p.into()],
        }
    }

    /// The message to send back to the model for a retry.
    pub fn feedback(&self) -> String {
        let mut s = String::from("Your blueprint was rejected. Fix every problem below and reply with the complete corrected blueprint as one JSON object, nothing else:\n");
        for p in &self.problems {
            s.push_str("- ");
            s.push_str(p);
            s.push('\n');
        }
        s
    }
}

impl fmt::Display for BlueprintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid blueprint: {}", self.problems.join("; "))
    }
}

impl std::error::Error for BlueprintError {}

/// The end (exclusive) of the JSON value starting with the `{` at `start`, by bracket matching
/// that skips strings.
fn balanced_end(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &c) in b.iter().enumerate().skip(start) {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_object(s: &str) -> bool {
    serde_json::from_str::<Value>(s).is_ok_and(|v| v.is_object())
}

/// Finds the JSON object in a model's reply: inside a ```json fence if there is one, else the
/// first balanced `{…}` that parses, skipping chatter before and after. An object nested inside
/// an unterminated one (a reply cut off mid-JSON) is never mistaken for the answer.
pub fn extract_json(text: &str) -> Option<&str> {
    // Fenced first: the model's own statement of where the JSON is.
    let mut search = 0;
    while let Some(rel) = text[search..].find("```") {
        let after = search + rel + 3;
        let body_start = text[after..]
            .find('\n')
            .map_or(text.len(), |n| after + n + 1);
        let lang = text[after..body_start].trim();
        let close = text[body_start..].find("```").map(|n| body_start + n);
        let candidate = text[body_start..close.unwrap_or(text.len())].trim();
        if (lang.is_empty() || lang.eq_ignore_ascii_case("json")) && is_object(candidate) {
            return Some(candidate);
        }
        match close {
            Some(c) => search = c + 3,
            None => break,
        }
    }
    let b = text.as_bytes();
    let mut i = 0;
    let mut tries = 0;
    let mut inside_unterminated = false;
    while let Some(rel) = text[i..].find('{') {
        let start = i + rel;
        tries += 1;
        if tries > 64 {
            break;
        }
        let Some(end) = balanced_end(b, start) else {
            // Either a stray brace in prose or the start of a cut-off object; look further, but
            // distrust objects that sit in JSON context (after `[`, `,`, `:` or `{`).
            inside_unterminated = true;
            i = start + 1;
            continue;
        };
        let candidate = &text[start..end];
        let nested =
            inside_unterminated && text[..start].trim_end().ends_with(['[', ',', ':', '{']);
        if !nested && is_object(candidate) {
            return Some(candidate);
        }
        // Not the answer: skip it whole rather than look inside it.
        i = end;
    }
    None
}

/// Collects problems while reading the untrusted value.
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, p: impl Into<String>) {
        self.0.push(p.into());
    }
}

fn first<'a>(obj: &'a serde_json::Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| obj.get(*n))
        .filter(|v| !v.is_null())
}

/// A required (or optional) string field, trimmed and bounded.
fn text_field(
    p: &mut Problems,
    obj: &serde_json::Map<String, Value>,
    names: &[&str],
    label: &str,
    max: usize,
    required: bool,
) -> String {
    match first(obj, names) {
        None if required => {
            p.add(format!("{label}: is required"));
            String::new()
        }
        None => String::new(),
        Some(Value::String(s)) => {
            let s = s.trim();
            if required && s.is_empty() {
                p.add(format!("{label}: must not be empty"));
            } else if s.chars().count() > max {
                p.add(format!("{label}: must be at most {max} characters"));
            }
            s.to_string()
        }
        Some(_) => {
            p.add(format!("{label}: must be a string"));
            String::new()
        }
    }
}

fn array<'a>(
    p: &mut Problems,
    obj: &'a serde_json::Map<String, Value>,
    names: &[&str],
    label: &str,
) -> Option<&'a Vec<Value>> {
    match first(obj, names) {
        None => {
            p.add(format!("{label}: is required"));
            None
        }
        Some(Value::Array(a)) => Some(a),
        Some(_) => {
            p.add(format!("{label}: must be an array"));
            None
        }
    }
}

fn path_value(p: &mut Problems, v: &Value, label: &str) -> Option<String> {
    match v {
        Value::String(s) => match validate_path(s.trim()) {
            Ok(path) => Some(path),
            Err(why) => {
                p.add(format!("{label} {:?}: {why}", cut(s, 80)));
                None
            }
        },
        _ => {
            p.add(format!("{label}: must be a path string"));
            None
        }
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Extracts and validates a blueprint from a model's reply. `templates` is the catalog the model
/// was offered.
pub fn parse_blueprint(text: &str, templates: &[&str]) -> Result<Blueprint, BlueprintError> {
    let json = extract_json(text).ok_or_else(|| {
        // Say what went wrong with the most likely candidate, so the model can fix its JSON.
        let why = text
            .find('{')
            .map(|i| match serde_json::from_str::<Value>(&text[i..]) {
                Err(e) if e.is_eof() => "the JSON object is incomplete (cut off)".to_string(),
                Err(e) => format!("the JSON is invalid: {e}"),
                Ok(_) => "no JSON object found".to_string(),
            })
            .unwrap_or_else(|| "the reply contains no JSON object".to_string());
        BlueprintError::one(why)
    })?;
    let v: Value = serde_json::from_str(json).map_err(|e| BlueprintError::one(e.to_string()))?;
    validate(&v, templates)
}

/// Validates an already-parsed blueprint value.
pub fn validate(v: &Value, templates: &[&str]) -> Result<Blueprint, BlueprintError> {
    let Some(obj) = v.as_object() else {
        return Err(BlueprintError::one("the blueprint must be a JSON object"));
    };
    let mut p = Problems(Vec::new());

    let title = text_field(&mut p, obj, &["title"], "title", MAX_TITLE, true);
    let description = text_field(
        &mut p,
        obj,
        &["description"],
        "description",
        MAX_DESCRIPTION,
        true,
    );
    let template = text_field(
        &mut p,
        obj,
        &["template", "templateName", "template_name"],
        "template",
        200,
        true,
    );
    if !template.is_empty() && !templates.contains(&template.as_str()) {
        p.add(format!(
            "template: {:?} is not in the catalog; choose exactly one of: {}",
            cut(&template, 80),
            templates.join(", ")
        ));
    }

    let mut frameworks = Vec::new();
    match first(obj, &["frameworks"]) {
        None => {}
        Some(Value::Array(items)) => {
            if items.len() > MAX_FRAMEWORKS {
                p.add(format!("frameworks: at most {MAX_FRAMEWORKS} entries"));
            }
            for (i, f) in items.iter().enumerate().take(MAX_FRAMEWORKS) {
                match f.as_str().map(str::trim) {
                    Some(s) if !s.is_empty() && s.chars().count() <= 60 => {
                        frameworks.push(s.to_string())
                    }
                    _ => p.add(format!(
                        "frameworks[{i}]: must be a non-empty string of at most 60 characters"
                    )),
                }
            }
        }
        Some(_) => p.add("frameworks: must be an array of strings"),
    }

    // The file plan.
    let mut files = Vec::new();
    let mut planned = BTreeSet::new();
    if let Some(items) = array(&mut p, obj, &["files", "filePlan", "file_plan"], "files") {
        if items.is_empty() {
            p.add("files: the file plan must list at least one file");
        }
        if items.len() > MAX_FILES {
            p.add(format!(
                "files: {} files planned; at most {MAX_FILES} are allowed",
                items.len()
            ));
        }
        for (i, item) in items.iter().enumerate().take(MAX_FILES) {
            let label = format!("files[{i}]");
            let Some(f) = item.as_object() else {
                p.add(format!(
                    "{label}: must be an object {{\"path\", \"purpose\"}}"
                ));
                continue;
            };
            let purpose = text_field(
                &mut p,
                f,
                &["purpose", "description"],
                &format!("{label}.purpose"),
                MAX_PURPOSE,
                false,
            );
            let Some(raw) = first(f, &["path"]) else {
                p.add(format!("{label}.path: is required"));
                continue;
            };
            if let Some(path) = path_value(&mut p, raw, &format!("{label}.path")) {
                if !planned.insert(path.clone()) {
                    p.add(format!("{label}.path: {path} is listed twice"));
                    continue;
                }
                files.push(PlannedFile { path, purpose });
            }
        }
    }

    // The phases.
    let mut phases = Vec::new();
    let mut in_some_phase = BTreeSet::new();
    if let Some(items) = array(&mut p, obj, &["phases"], "phases") {
        if items.is_empty() {
            p.add("phases: at least one phase is required");
        }
        if items.len() > MAX_PHASES {
            p.add(format!(
                "phases: {} phases planned; at most {MAX_PHASES} are allowed",
                items.len()
            ));
        }
        let mut names = BTreeSet::new();
        let mut last_kind: Option<(PhaseKind, usize)> = None;
        for (i, item) in items.iter().enumerate().take(MAX_PHASES) {
            let label = format!("phases[{i}]");
            let Some(ph) = item.as_object() else {
                p.add(format!("{label}: must be an object"));
                continue;
            };
            let name = text_field(
                &mut p,
                ph,
                &["name"],
                &format!("{label}.name"),
                MAX_PHASE_NAME,
                true,
            );
            if !name.is_empty() && !names.insert(name.to_lowercase()) {
                p.add(format!(
                    "{label}.name: {name:?} is used by another phase; names must be unique"
                ));
            }
            let description = text_field(
                &mut p,
                ph,
                &["description"],
                &format!("{label}.description"),
                MAX_DESCRIPTION,
                false,
            );
            let kind = match first(ph, &["kind", "type"]) {
                Some(Value::String(s)) => match PhaseKind::parse(s) {
                    Some(k) => Some(k),
                    None => {
                        p.add(format!(
                            "{label}.kind: {:?} is not a phase kind; use one of: foundation, core, styling, integration, optimization",
                            cut(s, 40)
                        ));
                        None
                    }
                },
                Some(_) => {
                    p.add(format!("{label}.kind: must be a string"));
                    None
                }
                None => {
                    p.add(format!("{label}.kind: is required"));
                    None
                }
            };
            if let Some(k) = kind {
                if let Some((prev, j)) = last_kind {
                    if k < prev {
                        p.add(format!(
                            "{label}.kind: a {} phase cannot follow the {} phase phases[{j}]; order phases foundation, core, styling, integration, optimization",
                            k.as_str(),
                            prev.as_str()
                        ));
                    }
                }
                last_kind = Some((k, i));
            }
            let mut phase_files = Vec::new();
            match first(ph, &["files"]) {
                Some(Value::Array(fs)) => {
                    if fs.is_empty() {
                        p.add(format!(
                            "{label}.files: a phase must write at least one file"
                        ));
                    }
                    let mut seen = BTreeSet::new();
                    for (j, f) in fs.iter().enumerate().take(MAX_FILES) {
                        let flabel = format!("{label}.files[{j}]");
                        let Some(path) = path_value(&mut p, f, &flabel) else {
                            continue;
                        };
                        if !seen.insert(path.clone()) {
                            p.add(format!("{flabel}: {path} is listed twice in this phase"));
                            continue;
                        }
                        if !planned.is_empty() && !planned.contains(&path) {
                            p.add(format!("{flabel}: {path} is not in the file plan; add it to files or remove it here"));
                        }
                        in_some_phase.insert(path.clone());
                        phase_files.push(path);
                    }
                }
                Some(_) => p.add(format!("{label}.files: must be an array of paths")),
                None => p.add(format!("{label}.files: is required")),
            }
            if let Some(kind) = kind {
                phases.push(PhasePlan {
                    name,
                    kind,
                    description,
                    files: phase_files,
                });
            }
        }
    }
    // Orphans are only worth reporting once everything else is well-formed: a phase file that
    // failed validation would otherwise show up twice.
    let clean_so_far = p.0.is_empty();
    for f in &files {
        if clean_so_far && !in_some_phase.contains(&f.path) {
            p.add(format!(
                "files: {} is planned but no phase writes it; add it to a phase's files",
                f.path
            ));
        }
    }

    if !p.0.is_empty() {
        let mut problems = p.0;
        if problems.len() > MAX_PROBLEMS {
            let more = problems.len() - MAX_PROBLEMS;
            problems.truncate(MAX_PROBLEMS);
            problems.push(format!("…and {more} more problems"));
        }
        return Err(BlueprintError { problems });
    }
    Ok(Blueprint {
        title,
        description,
        template,
        frameworks,
        files,
        phases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CATALOG: &[&str] = &["react-vite", "react-vite-worker"];

    fn good() -> Value {
        json!({
            "title": "Todo",
            "description": "A todo list with dark mode",
            "template": "react-vite",
            "frameworks": ["react", "tailwind"],
            "files": [
                {"path": "package.json", "purpose": "deps"},
                {"path": "./src/App.tsx", "purpose": "root"},
                {"path": "src/index.css", "purpose": "styles"}
            ],
            "phases": [
                {"name": "Setup", "kind": "foundation", "description": "d", "files": ["package.json"]},
                {"name": "UI", "kind": "core", "description": "d", "files": ["src/App.tsx"]},
                {"name": "Theme", "kind": "styling", "description": "d", "files": ["src/index.css", "src/App.tsx"]}
            ]
        })
    }

    fn problems(v: Value) -> Vec<String> {
        validate(&v, CATALOG).unwrap_err().problems
    }

    fn has(ps: &[String], needle: &str) -> bool {
        ps.iter().any(|p| p.contains(needle))
    }

    #[test]
    fn a_good_blueprint_parses_with_normalised_paths() {
        let b = validate(&good(), CATALOG).unwrap();
        assert_eq!(b.template, "react-vite");
        assert_eq!(b.files[1].path, "src/App.tsx");
        assert_eq!(b.phases.len(), 3);
        assert_eq!(b.phases[2].kind, PhaseKind::Styling);
        assert_eq!(b.phases[2].files, ["src/index.css", "src/App.tsx"]);
        assert_eq!(b.frameworks, ["react", "tailwind"]);
        // Serializes and reads back as the same value.
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(validate(&v, CATALOG).unwrap(), b);
    }

    #[test]
    fn extraction_tolerates_fences_and_chatter() {
        let body = good().to_string();
        for text in [
            body.clone(),
            format!("Here is the plan:\n```json\n{body}\n```\nLet me know!"),
            format!("```\n{body}\n```"),
            format!("Sure {{not json}} here you go: {body} -- done {{"),
            format!("```ts\nconst x = {{a: 1}};\n```\nand the blueprint:\n```json\n{body}\n```"),
        ] {
            let b = parse_blueprint(&text, CATALOG).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(b.title, "Todo");
        }
        // Braces inside strings do not confuse the matcher.
        let tricky = r#"noise {"a": "}{", "b": {"c": "\"}"}} tail"#;
        assert_eq!(
            extract_json(tricky),
            Some(r#"{"a": "}{", "b": {"c": "\"}"}}"#)
        );
        assert_eq!(extract_json("no json here"), None);
        // A reply cut off mid-object: its complete inner objects are fragments, not the answer.
        let body = good().to_string();
        assert_eq!(extract_json(&body[..150]), None);
        // A stray brace in prose does not hide the JSON after it.
        assert_eq!(
            extract_json("Note { see below. {\"a\": 1}"),
            Some("{\"a\": 1}")
        );
        // An invalid object is skipped whole, not mined for inner objects.
        assert_eq!(extract_json(r#"{"x": {"a": 1},}"#), None);
        assert_eq!(extract_json("[1, 2]"), None);
    }

    #[test]
    fn unparseable_replies_say_why() {
        let e = parse_blueprint("I cannot help with that.", CATALOG).unwrap_err();
        assert!(e.problems[0].contains("no JSON object"));
        let cut = &good().to_string()[..100];
        let e = parse_blueprint(cut, CATALOG).unwrap_err();
        assert!(e.problems[0].contains("incomplete"), "{e}");
        let e = parse_blueprint(r#"{"title": "x",}"#, CATALOG).unwrap_err();
        assert!(e.problems[0].contains("invalid"), "{e}");
        assert!(validate(&json!([1]), CATALOG).is_err());
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut v = good();
        v["title"] = json!("");
        v["template"] = json!("vue");
        v["frameworks"] = json!([""]);
        v["files"][0]["path"] = json!("../secrets");
        v["files"][2]["path"] = json!("src/App.tsx");
        v["phases"][1]["name"] = json!("setup");
        v["phases"][1]["kind"] = json!("backend");
        v["phases"][2]["files"] = json!(["src/missing.ts", "node_modules/x.js"]);
        let ps = problems(v);
        for needle in [
            "title: must not be empty",
            "template: \"vue\" is not in the catalog; choose exactly one of: react-vite, react-vite-worker",
            "frameworks[0]",
            "files[0].path \"../secrets\"",
            "files[2].path: src/App.tsx is listed twice",
            "phases[1].name: \"setup\" is used by another phase",
            "phases[1].kind: \"backend\" is not a phase kind",
            "phases[2].files[0]: src/missing.ts is not in the file plan",
            "phases[2].files[1] \"node_modules/x.js\"",
        ] {
            assert!(has(&ps, needle), "missing {needle:?} in {ps:#?}");
        }
        let e = BlueprintError { problems: ps };
        let fb = e.feedback();
        assert!(fb.starts_with("Your blueprint was rejected"));
        assert!(fb.contains("\n- template:"));
    }

    #[test]
    fn phase_order_and_counts() {
        let mut v = good();
        v["phases"][0]["kind"] = json!("styling");
        let ps = problems(v);
        assert!(
            has(
                &ps,
                "phases[1].kind: a core phase cannot follow the styling phase phases[0]"
            ),
            "{ps:?}"
        );

        let mut v = good();
        v["phases"] = json!([]);
        assert!(has(&problems(v), "at least one phase"));

        let mut v = good();
        v["files"] = json!([]);
        assert!(has(&problems(v), "at least one file"));

        let mut v = good();
        let many: Vec<Value> = (0..51)
            .map(|i| json!({"name": format!("p{i}"), "kind": "core", "files": ["src/App.tsx"]}))
            .collect();
        v["phases"] = json!(many);
        assert!(has(&problems(v), "51 phases planned; at most 50"));

        let mut v = good();
        let many: Vec<Value> = (0..201)
            .map(|i| json!({"path": format!("f{i}.ts")}))
            .collect();
        v["files"] = json!(many);
        assert!(has(&problems(v), "201 files planned; at most 200"));

        // Kinds may repeat and skip, as long as they never go backwards.
        let mut v = good();
        v["phases"][1]["kind"] = json!("foundation");
        v["phases"][2]["kind"] = json!("Optimization");
        assert!(validate(&v, CATALOG).is_ok());
    }

    #[test]
    fn structural_problems() {
        let mut v = good();
        v["files"][1] = json!("src/App.tsx");
        v["phases"][0]["files"] = json!([]);
        v["phases"][1]["files"] = json!("src/App.tsx");
        v["phases"][2].as_object_mut().unwrap().remove("kind");
        let ps = problems(v);
        assert!(has(&ps, "files[1]: must be an object"));
        assert!(has(
            &ps,
            "phases[0].files: a phase must write at least one file"
        ));
        assert!(has(&ps, "phases[1].files: must be an array"));
        assert!(has(&ps, "phases[2].kind: is required"));
        let ps = problems(json!({}));
        for f in ["title", "description", "template", "files", "phases"] {
            assert!(has(&ps, &format!("{f}: is required")), "{f}: {ps:?}");
        }
    }

    #[test]
    fn planned_files_must_be_written_by_some_phase() {
        let mut v = good();
        v["files"]
            .as_array_mut()
            .unwrap()
            .push(json!({"path": "src/orphan.ts", "purpose": "x"}));
        let ps = problems(v);
        assert_eq!(ps.len(), 1);
        assert!(ps[0].contains("src/orphan.ts is planned but no phase writes it"));
    }

    #[test]
    fn problem_lists_are_bounded() {
        let mut v = good();
        let bad: Vec<Value> = (0..40).map(|_| json!({"path": "/abs"})).collect();
        v["files"] = json!(bad);
        let ps = problems(v);
        assert_eq!(ps.len(), MAX_PROBLEMS + 1);
        assert!(ps.last().unwrap().contains("more problems"));
    }

    #[test]
    fn aliases_models_use() {
        let mut v = good();
        let obj = v.as_object_mut().unwrap();
        let files = obj.remove("files").unwrap();
        obj.insert("filePlan".into(), files);
        let t = obj.remove("template").unwrap();
        obj.insert("templateName".into(), t);
        assert!(validate(&v, CATALOG).is_ok());
    }
}

//! The plan of one phase, made right before the phase is implemented: which files it writes or
//! changes, what each is for, and the steps, given what the app already has. The model answers
//! with JSON ([`crate::domain::codegen::prompts::phase_plan_messages`]); this module reads and
//! checks it.
//!
//! Invariants: every path is confined like the files the model writes (never absolute, no `..`,
//! no `node_modules/`); an answer that is not a usable plan is an `Err` naming why, so the agent
//! can fall back to the blueprint's own plan of the phase instead of acting on half a plan.

use super::blueprint::{extract_json, PlannedFile};
use super::paths::validate_path;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most files one phase plan may name.
pub const MAX_PHASE_FILES: usize = 60;
/// Most steps in one phase plan.
pub const MAX_STEPS: usize = 30;
const MAX_TEXT: usize = 600;

/// A phase's detailed plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseDetail {
    pub files: Vec<PlannedFile>,
    pub steps: Vec<String>,
}

fn text(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim();
    (!s.is_empty()).then(|| s.chars().take(MAX_TEXT).collect())
}

/// Reads a phase plan from the model's reply.
pub fn parse_phase_detail(reply: &str) -> Result<PhaseDetail, String> {
    let json = extract_json(reply).ok_or("the reply has no JSON object")?;
    let v: Value = serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
    let files_v = v
        .get("files")
        .and_then(Value::as_array)
        .ok_or("`files` must be an array")?;
    if files_v.is_empty() {
        return Err("`files` must name at least one file".into());
    }
    if files_v.len() > MAX_PHASE_FILES {
        return Err(format!("at most {MAX_PHASE_FILES} files per phase"));
    }
    let mut files: Vec<PlannedFile> = Vec::new();
    for (i, f) in files_v.iter().enumerate() {
        let raw = f
            .get("path")
            .and_then(Value::as_str)
            .ok_or(format!("files[{i}].path is required"))?;
        let path = validate_path(raw).map_err(|e| format!("files[{i}].path: {e}"))?;
        if files.iter().any(|p| p.path == path) {
            continue;
        }
        let purpose = f.get("purpose").and_then(text).unwrap_or_default();
        files.push(PlannedFile { path, purpose });
    }
    let steps = match v.get("steps") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter_map(text).take(MAX_STEPS).collect(),
        Some(_) => return Err("`steps` must be an array of strings".into()),
    };
    Ok(PhaseDetail { files, steps })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_in_chatter_and_fences_parses_with_clean_paths() {
        let d = parse_phase_detail(
            "Here is the plan:\n```json\n{\"files\":[{\"path\":\"./src/App.tsx\",\"purpose\":\"root\"},{\"path\":\"src/App.tsx\"},{\"path\":\"src/lib/a.ts\"}],\"steps\":[\"Write it\", \"\", 3]}\n```",
        )
        .unwrap();
        let paths: Vec<&str> = d.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["src/App.tsx", "src/lib/a.ts"]);
        assert_eq!(d.files[0].purpose, "root");
        assert_eq!(d.steps, ["Write it"]);
        assert!(parse_phase_detail(r#"{"files":[{"path":"a.ts"}]}"#)
            .unwrap()
            .steps
            .is_empty());
    }

    #[test]
    fn unusable_plans_say_why() {
        for (reply, why) in [
            ("no json here", "no JSON"),
            (r#"{"files": []}"#, "at least one"),
            (r#"{"files": "src/App.tsx"}"#, "array"),
            (r#"{"files": [{"purpose": "x"}]}"#, "path is required"),
            (r#"{"files": [{"path": "../etc/passwd"}]}"#, "files[0].path"),
            (r#"{"files": [{"path": "/abs.ts"}]}"#, "files[0].path"),
            (
                r#"{"files": [{"path": "a.ts"}], "steps": "do it"}"#,
                "steps",
            ),
        ] {
            let e = parse_phase_detail(reply).unwrap_err();
            assert!(e.contains(why), "{reply}: {e}");
        }
        let many: Vec<String> = (0..=MAX_PHASE_FILES)
            .map(|i| format!(r#"{{"path":"src/f{i}.ts"}}"#))
            .collect();
        let e = parse_phase_detail(&format!(r#"{{"files":[{}]}}"#, many.join(","))).unwrap_err();
        assert!(e.contains("at most"), "{e}");
    }
}

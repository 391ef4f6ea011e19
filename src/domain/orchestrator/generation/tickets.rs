//! The third and fourth steps of ticket generation: the prompt that asks the model for tickets,
//! the strict parser of its answer, and the development plan made from an accepted answer
//! (logical order, numbers, initial statuses, derived `file_conflict` dependencies).
//!
//! Invariants:
//! - an answer is accepted only whole: every ticket field has its type, vocabulary and bounds,
//!   every dependency names another ticket of the answer, and the `blocks` dependencies have no
//!   cycle ([`super::super::graph::validate`]); otherwise [`parse_answer`] says exactly what is
//!   wrong, in words that go back to the model;
//! - a plan's order is a topological order of the `blocks` dependencies (ties keep the model's
//!   order), numbers and `orderIndex` follow it, so a ticket always comes after its blockers;
//! - `file_conflict` dependencies are derived here, never taken from the model.

use super::super::graph::{self, Edge};
use super::super::model::{DependencyType, Priority, TicketStatus, TicketType};
use super::analysis::{AnalysisResult, Source};
use crate::domain::codegen::models::ChatMessage;
use crate::domain::codegen::paths::validate_path;
use crate::domain::ids::TicketId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// Tickets one answer may hold.
pub const MAX_TICKETS: usize = 40;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 4_000;
pub const MAX_CRITERIA: usize = 20;
pub const MAX_CRITERION_CHARS: usize = 500;
pub const MAX_FILES: usize = 50;
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG_CHARS: usize = 40;
pub const MAX_CATEGORY_CHARS: usize = 50;
pub const MAX_KEY_CHARS: usize = 40;
pub const MAX_HOURS: f64 = 1_000.0;
pub const MAX_SUMMARY_CHARS: usize = 1_000;
/// `blockedBy` and `related` entries one answer may hold in all.
pub const MAX_DEPENDENCIES: usize = 200;

/// The system message of every ticket-generation call.
pub const SYSTEM: &str = "You are a senior engineering lead. You break an application's planned and remaining work into development tickets with dependencies, for a team to review and work through. You answer with one JSON object and nothing else.";

const FORMAT: &str = r#"Answer with exactly one JSON object (no prose, no code fence), of this shape:
{
  "summary": "one paragraph: what the app is and what the tickets cover",
  "tickets": [
    {
      "key": "T1",
      "title": "Set up routing",
      "description": "What to do and why, in a few sentences.",
      "type": "setup",
      "priority": "high",
      "category": "frontend",
      "tags": ["routing"],
      "estimatedHours": 3,
      "acceptanceCriteria": ["Visiting /about shows the About page"],
      "affectedFiles": ["src/App.tsx"],
      "blockedBy": [],
      "related": []
    }
  ]
}
Rules:
- key: a short unique name per ticket (T1, T2, …), used only to refer to tickets inside this answer.
- type: one of feature, enhancement, bug, refactor, test, documentation, setup.
- priority: one of critical, high, medium, low.
- estimatedHours: a whole number of hours (0 to 1000).
- affectedFiles: relative paths of the files the ticket creates or changes.
- blockedBy: keys of the tickets that must be completed before this one can start. Never list a ticket itself, never make a cycle (if A is blocked by B, B must not be blocked by A, directly or through others).
- related: keys of loosely related tickets (no ordering).
- Order tickets so that foundations come first. Between 3 and 40 tickets."#;

/// The messages of the first ticket-generation call.
pub fn messages(
    source: &Source,
    analysis: &AnalysisResult,
    context: &str,
    guidance: Option<&str>,
) -> Vec<ChatMessage> {
    let mut p = format!("Project: {}\n", source.title);
    if let Some(d) = source
        .description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        p.push_str(&format!("Description: {d}\n"));
    }
    p.push_str(&format!("Source: {}\n\n", source.kind));
    p.push_str("Analysis of the app (read from its files):\n");
    p.push_str(&serde_json::to_string_pretty(analysis).unwrap_or_default());
    p.push_str("\n\n");
    p.push_str(context);
    p.push('\n');
    if let Some(g) = guidance.filter(|g| !g.trim().is_empty()) {
        if !source.previous_tickets.is_empty() {
            p.push_str("\nThe previous tickets, which your answer replaces:\n");
            for t in &source.previous_tickets {
                p.push_str(&format!("- {t}\n"));
            }
        }
        p.push_str(&format!(
            "\nThe stakeholder reviewed the previous tickets and asks for this change (follow it):\n{}\n",
            g.trim()
        ));
    }
    p.push_str("\nBreak the work on this app into development tickets: its features, what is missing or should be improved, tests and documentation. Assign priorities, estimate effort and define dependencies.\n\n");
    p.push_str(FORMAT);
    vec![ChatMessage::system(SYSTEM), ChatMessage::user(p)]
}

/// What goes back to the model after an answer that could not be used.
pub fn feedback(problem: &str) -> String {
    format!("Your answer could not be used: {problem}\nAnswer again with the complete JSON object only, with this fixed.")
}

/// One ticket as the model proposed it (validated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proposed {
    pub key: String,
    pub title: String,
    pub description: String,
    pub ticket_type: TicketType,
    pub priority: Priority,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub estimated_hours: Option<u32>,
    pub acceptance_criteria: Vec<String>,
    pub affected_files: Vec<String>,
}

/// An accepted answer: tickets in the model's order, dependencies by index into them.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub summary: Option<String>,
    pub tickets: Vec<Proposed>,
    pub edges: Vec<Edge<usize>>,
}

/// Strips one surrounding code fence (```json … ```), which models add despite being asked not
/// to; anything else around the object is refused by the JSON parser.
fn unfenced(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let Some(body_start) = rest.find('\n') else {
        return t;
    };
    let body = &rest[body_start + 1..];
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

struct Fields<'a> {
    at: String,
    obj: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn err(&self, field: &str, what: impl std::fmt::Display) -> String {
        format!("{}.{field} {what}", self.at)
    }

    fn text(&self, field: &str, max: usize, required: bool) -> Result<Option<String>, String> {
        match self.obj.get(field) {
            None | Some(Value::Null) if !required => Ok(None),
            None | Some(Value::Null) => Err(self.err(field, "is missing")),
            Some(Value::String(s)) => {
                let s = s.trim();
                if s.is_empty() {
                    if required {
                        Err(self.err(field, "must not be empty"))
                    } else {
                        Ok(None)
                    }
                } else if s.chars().count() > max {
                    Err(self.err(field, format!("is longer than {max} characters")))
                } else {
                    Ok(Some(s.to_string()))
                }
            }
            Some(v) => Err(self.err(field, format!("must be a string, not {v}"))),
        }
    }

    fn list(&self, field: &str, max: usize) -> Result<Vec<&'a str>, String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                if items.len() > max {
                    return Err(self.err(field, format!("has more than {max} entries")));
                }
                items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .ok_or_else(|| self.err(field, format!("must hold strings, not {v}")))
                    })
                    .collect()
            }
            Some(v) => Err(self.err(field, format!("must be an array of strings, not {v}"))),
        }
    }

    fn texts(&self, field: &str, max: usize, max_chars: usize) -> Result<Vec<String>, String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.list(field, max)? {
            let s = s.trim();
            if s.is_empty() {
                continue;
            }
            if s.chars().count() > max_chars {
                return Err(self.err(
                    field,
                    format!("has an entry longer than {max_chars} characters"),
                ));
            }
            if !out.iter().any(|x| x == s) {
                out.push(s.to_string());
            }
        }
        Ok(out)
    }

    fn vocabulary<T: FromStr>(&self, field: &str, all: &[&str]) -> Result<T, String> {
        let s = self
            .text(field, 40, true)?
            .unwrap_or_default()
            .to_ascii_lowercase();
        T::from_str(&s)
            .map_err(|_| self.err(field, format!("\"{s}\" is not one of {}", all.join(", "))))
    }
}

fn names<T: Into<&'static str> + Copy>(all: Vec<T>) -> Vec<&'static str> {
    all.into_iter().map(Into::into).collect()
}

fn ticket(i: usize, v: &Value) -> Result<(Proposed, Vec<String>, Vec<String>), String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("tickets[{i}] must be an object, not {v}"))?;
    let mut f = Fields {
        at: format!("tickets[{i}]"),
        obj,
    };
    let key = f.text("key", MAX_KEY_CHARS, true)?.unwrap_or_default();
    f.at = format!("tickets[{i}] (\"{key}\")");
    let title = f.text("title", MAX_TITLE_CHARS, true)?.unwrap_or_default();
    let description = f
        .text("description", MAX_DESCRIPTION_CHARS, true)?
        .unwrap_or_default();
    let ticket_type = f.vocabulary::<TicketType>("type", &names(TicketType::all()))?;
    let priority = f.vocabulary::<Priority>("priority", &names(Priority::all()))?;
    let category = f.text("category", MAX_CATEGORY_CHARS, false)?;
    let tags = f.texts("tags", MAX_TAGS, MAX_TAG_CHARS)?;
    let estimated_hours = match obj.get("estimatedHours") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            let h = n.as_f64().unwrap_or(-1.0);
            if !(0.0..=MAX_HOURS).contains(&h) {
                return Err(f.err("estimatedHours", format!("must be from 0 to {MAX_HOURS}")));
            }
            Some(h.ceil() as u32)
        }
        Some(v) => return Err(f.err("estimatedHours", format!("must be a number, not {v}"))),
    };
    let acceptance_criteria = f.texts("acceptanceCriteria", MAX_CRITERIA, MAX_CRITERION_CHARS)?;
    let mut affected_files = Vec::new();
    for raw in f.list("affectedFiles", MAX_FILES)? {
        let p = validate_path(raw.trim())
            .map_err(|e| f.err("affectedFiles", format!("has \"{raw}\": {e}")))?;
        if !affected_files.contains(&p) {
            affected_files.push(p);
        }
    }
    let blocked_by = f.list("blockedBy", MAX_TICKETS)?;
    let related = f.list("related", MAX_TICKETS)?;
    let own =
        |l: Vec<&str>| -> Vec<String> { l.into_iter().map(|s| s.trim().to_string()).collect() };
    Ok((
        Proposed {
            key,
            title,
            description,
            ticket_type,
            priority,
            category,
            tags,
            estimated_hours,
            acceptance_criteria,
            affected_files,
        },
        own(blocked_by),
        own(related),
    ))
}

/// Parses and checks the model's answer; `Err` is the exact problem, for the model.
pub fn parse_answer(text: &str) -> Result<Answer, String> {
    let body = unfenced(text);
    let v: Value = serde_json::from_str(body)
        .map_err(|e| format!("the answer is not one valid JSON object ({e})"))?;
    let obj = v
        .as_object()
        .ok_or("the answer must be a JSON object with a \"tickets\" array")?;
    let summary = match obj.get("summary") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) if s.trim().chars().count() <= MAX_SUMMARY_CHARS => {
            Some(s.trim().to_string())
        }
        Some(Value::String(_)) => {
            return Err(format!(
                "summary is longer than {MAX_SUMMARY_CHARS} characters"
            ))
        }
        Some(v) => return Err(format!("summary must be a string, not {v}")),
    };
    let items = match obj.get("tickets") {
        Some(Value::Array(a)) => a,
        Some(v) => return Err(format!("tickets must be an array, not {v}")),
        None => return Err("the answer has no \"tickets\" array".into()),
    };
    if items.is_empty() {
        return Err("tickets is empty: propose at least one ticket".into());
    }
    if items.len() > MAX_TICKETS {
        return Err(format!(
            "tickets has {} entries; at most {MAX_TICKETS} are accepted",
            items.len()
        ));
    }
    let mut tickets = Vec::new();
    let mut named: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    let mut keys = BTreeSet::new();
    for (i, v) in items.iter().enumerate() {
        let (t, blocked_by, related) = ticket(i, v)?;
        if !keys.insert(t.key.clone()) {
            return Err(format!(
                "tickets[{i}].key \"{}\" is used by another ticket: keys must be unique",
                t.key
            ));
        }
        named.push((t.key.clone(), blocked_by, related));
        tickets.push(t);
    }
    let nodes: Vec<String> = tickets.iter().map(|t| t.key.clone()).collect();
    let mut edges = Vec::new();
    for (key, blocked_by, related) in &named {
        for b in blocked_by {
            edges.push(Edge::new(key.clone(), b.clone(), DependencyType::Blocks));
        }
        for r in related {
            edges.push(Edge::new(key.clone(), r.clone(), DependencyType::Related));
        }
    }
    if edges.len() > MAX_DEPENDENCIES {
        return Err(format!(
            "the tickets list {} dependencies (blockedBy and related); at most {MAX_DEPENDENCIES} are accepted: keep the direct ones",
            edges.len()
        ));
    }
    graph::validate(&nodes, &edges).map_err(|p| p.to_string())?;
    let index: BTreeMap<&String, usize> = nodes.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let edges = edges
        .iter()
        .map(|e| Edge::new(index[&e.from], index[&e.to], e.kind))
        .collect();
    Ok(Answer {
        summary,
        tickets,
        edges,
    })
}

/// A ticket of the plan, ready to be stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedTicket {
    pub id: TicketId,
    /// 1, 2, … in plan order.
    pub number: u32,
    /// 0, 1, … in plan order.
    pub order_index: u32,
    /// `ready` when nothing blocks it, else `pending`.
    pub status: TicketStatus,
    #[serde(flatten)]
    pub ticket: Proposed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedDependency {
    pub ticket_id: TicketId,
    pub depends_on_ticket_id: TicketId,
    #[serde(rename = "type")]
    pub kind: DependencyType,
}

/// What a generation writes: the analysis, the tickets and their dependencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub analysis: AnalysisResult,
    pub tickets: Vec<PlannedTicket>,
    pub dependencies: Vec<PlannedDependency>,
}

/// Orders an accepted answer (a topological order of its `blocks` edges, ties in the model's
/// order), derives its `file_conflict` dependencies, and gives each ticket its id (from
/// `new_id`), number and initial status. The analysis takes the model's summary if it gave one.
pub fn plan(
    mut analysis: AnalysisResult,
    answer: Answer,
    mut new_id: impl FnMut() -> TicketId,
) -> Plan {
    if let Some(s) = answer.summary {
        analysis.summary = s;
    }
    let n = answer.tickets.len();
    let blockers: Vec<BTreeSet<usize>> = (0..n)
        .map(|i| {
            answer
                .edges
                .iter()
                .filter(|e| e.from == i && e.kind == DependencyType::Blocks)
                .map(|e| e.to)
                .collect()
        })
        .collect();
    // Kahn's algorithm, always taking the first ready ticket in the model's order. The answer
    // was validated acyclic; should it not be, what remains keeps the model's order.
    let mut placed = vec![false; n];
    let mut order: Vec<usize> = Vec::with_capacity(n);
    while order.len() < n {
        let next = (0..n)
            .find(|&i| !placed[i] && blockers[i].iter().all(|&b| placed[b]))
            .or_else(|| (0..n).find(|&i| !placed[i]))
            .unwrap();
        placed[next] = true;
        order.push(next);
    }
    let ids: Vec<TicketId> = (0..n).map(|_| new_id()).collect();
    let mut dependencies: Vec<PlannedDependency> = answer
        .edges
        .iter()
        .map(|e| PlannedDependency {
            ticket_id: ids[e.from].clone(),
            depends_on_ticket_id: ids[e.to].clone(),
            kind: e.kind,
        })
        .collect();
    let by_order: Vec<(usize, Vec<String>)> = order
        .iter()
        .map(|&i| (i, answer.tickets[i].affected_files.clone()))
        .collect();
    for e in graph::file_conflicts(&by_order, &answer.edges) {
        dependencies.push(PlannedDependency {
            ticket_id: ids[e.from].clone(),
            depends_on_ticket_id: ids[e.to].clone(),
            kind: e.kind,
        });
    }
    let mut tickets: Vec<Option<Proposed>> = answer.tickets.into_iter().map(Some).collect();
    let tickets = order
        .iter()
        .enumerate()
        .map(|(pos, &i)| PlannedTicket {
            id: ids[i].clone(),
            number: pos as u32 + 1,
            order_index: pos as u32,
            status: if blockers[i].is_empty() {
                TicketStatus::Ready
            } else {
                TicketStatus::Pending
            },
            ticket: tickets[i].take().unwrap(),
        })
        .collect();
    Plan {
        analysis,
        tickets,
        dependencies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn good_answer() -> Value {
        json!({
            "summary": "A todo app; the tickets finish its editing and add tests.",
            "tickets": [
                {"key": "T1", "title": "Add the todo API", "description": "Serve todos.", "type": "feature",
                 "priority": "high", "category": "backend", "tags": ["api"], "estimatedHours": 4,
                 "acceptanceCriteria": ["GET /api/todos lists todos"], "affectedFiles": ["server/index.ts"],
                 "blockedBy": ["T0"], "related": []},
                {"key": "T0", "title": "Set up the server", "description": "Hono server.", "type": "setup",
                 "priority": "critical", "estimatedHours": 2.5, "affectedFiles": ["server/index.ts", "package.json"]},
                {"key": "T2", "title": "Edit todos", "description": "Inline editing.", "type": "enhancement",
                 "priority": "medium", "affectedFiles": ["src/components/TodoList.tsx"], "blockedBy": ["T1"]},
                {"key": "T3", "title": "Test the list", "description": "Vitest.", "type": "test",
                 "priority": "low", "affectedFiles": ["./src/components/TodoList.tsx"], "related": ["T1"]}
            ]
        })
    }

    #[test]
    fn a_good_answer_is_parsed() {
        let a = parse_answer(&good_answer().to_string()).unwrap();
        assert_eq!(a.tickets.len(), 4);
        assert_eq!(a.tickets[1].estimated_hours, Some(3), "hours round up");
        assert_eq!(
            a.tickets[3].affected_files,
            vec!["src/components/TodoList.tsx"]
        );
        assert_eq!(
            a.edges,
            vec![
                Edge::new(0, 1, DependencyType::Blocks),
                Edge::new(2, 0, DependencyType::Blocks),
                Edge::new(3, 0, DependencyType::Related),
            ]
        );
        // A fenced answer is accepted; prose around it is not.
        let fenced = format!("```json\n{}\n```", good_answer());
        assert_eq!(parse_answer(&fenced).unwrap(), a);
        let prose = format!("Here you go: {}", good_answer());
        assert!(parse_answer(&prose)
            .unwrap_err()
            .contains("not one valid JSON"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "must be a JSON object"),
            (json!({"tickets": []}), "tickets is empty"),
            (json!({"tickets": "x"}), "tickets must be an array"),
            (json!({"summary": 3, "tickets": []}), "summary must be a string"),
            (json!({"tickets": [{"key": "A"}]}), "tickets[0] (\"A\").title is missing"),
            (
                json!({"tickets": [{"key": "A", "title": "t", "description": "d", "type": "epic", "priority": "high"}]}),
                "tickets[0] (\"A\").type \"epic\" is not one of feature, enhancement, bug, refactor, test, documentation, setup",
            ),
            (
                json!({"tickets": [{"key": "A", "title": "t", "description": "d", "type": "bug", "priority": "urgent"}]}),
                "priority \"urgent\" is not one of critical, high, medium, low",
            ),
            (
                json!({"tickets": [{"key": "A", "title": "t", "description": "d", "type": "bug", "priority": "low", "estimatedHours": -1}]}),
                "estimatedHours must be from 0 to 1000",
            ),
            (
                json!({"tickets": [{"key": "A", "title": "t", "description": "d", "type": "bug", "priority": "low", "affectedFiles": ["../x"]}]}),
                "affectedFiles has \"../x\"",
            ),
            (
                json!({"tickets": [{"key": "A", "title": "t", "description": "d", "type": "bug", "priority": "low", "tags": "x"}]}),
                "tags must be an array of strings",
            ),
            (
                json!({"tickets": [
                    {"key": "A", "title": "t", "description": "d", "type": "bug", "priority": "low"},
                    {"key": "A", "title": "t", "description": "d", "type": "bug", "priority": "low"}]}),
                "tickets[1].key \"A\" is used by another ticket",
            ),
            (
                json!({"tickets": [{"key": "A", "title": "t", "description": "d", "type": "bug", "priority": "low", "blockedBy": ["B"]}]}),
                "ticket \"A\" depends on \"B\", which is not a ticket",
            ),
            (
                json!({"tickets": [{"key": "A", "title": "t", "description": "d", "type": "bug", "priority": "low", "related": ["A"]}]}),
                "ticket \"A\" depends on itself",
            ),
        ];
        for (v, want) in cases {
            let e = parse_answer(&v.to_string()).unwrap_err();
            assert!(e.contains(want), "{v}: {e}");
        }
        let mut big = good_answer();
        let many: Vec<Value> = (0..=MAX_TICKETS)
            .map(|i| json!({"key": format!("K{i}"), "title": "t", "description": "d", "type": "bug", "priority": "low"}))
            .collect();
        big["tickets"] = Value::Array(many);
        assert!(parse_answer(&big.to_string())
            .unwrap_err()
            .contains("at most 40"));
        let dense: Vec<Value> = (0..6)
            .map(|i| {
                json!({"key": format!("K{i}"), "title": "t", "description": "d", "type": "bug",
                            "priority": "low", "related": vec![format!("K{}", (i + 1) % 6); 34]})
            })
            .collect();
        assert!(parse_answer(&json!({ "tickets": dense }).to_string())
            .unwrap_err()
            .contains("204 dependencies"));
    }

    #[test]
    fn a_cycle_is_refused_with_its_path() {
        let mut v = good_answer();
        v["tickets"][1]["blockedBy"] = json!(["T2"]);
        let e = parse_answer(&v.to_string()).unwrap_err();
        assert_eq!(
            e,
            "the blocks dependencies form a cycle: \"T1\" → \"T0\" → \"T2\" → \"T1\" (each is blocked by the next, so none can ever start)"
        );
    }

    #[test]
    fn the_plan_orders_numbers_and_derives_conflicts() {
        let a = parse_answer(&good_answer().to_string()).unwrap();
        let analysis = super::super::analysis::analyze(&Source::default());
        let mut n = 0;
        let p = plan(analysis, a, || {
            n += 1;
            TicketId::from(format!("tkt_{n:032x}"))
        });
        let keys: Vec<&str> = p.tickets.iter().map(|t| t.ticket.key.as_str()).collect();
        assert_eq!(keys, vec!["T0", "T1", "T2", "T3"], "blockers first");
        let numbers: Vec<u32> = p.tickets.iter().map(|t| t.number).collect();
        assert_eq!(numbers, vec![1, 2, 3, 4]);
        let statuses: Vec<TicketStatus> = p.tickets.iter().map(|t| t.status).collect();
        use TicketStatus::*;
        assert_eq!(statuses, vec![Ready, Pending, Pending, Ready]);
        assert_eq!(
            p.analysis.summary,
            "A todo app; the tickets finish its editing and add tests."
        );
        let id = |k: &str| {
            p.tickets
                .iter()
                .find(|t| t.ticket.key == k)
                .unwrap()
                .id
                .clone()
        };
        let has = |a: &str, b: &str, kind| {
            p.dependencies.contains(&PlannedDependency {
                ticket_id: id(a),
                depends_on_ticket_id: id(b),
                kind,
            })
        };
        assert!(has("T1", "T0", DependencyType::Blocks));
        assert!(has("T2", "T1", DependencyType::Blocks));
        assert!(has("T3", "T1", DependencyType::Related));
        // T1 and T0 share server/index.ts but already have a blocks edge; T3 and T2 share
        // TodoList.tsx: the later (T3) depends on the earlier.
        assert!(has("T3", "T2", DependencyType::FileConflict));
        assert_eq!(p.dependencies.len(), 4);
        let round: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(round, p);
    }

    #[test]
    fn guidance_and_previous_tickets_reach_the_prompt() {
        let mut s = super::super::analysis::tests::app_source();
        let a = super::super::analysis::analyze(&s);
        let m = messages(&s, &a, "ctx", None);
        assert_eq!(m.len(), 2);
        assert!(!m[1].content.contains("stakeholder"));
        s.previous_tickets = vec!["Old ticket".into()];
        let m = messages(&s, &a, "ctx", Some("Split the API work in two"));
        assert!(m[1].content.contains("Split the API work in two"));
        assert!(m[1].content.contains("- Old ticket"));
        assert!(m[1].content.contains("\"apiEndpoints\""));
    }
}

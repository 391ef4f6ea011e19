//! The first two steps of ticket generation (spec: AI Ticket Generation): analysing the app's
//! structure (file tree, stack, dependencies) and identifying its features (components, routes,
//! API endpoints), into the project's `analysisResult`, plus the compact view of the app the
//! ticket prompt shows the model.
//!
//! Invariants:
//! - deterministic and model-free: the same files give the same analysis and the same context
//!   (the model may later replace only the one-paragraph `summary`);
//! - bounded: every list and the context have a ceiling, so a large app makes a prompt of the
//!   same size as a medium one; nothing is invented (every entry is read from a file).

use crate::domain::codegen::context;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Entries kept per list of the analysis.
pub const MAX_LISTED: usize = 100;
/// Bytes of file outlines the ticket prompt carries (the rest of the files by path only).
pub const CONTEXT_OUTLINE_BYTES: usize = 14_000;
/// Paths listed in the ticket prompt's file tree.
pub const CONTEXT_MAX_PATHS: usize = 300;

/// A package the app depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PackageDependency {
    pub name: String,
    pub version: String,
}

/// The project's `analysisResult` (the wire contract's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisResult {
    pub summary: String,
    pub stack: Vec<String>,
    pub dependencies: Vec<PackageDependency>,
    pub components: Vec<String>,
    pub routes: Vec<String>,
    pub api_endpoints: Vec<String>,
    pub file_count: u32,
}

/// What the analysis reads: the project as created and its app's files (none for a new project
/// or one whose app has no saved version yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub title: String,
    pub description: Option<String>,
    /// `app`, `github` or `new`.
    pub kind: String,
    pub files: BTreeMap<String, String>,
    /// The titles of the project's current tickets (a regeneration replaces them).
    pub previous_tickets: Vec<String>,
}

/// Dependencies that name a stack entry (first match wins, in this order).
const STACK: &[(&str, &str)] = &[
    ("react", "React"),
    ("next", "Next.js"),
    ("vue", "Vue"),
    ("svelte", "Svelte"),
    ("vite", "Vite"),
    ("typescript", "TypeScript"),
    ("tailwindcss", "Tailwind CSS"),
    ("react-router-dom", "React Router"),
    ("react-router", "React Router"),
    ("@tanstack/react-query", "TanStack Query"),
    ("zustand", "Zustand"),
    ("redux", "Redux"),
    ("@reduxjs/toolkit", "Redux"),
    ("zod", "Zod"),
    ("express", "Express"),
    ("hono", "Hono"),
    ("wrangler", "Cloudflare Workers"),
    ("vitest", "Vitest"),
    ("jest", "Jest"),
];

/// Analyses `source` (structure, then features).
pub fn analyze(source: &Source) -> AnalysisResult {
    let files = &source.files;
    let dependencies = package_dependencies(files);
    let mut stack: Vec<String> = Vec::new();
    let push = |s: &str, stack: &mut Vec<String>| {
        if !stack.iter().any(|x| x == s) {
            stack.push(s.to_string());
        }
    };
    for (dep, label) in STACK {
        if dependencies.iter().any(|d| d.name == *dep) {
            push(label, &mut stack);
        }
    }
    let has = |exts: &[&str]| files.keys().any(|p| exts.iter().any(|e| p.ends_with(e)));
    if has(&[".ts", ".tsx"]) {
        push("TypeScript", &mut stack);
    } else if has(&[".js", ".jsx", ".mjs"]) {
        push("JavaScript", &mut stack);
    }
    if has(&[".css"]) {
        push("CSS", &mut stack);
    }
    let mut components = Vec::new();
    let mut routes = Vec::new();
    let mut endpoints = Vec::new();
    for (path, content) in files {
        if path.ends_with(".tsx") || path.ends_with(".jsx") {
            components.extend(component_names(content));
        }
        if is_code(path) {
            routes.extend(route_paths(content));
            endpoints.extend(api_endpoints(content));
        }
    }
    let components = bounded(components);
    let routes = bounded(routes);
    let api_endpoints = bounded(endpoints);
    let summary = summary(source, &stack, &components, &routes, &api_endpoints);
    AnalysisResult {
        summary,
        stack,
        dependencies,
        components,
        routes,
        api_endpoints,
        file_count: files.len().min(u32::MAX as usize) as u32,
    }
}

fn summary(
    source: &Source,
    stack: &[String],
    components: &[String],
    routes: &[String],
    endpoints: &[String],
) -> String {
    if source.files.is_empty() {
        return format!(
            "{}: no source files to analyse yet ({} project); the tickets are planned from its description.",
            source.title, source.kind
        );
    }
    let stack = if stack.is_empty() {
        "web".to_string()
    } else {
        stack.join(", ")
    };
    format!(
        "{}: a {stack} app of {} files with {} components, {} routes and {} API endpoints.",
        source.title,
        source.files.len(),
        components.len(),
        routes.len(),
        endpoints.len()
    )
}

fn is_code(path: &str) -> bool {
    [".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts"]
        .iter()
        .any(|e| path.ends_with(e))
        && !path.ends_with(".d.ts")
}

/// Sorted, without repeats, at most [`MAX_LISTED`].
fn bounded(items: Vec<String>) -> Vec<String> {
    let set: BTreeSet<String> = items.into_iter().filter(|s| !s.is_empty()).collect();
    set.into_iter().take(MAX_LISTED).collect()
}

/// The root `package.json`'s dependencies and devDependencies, by name.
fn package_dependencies(files: &BTreeMap<String, String>) -> Vec<PackageDependency> {
    let Some(v) = files
        .get("package.json")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    else {
        return Vec::new();
    };
    let mut out = BTreeMap::new();
    for key in ["dependencies", "devDependencies"] {
        if let Some(map) = v.get(key).and_then(|m| m.as_object()) {
            for (name, version) in map {
                let version = version.as_str().unwrap_or("*").to_string();
                out.entry(name.clone()).or_insert(version);
            }
        }
    }
    out.into_iter()
        .take(MAX_LISTED)
        .map(|(name, version)| PackageDependency { name, version })
        .collect()
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Top-level React components: capitalised functions and arrow-function constants.
fn component_names(content: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in content.lines() {
        // Top level only: an indented line is inside something.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let mut t = line.trim();
        for prefix in ["export ", "default ", "async "] {
            t = t.strip_prefix(prefix).unwrap_or(t);
        }
        let rest = if let Some(r) = t.strip_prefix("function ") {
            r
        } else if let Some(r) = t.strip_prefix("const ") {
            // `const Name = (…) =>`, `const Name: FC = …`, `const Name = memo(…)`.
            let name = ident(r);
            let after = r[name.len()..].trim_start();
            if !(after.starts_with('=') || after.starts_with(':')) {
                continue;
            }
            r
        } else if let Some(r) = t.strip_prefix("class ") {
            r
        } else {
            continue;
        };
        let name = ident(rest.trim_start());
        if name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            out.push(name.to_string());
        }
    }
    out
}

/// The string literal starting at `s` (after optional spaces): `'…'`, `"…"` or `` `…` `` (a
/// template's `${…}` becomes `:param`).
fn literal(s: &str) -> Option<String> {
    let s = s.trim_start();
    let q = s.chars().next().filter(|c| matches!(c, '\'' | '"' | '`'))?;
    let body = &s[1..];
    let end = body.find(q)?;
    let mut text = body[..end].to_string();
    while let Some(a) = text.find("${") {
        let b = text[a..].find('}').map_or(text.len(), |b| a + b + 1);
        text.replace_range(a..b, ":param");
    }
    (!text.is_empty() && text.len() <= 200 && !text.contains(char::is_whitespace)).then_some(text)
}

/// Client-side routes: `<Route path="…">` and `path: "…"` in router configurations.
fn route_paths(content: &str) -> Vec<String> {
    let routing = content.contains("Route") || content.contains("createBrowserRouter");
    if !routing {
        return Vec::new();
    }
    let mut out = Vec::new();
    for line in content.lines() {
        for pat in ["path=", "path:"] {
            let mut from = 0;
            while let Some(i) = line[from..].find(pat) {
                let at = from + i + pat.len();
                let rest = line[at..].trim_start();
                let rest = rest.strip_prefix('{').unwrap_or(rest);
                if let Some(p) = literal(rest) {
                    out.push(p);
                }
                from = at;
            }
        }
    }
    out
}

/// API endpoints the app calls (`fetch('/api/…')`, `axios.get('/api/…')`) or serves
/// (`app.get('/…', …)`, `router.post('/…', …)`), the latter with their method.
fn api_endpoints(content: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in content.lines() {
        let mut from = 0;
        while let Some(i) = line[from..].find("fetch(") {
            let at = from + i + "fetch(".len();
            if let Some(p) = literal(&line[at..]).filter(|p| p.starts_with('/')) {
                out.push(p);
            }
            from = at;
        }
        for server in ["app.", "router.", "api.", "axios."] {
            for method in ["get", "post", "put", "patch", "delete"] {
                let pat = format!("{server}{method}(");
                let mut from = 0;
                while let Some(i) = line[from..].find(&pat) {
                    let at = from + i + pat.len();
                    let before_ok = from + i == 0
                        || !line[..from + i]
                            .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
                    if let Some(p) = literal(&line[at..]).filter(|p| p.starts_with('/')) {
                        if before_ok {
                            out.push(format!("{} {p}", method.to_ascii_uppercase()));
                        }
                    }
                    from = at;
                }
            }
        }
    }
    out
}

/// What the ticket prompt shows of the app: its file tree and outlines of its files, within
/// [`CONTEXT_MAX_PATHS`] and [`CONTEXT_OUTLINE_BYTES`] (package.json and source files first).
pub fn context(source: &Source) -> String {
    let files = &source.files;
    if files.is_empty() {
        return "The project has no source files yet.".into();
    }
    let mut out = String::from("File tree:\n");
    for p in files.keys().take(CONTEXT_MAX_PATHS) {
        out.push_str(&format!("- {p}\n"));
    }
    if files.len() > CONTEXT_MAX_PATHS {
        out.push_str(&format!(
            "- … and {} more files\n",
            files.len() - CONTEXT_MAX_PATHS
        ));
    }
    let mut ordered: Vec<&String> = files.keys().collect();
    ordered.sort_by_key(|p| (*p != "package.json", !is_code(p), *p));
    let mut outlines = String::new();
    let mut left = Vec::new();
    for p in ordered {
        let o = context::outline(p, &files[p]);
        let block = format!("--- {p}\n{}\n", o.trim_end());
        if outlines.len() + block.len() <= CONTEXT_OUTLINE_BYTES {
            outlines.push_str(&block);
        } else {
            left.push(p.as_str());
        }
    }
    out.push_str("\nOutlines (declarations, bodies left out):\n");
    out.push_str(&outlines);
    if !left.is_empty() {
        out.push_str(&format!(
            "(no room for the outlines of {} more files)\n",
            left.len()
        ));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn app_source() -> Source {
        let files = [
            (
                "package.json",
                r#"{"name":"todo","dependencies":{"react":"^18.3.1","react-dom":"^18.3.1","react-router-dom":"^6.26.0"},"devDependencies":{"vite":"^5.4.0","typescript":"^5.5.0","tailwindcss":"^3.4.0"}}"#,
            ),
            (
                "src/App.tsx",
                "import { Routes, Route } from 'react-router-dom';\nimport { TodoList } from './components/TodoList';\n\nexport default function App() {\n  return (\n    <Routes>\n      <Route path=\"/\" element={<TodoList />} />\n      <Route path=\"/todos/:id\" element={<Detail />} />\n    </Routes>\n  );\n}\n",
            ),
            (
                "src/components/TodoList.tsx",
                "export const TodoList = () => {\n  const load = () => fetch('/api/todos');\n  const save = (id: string) => fetch(`/api/todos/${id}`, { method: 'PUT' });\n  return <ul />;\n};\nconst helper = 1;\nfunction Detail() { return null; }\n",
            ),
            (
                "server/index.ts",
                "const app = new Hono();\napp.get('/api/todos', (c) => c.json([]));\napp.post(\"/api/todos\", (c) => c.json({}));\n",
            ),
            ("src/index.css", "@tailwind base;\n"),
        ];
        Source {
            title: "Todo".into(),
            description: Some("A todo list".into()),
            kind: "app".into(),
            files: files
                .iter()
                .map(|(p, c)| (p.to_string(), c.to_string()))
                .collect(),
            previous_tickets: vec![],
        }
    }

    #[test]
    fn the_structure_and_features_are_read_from_the_files() {
        let a = analyze(&app_source());
        assert_eq!(a.file_count, 5);
        assert_eq!(
            a.stack,
            vec![
                "React",
                "Vite",
                "TypeScript",
                "Tailwind CSS",
                "React Router",
                "CSS"
            ]
        );
        assert_eq!(a.dependencies.len(), 6);
        assert_eq!(
            a.dependencies[0],
            PackageDependency {
                name: "react".into(),
                version: "^18.3.1".into()
            }
        );
        assert_eq!(a.components, vec!["App", "Detail", "TodoList"]);
        assert_eq!(a.routes, vec!["/", "/todos/:id"]);
        assert_eq!(
            a.api_endpoints,
            vec![
                "/api/todos",
                "/api/todos/:param",
                "GET /api/todos",
                "POST /api/todos"
            ]
        );
        assert!(
            a.summary.starts_with("Todo: a React, Vite"),
            "{}",
            a.summary
        );
        // The wire shape is the contract's.
        let v = serde_json::to_value(&a).unwrap();
        for k in [
            "summary",
            "stack",
            "dependencies",
            "components",
            "routes",
            "apiEndpoints",
            "fileCount",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        // Deterministic.
        assert_eq!(analyze(&app_source()), a);
        assert_eq!(context(&app_source()), context(&app_source()));
    }

    #[test]
    fn an_app_without_files_is_described_as_such() {
        let s = Source {
            title: "Blank".into(),
            kind: "new".into(),
            ..Default::default()
        };
        let a = analyze(&s);
        assert_eq!(a.file_count, 0);
        assert!(a.stack.is_empty() && a.components.is_empty());
        assert!(a.summary.contains("no source files"), "{}", a.summary);
        assert_eq!(context(&s), "The project has no source files yet.");
    }

    #[test]
    fn the_context_is_bounded() {
        let mut s = app_source();
        for i in 0..(CONTEXT_MAX_PATHS + 20) {
            s.files.insert(
                format!("src/gen/f{i:04}.ts"),
                format!("export function f{i}(a: number): number {{\n  return a;\n}}\n"),
            );
        }
        let c = context(&s);
        assert!(c.contains("… and 25 more files"), "{c}");
        assert!(c.len() < CONTEXT_OUTLINE_BYTES + CONTEXT_MAX_PATHS * 40 + 200);
        assert!(c.contains("--- package.json\n"));
        assert!(c.contains("no room for the outlines of"));
    }
}

//! What the model sees of the app: the workspace (the starting template's files overlaid with
//! the files the run wrote), compact outlines of source files, their local imports, and the
//! selection of which files a unit of work gets in full and which only as an outline.
//!
//! Invariants:
//! - everything here is deterministic (no model call): the same files give the same outline,
//!   the same import graph and the same selection, so prompts are reproducible and their stable
//!   parts stay byte-identical across a run's calls;
//! - a file a unit of work touches is shown in full before anything else is; what does not fit
//!   the operation's budget falls back to its outline, then to its path, never silently away;
//! - outlines never invent content: every line of one is a line (or the head of a line) of the
//!   file, trimmed.

use std::collections::{BTreeMap, BTreeSet};

/// Content bytes shown in full per operation (about a quarter of this in tokens).
pub const IMPLEMENTATION_FULL_BYTES: usize = 24_000;
pub const CORRECTION_FULL_BYTES: usize = 16_000;
pub const EDIT_FULL_BYTES: usize = 8_000;
/// Outline bytes per prompt (the rest of the files are then listed by path); an edit, which
/// names what it concerns, gets fewer.
pub const OUTLINE_BYTES: usize = 14_000;
pub const EDIT_OUTLINE_BYTES: usize = 8_000;
/// Files one `===READ===` turn answers, and turns a unit may take.
pub const MAX_READ_FILES: usize = 8;
pub const MAX_READ_TURNS: usize = 2;
/// At most this many files an edit request is matched to (before their imports).
pub const EDIT_MATCHES: usize = 3;

/// The app as the model should see it: template files (unless the run replaced them) and the
/// run's own files, by path.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    pub files: BTreeMap<String, String>,
    /// Paths still holding the template's own content.
    pub template: BTreeSet<String>,
}

impl Workspace {
    /// The template's text files under the app's files (the app's win).
    pub fn new(template: &[(&str, &str)], app: BTreeMap<String, String>) -> Self {
        let mut files = app;
        let mut from_template = BTreeSet::new();
        for (path, content) in template {
            if !files.contains_key(*path) {
                files.insert(path.to_string(), content.to_string());
                from_template.insert(path.to_string());
            }
        }
        Self {
            files,
            template: from_template,
        }
    }

    pub fn get(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    /// `paths` and the local files they import directly, in that order, without repeats.
    pub fn with_imports(&self, paths: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let push = |p: String, out: &mut Vec<String>| {
            if !out.contains(&p) {
                out.push(p);
            }
        };
        for p in paths {
            if self.files.contains_key(p) {
                push(p.clone(), &mut out);
            }
        }
        for p in paths {
            if let Some(content) = self.files.get(p) {
                for dep in imports(p, content, &self.files) {
                    push(dep, &mut out);
                }
            }
        }
        out
    }

    /// Files that import `path` directly.
    pub fn importers(&self, path: &str) -> Vec<String> {
        self.files
            .iter()
            .filter(|(p, c)| *p != path && imports(p, c, &self.files).iter().any(|d| d == path))
            .map(|(p, _)| p.clone())
            .collect()
    }
}

/// What one prompt shows: files in full (in order), outlines of others, and paths only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub full: Vec<String>,
    pub outlined: Vec<String>,
    pub listed: Vec<String>,
}

/// Picks what a prompt shows: `focus` in full (in its order) while `full_budget` content bytes
/// last; every other file as an outline while `outline_budget` lasts (path order, so the section
/// changes only where files changed); the rest by path.
pub fn select(
    ws: &Workspace,
    focus: &[String],
    full_budget: usize,
    outline_budget: usize,
) -> Selection {
    let mut sel = Selection::default();
    let mut used = 0;
    for p in focus {
        let Some(c) = ws.files.get(p) else { continue };
        if sel.full.contains(p) {
            continue;
        }
        if used + c.len() <= full_budget || sel.full.is_empty() && c.len() <= full_budget * 2 {
            used += c.len();
            sel.full.push(p.clone());
        }
    }
    let mut used = 0;
    for (p, c) in &ws.files {
        if sel.full.contains(p) {
            continue;
        }
        let o = outline(p, c);
        if used + o.len() <= outline_budget {
            used += o.len();
            sel.outlined.push(p.clone());
        } else {
            sel.listed.push(p.clone());
        }
    }
    sel
}

/// The paths an edit request most likely concerns: files whose path or outline mentions the
/// request's words (path matches weigh most), best first, at most [`EDIT_MATCHES`].
pub fn rank_for_request(ws: &Workspace, request: &str) -> Vec<String> {
    let wanted: BTreeSet<String> = words(request)
        .into_iter()
        .filter(|w| w.len() >= 2 && !STOP_WORDS.contains(&w.as_str()))
        .collect();
    let mut scored: Vec<(u32, &String)> = ws
        .files
        .iter()
        .filter(|(p, _)| !is_lockfile(p))
        .map(|(p, c)| {
            let path_words: BTreeSet<String> = words_of_path(p);
            let outline_words: BTreeSet<String> = words(&outline(p, c)).into_iter().collect();
            let body_words: BTreeSet<String> = words(c).into_iter().collect();
            let mut score = 0;
            for w in &wanted {
                if path_words.contains(w) {
                    score += 10;
                }
                if outline_words.contains(w) {
                    score += 3;
                }
                if body_words.contains(w) {
                    score += 1;
                }
            }
            (score, p)
        })
        .filter(|(s, _)| *s > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut out: Vec<String> = scored
        .iter()
        .take(EDIT_MATCHES)
        .map(|(_, p)| (*p).clone())
        .collect();
    if out.is_empty() {
        // Nothing named: the app's root component is where most requests land.
        for p in ["src/App.tsx", "src/App.jsx", "src/main.tsx"] {
            if ws.files.contains_key(p) {
                out.push(p.to_string());
                break;
            }
        }
    }
    out
}

const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "with", "that", "this", "make", "change", "rename", "add", "into", "from",
    "please", "should", "instead", "when", "what", "then", "than", "page", "app", "file", "use",
    "all", "its", "are", "not", "but", "can", "new", "set", "in", "to", "of", "it", "is", "on",
    "an", "or", "by", "at", "be", "as", "do", "we", "my", "me", "so", "up", "if", "no",
];

fn is_lockfile(p: &str) -> bool {
    p.ends_with("package-lock.json") || p.ends_with(".lock") || p.ends_with("pnpm-lock.yaml")
}

/// Lowercase words of `s`, identifiers split at camelCase humps, `_` and `-`.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for token in s.split(|c: char| !c.is_ascii_alphanumeric()) {
        if token.is_empty() {
            continue;
        }
        let mut cur = String::new();
        let mut prev_lower = false;
        for ch in token.chars() {
            if ch.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
            cur.push(ch.to_ascii_lowercase());
        }
        if !cur.is_empty() {
            let whole = token.to_ascii_lowercase();
            if whole != cur {
                out.push(whole);
            }
            out.push(cur);
        }
    }
    out
}

fn words_of_path(p: &str) -> BTreeSet<String> {
    let stem = p.rsplit('/').next().unwrap_or(p);
    let stem = stem.split('.').next().unwrap_or(stem);
    let mut w: BTreeSet<String> = words(stem).into_iter().collect();
    // Plural and singular match each other ("todos" ~ "todo").
    for x in w.clone() {
        if let Some(s) = x.strip_suffix('s') {
            w.insert(s.to_string());
        } else {
            w.insert(format!("{x}s"));
        }
    }
    w
}

/// What an install of `package.json` depends on: its dependency sections, overrides and
/// workspaces, and the scripts npm runs while installing, canonical (keys sorted), so a rewrite
/// that changes only other scripts, metadata or formatting installs nothing. `None` when it is
/// not valid JSON (an install must then say what is wrong).
pub fn dependencies(package_json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(package_json).ok()?;
    let mut out = BTreeMap::new();
    for key in [
        "dependencies",
        "devDependencies",
        "peerDependencies",
        "optionalDependencies",
        "bundleDependencies",
        "overrides",
        "workspaces",
    ] {
        if let Some(section) = v.get(key) {
            // serde_json's maps are ordered by key: the text is canonical.
            out.insert(key, section.to_string());
        }
    }
    for script in ["preinstall", "install", "postinstall", "prepare"] {
        if let Some(s) = v.get("scripts").and_then(|s| s.get(script)) {
            out.insert(script, s.to_string());
        }
    }
    Some(format!("{out:?}"))
}

// ----- imports -----------------------------------------------------------------------------

/// The module specifiers `content` imports (`import … from 'x'`, `import 'x'`, `export … from
/// 'x'`, `import('x')`, `require('x')`).
pub fn specifiers(content: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in content.lines() {
        let t = line.trim_start();
        let relevant = t.starts_with("import")
            || t.starts_with("export")
            || t.starts_with("} from")
            || t.contains("import(")
            || t.contains("require(");
        if !relevant {
            continue;
        }
        for (i, q) in t.char_indices() {
            if q != '\'' && q != '"' {
                continue;
            }
            let before = t[..i].trim_end();
            let starts = before.ends_with("from")
                || before.ends_with("import")
                || before.ends_with("import(")
                || before.ends_with("require(");
            if !starts {
                continue;
            }
            if let Some(end) = t[i + 1..].find(q) {
                out.push(t[i + 1..i + 1 + end].to_string());
            }
        }
    }
    out
}

/// The files of `files` that `path` imports directly (relative specifiers, resolved the way
/// Vite and TypeScript's bundler resolution do: exact, then with an extension, then an index).
pub fn imports(path: &str, content: &str, files: &BTreeMap<String, String>) -> Vec<String> {
    if !is_code(path) && !path.ends_with(".html") {
        return Vec::new();
    }
    let dir = match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    };
    let mut out = Vec::new();
    for spec in specifiers(content) {
        let base = if let Some(rest) = spec.strip_prefix("@/") {
            format!("src/{rest}")
        } else if spec.starts_with("./") || spec.starts_with("../") {
            match join(dir, &spec) {
                Some(p) => p,
                None => continue,
            }
        } else if let Some(rest) = spec.strip_prefix('/') {
            rest.to_string()
        } else {
            continue;
        };
        let candidates = [
            base.clone(),
            format!("{base}.ts"),
            format!("{base}.tsx"),
            format!("{base}.js"),
            format!("{base}.jsx"),
            format!("{base}/index.ts"),
            format!("{base}/index.tsx"),
            format!("{base}/index.js"),
        ];
        if let Some(hit) = candidates.into_iter().find(|c| files.contains_key(c)) {
            if !out.contains(&hit) && hit != path {
                out.push(hit);
            }
        }
    }
    out
}

fn join(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    for seg in rel.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

fn is_code(path: &str) -> bool {
    [".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts"]
        .iter()
        .any(|e| path.ends_with(e))
}

// ----- outlines ----------------------------------------------------------------------------

/// Lines of a declaration kept whole in an outline before it is cut.
const SHORT_DECLARATION_LINES: usize = 12;

/// A compact, deterministic summary of a file: for code, its exported and top-level
/// declarations (signatures, props and types; bodies dropped); for `package.json`, its scripts
/// and dependencies; for other files, their size and first line.
pub fn outline(path: &str, content: &str) -> String {
    if is_code(path) && !path.ends_with(".d.ts") {
        return code_outline(content);
    }
    if path.ends_with("package.json") {
        return package_outline(content);
    }
    if is_lockfile(path) {
        return format!("(lockfile, {} bytes)", content.len());
    }
    let lines = content.lines().count();
    let first = content
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let first: String = first.chars().take(100).collect();
    format!("({lines} lines) {first}")
}

fn package_outline(content: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(content) else {
        return format!("(package.json, {} bytes, not valid JSON)", content.len());
    };
    let mut out = String::new();
    for key in ["scripts", "dependencies", "devDependencies"] {
        if let Some(map) = v.get(key).and_then(|m| m.as_object()) {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}@{}", v.as_str().unwrap_or("?")))
                .collect();
            if key == "scripts" {
                let names: Vec<&String> = map.keys().collect();
                out.push_str(&format!(
                    "scripts: {}\n",
                    names
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            } else {
                out.push_str(&format!("{key}: {}\n", items.join(", ")));
            }
        }
    }
    out.trim_end().to_string()
}

/// Removes string contents and comments well enough to count braces and parentheses.
fn code_only(line: &str, in_block_comment: &mut bool) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if *in_block_comment {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                *in_block_comment = false;
            }
            continue;
        }
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
            } else if c == q {
                quote = None;
                out.push(c);
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => {
                quote = Some(c);
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => break,
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                *in_block_comment = true;
            }
            _ => out.push(c),
        }
    }
    out
}

fn depth_change(code: &str) -> i32 {
    code.chars()
        .map(|c| match c {
            '{' | '(' | '[' => 1,
            '}' | ')' | ']' => -1,
            _ => 0,
        })
        .sum()
}

/// Whether a top-level line starts a declaration worth outlining, and whether it is a type
/// (kept whole when short) rather than a value (signature only). Unexported variables are left
/// out (module internals); unexported functions and classes stay (components often are).
fn declaration(line: &str) -> Option<bool> {
    let t = line.trim_start();
    let exported = t.starts_with("export ");
    let t = t.strip_prefix("export ").unwrap_or(t);
    let t = t.strip_prefix("default ").unwrap_or(t);
    let t = t.strip_prefix("declare ").unwrap_or(t);
    if t.starts_with("interface ") || t.starts_with("type ") || t.starts_with("enum ") {
        return Some(true);
    }
    if ["function ", "async function ", "class ", "abstract class "]
        .iter()
        .any(|k| t.starts_with(k))
    {
        return Some(false);
    }
    if ["const ", "let ", "var "].iter().any(|k| t.starts_with(k)) {
        return exported.then_some(false);
    }
    // `export { a, b }`, `export * from`, `export default App;`
    exported.then_some(true)
}

/// The head of a value declaration, once `decl` reaches its body: up to the `{` of a function
/// or class, through the `=>` of an arrow function, or the start of the value after `=`.
fn signature_cut(decl: &str) -> Option<String> {
    let flat: String = decl.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = flat.chars().collect();
    let text = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
    let mut depth = 0i32;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '{' if depth == 0 && !matches!(prev_solid(&chars, i), Some(':' | '|' | '&')) => {
                return Some(text(0, i).trim_end().to_string())
            }
            '(' | '[' | '<' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            '>' if i > 0 && chars[i - 1] != '=' => depth -= 1,
            '=' if depth == 0 && next == Some('>') => {
                return Some(text(0, i + 2).trim_end().to_string())
            }
            '=' if depth == 0 && next != Some('=') => {
                let rest = text(i + 1, chars.len());
                let rest = rest.trim_start();
                if rest.is_empty() {
                    return None;
                }
                if rest.starts_with('(') || rest.starts_with("async") || rest.starts_with('<') {
                    // An arrow function's parameters: go on to its `=>`.
                    i += 1;
                    continue;
                }
                let head = text(0, i);
                let short: String = rest.chars().take(40).collect();
                let cut = if rest.chars().count() > 40 { "…" } else { "" };
                return Some(format!("{} = {short}{cut}", head.trim_end()));
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The last non-space character before `i`.
fn prev_solid(chars: &[char], i: usize) -> Option<char> {
    chars[..i]
        .iter()
        .rev()
        .find(|c| !c.is_whitespace())
        .copied()
}

fn signature(decl: &str) -> String {
    signature_cut(decl).unwrap_or_else(|| {
        let flat: String = decl.split_whitespace().collect::<Vec<_>>().join(" ");
        flat.trim_end_matches(';').to_string()
    })
}

/// A line that leaves its statement open (continued on the next line).
fn continues(code: &str) -> bool {
    let t = code.trim_end();
    t.ends_with(',') || t.ends_with('=') || t.ends_with('|') || t.ends_with('&') || t.ends_with('(')
}

/// A declaration being collected over several lines.
struct Open {
    is_type: bool,
    lines: Vec<String>,
}

fn code_outline(content: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut depth = 0i32;
    let mut in_comment = false;
    let mut open: Option<Open> = None;
    let lines: Vec<&str> = content.lines().collect();
    for (n, line) in lines.iter().copied().enumerate() {
        let code = code_only(line, &mut in_comment);
        let start_depth = depth;
        depth += depth_change(&code);
        // A union or intersection type goes on with a leading `|` or `&` on the next line.
        let next_continues = lines[n + 1..]
            .iter()
            .map(|l| l.trim_start())
            .find(|l| !l.is_empty())
            .is_some_and(|l| l.starts_with('|') || l.starts_with('&'));
        let ended = depth <= 0 && !continues(&code) && !next_continues;
        if let Some(o) = &mut open {
            o.lines.push(line.to_string());
            let joined = o.lines.join("\n");
            let done = if o.is_type {
                ended || o.lines.len() >= SHORT_DECLARATION_LINES
            } else {
                ended || signature_cut(&joined).is_some() || o.lines.len() >= 8
            };
            if done {
                let o = open.take().expect("open");
                out.push(finish(o.is_type, &o.lines, ended));
            }
            continue;
        }
        if start_depth > 0 || code.trim().is_empty() {
            if start_depth < 0 {
                depth = depth.max(0);
            }
            continue;
        }
        let t = line.trim_start();
        if t.starts_with("import ") || t.starts_with("import{") {
            continue;
        }
        let Some(is_type) = declaration(line) else {
            continue;
        };
        let done = ended || (!is_type && signature_cut(line).is_some());
        if done {
            out.push(finish(is_type, &[line.to_string()], ended));
        } else {
            open = Some(Open {
                is_type,
                lines: vec![line.to_string()],
            });
        }
    }
    if let Some(o) = open {
        out.push(finish(o.is_type, &o.lines, false));
    }
    out.join("\n")
}

fn finish(is_type: bool, lines: &[String], complete: bool) -> String {
    if is_type {
        let mut s: Vec<String> = lines
            .iter()
            .take(SHORT_DECLARATION_LINES)
            .map(|l| l.trim_end().to_string())
            .collect();
        if !complete {
            s.push("  …".into());
        }
        return s.join("\n");
    }
    signature(&lines.join("\n"))
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;

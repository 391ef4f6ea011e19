//! Parsers that turn tool output into structured errors `{file, line, column, message, kind}`.
//!
//! Pure functions over text, tested on output captured from the real tools
//! (`tests/fixtures/`). Handled: `tsc` (plain `file(l,c): error TSxxxx` and `--pretty`),
//! esbuild (`✘ [ERROR]` blocks and the one-line `file:l:c: ERROR:` form), Vite dev-server
//! errors (`[vite] Internal server error`, pre-transform and SSR errors with their
//! `Plugin:`/`File:` lines, Babel `(l:c)` locations), `vite build` / Rollup errors, and
//! uncaught Node errors (`TypeError: …` with stack frames).
//!
//! Conventions: lines and columns are 1-based (esbuild, Rollup and Babel report 0-based
//! columns and are shifted); files are relative to the workspace; a file outside the
//! workspace is dropped (`file: null`) and workspace roots are cut out of messages, so no
//! host path leaks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

/// The wire type every side shares; `Kind` for short here (this module emits `typescript`,
/// `vite`, `esbuild`, `build` and `runtime`).
pub use byte_protocol::diagnostic::{Diagnostic, DiagnosticKind as Kind};

/// Maps the paths tools print (absolute, `file://` URLs, or relative to the workspace) to
/// workspace-relative paths, and scrubs the roots out of messages.
#[derive(Clone, Debug)]
pub struct PathMapper {
    roots: Vec<String>,
}

impl PathMapper {
    /// `roots` are the spellings of the workspace root that may appear in output (typically
    /// the configured path and its canonical form).
    pub fn new<P: AsRef<Path>>(roots: &[P]) -> Self {
        let mut roots: Vec<String> = roots
            .iter()
            .filter_map(|r| r.as_ref().to_str())
            .map(|r| r.trim_end_matches('/').to_string())
            .filter(|r| !r.is_empty())
            .collect();
        // Longest first, so a nested spelling wins.
        roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
        roots.dedup();
        PathMapper { roots }
    }

    /// Workspace-relative form of a printed path, or `None` if it lies outside.
    pub fn relativize(&self, raw: &str) -> Option<String> {
        let raw = raw.trim();
        let raw = raw.strip_prefix("file://").unwrap_or(raw);
        // Vite appends queries (`?direct`, `?t=123`) to module ids.
        let raw = raw.split('?').next().unwrap_or(raw);
        if raw.is_empty() {
            return None;
        }
        if raw.starts_with('/') {
            return self
                .roots
                .iter()
                .find_map(|root| {
                    raw.strip_prefix(root.as_str())
                        .and_then(|rest| rest.strip_prefix('/'))
                })
                .filter(|rest| !rest.is_empty() && !rest.split('/').any(|c| c == ".."))
                .map(str::to_string);
        }
        let rel = raw.trim_start_matches("./");
        if rel.split('/').any(|c| c == "..") {
            return None;
        }
        Some(rel.to_string())
    }

    /// `message` with every `<root>/` removed.
    pub fn scrub(&self, message: &str) -> String {
        let mut out = message.to_string();
        for root in &self.roots {
            out = out
                .replace(&format!("file://{root}/"), "")
                .replace(&format!("{root}/"), "");
        }
        out
    }

    fn user_file(&self, raw: &str) -> Option<String> {
        self.relativize(raw).filter(|p| !is_dependency(p))
    }
}

fn is_dependency(rel: &str) -> bool {
    rel.starts_with("node_modules/") || rel.contains("/node_modules/")
}

macro_rules! re {
    ($name:ident, $pat:expr) => {
        static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new($pat).expect(stringify!($name)));
    };
}

re!(
    ANSI,
    r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]"
);
re!(TIMESTAMP, r"^\d{1,2}:\d{2}:\d{2}(?: [AP]M)? ");
re!(
    TSC_PLAIN,
    r"^(?P<file>[^\s(][^()]*?)\((?P<line>\d+),(?P<col>\d+)\): error (?P<code>TS\d+): (?P<msg>.*)$"
);
re!(
    TSC_PRETTY,
    r"^(?P<file>[^\s:][^:]*?):(?P<line>\d+):(?P<col>\d+) - error (?P<code>TS\d+): (?P<msg>.*)$"
);
re!(ESBUILD_HEAD, r"^\s*(?:✘|X) \[ERROR\] (?P<msg>.*)$");
re!(
    ESBUILD_LOC,
    r"^\s+(?P<file>\S.*?):(?P<line>\d+):(?P<col>\d+):\s*$"
);
re!(
    ESBUILD_SHORT,
    r"^\s*(?P<file>\S.*?):(?P<line>\d+):(?P<col>\d+): ERROR: (?P<msg>.*)$"
);
re!(
    VITE_MARKER,
    r"\[vite\](?: \(\w+\))? (?:Internal server error|Pre-transform error|Error when evaluating SSR module [^:]+): (?P<msg>.*)$"
);
re!(
    VITE_LOG_LINE,
    r"^(?:\d{1,2}:\d{2}:\d{2}(?: [AP]M)? )?\[vite\]"
);
re!(
    PLUGIN_INLINE,
    r"^\s*\[plugin:(?P<plugin>[^\]\s]+)\] (?P<msg>.*)$"
);
re!(BRACKET_PLUGIN, r"^\[(?P<plugin>[\w:@/.-]+)\] (?P<msg>.*)$");
re!(PLUGIN_LINE, r"^\s*Plugin: (?P<plugin>\S+)\s*$");
re!(
    FILE_LINE,
    r"^\s*[Ff]ile: (?P<file>\S.*?)(?::(?P<line>\d+)(?::(?P<col>\d+))?)?\s*$"
);
re!(
    BABEL_LOC,
    r"^(?P<file>(?:file://)?/\S+?): (?P<msg>.*) \((?P<line>\d+):(?P<col>\d+)\)\s*$"
);
re!(STACK_LINE, r"^\s+at ");
re!(
    STACK_LOC,
    r"(?P<file>(?:file://)?/[^\s()]+?):(?P<line>\d+):(?P<col>\d+)(?:\)|\s*$)"
);
re!(
    NODE_ERROR,
    r"^(?:Uncaught )?(?P<name>[A-Z][A-Za-z]*Error)(?: \[[A-Z_0-9]+\])?: (?P<msg>.+)$"
);
re!(NODE_HEADER, r"^(?P<file>(?:file://)?/\S+):(?P<line>\d+)$");

/// Removes ANSI escape sequences (colours, cursor movement, hyperlinks).
pub fn strip_ansi(s: &str) -> String {
    if s.contains('\x1b') {
        ANSI.replace_all(s, "").into_owned()
    } else {
        s.to_string()
    }
}

/// Parses a whole capture (stdout and stderr, either or both) into de-duplicated errors.
pub fn parse_output(text: &str, mapper: &PathMapper) -> Vec<Diagnostic> {
    let lines: Vec<String> = text.lines().map(strip_ansi).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    dedupe(parse_lines(&refs, mapper).into_iter().map(|(_, d)| d))
}

/// Keeps the first of each group of equal errors (see [`Diagnostic::key`]), in order.
pub fn dedupe(diags: impl IntoIterator<Item = Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = HashMap::new();
    let mut out = Vec::new();
    for d in diags {
        if seen.insert(d.key(), ()).is_none() {
            out.push(d);
        }
    }
    out
}

/// Parses lines (already free of ANSI codes) and returns each error with the index of the
/// line where it starts, so callers can map errors back to log sequence numbers.
pub fn parse_lines(lines: &[&str], mapper: &PathMapper) -> Vec<(usize, Diagnostic)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end_matches('\r');
        let (next, diag) = if let Some(c) = TSC_PLAIN.captures(line) {
            tsc(lines, i, &c, mapper, false)
        } else if let Some(c) = TSC_PRETTY.captures(line) {
            tsc(lines, i, &c, mapper, true)
        } else if let Some(c) = ESBUILD_HEAD.captures(line) {
            esbuild_block(lines, i, &c["msg"], mapper)
        } else if is_block_start(line) {
            vite_block(lines, i, mapper)
        } else if let Some(c) = ESBUILD_SHORT.captures(line) {
            let d = located(
                mapper,
                &c["file"],
                &c["line"],
                Some(&c["col"]),
                true,
                &c["msg"],
                Kind::Esbuild,
            );
            (i + 1, Some(d))
        } else if let Some(c) = NODE_ERROR.captures(line) {
            node_error(lines, i, &c, mapper)
        } else {
            (i + 1, None)
        };
        if let Some(d) = diag {
            out.push((i, d));
        }
        i = next.max(i + 1);
    }
    out
}

fn is_block_start(line: &str) -> bool {
    let bare = TIMESTAMP.replace(line, "");
    VITE_MARKER.is_match(line)
        || PLUGIN_INLINE.is_match(line)
        || bare.trim_end() == "error during build:"
        || bare.trim_end() == "error when starting dev server:"
}

/// Ends a multi-line block: something that starts an unrelated entry.
fn ends_block(line: &str) -> bool {
    is_block_start(line)
        || VITE_LOG_LINE.is_match(line)
        || TSC_PLAIN.is_match(line)
        || TSC_PRETTY.is_match(line)
        || ESBUILD_HEAD.is_match(line)
        || line.starts_with("Node.js v")
        || line.starts_with("npm error")
        || line.starts_with("npm ERR!")
        || line.starts_with("> ")
}

fn num(s: &str) -> Option<u32> {
    s.parse().ok()
}

/// Builds a diagnostic at `file:line:col`; `zero_based_col` shifts the column to 1-based.
fn located(
    mapper: &PathMapper,
    file: &str,
    line: &str,
    col: Option<&str>,
    zero_based_col: bool,
    message: &str,
    kind: Kind,
) -> Diagnostic {
    let file = mapper.relativize(file);
    let inside = file.is_some();
    Diagnostic {
        file,
        line: num(line).filter(|_| inside),
        column: col
            .and_then(num)
            .map(|c| if zero_based_col { c + 1 } else { c })
            .filter(|_| inside),
        message: mapper.scrub(message.trim()),
        kind,
    }
}

fn tsc(
    lines: &[&str],
    i: usize,
    c: &regex::Captures,
    mapper: &PathMapper,
    pretty: bool,
) -> (usize, Option<Diagnostic>) {
    let mut message = format!("{} {}", &c["code"], c["msg"].trim());
    let mut j = i + 1;
    // Elaborations ("Type 'X' is missing …") follow, indented, before the code frame.
    while j < lines.len() && lines[j].starts_with("  ") && !lines[j].trim().is_empty() {
        if pretty
            && lines[j]
                .trim_start()
                .starts_with(|ch: char| ch.is_ascii_digit())
        {
            break;
        }
        message.push('\n');
        message.push_str(lines[j].trim());
        j += 1;
    }
    let d = located(
        mapper,
        &c["file"],
        &c["line"],
        Some(&c["col"]),
        false,
        &message,
        Kind::Typescript,
    );
    (j, Some(d))
}

fn esbuild_block(
    lines: &[&str],
    i: usize,
    message: &str,
    mapper: &PathMapper,
) -> (usize, Option<Diagnostic>) {
    // `✘ [ERROR] message [plugin name]`, a blank line, then `    file:line:col:`.
    let message = message.trim();
    for (j, line) in lines.iter().enumerate().skip(i + 1).take(5) {
        if let Some(c) = ESBUILD_LOC.captures(line) {
            let d = located(
                mapper,
                &c["file"],
                &c["line"],
                Some(&c["col"]),
                true,
                message,
                Kind::Esbuild,
            );
            return (j + 1, Some(d));
        }
        if ends_block(line) {
            break;
        }
    }
    let d = Diagnostic {
        file: None,
        line: None,
        column: None,
        message: mapper.scrub(message),
        kind: Kind::Esbuild,
    };
    (i + 1, Some(d))
}

/// A Vite (or Rollup) error block: a marker line, an optional message line, then any of
/// `Plugin:`, `File:`/`file:`, an inner esbuild `file:l:c: ERROR:` line, a code frame and a
/// stack trace.
fn vite_block(lines: &[&str], i: usize, mapper: &PathMapper) -> (usize, Option<Diagnostic>) {
    let first = TIMESTAMP.replace(lines[i], "").trim_end().to_string();
    let mut kind = Kind::Vite;
    let mut plugin: Option<String> = None;
    let mut j = i + 1;
    let mut message = if let Some(c) = VITE_MARKER.captures(&first) {
        c["msg"].to_string()
    } else if let Some(c) = PLUGIN_INLINE.captures(&first) {
        plugin = Some(c["plugin"].to_string());
        c["msg"].to_string()
    } else {
        // `error during build:` / `error when starting dev server:`: the message is next.
        if first == "error during build:" {
            kind = Kind::Build;
        }
        while j < lines.len() && lines[j].trim().is_empty() {
            j += 1;
        }
        let msg = lines.get(j).copied().unwrap_or("").trim().to_string();
        j += 1;
        msg
    };
    if let Some(c) = BRACKET_PLUGIN.captures(&message.clone()) {
        plugin = Some(c["plugin"].trim_start_matches("plugin:").to_string());
        message = c["msg"].to_string();
    }
    if let Some(rest) = message.strip_prefix("Error: ") {
        message = rest.to_string();
    }

    let mut file_loc: Option<(String, Option<String>, Option<String>)> = None;
    let mut inner: Option<(String, String, String, String)> = None;
    let mut frame: Option<(String, String, String)> = None;
    let end = lines.len().min(i + 400);
    while j < end && !ends_block(lines[j]) {
        let line = lines[j];
        if let Some(c) = PLUGIN_LINE.captures(line) {
            plugin.get_or_insert_with(|| c["plugin"].to_string());
        } else if let Some(c) = FILE_LINE.captures(line) {
            file_loc.get_or_insert_with(|| {
                (
                    c["file"].to_string(),
                    c.name("line").map(|m| m.as_str().into()),
                    c.name("col").map(|m| m.as_str().into()),
                )
            });
        } else if let Some(c) = ESBUILD_SHORT.captures(line) {
            inner.get_or_insert_with(|| {
                (
                    c["file"].into(),
                    c["line"].into(),
                    c["col"].into(),
                    c["msg"].into(),
                )
            });
        } else if STACK_LINE.is_match(line) && frame.is_none() {
            if let Some(c) = STACK_LOC.captures(line) {
                if mapper.user_file(&c["file"]).is_some() {
                    frame = Some((c["file"].into(), c["line"].into(), c["col"].into()));
                }
            }
        }
        j += 1;
    }

    let diag = if let Some((file, line, col, msg)) = inner {
        located(mapper, &file, &line, Some(&col), true, &msg, kind)
    } else if let Some(c) = BABEL_LOC.captures(&message) {
        located(
            mapper,
            &c["file"],
            &c["line"],
            Some(&c["col"]),
            true,
            &c["msg"],
            kind,
        )
    } else if let Some((file, line, col)) = file_loc {
        match line {
            Some(line) => located(mapper, &file, &line, col.as_deref(), true, &message, kind),
            None => Diagnostic {
                file: mapper.relativize(&file),
                line: None,
                column: None,
                message: mapper.scrub(message.trim()),
                kind,
            },
        }
    } else if let Some((file, line, col)) = frame {
        // No plugin, no file: an exception thrown by the app's own code (e.g. in a dev
        // middleware or during SSR), located by its first stack frame in the workspace.
        let kind = if plugin.is_none() && kind == Kind::Vite {
            Kind::Runtime
        } else {
            kind
        };
        located(mapper, &file, &line, Some(&col), false, &message, kind)
    } else {
        Diagnostic {
            file: None,
            line: None,
            column: None,
            message: mapper.scrub(message.trim()),
            kind,
        }
    };
    (j, Some(diag))
}

/// An uncaught Node error at the start of a line. Only counted with evidence that it is one:
/// a stack trace below it or Node's `file:line` header above it.
fn node_error(
    lines: &[&str],
    i: usize,
    c: &regex::Captures,
    mapper: &PathMapper,
) -> (usize, Option<Diagnostic>) {
    let message = format!("{}: {}", &c["name"], c["msg"].trim());
    let mut j = i + 1;
    let mut frame = None;
    let mut has_stack = false;
    while j < lines.len() && STACK_LINE.is_match(lines[j]) {
        has_stack = true;
        if frame.is_none() {
            if let Some(f) = STACK_LOC.captures(lines[j]) {
                if mapper.user_file(&f["file"]).is_some() {
                    frame = Some((
                        f["file"].to_string(),
                        f["line"].to_string(),
                        f["col"].to_string(),
                    ));
                }
            }
        }
        j += 1;
    }
    let header = (i.saturating_sub(6)..i)
        .rev()
        .find_map(|k| NODE_HEADER.captures(lines[k]));
    if !has_stack && header.is_none() {
        return (i + 1, None);
    }
    let diag = match (frame, header) {
        (Some((file, line, col)), _) => located(
            mapper,
            &file,
            &line,
            Some(&col),
            false,
            &message,
            Kind::Runtime,
        ),
        (None, Some(h)) if mapper.user_file(&h["file"]).is_some() => located(
            mapper,
            &h["file"],
            &h["line"],
            None,
            false,
            &message,
            Kind::Runtime,
        ),
        _ => Diagnostic {
            file: None,
            line: None,
            column: None,
            message: mapper.scrub(&message),
            kind: Kind::Runtime,
        },
    };
    (j, Some(diag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn parse(name: &str, root: &str) -> Vec<Diagnostic> {
        parse_output(&fixture(name), &PathMapper::new(&[root]))
    }

    fn d(file: &str, line: u32, column: u32, message: &str, kind: Kind) -> Diagnostic {
        Diagnostic {
            file: Some(file.into()),
            line: Some(line),
            column: Some(column),
            message: message.into(),
            kind,
        }
    }

    const APP: &str = "/tmp/fx/app";
    const WAPP: &str = "/tmp/fx/wapp";

    #[test]
    fn tsc_plain() {
        assert_eq!(
            parse("tsc-syntax.txt", APP),
            vec![d(
                "src/App.tsx",
                3,
                26,
                "TS1005 ',' expected.",
                Kind::Typescript
            )]
        );
        assert_eq!(
            parse("tsc-type.txt", APP),
            vec![
                d("src/App.tsx", 3, 7, "TS2322 Type 'string' is not assignable to type 'number'.", Kind::Typescript),
                d(
                    "src/App.tsx",
                    6,
                    46,
                    "TS2345 Argument of type 'number' is not assignable to parameter of type 'string | (() => string)'.",
                    Kind::Typescript
                ),
            ]
        );
    }

    #[test]
    fn tsc_pretty_with_ansi_matches_plain() {
        assert!(
            fixture("tsc-type-pretty.txt").contains('\x1b'),
            "fixture keeps tsc's colours"
        );
        assert_eq!(
            parse("tsc-syntax-pretty.txt", APP),
            parse("tsc-syntax.txt", APP)
        );
        assert_eq!(
            parse("tsc-type-pretty.txt", APP),
            parse("tsc-type.txt", APP)
        );
    }

    #[test]
    fn tsc_inside_npm_run_build() {
        assert_eq!(
            parse("npm-build-tsc.txt", WAPP),
            vec![d(
                "worker/index.ts",
                27,
                69,
                "TS2339 Property 'size' does not exist on type 'Note[]'.",
                Kind::Typescript
            )]
        );
    }

    #[test]
    fn tsc_multi_line_elaboration() {
        let text = "src/a.ts(1,7): error TS2322: Type '{}' is not assignable to type 'T'.\n  Property 'x' is missing in type '{}' but required in type 'T'.\nsrc/b.ts(2,1): error TS1128: Declaration or statement expected.\n";
        let got = parse_output(text, &PathMapper::new(&[APP]));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].message, "TS2322 Type '{}' is not assignable to type 'T'.\nProperty 'x' is missing in type '{}' but required in type 'T'.");
        assert_eq!(got[1].file.as_deref(), Some("src/b.ts"));
    }

    #[test]
    fn esbuild_blocks() {
        // esbuild columns are 0-based: `'world'` starts at column 26.
        assert_eq!(
            parse("esbuild-syntax.txt", APP),
            vec![d(
                "src/App.tsx",
                3,
                26,
                "Expected \";\" but found \"'world'\"",
                Kind::Esbuild
            )]
        );
        assert_eq!(
            parse("esbuild-worker.txt", WAPP),
            vec![d(
                "worker/index.ts",
                14,
                1,
                "Expected \"]\" but found \"const\"",
                Kind::Esbuild
            )]
        );
    }

    #[test]
    fn vite_build_errors() {
        assert_eq!(
            parse("vite-build-syntax.txt", APP),
            vec![d(
                "src/App.tsx",
                3,
                26,
                "Expected \";\" but found \"'world'\"",
                Kind::Build
            )]
        );
        assert_eq!(
            parse("vite-build-import.txt", APP),
            vec![Diagnostic {
                file: Some("src/App.tsx".into()),
                line: None,
                column: None,
                message: "Could not resolve \"./components/Missing\" from \"src/App.tsx\"".into(),
                kind: Kind::Build,
            }]
        );
    }

    #[test]
    fn vite_dev_react() {
        let got = parse("vite-dev-react.txt", APP);
        assert_eq!(
            got,
            vec![
                // Babel (plugin-react) reports a 0-based column: 24 → 25.
                d("src/App.tsx", 3, 25, "Missing semicolon.", Kind::Vite),
                d(
                    "src/App.tsx",
                    2,
                    21,
                    "Failed to resolve import \"./components/Missing\" from \"src/App.tsx\". Does the file exist?",
                    Kind::Vite
                ),
                Diagnostic {
                    file: Some("src/index.css".into()),
                    line: None,
                    column: None,
                    message: "Cannot apply unknown utility class `nonexistent-utility`".into(),
                    kind: Kind::Vite,
                },
            ]
        );
    }

    #[test]
    fn vite_dev_worker_runtime_and_transform() {
        let got = parse("vite-dev-worker.txt", WAPP);
        assert_eq!(
            got,
            vec![
                d(
                    "worker/index.ts",
                    14,
                    44,
                    "Cannot read properties of undefined (reading 'region')",
                    Kind::Runtime
                ),
                d(
                    "worker/index.ts",
                    13,
                    38,
                    "appVersion is not defined",
                    Kind::Runtime
                ),
                // Reported twice by Vite (SSR evaluation, then the request): kept once.
                d("worker/index.ts", 12, 14, "Unexpected \"=\"", Kind::Vite),
            ]
        );
    }

    #[test]
    fn vite_config_error() {
        assert_eq!(
            parse("vite-config-error.txt", WAPP),
            vec![d(
                "vite.config.ts",
                45,
                50,
                "Expected identifier but found \",\"",
                Kind::Esbuild
            )]
        );
    }

    #[test]
    fn node_uncaught_errors() {
        assert_eq!(
            parse("node-typeerror.txt", WAPP),
            vec![d(
                "scripts/seed.cjs",
                4,
                33,
                "TypeError: Cannot read properties of undefined (reading 'region')",
                Kind::Runtime
            )]
        );
        assert_eq!(
            parse("node-referenceerror.txt", WAPP),
            vec![d(
                "scripts/report.mjs",
                3,
                3,
                "ReferenceError: totals is not defined",
                Kind::Runtime
            )]
        );
    }

    #[test]
    fn every_fixture_parses_to_something_and_leaks_no_root() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("txt") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let got = parse_output(&text, &PathMapper::new(&[APP, WAPP]));
            assert!(!got.is_empty(), "{} produced no errors", path.display());
            for diag in got {
                assert!(
                    !diag.message.contains("/tmp/fx"),
                    "{}: {diag:?}",
                    path.display()
                );
                if let Some(f) = &diag.file {
                    assert!(!f.starts_with('/') && !f.contains(".."), "{f}");
                }
            }
        }
    }

    #[test]
    fn noise_is_not_an_error() {
        let text = "npm warn Unknown user config \"nodedir\".\n\n  VITE v7.3.8  ready in 342 ms\n\n  ➜  Local:   http://127.0.0.1:41235/\n2:30:23 AM [vite] (client) hmr update /src/App.tsx, /src/index.css\nError: this line has no stack, so it is just text\nsrc/App.tsx is fine\n";
        assert!(parse_output(text, &PathMapper::new(&[APP])).is_empty());
    }

    #[test]
    fn paths_outside_the_workspace_are_dropped() {
        let m = PathMapper::new(&[APP]);
        assert_eq!(
            m.relativize("/tmp/fx/app/src/App.tsx").as_deref(),
            Some("src/App.tsx")
        );
        assert_eq!(
            m.relativize("file:///tmp/fx/app/src/App.tsx?t=1")
                .as_deref(),
            Some("src/App.tsx")
        );
        assert_eq!(
            m.relativize("./src/App.tsx").as_deref(),
            Some("src/App.tsx")
        );
        assert_eq!(
            m.relativize("/tmp/fx/application/x.ts"),
            None,
            "a sibling with the same prefix is outside"
        );
        assert_eq!(m.relativize("/etc/passwd"), None);
        assert_eq!(m.relativize("../x.ts"), None);
        let got = parse_output("/usr/lib/x.js:3:1: ERROR: boom\n", &m);
        assert_eq!(
            got,
            vec![Diagnostic {
                file: None,
                line: None,
                column: None,
                message: "boom".into(),
                kind: Kind::Esbuild
            }]
        );
    }

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(
            strip_ansi("\x1b[96msrc/App.tsx\x1b[0m:\x1b[93m3\x1b[0m"),
            "src/App.tsx:3"
        );
        assert_eq!(strip_ansi("\x1b]8;;http://x\x07link\x1b]8;;\x07"), "link");
    }
}

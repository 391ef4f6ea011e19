//! Unified diffs of one file, as the model writes them inside `===DIFF:` blocks
//! ([`super::files_format`]): parsing, applying to the file's current content, computing one
//! (for the fake model and tests), and the canonical text form.
//!
//! Invariants:
//! - parsing is lenient where models are sloppy and leniency is safe (wrong header counts, git
//!   preamble, a bare `@@`, a blank context line whose leading space was stripped, `\r\n`) and
//!   strict about syntax: a line that is not diff syntax is an error naming its line;
//! - applying never fuzzes: every context and removed line must match the file exactly (a trailing
//!   `\r` aside); only the position is searched for, nearest the header's line first, and hunks
//!   never overlap or go backwards. A diff either applies whole or not at all;
//! - a `\ No newline at end of file` claim is checked against the file, and the result keeps the
//!   file's line ending and final-newline state unless the diff changes it;
//! - [`UnifiedDiff::compute`]'s output applies to its `old` giving exactly its `new`, and still
//!   does after a trip through the text form (`Display`, which recomputes the header counts from
//!   the hunk bodies, then [`UnifiedDiff::parse`]);
//! - every [`DiffError`] is a sentence written to be fed back to the model (which hunk, which
//!   line, what the file has instead).

use std::fmt;

/// One line of a hunk, without its line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HunkLine {
    Context(String),
    Remove(String),
    Add(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// 1-based first old line from the header; `None` for a bare `@@` (located by context).
    pub old_start: Option<usize>,
    pub new_start: Option<usize>,
    pub lines: Vec<HunkLine>,
    /// The hunk's last old-side line is the file's last line and has no newline.
    pub old_missing_newline: bool,
    /// The hunk's last new-side line is the file's last line and has no newline.
    pub new_missing_newline: bool,
}

impl Hunk {
    fn old_len(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| !matches!(l, HunkLine::Add(_)))
            .count()
    }

    fn new_len(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| !matches!(l, HunkLine::Remove(_)))
            .count()
    }

    fn header(&self) -> String {
        match (self.old_start, self.new_start) {
            (Some(o), Some(n)) => {
                format!("@@ -{},{} +{},{} @@", o, self.old_len(), n, self.new_len())
            }
            (Some(o), None) => format!("@@ -{},{} +{},{} @@", o, self.old_len(), o, self.new_len()),
            _ => "@@".to_string(),
        }
    }
}

/// A unified diff of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedDiff {
    /// The `---` header path as written (`/dev/null` for a new file), if there was one.
    pub old_path: Option<String>,
    /// The `+++` header path as written (`/dev/null` for a deletion), if there was one.
    pub new_path: Option<String>,
    pub hunks: Vec<Hunk>,
}

/// Why a diff could not be parsed or applied. Messages are written to be fed back to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffError {
    /// Line `line` (1-based, within the diff) is not valid diff syntax.
    Malformed { line: usize, message: String },
    /// The diff has no `@@` hunk.
    NoHunks,
    /// Hunk `hunk` (1-based) does not match the file.
    HunkFailed { hunk: usize, message: String },
    /// A new-file diff (`--- /dev/null`) was applied to a file that has content.
    FileExists,
}

impl fmt::Display for DiffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiffError::Malformed { line, message } => write!(f, "diff line {line}: {message}"),
            DiffError::NoHunks => write!(f, "the diff has no @@ hunks"),
            DiffError::HunkFailed { hunk, message } => write!(f, "hunk {hunk} {message}"),
            DiffError::FileExists => write!(
                f,
                "the diff creates a new file (--- /dev/null) but the file already exists; send the whole file or diff against its current content"
            ),
        }
    }
}

impl std::error::Error for DiffError {}

/// At most `max` bytes of `s` (cut at a char boundary), with an ellipsis when shortened.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    format!("{}…", &s[..s.floor_char_boundary(max)])
}

fn strip_eol(line: &str) -> &str {
    let l = line.strip_suffix('\n').unwrap_or(line);
    l.strip_suffix('\r').unwrap_or(l)
}

fn header_path(rest: &str) -> String {
    // `--- a/file\t2024-01-01 …`: the timestamp after a tab is not part of the path.
    rest.split('\t').next().unwrap_or("").trim().to_string()
}

type Range = (usize, Option<usize>);

fn parse_range(s: &str, sign: char) -> Option<Range> {
    let s = s.strip_prefix(sign)?;
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, Some(b.parse().ok()?))),
        None => Some((s.parse().ok()?, None)),
    }
}

/// `@@ -a,b +c,d @@ section` → the two ranges; a bare `@@` (or `@@ @@`) → none.
fn parse_hunk_header(line: &str) -> Result<Option<(Range, Range)>, String> {
    let rest = &line[2..];
    let inner = match rest.find("@@") {
        Some(i) => &rest[..i],
        None => rest,
    };
    let inner = inner.trim();
    if inner.is_empty() {
        return Ok(None);
    }
    let mut it = inner.split_whitespace();
    let bad = || {
        format!(
            "malformed hunk header `{}`; expected `@@ -a,b +c,d @@`",
            cut(line, 80)
        )
    };
    let old = it
        .next()
        .and_then(|s| parse_range(s, '-'))
        .ok_or_else(bad)?;
    let new = it
        .next()
        .and_then(|s| parse_range(s, '+'))
        .ok_or_else(bad)?;
    if it.next().is_some() {
        return Err(bad());
    }
    Ok(Some((old, new)))
}

/// A hunk being read: its lines, which context lines were bare (an empty line, whose leading
/// space a model or editor stripped), and the header's declared counts.
struct HunkBuilder {
    hunk: Hunk,
    bare: Vec<bool>,
    declared: Option<(usize, usize)>,
    /// A `\ No newline` marker has been seen: nothing but another marker may follow in this hunk.
    sealed: bool,
}

impl HunkBuilder {
    fn counts_reached(&self) -> bool {
        self.declared
            .is_some_and(|(o, n)| self.hunk.old_len() >= o && self.hunk.new_len() >= n)
    }

    fn finish(mut self, number: usize) -> Result<Hunk, DiffError> {
        // Trailing bare empty lines are padding (a blank line before the end marker) unless the
        // header says the hunk needs them.
        while self.bare.last() == Some(&true) {
            let needed = match self.declared {
                Some((o, _)) => self.hunk.old_len() > o,
                None => true,
            };
            if !needed {
                break;
            }
            self.bare.pop();
            self.hunk.lines.pop();
        }
        if self.hunk.lines.is_empty() {
            return Err(DiffError::HunkFailed {
                hunk: number,
                message: "is empty".into(),
            });
        }
        Ok(self.hunk)
    }
}

impl UnifiedDiff {
    /// Parses a unified diff of one file. Lines before the first `---`/`@@` that are not diff
    /// headers (`diff --git`, `index …`) are ignored. Header counts are advisory: models miscount,
    /// and the hunk body is what [`UnifiedDiff::apply`] checks strictly against the file.
    pub fn parse(text: &str) -> Result<Self, DiffError> {
        let mut old_path = None;
        let mut new_path = None;
        let mut hunks: Vec<Hunk> = Vec::new();
        let mut current: Option<HunkBuilder> = None;
        let lines: Vec<&str> = text.split_inclusive('\n').map(strip_eol).collect();

        for (i, &line) in lines.iter().enumerate() {
            let n = i + 1;
            if line.starts_with("@@") {
                if let Some(b) = current.take() {
                    hunks.push(b.finish(hunks.len() + 1)?);
                }
                let header = parse_hunk_header(line)
                    .map_err(|message| DiffError::Malformed { line: n, message })?;
                current = Some(HunkBuilder {
                    hunk: Hunk {
                        old_start: header.map(|(o, _)| o.0),
                        new_start: header.map(|(_, nw)| nw.0),
                        lines: Vec::new(),
                        old_missing_newline: false,
                        new_missing_newline: false,
                    },
                    bare: Vec::new(),
                    declared: header.map(|(o, nw)| (o.1.unwrap_or(1), nw.1.unwrap_or(1))),
                    sealed: false,
                });
                continue;
            }
            let Some(b) = current.as_mut() else {
                if let Some(rest) = line.strip_prefix("--- ") {
                    old_path = Some(header_path(rest));
                } else if let Some(rest) = line.strip_prefix("+++ ") {
                    new_path = Some(header_path(rest));
                }
                continue;
            };
            // A second file's headers after a complete hunk: one file per diff block.
            if line.starts_with("--- ")
                && b.counts_reached()
                && lines.get(i + 1).is_some_and(|l| l.starts_with("+++ "))
            {
                return Err(DiffError::Malformed {
                    line: n,
                    message: "a second file header; a DIFF block changes exactly one file".into(),
                });
            }
            if line.starts_with('\\') {
                let Some(last) = b.hunk.lines.last() else {
                    return Err(DiffError::Malformed {
                        line: n,
                        message: "`\\ No newline at end of file` must follow a diff line".into(),
                    });
                };
                match last {
                    HunkLine::Context(_) => {
                        b.hunk.old_missing_newline = true;
                        b.hunk.new_missing_newline = true;
                    }
                    HunkLine::Remove(_) => b.hunk.old_missing_newline = true,
                    HunkLine::Add(_) => b.hunk.new_missing_newline = true,
                }
                b.sealed = true;
                continue;
            }
            let (parsed, bare) = match line.as_bytes().first() {
                None => (HunkLine::Context(String::new()), true),
                Some(b' ') => (HunkLine::Context(line[1..].to_string()), false),
                Some(b'-') => (HunkLine::Remove(line[1..].to_string()), false),
                Some(b'+') => (HunkLine::Add(line[1..].to_string()), false),
                Some(_) => {
                    return Err(DiffError::Malformed {
                        line: n,
                        message: format!(
                            "`{}` is not a diff line; hunk lines start with ' ', '-' or '+'",
                            cut(line, 60)
                        ),
                    })
                }
            };
            if b.sealed && !bare {
                // A line after "\ No newline" can only be the other side's last line
                // (`-old` `\` `+new` `\`), never more context.
                let other_side_ok = matches!(
                    (
                        &parsed,
                        b.hunk.old_missing_newline,
                        b.hunk.new_missing_newline
                    ),
                    (HunkLine::Add(_), true, false) | (HunkLine::Remove(_), false, true)
                );
                if !other_side_ok {
                    return Err(DiffError::Malformed {
                        line: n,
                        message: "a line after `\\ No newline at end of file`, which only the file's last line may carry".into(),
                    });
                }
            }
            b.hunk.lines.push(parsed);
            b.bare.push(bare);
        }
        if let Some(b) = current.take() {
            hunks.push(b.finish(hunks.len() + 1)?);
        }
        // A bare empty line may have been kept after a "\ No newline" marker when it was real
        // trailing padding; `finish` removed it, so nothing more to check here.
        if hunks.is_empty() {
            return Err(DiffError::NoHunks);
        }
        Ok(Self {
            old_path,
            new_path,
            hunks,
        })
    }

    /// The diff creates a file (`--- /dev/null`).
    pub fn is_new_file(&self) -> bool {
        self.old_path.as_deref() == Some("/dev/null")
    }

    /// The diff deletes the file (`+++ /dev/null`).
    pub fn is_deletion(&self) -> bool {
        self.new_path.as_deref() == Some("/dev/null")
    }

    /// A one-hunk diff from `old` to `new` with three lines of context: the common prefix and
    /// suffix are kept, the middle replaced. Not minimal, always correct; for the fake model and
    /// tests. Equal inputs give a diff with no hunks.
    pub fn compute(path: &str, old: &str, new: &str) -> Self {
        const CONTEXT: usize = 3;
        let a: Vec<&str> = old.split_inclusive('\n').collect();
        let b: Vec<&str> = new.split_inclusive('\n').collect();
        let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let suffix = a[prefix..]
            .iter()
            .rev()
            .zip(b[prefix..].iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        let old_path = if old.is_empty() {
            "/dev/null".to_string()
        } else {
            format!("a/{path}")
        };
        let new_path = if new.is_empty() {
            "/dev/null".to_string()
        } else {
            format!("b/{path}")
        };
        if prefix == a.len() && prefix == b.len() {
            return Self {
                old_path: Some(old_path),
                new_path: Some(new_path),
                hunks: Vec::new(),
            };
        }
        let start = prefix.saturating_sub(CONTEXT);
        let a_end = (a.len() - suffix + CONTEXT).min(a.len());
        let tail = a_end - (a.len() - suffix);
        let mut lines = Vec::new();
        for l in &a[start..prefix] {
            lines.push(HunkLine::Context(strip_eol(l).to_string()));
        }
        for l in &a[prefix..a.len() - suffix] {
            lines.push(HunkLine::Remove(strip_eol(l).to_string()));
        }
        for l in &b[prefix..b.len() - suffix] {
            lines.push(HunkLine::Add(strip_eol(l).to_string()));
        }
        for l in &a[a.len() - suffix..a.len() - suffix + tail] {
            lines.push(HunkLine::Context(strip_eol(l).to_string()));
        }
        let old_len = a_end - start;
        let new_len = (b.len() - suffix + tail) - start;
        let hunk = Hunk {
            // Unified diff convention: an empty range starts at the line before it.
            old_start: Some(if old_len == 0 { start } else { start + 1 }),
            new_start: Some(if new_len == 0 { start } else { start + 1 }),
            old_missing_newline: a_end == a.len() && !old.is_empty() && !old.ends_with('\n'),
            new_missing_newline: b.len() - suffix + tail == b.len()
                && !new.is_empty()
                && !new.ends_with('\n'),
            lines,
        };
        Self {
            old_path: Some(old_path),
            new_path: Some(new_path),
            hunks: vec![hunk],
        }
    }

    /// Applies the diff to `original`. Every context and removed line must match exactly (a
    /// trailing `\r` aside); a hunk whose line numbers are off is found by searching outward from
    /// where its header (shifted by earlier hunks' offsets) puts it, nearest first, never
    /// overlapping an earlier hunk. Added lines take the file's line ending.
    pub fn apply(&self, original: &str) -> Result<String, DiffError> {
        if self.is_new_file() && !original.is_empty() {
            return Err(DiffError::FileExists);
        }
        let src: Vec<&str> = original.split_inclusive('\n').collect();
        let eol = if src.first().is_some_and(|l| l.ends_with("\r\n")) {
            "\r\n"
        } else {
            "\n"
        };
        let had_final_newline = original.is_empty() || original.ends_with('\n');
        let mut final_newline = had_final_newline;
        let mut out = String::with_capacity(original.len() + 256);
        let mut cursor = 0usize;
        let mut offset: isize = 0;

        for (i, h) in self.hunks.iter().enumerate() {
            let number = i + 1;
            let fail = |message: String| DiffError::HunkFailed {
                hunk: number,
                message: format!("({}) {message}", h.header()),
            };
            let old: Vec<&str> = h
                .lines
                .iter()
                .filter_map(|l| match l {
                    HunkLine::Context(t) | HunkLine::Remove(t) => Some(t.as_str()),
                    HunkLine::Add(_) => None,
                })
                .collect();
            let pos = if old.is_empty() {
                // Pure insertion: `-a,0` means "after line a". Only the line number places it.
                let start =
                    match h.old_start {
                        Some(s) => s,
                        None if src.is_empty() => 0,
                        None => return Err(fail(
                            "has neither context lines nor line numbers, so it cannot be placed"
                                .into(),
                        )),
                    };
                let p = start as isize + offset;
                if p < cursor as isize || p > src.len() as isize {
                    return Err(fail(format!(
                        "inserts after line {start}, but the file has {} lines",
                        src.len()
                    )));
                }
                p as usize
            } else {
                let expected = match h.old_start {
                    Some(s) => s.max(1) as isize - 1 + offset,
                    None => cursor as isize,
                };
                match find(&src, &old, cursor, expected) {
                    Some(p) => p,
                    None => return Err(fail(mismatch(&src, &old, cursor, expected))),
                }
            };
            let end = pos + old.len();
            if h.old_missing_newline && (end != src.len() || had_final_newline) {
                return Err(fail(
                    "says the file's last line has no newline, but it does (or the hunk is not at the end)".into(),
                ));
            }
            for l in &src[cursor..pos] {
                push_line(&mut out, l, eol);
            }
            let mut k = pos;
            for l in &h.lines {
                match l {
                    HunkLine::Context(_) => {
                        push_line(&mut out, src[k], eol);
                        k += 1;
                    }
                    HunkLine::Remove(_) => k += 1,
                    HunkLine::Add(t) => {
                        out.push_str(t);
                        out.push_str(eol);
                    }
                }
            }
            cursor = end;
            if let Some(s) = h.old_start {
                let declared = if old.is_empty() { s } else { s.max(1) - 1 };
                offset = pos as isize - declared as isize;
            }
            if cursor == src.len() {
                final_newline = if h.new_missing_newline {
                    false
                } else if h.old_missing_newline {
                    true
                } else {
                    had_final_newline
                };
            } else if h.new_missing_newline {
                return Err(fail(
                    "says its last line ends the file without a newline, but the file continues after it".into(),
                ));
            }
        }
        for l in &src[cursor..] {
            push_line(&mut out, l, eol);
        }
        if !final_newline {
            if let Some(s) = out.strip_suffix(eol) {
                out.truncate(s.len());
            }
        }
        Ok(out)
    }
}

fn push_line(out: &mut String, line: &str, eol: &str) {
    out.push_str(line);
    if !line.ends_with('\n') {
        out.push_str(eol);
    }
}

fn matches_at(src: &[&str], old: &[&str], p: usize) -> bool {
    old.iter()
        .zip(&src[p..p + old.len()])
        .all(|(want, have)| strip_eol(have) == *want)
}

/// The position nearest `expected` (not before `min`) where `old` matches, if any.
fn find(src: &[&str], old: &[&str], min: usize, expected: isize) -> Option<usize> {
    if old.len() > src.len() || min > src.len() - old.len() {
        return None;
    }
    let max = (src.len() - old.len()) as isize;
    let min = min as isize;
    let expected = expected.clamp(min, max);
    let span = (expected - min).max(max - expected);
    for d in 0..=span {
        for p in [expected - d, expected + d] {
            if (min..=max).contains(&p) && matches_at(src, old, p as usize) {
                return Some(p as usize);
            }
            if d == 0 {
                break;
            }
        }
    }
    None
}

/// Says where the hunk stops matching at its expected place, so the model can fix its diff.
fn mismatch(src: &[&str], old: &[&str], min: usize, expected: isize) -> String {
    let p = expected.max(min as isize).max(0) as usize;
    for (j, want) in old.iter().enumerate() {
        match src.get(p + j) {
            None => {
                return format!(
                    "does not apply: it expects `{}` at line {}, but the file has only {} lines",
                    cut(want, 120),
                    p + j + 1,
                    src.len()
                )
            }
            Some(have) if strip_eol(have) != *want => {
                return format!(
                    "does not apply: its context and removed lines are not in the file; at line {} the file has `{}` where the hunk expects `{}`",
                    p + j + 1,
                    cut(strip_eol(have), 120),
                    cut(want, 120)
                )
            }
            Some(_) => {}
        }
    }
    "does not apply: its lines are only found overlapping an earlier hunk".into()
}

impl fmt::Display for UnifiedDiff {
    /// The canonical text form, with counts recomputed from the hunk bodies.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.old_path {
            writeln!(f, "--- {p}")?;
        }
        if let Some(p) = &self.new_path {
            writeln!(f, "+++ {p}")?;
        }
        for h in &self.hunks {
            writeln!(f, "{}", h.header())?;
            let last_old = h.lines.iter().rposition(|l| !matches!(l, HunkLine::Add(_)));
            let last_new = h
                .lines
                .iter()
                .rposition(|l| !matches!(l, HunkLine::Remove(_)));
            for (i, l) in h.lines.iter().enumerate() {
                match l {
                    HunkLine::Context(t) => writeln!(f, " {t}")?,
                    HunkLine::Remove(t) => writeln!(f, "-{t}")?,
                    HunkLine::Add(t) => writeln!(f, "+{t}")?,
                }
                let marks = (h.old_missing_newline && last_old == Some(i))
                    || (h.new_missing_newline && last_new == Some(i));
                if marks {
                    writeln!(f, "\\ No newline at end of file")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn diff(s: &str) -> UnifiedDiff {
        UnifiedDiff::parse(s).unwrap()
    }

    #[test]
    fn applies_multiple_hunks() {
        let orig: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let d = diff(
            "--- a/f\n+++ b/f\n@@ -2,3 +2,3 @@\n line 2\n-line 3\n+LINE 3\n line 4\n@@ -15,3 +15,4 @@\n line 15\n line 16\n+inserted\n line 17\n",
        );
        let out = d.apply(&orig).unwrap();
        let want = orig
            .replace("line 3\n", "LINE 3\n")
            .replace("line 16\n", "line 16\ninserted\n");
        assert_eq!(out, want);
    }

    #[test]
    fn hunks_are_found_at_an_offset_but_context_is_never_fuzzed() {
        let orig: String = (1..=30).map(|i| format!("l{i}\n")).collect();
        // The header says line 5, the text is at line 20.
        let d = diff("@@ -5,2 +5,2 @@\n l20\n-l21\n+L21\n");
        assert_eq!(d.apply(&orig).unwrap(), orig.replace("l21\n", "L21\n"));
        // The second hunk's expected place shifts with the first hunk's offset.
        let d = diff("@@ -1,1 +1,1 @@\n-l11\n+X\n@@ -3,1 +3,1 @@\n-l13\n+Y\n");
        assert_eq!(
            d.apply(&orig).unwrap(),
            orig.replace("l11\n", "X\n").replace("l13\n", "Y\n")
        );
        // One character of context differs: refused, with where and what.
        let d = diff("@@ -20,2 +20,2 @@\n l20 \n-l21\n+L21\n");
        let e = d.apply(&orig).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DiffError::HunkFailed { hunk: 1, .. }));
        assert!(msg.contains("line 20") && msg.contains("`l20 `"), "{msg}");
        // Nearest match wins when the context repeats.
        let rep = "x\n}\nx\n}\nx\n}\n";
        let d = diff("@@ -3,2 +3,2 @@\n x\n-}\n+};\n");
        assert_eq!(d.apply(rep).unwrap(), "x\n}\nx\n};\nx\n}\n");
    }

    #[test]
    fn hunks_may_not_overlap_or_go_backwards() {
        let orig = "a\nb\nc\n";
        let d = diff("@@ -2 +2 @@\n-b\n+B\n@@ -1 +1 @@\n-a\n+A\n");
        assert!(matches!(
            d.apply(orig),
            Err(DiffError::HunkFailed { hunk: 2, .. })
        ));
    }

    #[test]
    fn no_newline_at_end_of_file() {
        // Change the last line of a file that has no final newline.
        let d = diff("@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n");
        assert_eq!(d.apply("a\nb").unwrap(), "a\nc");
        // The same hunk refuses a file that does end with a newline.
        assert!(d.apply("a\nb\n").is_err());
        // Add a final newline.
        let d = diff("@@ -1 +1 @@\n-b\n\\ No newline at end of file\n+b\n");
        assert_eq!(d.apply("b").unwrap(), "b\n");
        // Remove it.
        let d = diff("@@ -1 +1 @@\n-b\n+b\n\\ No newline at end of file\n");
        assert_eq!(d.apply("b\n").unwrap(), "b");
        // Context that is the unterminated last line.
        let d = diff("@@ -1,2 +1,3 @@\n-a\n+A\n+A2\n b\n\\ No newline at end of file\n");
        assert_eq!(d.apply("a\nb").unwrap(), "A\nA2\nb");
        // Untouched unterminated ends stay unterminated; appending after one terminates it.
        let d = diff("@@ -1 +1 @@\n-a\n+A\n");
        assert_eq!(d.apply("a\nb").unwrap(), "A\nb");
        let d = diff("@@ -1,2 +1,3 @@\n a\n b\n+c\n");
        assert_eq!(d.apply("a\nb").unwrap(), "a\nb\nc");
        // A "no newline" claim in the middle of a file is refused.
        let d = diff("@@ -1 +1 @@\n-a\n+A\n\\ No newline at end of file\n");
        assert!(d.apply("a\nb\n").is_err());
    }

    #[test]
    fn new_file_and_deletion_diffs() {
        let d = diff("--- /dev/null\n+++ b/src/new.ts\n@@ -0,0 +1,2 @@\n+export const a = 1;\n+export const b = 2;\n");
        assert!(d.is_new_file() && !d.is_deletion());
        assert_eq!(
            d.apply("").unwrap(),
            "export const a = 1;\nexport const b = 2;\n"
        );
        assert_eq!(d.apply("x\n"), Err(DiffError::FileExists));
        let d = diff("--- a/x\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n");
        assert!(d.is_deletion());
        assert_eq!(d.apply("a\nb\n").unwrap(), "");
    }

    #[test]
    fn lenient_about_counts_and_headers_strict_about_syntax() {
        // Wrong counts (models miscount) and git preamble are fine.
        let d = diff("diff --git a/f b/f\nindex 123..456 100644\n--- a/f\t2024-01-01\n+++ b/f\n@@ -1,7 +1,9 @@ fn main\n-a\n+b\n");
        assert_eq!(d.old_path.as_deref(), Some("a/f"));
        assert_eq!(d.apply("a\n").unwrap(), "b\n");
        // Bare @@ hunks are located by their context.
        let d = diff("@@\n x\n-y\n+Y\n@@ @@\n z\n+w\n");
        assert_eq!(d.apply("q\nx\ny\nz\n").unwrap(), "q\nx\nY\nz\nw\n");
        // A blank context line whose leading space was stripped still matches.
        let d = diff("@@ -1,3 +1,3 @@\n a\n\n-b\n+B\n");
        assert_eq!(d.apply("a\n\nb\n").unwrap(), "a\n\nB\n");
        // Trailing blank padding is not context when the counts do not need it.
        let d = diff("@@ -1,1 +1,1 @@\n-a\n+b\n\n\n");
        assert_eq!(d.hunks[0].lines.len(), 2);
        // But it is when they do.
        let d = diff("@@ -1,2 +1,2 @@\n-a\n+b\n\n");
        assert_eq!(d.apply("a\n\n").unwrap(), "b\n\n");
        // Syntax errors say where.
        for (s, line) in [
            ("@@ -x +1 @@\n-a\n", 1),
            ("@@ -1 +1 @@\n-a\nfoo\n", 3),
            ("@@ -1 +1 @@\n\\ No newline at end of file\n", 2),
            (
                "@@ -1 +1 @@\n-a\n+b\n--- a/g\n+++ b/g\n@@ -1 +1 @@\n-c\n+d\n",
                4,
            ),
            ("@@ -1,2 +1,2 @@\n a\n\\ No newline at end of file\n b\n", 4),
        ] {
            match UnifiedDiff::parse(s) {
                Err(DiffError::Malformed { line: l, .. }) => assert_eq!(l, line, "{s:?}"),
                other => panic!("{s:?}: {other:?}"),
            }
        }
        assert_eq!(
            UnifiedDiff::parse("--- a\n+++ b\n"),
            Err(DiffError::NoHunks)
        );
        assert!(matches!(
            UnifiedDiff::parse("@@ -1 +1 @@\n@@ -2 +2 @@\n-a\n"),
            Err(DiffError::HunkFailed { hunk: 1, .. })
        ));
        // A removed SQL comment line (`--- x`) inside a hunk is a removal, not a header.
        let d = diff("@@ -1,2 +1,1 @@\n--- comment\n keep\n");
        assert_eq!(d.apply("-- comment\nkeep\n").unwrap(), "keep\n");
    }

    #[test]
    fn crlf_files_keep_their_line_endings() {
        let d = diff("@@ -1,2 +1,3 @@\n a\n-b\n+B\n+C\n");
        assert_eq!(d.apply("a\r\nb\r\n").unwrap(), "a\r\nB\r\nC\r\n");
        let d = diff("@@ -1,2 +1,2 @@\r\n a\r\n-b\r\n+B\r\n");
        assert_eq!(d.apply("a\nb\n").unwrap(), "a\nB\n");
    }

    #[test]
    fn pure_insertions_use_line_numbers() {
        let d = diff("@@ -2,0 +3,1 @@\n+new\n");
        assert_eq!(d.apply("a\nb\nc\n").unwrap(), "a\nb\nnew\nc\n");
        let d = diff("@@ -9,0 +10,1 @@\n+new\n");
        assert!(d.apply("a\n").is_err());
        let d = diff("@@\n+new\n");
        assert!(d
            .apply("a\n")
            .unwrap_err()
            .to_string()
            .contains("cannot be placed"));
        assert_eq!(d.apply("").unwrap(), "new\n");
    }

    /// A small deterministic generator (no randomness source in tests either); the files
    /// format's tests use it too.
    pub(in crate::domain::codegen) struct Lcg(pub(in crate::domain::codegen) u64);
    impl Lcg {
        pub(in crate::domain::codegen) fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn text(&mut self) -> String {
            let n = self.next() % 12;
            let mut s = String::new();
            for _ in 0..n {
                s.push_str(["a", "b", "", "c", "}", "  x"][(self.next() % 6) as usize]);
                s.push('\n');
            }
            if self.next().is_multiple_of(3) {
                s.pop();
            }
            s
        }
    }

    #[test]
    fn compute_then_apply_round_trips() {
        let mut g = Lcg(7);
        for _ in 0..3000 {
            let old = g.text();
            let new = g.text();
            let d = UnifiedDiff::compute("f.txt", &old, &new);
            assert_eq!(
                d.apply(&old).as_deref(),
                Ok(new.as_str()),
                "{old:?} -> {new:?}\n{d}"
            );
            if d.hunks.is_empty() {
                continue;
            }
            // And through its text form.
            let text = d.to_string();
            let back = UnifiedDiff::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back.apply(&old).as_deref(), Ok(new.as_str()), "{text}");
        }
    }
}

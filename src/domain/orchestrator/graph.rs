//! The ticket dependency graph's rules, over any key type (the model's local ticket keys while
//! tickets are generated, [`crate::domain::ids::TicketId`]s once stored).
//!
//! Invariants:
//! - [`validate`] names the first problem exactly (an unknown ticket, a self-edge, a duplicate,
//!   or one cycle of `blocks` edges written out in order), in words a model can act on;
//! - a `blocks` edge `a → b` means "a depends on b": b must be completed before a starts;
//! - [`file_conflicts`] only ever adds an edge from a later ticket to an earlier one (by their
//!   order), so its edges never form a cycle, and never between two tickets that already have
//!   an edge (either way): the stored graph keeps one edge per pair;
//! - everything is deterministic: the same input gives the same problem and the same edges.

use super::model::DependencyType;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

/// One edge: `from` depends on `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge<K> {
    pub from: K,
    pub to: K,
    pub kind: DependencyType,
}

impl<K> Edge<K> {
    pub fn new(from: K, to: K, kind: DependencyType) -> Self {
        Self { from, to, kind }
    }
}

/// What is wrong with a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem<K> {
    /// An edge names a ticket that does not exist.
    Unknown { from: K, to: K },
    /// A ticket depends on itself.
    SelfEdge(K),
    /// Two edges join the same pair the same way.
    Duplicate { from: K, to: K },
    /// `blocks` edges form a cycle: each depends on the next, the last on the first.
    Cycle(Vec<K>),
}

impl<K: Display> Display for Problem<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Unknown { from, to } => {
                write!(f, "ticket \"{from}\" depends on \"{to}\", which is not a ticket")
            }
            Problem::SelfEdge(k) => write!(f, "ticket \"{k}\" depends on itself"),
            Problem::Duplicate { from, to } => write!(
                f,
                "ticket \"{from}\" depends on \"{to}\" more than once (list each dependency once, as blocks or as related)"
            ),
            Problem::Cycle(keys) => {
                let mut path: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
                if let Some(first) = path.first().cloned() {
                    path.push(first);
                }
                write!(
                    f,
                    "the blocks dependencies form a cycle: {} (each is blocked by the next, so none can ever start)",
                    path.join(" → ")
                )
            }
        }
    }
}

/// Checks `edges` over `nodes` (in ticket order): every end is a node, no self-edges, at most one
/// edge per ordered pair, and no cycle among the `blocks` edges.
pub fn validate<K: Ord + Clone>(nodes: &[K], edges: &[Edge<K>]) -> Result<(), Problem<K>> {
    let known: BTreeSet<&K> = nodes.iter().collect();
    let mut seen = BTreeSet::new();
    for e in edges {
        if !known.contains(&e.from) || !known.contains(&e.to) {
            return Err(Problem::Unknown {
                from: e.from.clone(),
                to: e.to.clone(),
            });
        }
        if e.from == e.to {
            return Err(Problem::SelfEdge(e.from.clone()));
        }
        if !seen.insert((&e.from, &e.to)) {
            return Err(Problem::Duplicate {
                from: e.from.clone(),
                to: e.to.clone(),
            });
        }
    }
    match find_cycle(nodes, edges) {
        Some(c) => Err(Problem::Cycle(c)),
        None => Ok(()),
    }
}

/// One cycle of `blocks` edges (each member depends on the next, the last on the first), found
/// deterministically: nodes are visited in their given order, edges in their given order.
/// Edges naming unknown nodes are ignored.
pub fn find_cycle<K: Ord + Clone>(nodes: &[K], edges: &[Edge<K>]) -> Option<Vec<K>> {
    let index: BTreeMap<&K, usize> = nodes.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for e in edges.iter().filter(|e| e.kind == DependencyType::Blocks) {
        if let (Some(&a), Some(&b)) = (index.get(&e.from), index.get(&e.to)) {
            out[a].push(b);
        }
    }
    // Iterative depth-first search: 0 unvisited, 1 on the current path, 2 finished.
    let mut mark = vec![0u8; nodes.len()];
    for start in 0..nodes.len() {
        if mark[start] != 0 {
            continue;
        }
        let mut path: Vec<usize> = vec![start];
        let mut next: Vec<usize> = vec![0];
        mark[start] = 1;
        while let Some(&node) = path.last() {
            let i = *next.last().unwrap();
            if let Some(&to) = out[node].get(i) {
                *next.last_mut().unwrap() += 1;
                match mark[to] {
                    0 => {
                        mark[to] = 1;
                        path.push(to);
                        next.push(0);
                    }
                    1 => {
                        let at = path.iter().position(|&n| n == to).unwrap();
                        return Some(path[at..].iter().map(|&n| nodes[n].clone()).collect());
                    }
                    _ => {}
                }
            } else {
                mark[node] = 2;
                path.pop();
                next.pop();
            }
        }
    }
    None
}

/// `file_conflict` edges for tickets that change the same files: for each pair sharing a file,
/// the later ticket (in `tickets` order) depends on the earlier one, unless the pair already has
/// an edge in `existing` (either way). Paths are compared exactly.
pub fn file_conflicts<K: Ord + Clone>(
    tickets: &[(K, Vec<String>)],
    existing: &[Edge<K>],
) -> Vec<Edge<K>> {
    let joined: BTreeSet<(&K, &K)> = existing
        .iter()
        .flat_map(|e| [(&e.from, &e.to), (&e.to, &e.from)])
        .collect();
    let sets: Vec<BTreeSet<&str>> = tickets
        .iter()
        .map(|(_, files)| files.iter().map(String::as_str).collect())
        .collect();
    let mut out = Vec::new();
    for j in 0..tickets.len() {
        for i in 0..j {
            let (a, b) = (&tickets[j].0, &tickets[i].0);
            if a == b || joined.contains(&(a, b)) {
                continue;
            }
            if sets[j].intersection(&sets[i]).next().is_some() {
                out.push(Edge::new(
                    a.clone(),
                    b.clone(),
                    DependencyType::FileConflict,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use DependencyType::*;

    fn e(from: &str, to: &str, kind: DependencyType) -> Edge<String> {
        Edge::new(from.into(), to.into(), kind)
    }

    fn nodes(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn a_valid_graph_passes() {
        let n = nodes(&["a", "b", "c"]);
        let edges = [
            e("b", "a", Blocks),
            e("c", "b", Blocks),
            e("c", "a", Related),
        ];
        assert_eq!(validate(&n, &edges), Ok(()));
        assert_eq!(find_cycle(&n, &edges), None);
    }

    #[test]
    fn each_problem_is_named_exactly() {
        let n = nodes(&["a", "b", "c"]);
        let p = validate(&n, &[e("a", "zz", Blocks)]).unwrap_err();
        assert_eq!(
            p.to_string(),
            "ticket \"a\" depends on \"zz\", which is not a ticket"
        );
        let p = validate(&n, &[e("b", "b", Related)]).unwrap_err();
        assert_eq!(p, Problem::SelfEdge("b".into()));
        let p = validate(&n, &[e("b", "a", Blocks), e("b", "a", Related)]).unwrap_err();
        assert!(matches!(p, Problem::Duplicate { .. }), "{p:?}");
        // The reverse pair is not a duplicate (it is a cycle when both block).
        let p = validate(&n, &[e("a", "b", Blocks), e("b", "a", Blocks)]).unwrap_err();
        assert_eq!(p, Problem::Cycle(nodes(&["a", "b"])));
        assert_eq!(
            p.to_string(),
            "the blocks dependencies form a cycle: \"a\" → \"b\" → \"a\" (each is blocked by the next, so none can ever start)"
        );
    }

    #[test]
    fn only_blocks_edges_make_cycles() {
        let n = nodes(&["a", "b", "c"]);
        let related = [e("a", "b", Related), e("b", "a", Related)];
        assert_eq!(validate(&n, &related), Ok(()));
        let long = [
            e("a", "b", Blocks),
            e("b", "c", Blocks),
            e("c", "a", Blocks),
        ];
        assert_eq!(find_cycle(&n, &long), Some(nodes(&["a", "b", "c"])));
        // A cycle reached from a node outside it is reported without that node.
        let n = nodes(&["x", "a", "b"]);
        let tail = [
            e("x", "a", Blocks),
            e("a", "b", Blocks),
            e("b", "a", Blocks),
        ];
        assert_eq!(find_cycle(&n, &tail), Some(nodes(&["a", "b"])));
    }

    #[test]
    fn file_conflicts_point_back_and_never_repeat_an_edge() {
        let tickets = vec![
            ("a".to_string(), vec!["src/App.tsx".to_string()]),
            (
                "b".to_string(),
                vec!["src/App.tsx".into(), "src/x.ts".into()],
            ),
            ("c".to_string(), vec!["src/x.ts".to_string()]),
            ("d".to_string(), vec!["src/App.tsx".to_string()]),
            ("e".to_string(), vec![]),
        ];
        let existing = [e("b", "a", Blocks), e("a", "d", Related)];
        let got = file_conflicts(&tickets, &existing);
        assert_eq!(
            got,
            vec![e("c", "b", FileConflict), e("d", "b", FileConflict),]
        );
        // Later → earlier only: together with any acyclic graph they stay acyclic among
        // themselves.
        let n = nodes(&["a", "b", "c", "d", "e"]);
        assert_eq!(find_cycle(&n, &got), None);
        let mut all = existing.to_vec();
        all.extend(got);
        assert_eq!(validate(&n, &all), Ok(()));
    }
}

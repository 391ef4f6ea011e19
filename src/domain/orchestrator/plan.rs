//! The development plan of a project, computed from its tickets and their `blocks` dependencies
//! on every read (the contract's Plan object): a topological order, the parallel work streams
//! (levels), the critical path by estimated hours, the tickets ready now, and a cycle if the
//! stored graph has one.
//!
//! Invariants (tested below):
//! - deterministic: every choice between tickets prefers the lower `orderIndex`, then the lower
//!   `number` (the plan never depends on the order rows arrive in);
//! - `order` lists each ticket once, every ticket after its blockers; `levels[k]` holds the
//!   tickets whose blockers are all in levels `< k` (and at least one in `k - 1`);
//! - the critical path is a chain of blockers with the greatest sum of estimated hours (a
//!   ticket without an estimate counts 0; on equal hours the longer chain, then the lower key);
//! - a cycle never makes the computation loop: when tickets are left that all wait on each
//!   other, one cycle among them is reported, its tickets are set aside, and the rest is
//!   ordered as if the cycle's edges were not there. Only the first cycle found is reported;
//!   every ticket on any cycle is left out of `order`, `levels` and the critical path.
//! - linear in tickets plus dependencies (times a logarithm): 10,000 tickets take milliseconds.

use super::model::TicketStatus;
use crate::domain::ids::TicketId;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// What the plan needs of a ticket.
#[derive(Debug, Clone)]
pub struct PlanTicket {
    pub id: TicketId,
    pub number: u32,
    pub order_index: i64,
    pub estimated_hours: Option<u32>,
    pub status: TicketStatus,
}

/// A `blocks` dependency: `ticket` cannot start before `blocker` is completed.
#[derive(Debug, Clone)]
pub struct Blocks {
    pub ticket: TicketId,
    pub blocker: TicketId,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CriticalPath {
    #[schema(value_type = Vec<String>)]
    pub ticket_ids: Vec<TicketId>,
    /// The sum of the path's estimated hours.
    pub hours: u64,
}

/// The contract's Plan object.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Every ticket (but those on a cycle), each after its blockers.
    #[schema(value_type = Vec<String>)]
    pub order: Vec<TicketId>,
    /// Parallel work streams: level k holds the tickets whose blockers are all in lower levels.
    #[schema(value_type = Vec<Vec<String>>)]
    pub levels: Vec<Vec<TicketId>>,
    pub critical_path: CriticalPath,
    /// The tickets whose status is `ready` now.
    #[schema(value_type = Vec<String>)]
    pub ready: Vec<TicketId>,
    /// One cycle of the stored graph, each ticket blocked by the next and the last by the
    /// first; `null` when there is none.
    #[schema(value_type = Option<Vec<String>>)]
    pub cycle: Option<Vec<TicketId>>,
}

/// Computes the plan. Dependencies naming a ticket not in `tickets`, and self-edges, are
/// ignored (the store refuses them; the plan does not trust it).
pub fn compute(tickets: &[PlanTicket], blocks: &[Blocks]) -> Plan {
    let n = tickets.len();
    // Dense indices sorted by the tie-break key, so "lower index" means "preferred".
    let mut sorted: Vec<usize> = (0..n).collect();
    sorted.sort_by_key(|&i| (tickets[i].order_index, tickets[i].number, &tickets[i].id));
    let mut rank = vec![0usize; n];
    for (r, &i) in sorted.iter().enumerate() {
        rank[i] = r;
    }
    let t = |r: usize| &tickets[sorted[r]];
    let by_id: HashMap<&TicketId, usize> = tickets
        .iter()
        .enumerate()
        .map(|(i, tk)| (&tk.id, rank[i]))
        .collect();
    // Edges blocker → ticket, by rank, without duplicates.
    let mut edges: Vec<(usize, usize)> = blocks
        .iter()
        .filter_map(|b| Some((*by_id.get(&b.blocker)?, *by_id.get(&b.ticket)?)))
        .filter(|(a, b)| a != b)
        .collect();
    edges.sort_unstable();
    edges.dedup();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in &edges {
        succ[a].push(b);
        pred[b].push(a);
    }
    let mut indegree: Vec<usize> = pred.iter().map(Vec::len).collect();
    let mut done = vec![false; n];
    let mut removed = vec![false; n];
    let mut heap: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&r| indegree[r] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    let mut cycle: Option<Vec<usize>> = None;
    let mut emitted = 0;
    let mut settled = 0;
    loop {
        while let Some(Reverse(r)) = heap.pop() {
            done[r] = true;
            order.push(r);
            emitted += 1;
            for &s in &succ[r] {
                indegree[s] -= 1;
                if indegree[s] == 0 && !removed[s] {
                    heap.push(Reverse(s));
                }
            }
        }
        if emitted + settled == n {
            break;
        }
        // Every ticket left waits on another ticket left: walking to the preferred unfinished
        // blocker must come back to a ticket already on the walk.
        let start = (0..n).find(|&r| !done[r] && !removed[r]).unwrap_or(0);
        let found = find_cycle(start, &pred, &done, &removed);
        for &r in &found {
            removed[r] = true;
            settled += 1;
        }
        for &r in &found {
            for &s in &succ[r] {
                if !removed[s] && !done[s] {
                    indegree[s] -= 1;
                    if indegree[s] == 0 {
                        heap.push(Reverse(s));
                    }
                }
            }
        }
        cycle.get_or_insert(found);
    }
    // Levels and the critical path over the ordered tickets (blockers on a cycle ignored).
    let mut level = vec![0usize; n];
    // (hours, tickets) of the heaviest chain ending at each ticket, and the blocker before it.
    let mut best: Vec<(u64, usize)> = vec![(0, 0); n];
    let mut back: Vec<Option<usize>> = vec![None; n];
    for &r in &order {
        let mut lv = 0;
        let mut chain: (u64, usize) = (0, 0);
        let mut via = None;
        for &p in &pred[r] {
            if removed[p] {
                continue;
            }
            lv = lv.max(level[p] + 1);
            // Heavier first, then longer; on a tie the lower rank (the first seen, as `pred`
            // is in rank order) stays.
            if via.is_none() || best[p] > chain {
                chain = best[p];
                via = Some(p);
            }
        }
        level[r] = lv;
        best[r] = (
            chain.0 + t(r).estimated_hours.unwrap_or(0) as u64,
            chain.1 + 1,
        );
        back[r] = via;
    }
    let mut levels: Vec<Vec<TicketId>> = Vec::new();
    let mut by_level: Vec<Vec<usize>> = Vec::new();
    for &r in &order {
        if by_level.len() <= level[r] {
            by_level.resize(level[r] + 1, Vec::new());
        }
        by_level[level[r]].push(r);
    }
    for mut l in by_level {
        l.sort_unstable();
        levels.push(l.into_iter().map(|r| t(r).id.clone()).collect());
    }
    let end = order
        .iter()
        .copied()
        .max_by(|&a, &b| best[a].cmp(&best[b]).then(b.cmp(&a)));
    let mut path = Vec::new();
    let mut at = end;
    while let Some(r) = at {
        path.push(r);
        at = back[r];
    }
    path.reverse();
    let hours = end.map(|r| best[r].0).unwrap_or(0);
    let ready = (0..n)
        .filter(|&r| t(r).status == TicketStatus::Ready)
        .map(|r| t(r).id.clone())
        .collect();
    Plan {
        order: order.iter().map(|&r| t(r).id.clone()).collect(),
        levels,
        critical_path: CriticalPath {
            ticket_ids: path.into_iter().map(|r| t(r).id.clone()).collect(),
            hours,
        },
        ready,
        cycle: cycle.map(|c| c.into_iter().map(|r| t(r).id.clone()).collect()),
    }
}

/// One cycle through tickets neither ordered nor set aside, found by walking from `start` to
/// the preferred such blocker until a ticket repeats; returned with each ticket blocked by the
/// next and the last by the first. Every such ticket has such a blocker (else it would have
/// been ordered), so the walk ends within as many steps as there are tickets.
fn find_cycle(start: usize, pred: &[Vec<usize>], done: &[bool], removed: &[bool]) -> Vec<usize> {
    let mut pos: HashMap<usize, usize> = HashMap::new();
    let mut walk = Vec::new();
    let mut at = start;
    loop {
        if let Some(&i) = pos.get(&at) {
            return walk[i..].to_vec();
        }
        pos.insert(at, walk.len());
        walk.push(at);
        match pred[at].iter().copied().find(|&p| !done[p] && !removed[p]) {
            Some(p) => at = p,
            // Unreachable by the invariant above; a lone ticket is the safe answer.
            None => return vec![at],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tk(n: u32, order_index: i64, hours: Option<u32>, status: TicketStatus) -> PlanTicket {
        PlanTicket {
            id: TicketId::from(format!("t{n}")),
            number: n,
            order_index,
            estimated_hours: hours,
            status,
        }
    }

    fn simple(n: u32, hours: u32) -> PlanTicket {
        tk(n, n as i64, Some(hours), TicketStatus::Pending)
    }

    fn b(ticket: u32, blocker: u32) -> Blocks {
        Blocks {
            ticket: format!("t{ticket}").into(),
            blocker: format!("t{blocker}").into(),
        }
    }

    fn ids(v: &[TicketId]) -> Vec<&str> {
        v.iter().map(|i| i.as_str()).collect()
    }

    fn levels(p: &Plan) -> Vec<Vec<&str>> {
        p.levels.iter().map(|l| ids(l)).collect()
    }

    #[test]
    fn empty_project() {
        let p = compute(&[], &[]);
        assert!(p.order.is_empty() && p.levels.is_empty() && p.ready.is_empty());
        assert_eq!(p.critical_path.hours, 0);
        assert!(p.critical_path.ticket_ids.is_empty());
        assert_eq!(p.cycle, None);
    }

    #[test]
    fn diamond_order_levels_and_critical_path() {
        // 1 → 2 → 4, 1 → 3 → 4; 3 is heavier.
        let t = [simple(1, 2), simple(2, 1), simple(3, 5), simple(4, 1)];
        let d = [b(2, 1), b(3, 1), b(4, 2), b(4, 3)];
        let p = compute(&t, &d);
        assert_eq!(ids(&p.order), ["t1", "t2", "t3", "t4"]);
        assert_eq!(levels(&p), vec![vec!["t1"], vec!["t2", "t3"], vec!["t4"]]);
        assert_eq!(ids(&p.critical_path.ticket_ids), ["t1", "t3", "t4"]);
        assert_eq!(p.critical_path.hours, 8);
        assert_eq!(p.cycle, None);
    }

    #[test]
    fn ties_break_by_order_index_then_number_whatever_the_input_order() {
        // Same order index: number decides; a lower order index wins over a lower number.
        let mut t = vec![
            tk(3, 0, None, TicketStatus::Ready),
            tk(1, 0, None, TicketStatus::Ready),
            tk(2, -1, None, TicketStatus::Ready),
        ];
        let p = compute(&t, &[]);
        assert_eq!(ids(&p.order), ["t2", "t1", "t3"]);
        assert_eq!(ids(&p.ready), ["t2", "t1", "t3"]);
        assert_eq!(levels(&p), vec![vec!["t2", "t1", "t3"]]);
        // All estimates missing: every chain weighs 0, a single ticket; the preferred one.
        assert_eq!(ids(&p.critical_path.ticket_ids), ["t2"]);
        t.reverse();
        assert_eq!(compute(&t, &[]), p);
        // Equal hours: the longer chain, then the preferred end.
        let t = [simple(1, 0), simple(2, 0), simple(3, 0)];
        let p = compute(&t, &[b(3, 2)]);
        assert_eq!(ids(&p.critical_path.ticket_ids), ["t2", "t3"]);
        let t = [simple(1, 3), simple(2, 1), simple(3, 2)];
        let p = compute(&t, &[b(2, 1), b(3, 1)]);
        // 1→2 is 4 h, 1→3 is 5 h.
        assert_eq!(ids(&p.critical_path.ticket_ids), ["t1", "t3"]);
        let t = [simple(1, 3), simple(2, 2), simple(3, 2)];
        let p = compute(&t, &[b(2, 1), b(3, 1)]);
        assert_eq!(
            ids(&p.critical_path.ticket_ids),
            ["t1", "t2"],
            "tie: lower key"
        );
    }

    #[test]
    fn disconnected_components() {
        let t = [
            simple(1, 1),
            simple(2, 10),
            simple(3, 1),
            simple(4, 1),
            simple(5, 4),
        ];
        // 1 → 3, 2 alone, 4 → 5.
        let p = compute(&t, &[b(3, 1), b(5, 4)]);
        assert_eq!(ids(&p.order), ["t1", "t2", "t3", "t4", "t5"]);
        assert_eq!(levels(&p), vec![vec!["t1", "t2", "t4"], vec!["t3", "t5"]]);
        assert_eq!(ids(&p.critical_path.ticket_ids), ["t2"]);
        assert_eq!(p.critical_path.hours, 10);
    }

    #[test]
    fn cycles_are_reported_and_the_rest_is_ordered() {
        // 1 → 2 → 3 → 2 (a cycle of 2 and 3), 3 → 4, 5 alone.
        let t = [
            simple(1, 1),
            simple(2, 1),
            simple(3, 1),
            simple(4, 1),
            simple(5, 1),
        ];
        let p = compute(&t, &[b(2, 1), b(3, 2), b(2, 3), b(4, 3)]);
        let cycle = p.cycle.clone().unwrap();
        let mut sorted = ids(&cycle);
        sorted.sort();
        assert_eq!(sorted, ["t2", "t3"]);
        assert_eq!(ids(&p.order), ["t1", "t5", "t4"]);
        assert_eq!(levels(&p), vec![vec!["t1", "t4", "t5"]]);
        // A self-cycle through one ticket is ignored as a self-edge; a whole-graph cycle.
        let t = [simple(1, 1), simple(2, 1), simple(3, 1)];
        let p = compute(&t, &[b(1, 1), b(2, 1), b(3, 2), b(1, 3)]);
        assert_eq!(p.cycle.as_ref().map(|c| c.len()), Some(3));
        assert!(p.order.is_empty() && p.levels.is_empty());
        assert!(p.critical_path.ticket_ids.is_empty());
        // Two separate cycles: the first is reported, both are left out, nothing loops.
        let t: Vec<_> = (1..=5).map(|n| simple(n, 1)).collect();
        let p = compute(&t, &[b(1, 2), b(2, 1), b(3, 4), b(4, 3)]);
        let mut c = ids(p.cycle.as_ref().unwrap()).to_vec();
        c.sort();
        assert_eq!(c, ["t1", "t2"]);
        assert_eq!(ids(&p.order), ["t5"]);
    }

    #[test]
    fn each_cycle_ticket_is_blocked_by_the_next() {
        let t: Vec<_> = (1..=4).map(|n| simple(n, 1)).collect();
        let d = [b(1, 2), b(2, 3), b(3, 4), b(4, 2)];
        let p = compute(&t, &d);
        let c = p.cycle.unwrap();
        for (i, x) in c.iter().enumerate() {
            let next = &c[(i + 1) % c.len()];
            assert!(
                d.iter().any(|e| &e.ticket == x && &e.blocker == next),
                "{x} blocked by {next}"
            );
        }
        // t1 waited only on the cycle: ordered as if its edges were not there.
        assert_eq!(ids(&p.order), ["t1"]);
    }

    #[test]
    fn unknown_tickets_and_duplicate_edges_are_ignored() {
        let t = [simple(1, 1), simple(2, 1)];
        let p = compute(&t, &[b(2, 1), b(2, 1), b(2, 9), b(9, 1)]);
        assert_eq!(levels(&p), vec![vec!["t1"], vec!["t2"]]);
    }

    /// A layered graph of `n` tickets: each depends on up to three of the previous layer.
    pub(crate) fn big(n: u32) -> (Vec<PlanTicket>, Vec<Blocks>) {
        let width = 50;
        let t: Vec<PlanTicket> = (1..=n)
            .map(|i| {
                tk(
                    i,
                    (i % 97) as i64,
                    Some(i % 7),
                    if i % 5 == 0 {
                        TicketStatus::Ready
                    } else {
                        TicketStatus::Pending
                    },
                )
            })
            .collect();
        let mut d = Vec::new();
        for i in (width + 1)..=n {
            for k in [1, 17, 33] {
                // One of the `width` tickets before it.
                d.push(b(i, i - width + (i * k) % width));
            }
        }
        (t, d)
    }

    #[test]
    fn ten_thousand_tickets() {
        let (t, d) = big(10_000);
        let p = compute(&t, &d);
        assert_eq!(p.order.len(), 10_000);
        assert_eq!(p.cycle, None);
        let pos: HashMap<&TicketId, usize> =
            p.order.iter().enumerate().map(|(i, id)| (id, i)).collect();
        for e in &d {
            assert!(pos[&e.blocker] < pos[&e.ticket], "order respects blocks");
        }
        let lv: HashMap<&TicketId, usize> = p
            .levels
            .iter()
            .enumerate()
            .flat_map(|(k, l)| l.iter().map(move |id| (id, k)))
            .collect();
        for e in &d {
            assert!(lv[&e.blocker] < lv[&e.ticket], "levels respect blocks");
        }
        assert_eq!(p.ready.len(), 2_000);
        // The critical path is a chain of blockers.
        for w in p.critical_path.ticket_ids.windows(2) {
            assert!(d.iter().any(|e| e.blocker == w[0] && e.ticket == w[1]));
        }
        // Deterministic whatever the input order.
        let mut shuffled = t.clone();
        shuffled.reverse();
        let mut rd = d.clone();
        rd.reverse();
        assert_eq!(compute(&shuffled, &rd), p);
        // A cycle added among them is found without looping.
        let mut d2 = d.clone();
        d2.push(Blocks {
            ticket: d[0].blocker.clone(),
            blocker: d[0].ticket.clone(),
        });
        let p2 = compute(&t, &d2);
        assert!(p2.cycle.is_some());
        assert!(p2.order.len() < 10_000);
    }
}

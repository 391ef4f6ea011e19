//! Issue 13's plan figure (`BENCH_ONLY=plan`): computing a project's plan (topological order,
//! levels, critical path, ready tickets) for 10,000 tickets with about three `blocks`
//! dependencies each, as `GET /api/orchestrator/projects/:id` does on every read. Pure
//! computation on the host (release build), no Worker involved; target ≤ 50 ms.

use super::ms;
use byte_platform::domain::ids::TicketId;
use byte_platform::domain::orchestrator::model::TicketStatus;
use byte_platform::domain::orchestrator::plan::{compute, Blocks, PlanTicket};
use std::time::{Duration, Instant};

const TICKETS: u32 = 10_000;
const RUNS: usize = 21;
const TARGET: Duration = Duration::from_millis(50);

/// A layered plan: each ticket after the first 50 is blocked by up to three of the 50 before
/// it; order indexes repeat (ties), a fifth of the tickets are ready.
fn graph() -> (Vec<PlanTicket>, Vec<Blocks>) {
    let id = |i: u32| TicketId::from(format!("tkt_{i:032x}"));
    let tickets = (1..=TICKETS)
        .map(|i| PlanTicket {
            id: id(i),
            number: i,
            order_index: (i % 97) as i64,
            estimated_hours: (i % 7 != 0).then_some(i % 13),
            status: if i % 5 == 0 {
                TicketStatus::Ready
            } else {
                TicketStatus::Pending
            },
        })
        .collect();
    let width = 50;
    let mut blocks = Vec::new();
    for i in (width + 1)..=TICKETS {
        for k in [1, 17, 33] {
            blocks.push(Blocks {
                ticket: id(i),
                blocker: id(i - width + (i * k) % width),
            });
        }
    }
    (tickets, blocks)
}

pub fn figures() {
    let (tickets, blocks) = graph();
    let mut times = Vec::with_capacity(RUNS);
    let mut levels = 0;
    let mut path = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let plan = compute(&tickets, &blocks);
        times.push(t.elapsed());
        levels = plan.levels.len();
        path = plan.critical_path.ticket_ids.len();
        assert_eq!(plan.order.len(), tickets.len());
    }
    times.sort();
    let median = times[RUNS / 2];
    let worst = times[RUNS - 1];
    println!();
    println!(
        "plan of {TICKETS} tickets, {} blocks dependencies ({levels} levels, critical path of {path} tickets), {RUNS} runs:",
        blocks.len()
    );
    println!(
        "  median {} | worst {} | target ≤ {} — {}",
        ms(median),
        ms(worst),
        ms(TARGET),
        if worst <= TARGET { "met" } else { "NOT met" }
    );
}

// The board's rules: tickets grouped into one column per status (lifecycle order), and where a
// ticket may move. The server computes each ticket's `allowedTransitions` (its lifecycle and
// blockers); the board never offers a move outside them.
import { TICKET_STATUSES, type Ticket, type TicketStatus } from "./model";

export interface Column { status: TicketStatus; tickets: Ticket[] }

/** Every status's column, in lifecycle order, each by `orderIndex` then number. */
export function columns(tickets: Ticket[]): Column[] {
  const by = new Map<TicketStatus, Ticket[]>(TICKET_STATUSES.map((s) => [s, []]));
  for (const t of tickets) by.get(t.status)?.push(t);
  return TICKET_STATUSES.map((status) => ({
    status,
    tickets: by.get(status)!.sort((a, b) => a.orderIndex - b.orderIndex || a.number - b.number),
  }));
}

/** Whether `ticket` may be moved to `to` now (never to its own column). */
export function canMove(ticket: Pick<Ticket, "status" | "allowedTransitions">, to: TicketStatus): boolean {
  return to !== ticket.status && ticket.allowedTransitions.includes(to);
}

/** The columns a dragged ticket may be dropped on, in lifecycle order. */
export function dropTargets(ticket: Pick<Ticket, "status" | "allowedTransitions">): TicketStatus[] {
  return TICKET_STATUSES.filter((s) => canMove(ticket, s));
}

/** The MIME type a dragged card carries its id in (so drops from elsewhere are ignored). */
export const DRAG_TYPE = "application/x-byte-ticket";

// Projects and tickets for the orchestrator's unit tests.
import type { Dependency, ProjectDetail, Ticket, TicketStatus } from "./model";

export const PID = "prj_00000000000000000000000000000001";
export const tid = (n: number) => `tkt_${String(n).padStart(32, "0")}`;

export function ticket(n: number, over: Partial<Ticket> = {}): Ticket {
  return {
    id: tid(n), projectId: PID, number: n, title: `Ticket ${n}`, description: "", type: "feature", priority: "medium",
    status: "pending", orderIndex: n, category: null, tags: [], branchName: null, prUrl: null, commitCount: 0,
    estimatedHours: 2, actualHours: null, affectedFiles: [], acceptanceCriteria: [], assigneeUserId: null,
    createdAt: 1, updatedAt: 1, startedAt: null, completedAt: null, allowedTransitions: [], ...over,
  };
}

export const blocks = (ticketN: number, onN: number): Dependency => ({ ticketId: tid(ticketN), dependsOnTicketId: tid(onN), type: "blocks" });

export function detail(over: Partial<ProjectDetail> = {}): ProjectDetail {
  const tickets = over.tickets ?? [
    ticket(1, { status: "ready", allowedTransitions: ["assigned" as TicketStatus] }),
    ticket(2, { estimatedHours: 5 }),
    ticket(3),
  ];
  return {
    id: PID, appId: null, title: "Shop", description: null, source: "new", status: "review", allowedActions: ["approve", "regenerate", "archive"], githubRepoUrl: null,
    githubRepoName: null, githubDefaultBranch: "main", stakeholderUserId: "usr_1", analysisResult: null,
    generation: { state: "idle", step: null, error: null }, totalTickets: tickets.length, completedTickets: 0,
    createdAt: 1, updatedAt: 1, analyzedAt: 1, approvedAt: null, completedAt: null,
    tickets,
    dependencies: [blocks(2, 1), blocks(3, 2)],
    plan: {
      order: tickets.map((t) => t.id), levels: [[tid(1)], [tid(2)], [tid(3)]],
      criticalPath: { ticketIds: [tid(1), tid(2), tid(3)], hours: 9 }, ready: [tid(1)], cycle: null,
    },
    ...over,
  };
}

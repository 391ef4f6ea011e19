// One sentence per error code, for whoever sees it; the server's own message follows when it
// adds something (it names the field, the limit or the reason).
import type { ErrorCode } from "./types";

export const ERROR_MESSAGES: Record<ErrorCode | "network", string> = {
  E000: "Something went wrong on our side. Please try again in a moment.",
  E001: "You need to sign in again, or you are not allowed to do that.",
  E002: "We could not find that. It may have been deleted, or it is not shared with you.",
  E003: "Too many requests. Please wait a little and try again.",
  E004: "Some of what you entered is not valid.",
  E005: "The AI model could not finish this request.",
  E006: "The app's sandbox is not available right now.",
  E007: "Deployment failed.",
  network: "You appear to be offline, or the server cannot be reached.",
};

export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorCode | "network";
  readonly detail: string;
  readonly fields: Record<string, string>;
  readonly retryAfter: number | null;

  constructor(status: number, code: ErrorCode | "network", detail: string, fields: Record<string, string> = {}, retryAfter: number | null = null) {
    // A 503 is a feature this deployment has not set up (or a service down), not a crash.
    // A 409 is the state of things refusing (a run under way, a branch with no work), not the
    // person's input: said as such, with the server's reason.
    super(status === 503 && code === "E000" ? `Not available on this server right now${detail ? ` (${detail})` : "."}`
      : status === 409 && code === "E004" ? describe409(detail) : describe(code, detail));
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }
}

export function describe(code: ErrorCode | "network", detail?: string): string {
  const base = ERROR_MESSAGES[code] ?? ERROR_MESSAGES.E000;
  if (!detail || detail === base) return base;
  return `${base} (${detail})`;
}

function describe409(detail: string): string {
  const base = "That cannot be done right now.";
  return detail ? `${base} (${detail})` : base;
}

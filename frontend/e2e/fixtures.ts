// The browser tests' `test`: Playwright's, with one difference. A navigation (`goto`, `reload`)
// that gets no answer at all within a minute is made once more, and says so in the output.
//
// Why: twice in about ten runs of the suite on this machine kind, `wrangler dev` left one page
// navigation unanswered for over two minutes (its log shows it writing the answer to a socket
// the browser had since closed) while every request before and after was answered at once: once
// the first page of a fresh instance, once a deployed app's first page. What the tests check is
// what the page then shows, which is still asserted in full; a navigation that fails or answers
// wrongly is not retried.
import { test as base, errors, type BrowserContext, type Page } from "@playwright/test";

const FIRST_TRY_MS = 60_000;

type Navigate = (this: Page, ...args: unknown[]) => Promise<unknown>;

function patient(page: Page): void {
  for (const name of ["goto", "reload"] as const) {
    const original = page[name].bind(page) as unknown as (...args: unknown[]) => Promise<unknown>;
    const wrapped: Navigate = async function (...args: unknown[]) {
      const given = name === "goto" ? args[1] : args[0];
      const options = { ...(typeof given === "object" && given ? given : {}) } as { timeout?: number };
      const first = [...args];
      first[name === "goto" ? 1 : 0] = { ...options, timeout: Math.min(options.timeout ?? FIRST_TRY_MS, FIRST_TRY_MS) };
      try {
        return await original(...first);
      } catch (e) {
        if (!(e instanceof errors.TimeoutError)) throw e;
        console.warn(`[e2e] ${name} ${name === "goto" ? String(args[0]) : page.url()} had no answer within ${FIRST_TRY_MS / 1000} s; navigating once more`);
        return original(...args);
      }
    };
    (page as unknown as Record<string, Navigate>)[name] = wrapped;
  }
}

function patientContext(context: BrowserContext): void {
  context.pages().forEach(patient);
  context.on("page", patient);
}

export const test = base.extend({
  context: async ({ context }, use) => {
    patientContext(context);
    await use(context);
  },
});

export { expect } from "@playwright/test";

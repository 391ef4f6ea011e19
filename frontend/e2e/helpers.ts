import AxeBuilder from "@axe-core/playwright";
import { expect, type Page } from "@playwright/test";

export const ARTIFACTS = process.env.BYTE_E2E_ARTIFACTS ?? "../target/web-e2e";
export const PASSWORD = "correct horse battery";

let n = 0;
export function uniqueEmail(tag: string): string {
  n += 1;
  return `${tag}-${Date.now()}-${n}@example.com`;
}

/**
 * Signs a new user up through the sign-up screen and waits for the home screen. The one place
 * the sign-up flow lives: when sign-up gains an email verification step (dev outbox), adapt it here.
 */
export async function signUp(page: Page, email: string, password = PASSWORD): Promise<void> {
  await page.goto("/signup");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Create your account" }).click();
  await expect(page.getByRole("heading", { name: "What do you want to build?" })).toBeVisible();
}

/** No serious or critical axe-core violation on the page (the preview's own app excluded). */
export async function checkA11y(page: Page, screen: string): Promise<void> {
  const results = await new AxeBuilder({ page }).exclude("iframe").exclude(".monaco-editor").analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(bad.map((v) => `${screen}: ${v.id} (${v.impact}) ${v.help} — ${v.nodes.map((x) => x.target.join(" ")).join(", ")}`)).toEqual([]);
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
}

/** Collects what the page's Content-Security-Policy refused (expected to stay empty). */
export function watchCsp(page: Page): string[] {
  const refused: string[] = [];
  page.on("console", (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to (load|execute|create|evaluate|frame)/i.test(t)) refused.push(t);
  });
  return refused;
}

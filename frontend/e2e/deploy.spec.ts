// One-click deploy in a real browser: a generated app is deployed from its workspace, the
// progress reaches "live", the deployed build serves the app's own text on its own address;
// My apps shows it live; a second deployment supersedes the first, which is rolled back to;
// undeploying (confirmed) leaves the address answering the platform's "Nothing is deployed here".
import { type Page } from "@playwright/test";
import { expect, test } from "./fixtures";
import { checkA11y, shot, signUp, uniqueEmail } from "./helpers";

const MARK = `${process.env.BYTE_E2E_MARK ?? `MARKweb${Date.now()}`}dep`;
const LONG = 5 * 60_000;

/** Records every step the progress shows, in order (read back after the deployment settles). */
async function watchSteps(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { deploySteps: string[] };
    w.deploySteps = [];
    const seen = () => {
      const el = document.querySelector('[data-testid="deploy-progress"]');
      const step = el?.getAttribute("data-step");
      if (step && w.deploySteps[w.deploySteps.length - 1] !== step) w.deploySteps.push(step);
    };
    new MutationObserver(seen).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-step"] });
  });
}

async function stepsSeen(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { deploySteps: string[] }).deploySteps);
}

test("a generated app is deployed, served on its own address, rolled back and taken down", async ({ page }) => {
  await signUp(page, uniqueEmail("deployer"));
  await page.getByLabel("Describe the app you want").fill(`scripted-app ${MARK}`);
  await page.getByRole("button", { name: "Build it" }).click();
  await page.waitForURL(/\/apps\/[^/]+$/);
  const workspace = new URL(page.url()).pathname;
  await expect(page.getByTestId("run-status")).toHaveText("Ready", { timeout: LONG });

  const panel = page.getByTestId("deploy-panel");
  const state = panel.getByTestId("deploy-state");
  const history = panel.getByTestId("deploy-history");
  await expect(state).toHaveText("Not deployed");
  const deploy = panel.getByRole("button", { name: "Deploy", exact: true });
  await expect(deploy).toBeEnabled();

  // Deploy: the progress moves forward only, and reaches live.
  await watchSteps(page);
  await deploy.click();
  await expect(state).toHaveText("Live (#1)", { timeout: LONG });
  const order = ["starting", "building", "storing", "publishing"];
  const steps = await stepsSeen(page);
  expect(steps.map((s) => order.indexOf(s))).toEqual([...steps.map((s) => order.indexOf(s))].sort((a, b) => a - b));
  expect(steps.every((s) => order.includes(s))).toBe(true);
  await expect(history.locator('[data-number="1"]')).toHaveAttribute("data-status", "live");
  await expect(history.locator('[data-number="1"]')).toContainText("from v");

  const link = panel.getByTestId("deploy-url");
  const url = await link.getAttribute("href");
  expect(url).toMatch(/^http:\/\/[0-9a-f]{32}\.apps\.localhost:\d+\/$/);
  await checkA11y(page, "workspace-deploy");
  await shot(page, "workspace-deploy");

  // The deployed build, in a new tab, renders the generated app's own text.
  // The link opens a new tab on exactly that address; the tab is opened here by the test rather than
  // by the click, so the navigation is bounded (playwright.config.ts) like every other.
  const open = panel.getByRole("link", { name: "Open the deployed app" });
  await expect(open).toHaveAttribute("href", url!);
  await expect(open).toHaveAttribute("target", "_blank");
  const site = await page.context().newPage();
  const answer = await site.goto(url!);
  expect(answer?.status()).toBe(200);
  expect(site.url()).toBe(url);
  await expect(site.getByRole("heading", { name: MARK })).toBeVisible();
  await expect(site.getByText(`Hello from ${MARK}`)).toBeVisible();
  await shot(site, "deployed-app");

  // My apps shows it live, with its address.
  await page.getByRole("link", { name: "My apps" }).click();
  await page.getByLabel("Search").fill(MARK);
  await expect(page.getByTestId("app-card")).toHaveCount(1);
  await expect(page.getByTestId("app-card").getByTestId("app-deployed").getByRole("link")).toHaveAttribute("href", url!);
  await checkA11y(page, "my-apps-deployed");
  await page.goto(workspace);
  await expect(state).toHaveText("Live (#1)");

  // A second deployment supersedes the first; rolling back publishes #1's build as #3.
  await deploy.click();
  await expect(state).toHaveText("Live (#2)", { timeout: LONG });
  await expect(history.locator('[data-number="1"]')).toHaveAttribute("data-status", "superseded");
  await history.getByRole("button", { name: "Roll back to deployment #1" }).click();
  await expect(state).toHaveText("Live (#3)", { timeout: LONG });
  await expect(history.locator('[data-number="3"]')).toContainText("rollback of #1");
  await expect(history.locator('[data-number="2"]')).toHaveAttribute("data-status", "superseded");
  await site.reload();
  await expect(site.getByRole("heading", { name: MARK })).toBeVisible();

  // Undeploy, confirmed: the address answers the platform's page.
  await history.locator('[data-number="3"]').getByRole("button", { name: "Undeploy" }).click();
  const dialog = page.getByRole("dialog", { name: "Take the app down?" });
  await expect(dialog).toBeVisible();
  await checkA11y(page, "workspace-undeploy");
  await dialog.getByRole("button", { name: "Undeploy" }).click();
  await expect(dialog).toBeHidden();
  await expect(state).toHaveText("Not deployed");
  await expect(history.locator('[data-number="3"]')).toHaveAttribute("data-status", "undeployed");
  const gone = await site.goto(url!);
  expect(gone?.status()).toBe(404);
  await expect(site.getByRole("heading", { name: "Nothing is deployed here" })).toBeVisible();
});

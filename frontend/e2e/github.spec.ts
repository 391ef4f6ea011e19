// GitHub in a real browser, against the fake GitHub the test process runs (its consent screen
// is a page to fill like GitHub's): connect the exporter app from the workspace, create a
// repository and push the generated app, push again (nothing changed); then a project's
// repository, a ticket's branch and its pull request from the ticket page, the PR linked there.
import { expect, test } from "@playwright/test";
import { checkA11y, shot, signUp, uniqueEmail, watchCsp } from "./helpers";

const MARK = `${process.env.BYTE_E2E_MARK ?? `MARKweb${Date.now()}`}gh`;
const LONG = 5 * 60_000;

test("GitHub is connected, an app pushed, and a ticket gets its branch and pull request", async ({ page }) => {
  const refused = watchCsp(page);
  await signUp(page, uniqueEmail("exporter"));
  await page.getByLabel("Describe the app you want").fill(`scripted-app ${MARK}`);
  await page.getByRole("button", { name: "Build it" }).click();
  await page.waitForURL(/\/apps\/[^/]+$/);
  const workspace = new URL(page.url()).pathname;
  await expect(page.getByTestId("run-status")).toHaveText("Ready", { timeout: LONG });

  // Connect: the platform sends the browser to the exporter app's consent screen, which comes
  // back to the workspace.
  const panel = page.locator("section", { has: page.getByRole("heading", { name: "GitHub", exact: true }) });
  await panel.getByRole("link", { name: "Connect GitHub" }).click();
  await expect(page.getByRole("heading", { name: "Authorize Byte exporter" })).toBeVisible();
  await expect(page.getByText(/It asks for: .*repo/)).toBeVisible();
  const login = `octo-${Date.now()}`;
  await page.getByLabel("GitHub login").fill(login);
  await page.getByRole("button", { name: "Authorize" }).click();
  await page.waitForURL((u) => u.pathname === workspace);

  // A repository on the connected account, with the app's files pushed as its first commit.
  await expect(panel.getByLabel(`New repository on ${login}`)).toBeVisible();
  const repoName = `app-${MARK.toLowerCase()}`.slice(0, 60);
  await panel.getByLabel(`New repository on ${login}`).fill(repoName);
  await panel.getByRole("button", { name: "Create repository and push" }).click();
  await expect(panel.getByRole("status")).toHaveText(/^Pushed [0-9a-f]{7}: \d+ file\(s\) written, \d+ deleted\.$/, { timeout: LONG });
  await expect(panel.getByTestId("github-repo-link")).toHaveText(`${login}/${repoName}`);
  const commit = panel.getByTestId("github-last-commit");
  await expect(commit).toHaveText(/^[0-9a-f]{7}$/);
  expect(await commit.getAttribute("href")).toMatch(new RegExp(`/${login}/${repoName}/commit/[0-9a-f]{40}$`));
  await checkA11y(page, "workspace-github");
  await shot(page, "workspace-github");
  // Pushing again with nothing changed commits nothing.
  const first = await commit.textContent();
  await panel.getByRole("button", { name: "Push", exact: true }).click();
  await expect(panel.getByRole("status")).toHaveText("Nothing changed since the last push.");
  await expect(commit).toHaveText(first!);

  // A project, approved; its first ready ticket gets the project's repository, a branch and a
  // pull request from the ticket page.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Projects" }).click();
  await page.getByRole("button", { name: "New project" }).click();
  await page.getByLabel("A new app").check();
  await page.getByLabel(/^Title/).fill(`Export ${MARK}`);
  await page.getByLabel("Description (optional)").fill(`A small shop ${MARK}`);
  await page.getByRole("button", { name: "Create and analyse" }).click();
  await page.waitForURL(/\/projects\/prj_[0-9a-f]{32}$/);
  await expect(page.getByTestId("project-status")).toHaveText("Review", { timeout: LONG });
  await page.getByRole("button", { name: "Approve the plan" }).click();
  await expect(page.getByTestId("project-status")).toHaveText("Approved");
  const ready = page.locator('[data-testid="ticket-card"][data-ready]').first();
  await ready.getByRole("link").click();
  await page.waitForURL(/\/projects\/prj_[0-9a-f]{32}\/tickets\/tkt_[0-9a-f]{32}$/);

  const gh = page.getByTestId("ticket-github");
  await expect(gh.getByText("The project has no repository yet.")).toBeVisible();
  await gh.getByRole("button", { name: "Create repository" }).click();
  await expect(gh.getByRole("status")).toHaveText(/^Created .+\.$/);
  await gh.getByRole("button", { name: "Create branch" }).click();
  await expect(gh.getByRole("status")).toHaveText(/^Branch ticket-\d+-[a-z0-9-]+ created\.$/);
  const branch = (await gh.getByRole("status").textContent())!.replace(/^Branch (\S+) created\.$/, "$1");
  await expect(page.getByText(branch, { exact: true })).toBeVisible();
  await gh.getByRole("button", { name: "Open PR" }).click();
  await expect(gh.getByRole("status")).toHaveText(/^Pull request #\d+ opened\.$/);
  const pr = page.getByRole("link", { name: "Pull request", exact: true });
  await expect(pr).toBeVisible();
  expect(await pr.getAttribute("href")).toMatch(new RegExp(`/${login}/[^/]+/pull/\\d+$`));
  await expect(gh.getByRole("button", { name: "Open PR" })).toHaveCount(0);
  await checkA11y(page, "ticket-github");
  await shot(page, "ticket-github");
  expect(refused).toEqual([]);
});

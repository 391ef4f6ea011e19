// GitHub in a real browser, against the fake GitHub the test process runs (its consent screen
// is a page to fill like GitHub's): connect the exporter app from the workspace, create a
// repository and push the generated app, push again (nothing changed); then, for a project of
// that app, the project's repository, a ticket's branch and its pull request from the ticket
// page (refused while the branch has no work), and another ticket implemented by the agent,
// arriving in review with its branch and pull request linked.
import { expect, test } from "./fixtures";
import { checkA11y, PASSWORD, shot, signUp, uniqueEmail, watchCsp } from "./helpers";

const MARK = `${process.env.BYTE_E2E_MARK ?? `MARKweb${Date.now()}`}gh`;
const LONG = 5 * 60_000;

test("GitHub is connected, an app pushed, and a ticket gets its branch and pull request", async ({ page }) => {
  const refused = watchCsp(page);
  const email = uniqueEmail("exporter");
  await signUp(page, email);
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

  // A project of this app, approved; the app's files go into the project's repository.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Projects" }).click();
  await page.getByRole("button", { name: "New project" }).click();
  await page.getByLabel("One of my apps").check();
  await page.getByLabel("App", { exact: true }).selectOption({ index: 1 });
  await page.getByLabel(/^Title/).fill(`Export ${MARK}`);
  await page.getByRole("button", { name: "Create and analyse" }).click();
  await page.waitForURL(/\/projects\/prj_[0-9a-f]{32}$/);
  const projectUrl = new URL(page.url()).pathname;
  await expect(page.getByTestId("project-status")).toHaveText("Review", { timeout: LONG });
  await page.getByRole("button", { name: "Approve the plan" }).click();
  await expect(page.getByTestId("project-status")).toHaveText("Approved");
  const ready = page.locator('[data-testid="ticket-card"][data-ready]');
  await expect(ready.nth(1)).toBeVisible();
  const hrefs = await Promise.all([0, 1].map((n) => ready.nth(n).getByRole("link").getAttribute("href")));

  // One ready ticket by hand: the project's repository and the ticket's branch; no pull request
  // while the branch has nothing of its own.
  await page.goto(hrefs[1]!);
  const gh = page.getByTestId("ticket-github");
  await expect(gh.getByText("The project has no repository yet.")).toBeVisible();
  await gh.getByRole("button", { name: "Create repository" }).click();
  await expect(gh.getByRole("status")).toHaveText(/^Created .+\.$/);
  await gh.getByRole("button", { name: "Create branch" }).click();
  await expect(gh.getByRole("status")).toHaveText(/^Branch ticket-\d+-[a-z0-9-]+ created\.$/);
  const branch = (await gh.getByRole("status").textContent())!.replace(/^Branch (\S+) created\.$/, "$1");
  await expect(page.getByText(branch, { exact: true })).toBeVisible();
  // A pull request needs work on the branch: GitHub's refusal is said in words.
  await gh.getByRole("button", { name: "Open PR" }).click();
  await expect(gh.getByRole("alert")).toContainText(`\`${branch}\` has no commits beyond \`main\` yet: push work to it first`);
  await expect(page.getByRole("link", { name: "Pull request", exact: true })).toHaveCount(0);
  await checkA11y(page, "ticket-github");
  await shot(page, "ticket-github");

  // The other, implemented by the agent: its description asks the scripted model for an edit
  // (set through the API from another context); the run ends with the ticket in review and a
  // pull request of its branch, linked on the page.
  const ticketId = hrefs[0]!.split("/").pop()!;
  const other = await page.context().browser()!.newContext({ baseURL: process.env.BYTE_E2E_BASE_URL ?? "http://localhost:8787" });
  const signedIn = await other.request.post("/api/auth/login", { data: { email, password: PASSWORD } });
  expect(signedIn.status()).toBe(200);
  const token = ((await signedIn.json()) as { token: string }).token;
  const head = `HEADgh${Date.now()}`;
  const described = await other.request.patch(`/api/orchestrator/tickets/${ticketId}`, {
    headers: { Authorization: `Bearer ${token}` },
    data: { description: `Change the heading. scripted-edit ${head}` },
  });
  expect(described.status()).toBe(200);
  await other.close();
  await page.goto(hrefs[0]!);
  const work = page.getByTestId("ticket-implement");
  await expect(page.getByText(`scripted-edit ${head}`)).toBeVisible();
  await work.getByRole("button", { name: "Implement", exact: true }).click();
  await expect(work).toHaveAttribute("data-state", "succeeded", { timeout: LONG });
  await expect(work.getByRole("status")).toHaveText("Implemented; review the pull request.");
  const implemented = page.getByRole("link", { name: "Pull request", exact: true });
  await expect(implemented).toBeVisible();
  expect(await implemented.getAttribute("href")).toMatch(new RegExp(`/${login}/[^/]+/pull/\\d+$`));
  await expect(page.getByText(/^ticket-\d+-[a-z0-9-]+$/)).toBeVisible();
  await checkA11y(page, "ticket-implemented");
  await shot(page, "ticket-implemented");
  await page.goto(projectUrl);
  await expect(page.locator('[data-testid="board-column"][data-status="review"] [data-testid="ticket-card"]')).toHaveCount(1);
  expect(refused).toEqual([]);
});

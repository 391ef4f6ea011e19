// Browser tests against a running instance (started by tests/it/web.rs: wrangler dev +
// byte-sandbox + the scripted fake model). Drives Debian's Chromium; never downloads a browser.
import { defineConfig } from "@playwright/test";

const artifacts = process.env.BYTE_E2E_ARTIFACTS ?? "../target/web-e2e";

export default defineConfig({
  testDir: "e2e",
  timeout: 15 * 60_000,
  expect: { timeout: 30_000 },
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  outputDir: `${artifacts}/test-results`,
  use: {
    baseURL: process.env.BYTE_E2E_BASE_URL ?? "http://localhost:8787",
    headless: true,
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
    // A navigation that is not answered fails within two minutes and names itself, instead of
    // waiting out the 15-minute test timeout.
    navigationTimeout: 120_000,
    launchOptions: {
      executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
      args: [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ],
    },
  },
});

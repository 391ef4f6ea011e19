//! The web app in a real browser: `npx playwright test` (frontend/e2e) driving Debian's Chromium
//! against a real `wrangler dev` serving the built web app, a real `byte-sandbox` and the
//! scripted fake model. The browser test owns the assertions; this test starts the services,
//! hands Playwright the base URL and a scripted prompt mark, and fails with its output.
//! Screenshots land in `target/web-e2e/`.

use crate::fake_llm;
use crate::harness::{sandbox_agent, Instance, SANDBOX_SECRET};
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_web_app_in_chromium() {
    let frontend = root().join("frontend");
    let playwright = frontend.join("node_modules/.bin/playwright");
    assert!(
        playwright.exists(),
        "the web app's packages are not installed: run `make build` (or `make test`)"
    );
    let chromium = std::env::var("CHROMIUM_BIN")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .into_iter()
                .find(|p| std::path::Path::new(p).exists())
                .map(String::from)
        })
        .expect(
            "Chromium is not installed: run scripts/ensure-tools.sh (apt-get install chromium)",
        );

    let fake = fake_llm::url();
    let instance = Instance::start(&[
        ("SANDBOX_BACKEND", "local".into()),
        ("SANDBOX_URL", sandbox_agent()),
        ("SANDBOX_SECRET", SANDBOX_SECRET.into()),
        ("OPENAI_COMPATIBLE_BASE_URL", format!("{fake}/v1")),
        ("OPENAI_COMPATIBLE_API_KEY", "web-platform-key".into()),
        ("MODEL_CONFIG", fake_llm::scripted_model_config()),
        ("RATE_LIMIT_AI", "1000/60".into()),
        ("RATE_LIMIT_AI_TOKENS", "1000000/60".into()),
        ("LLM_TIMEOUT_MS", "30000".into()),
    ]);
    // The browser uses `localhost` (not 127.0.0.1) so that previews at
    // `<app>.preview.localhost:<port>` resolve to the same server.
    let base = instance.base.replace("127.0.0.1", "localhost");
    let artifacts = root().join("target/web-e2e");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mark = format!("MARKweb{}", std::process::id());

    let out = Command::new(&playwright)
        .arg("test")
        .current_dir(&frontend)
        .env("BYTE_E2E_BASE_URL", &base)
        .env("BYTE_E2E_MARK", &mark)
        .env("BYTE_E2E_ARTIFACTS", &artifacts)
        .env("CHROMIUM_BIN", &chromium)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .env("CI", "1")
        .output()
        .expect("run playwright");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "playwright failed ({}); screenshots and traces in {}; wrangler log in {}\n{stdout}\n{stderr}",
        out.status,
        artifacts.display(),
        instance.state.join("wrangler.log").display()
    );
    println!("{stdout}");
}

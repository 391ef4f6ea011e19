//! The web app in a real browser: `npx playwright test` (frontend/e2e) driving Debian's Chromium
//! against a real `wrangler dev` serving the built web app, a real `byte-sandbox` and the
//! scripted fake model. The browser test owns the assertions; this test starts the services,
//! hands Playwright the base URL and a scripted prompt mark, and fails with its output.
//! Screenshots land in `target/web-e2e/`.

use crate::fake_github as gh;
use crate::fake_llm;
use crate::harness::{sandbox_agent, Instance, SANDBOX_SECRET};
use std::path::PathBuf;
use std::process::Command;

/// The browser test's administrator (`ADMIN_EMAILS`; the role counts once the address is verified).
const WEB_ADMIN: &str = "admin-web@example.com";

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
    // GitHub export goes to the fake GitHub (its consent screen is a page the browser fills).
    let mut vars = vec![
        ("SANDBOX_BACKEND", "local".into()),
        ("SANDBOX_URL", sandbox_agent()),
        ("SANDBOX_SECRET", SANDBOX_SECRET.into()),
        ("OPENAI_COMPATIBLE_BASE_URL", format!("{fake}/v1")),
        ("OPENAI_COMPATIBLE_API_KEY", "web-platform-key".into()),
        ("MODEL_CONFIG", fake_llm::scripted_model_config()),
        ("RATE_LIMIT_AI", "1000/60".into()),
        ("RATE_LIMIT_AI_TOKENS", "1000000/60".into()),
        ("LLM_TIMEOUT_MS", "30000".into()),
        ("MAIL_BACKEND", "outbox".into()),
        ("ADMIN_EMAILS", WEB_ADMIN.into()),
    ];
    vars.extend(gh::platform_vars());
    let instance = Instance::start(&vars);
    // The browser uses `localhost` (not 127.0.0.1) so that previews at
    // `<app>.preview.localhost:<port>` resolve to the same server.
    let base = instance.base.replace("127.0.0.1", "localhost");
    let artifacts = root().join("target/web-e2e");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mark = format!("MARKweb{}", std::process::id());
    // The stop/resume test's run (`scripted-gate`) holds its second phase inside src/App.tsx
    // until the fake model's gate opens; the browser test asks for that by creating this file.
    let gate_mark = format!("MARKgate{}", std::process::id());
    let release = artifacts.join(format!("release-{gate_mark}"));
    let _ = std::fs::remove_file(&release);

    // `BYTE_E2E_SPEC=orchestrator` runs only the specs whose file name matches (all by default).
    let only: Vec<String> = std::env::var("BYTE_E2E_SPEC")
        .ok()
        .filter(|s| !s.is_empty())
        .into_iter()
        .collect();
    let child = Command::new(&playwright)
        .arg("test")
        .args(&only)
        .current_dir(&frontend)
        .env("BYTE_E2E_BASE_URL", &base)
        .env("BYTE_E2E_MARK", &mark)
        .env("BYTE_E2E_GATE_MARK", &gate_mark)
        .env("BYTE_E2E_ADMIN", WEB_ADMIN)
        .env("BYTE_E2E_ARTIFACTS", &artifacts)
        .env("CHROMIUM_BIN", &chromium)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .env("CI", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run playwright");
    let opener = {
        let release = release.clone();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let t = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if release.exists() {
                    fake_llm::release(&gate_mark);
                    let _ = std::fs::remove_file(&release);
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        (done, t)
    };
    let out = child.wait_with_output().expect("playwright runs");
    opener.0.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = opener.1.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Kept whatever the outcome: a navigation made again (`[e2e] … had no answer`) shows here.
    let _ = std::fs::write(
        artifacts.join("playwright.log"),
        format!("{stdout}\n{stderr}"),
    );
    assert!(
        out.status.success(),
        "playwright failed ({}); screenshots and traces in {}; wrangler log in {}\n{stdout}\n{stderr}",
        out.status,
        artifacts.display(),
        instance.state.join("wrangler.log").display()
    );
    println!("{stdout}");
}

//! One-click deploy under `wrangler dev` (HOSTING=loader): the app is built in its sandbox, the
//! output stored in R2 and served on `<label>.apps.localhost` through the Worker Loader; history,
//! a failed build that leaves the previous deployment serving, rollback, undeploy, deletion;
//! the app's own Worker with the platform's credentials withheld and no network; ownership; the
//! serialisation of deployments and the deploy limit.

use crate::deletion::{r2_count, wait_deleted};
use crate::harness::{expect_error, sandbox_instance, sandbox_ready, Instance, User};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn label(app_id: &str) -> &str {
    app_id.strip_prefix("app_").unwrap()
}

fn host(app_id: &str) -> String {
    format!("{}.apps.localhost", label(app_id))
}

/// A page load on the deployed app's own hostname, as a browser navigates.
async fn visit(app: &Instance, app_id: &str, path: &str) -> reqwest::Response {
    get(app, app_id, path, "navigate", "text/html,*/*").await
}

/// A subresource (script, stylesheet) fetched by a page of the deployed app.
async fn asset(app: &Instance, app_id: &str, path: &str) -> reqwest::Response {
    get(app, app_id, path, "no-cors", "*/*").await
}

async fn get(
    app: &Instance,
    app_id: &str,
    path: &str,
    mode: &str,
    accept: &str,
) -> reqwest::Response {
    let h = host(app_id);
    let port = app.base.rsplit(':').next().unwrap();
    app.client_for_host(&h)
        .get(format!("http://{h}:{port}{path}"))
        .header("Accept", accept)
        .header("Sec-Fetch-Mode", mode)
        .send()
        .await
        .unwrap()
}

/// Creates the app's sandbox from `template` and waits until it is ready.
async fn sandbox_from(app: &Instance, u: &User, app_id: &str, template: &str) {
    let r = app
        .call(
            Method::POST,
            &format!("/api/apps/{app_id}/sandbox"),
            &u.token,
            Some(&json!({ "template": template })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
    sandbox_ready(app, u, app_id).await;
}

async fn write(app: &Instance, u: &User, app_id: &str, files: &[(&str, &str)]) {
    let files: Vec<Value> = files
        .iter()
        .map(|(p, c)| json!({ "path": p, "content": c }))
        .collect();
    let r = app
        .call(
            Method::POST,
            &format!("/api/apps/{app_id}/sandbox/files"),
            &u.token,
            Some(&json!({ "files": files })),
        )
        .await;
    assert!(r.status().is_success(), "{:?}", r.text().await);
}

fn app_tsx(marker: &str) -> String {
    format!("export default function App() {{\n  return <h1>{marker}</h1>\n}}\n")
}

async fn deploy(app: &Instance, u: &User, app_id: &str) -> Value {
    let r = app
        .call(
            Method::POST,
            &format!("/api/apps/{app_id}/deploy"),
            &u.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["status"], "building");
    d
}

async fn undeploy(app: &Instance, u: &User, app_id: &str) -> reqwest::Response {
    app.call(
        Method::DELETE,
        &format!("/api/apps/{app_id}/deploy"),
        &u.token,
        None,
    )
    .await
}

async fn history(app: &Instance, u: &User, app_id: &str) -> Vec<Value> {
    let r = app
        .call(
            Method::GET,
            &format!("/api/apps/{app_id}/deployments"),
            &u.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["deployments"].as_array().unwrap().clone()
}

/// Waits until deployment `number` is no longer building; its record.
async fn settled(app: &Instance, u: &User, app_id: &str, number: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let all = history(app, u, app_id).await;
        let d = all
            .iter()
            .find(|d| d["number"] == number)
            .cloned()
            .unwrap_or_else(|| panic!("deployment {number} missing: {all:?}"));
        if d["status"] != "building" {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "deployment {number} still building"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The deployed page's main script (`/assets/index-*.js`) and its text.
async fn main_script(app: &Instance, app_id: &str) -> (String, reqwest::Response) {
    let r = visit(app, app_id, "/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    let src = html
        .split("src=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .unwrap_or_else(|| panic!("no script in {html}"))
        .to_string();
    let js = asset(app, app_id, &src).await;
    (src, js)
}

async fn served_marker(app: &Instance, app_id: &str, marker: &str) -> bool {
    let (_, js) = main_script(app, app_id).await;
    js.text().await.unwrap().contains(marker)
}

async fn stored_events(app: &Instance, u: &User, app_id: &str) -> Vec<Value> {
    let r = app
        .call(
            Method::GET,
            &format!("/api/agent/{app_id}/state?since=0"),
            &u.token,
            None,
        )
        .await;
    let v: Value = r.json().await.unwrap();
    v["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn an_app_deploys_fails_safely_rolls_back_undeploys_and_is_deleted_with_its_artifacts() {
    let app = sandbox_instance();
    let u = app.user("deployer").await;
    let id = app.app(&u, "Deployed", "private").await;
    sandbox_from(app, &u, &id, "react-vite").await;

    // Nothing deployed yet: the address is a 404 page, not an error.
    assert_eq!(visit(app, &id, "/").await.status(), StatusCode::NOT_FOUND);

    // 1. The first deployment serves the built app on its own hostname.
    write(
        app,
        &u,
        &id,
        &[("src/App.tsx", &app_tsx("Deployed marker one"))],
    )
    .await;
    let d1 = deploy(app, &u, &id).await;
    assert_eq!(d1["number"], 1);
    let d1 = settled(app, &u, &id, 1).await;
    assert_eq!(d1["status"], "live", "{d1}");
    let url = d1["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("http://{}:", host(&id))), "{url}");
    let (src, js) = main_script(app, &id).await;
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(js.text().await.unwrap().contains("Deployed marker one"));
    let _ = src;
    let html = visit(app, &id, "/").await.text().await.unwrap();
    let css_href = html
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .find(|s| s.ends_with(".css"))
        .expect("a stylesheet");
    let css = asset(app, &id, css_href).await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    // A deep link gets the single-page app; a missing asset does not.
    let deep = visit(app, &id, "/some/deep/link").await;
    assert_eq!(deep.status(), StatusCode::OK);
    assert!(deep.text().await.unwrap().contains("<div id=\"root\">"));
    assert_eq!(
        asset(app, &id, "/assets/missing-file.js").await.status(),
        StatusCode::NOT_FOUND
    );
    let rec: Value = app
        .call(Method::GET, &format!("/api/apps/{id}"), &u.token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rec["isDeployed"], true, "{rec}");
    assert_eq!(rec["deployUrl"], url);
    let kinds: Vec<String> = stored_events(app, &u, &id)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect();
    for k in ["deploy_started", "deploy_progress", "deploy_complete"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }

    // 2. A build that fails publishes nothing: E007 with the build's errors, #1 keeps serving.
    write(
        app,
        &u,
        &id,
        &[(
            "src/App.tsx",
            "export default function App() {\n  const n: number = 'text'\n  return <h1>{n}</h1>\n}\n",
        )],
    )
    .await;
    deploy(app, &u, &id).await;
    let d2 = settled(app, &u, &id, 2).await;
    assert_eq!(d2["status"], "failed", "{d2}");
    let errors = d2["error"]["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["file"] == "src/App.tsx"),
        "{errors:?}"
    );
    assert!(served_marker(app, &id, "Deployed marker one").await);
    let events = stored_events(app, &u, &id).await;
    let failed = events
        .iter()
        .find(|e| e["type"] == "deploy_failed")
        .expect("deploy_failed event");
    assert_eq!(failed["code"], "E007");

    // 3. A new build replaces it; a rollback brings #1's artifact back without building.
    write(
        app,
        &u,
        &id,
        &[("src/App.tsx", &app_tsx("Deployed marker two"))],
    )
    .await;
    deploy(app, &u, &id).await;
    assert_eq!(settled(app, &u, &id, 3).await["status"], "live");
    assert!(served_marker(app, &id, "Deployed marker two").await);
    let r = app
        .call(
            Method::POST,
            &format!("/api/apps/{id}/deployments/1/rollback"),
            &u.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let rb = settled(app, &u, &id, 4).await;
    assert_eq!(
        (rb["status"].as_str(), rb["rollbackOf"].as_u64()),
        (Some("live"), Some(1))
    );
    assert_eq!(rb["contentHash"], d1["contentHash"]);
    assert!(served_marker(app, &id, "Deployed marker one").await);
    let all = history(app, &u, &id).await;
    let status = |n: u64| all.iter().find(|d| d["number"] == n).unwrap()["status"].clone();
    assert_eq!(
        [status(1), status(2), status(3), status(4)],
        ["superseded", "failed", "superseded", "live"]
    );
    // A deployment that never served cannot be rolled back to.
    let r = app
        .call(
            Method::POST,
            &format!("/api/apps/{id}/deployments/2/rollback"),
            &u.token,
            None,
        )
        .await;
    expect_error(r, 404, "E002").await;

    // 4. Nobody else can deploy, undeploy, roll back or read the history.
    let other = app.user("deploy-other").await;
    for (m, path) in [
        (Method::POST, format!("/api/apps/{id}/deploy")),
        (Method::DELETE, format!("/api/apps/{id}/deploy")),
        (Method::GET, format!("/api/apps/{id}/deployments")),
        (
            Method::POST,
            format!("/api/apps/{id}/deployments/1/rollback"),
        ),
    ] {
        let r = app.call(m, &path, &other.token, None).await;
        expect_error(r, 404, "E002").await;
    }
    assert!(served_marker(app, &id, "Deployed marker one").await);

    // 5. Undeploy: the address is a 404 again and the app says so.
    let r = undeploy(app, &u, &id).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(visit(app, &id, "/").await.status(), StatusCode::NOT_FOUND);
    let rec: Value = app
        .call(Method::GET, &format!("/api/apps/{id}"), &u.token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rec["isDeployed"], false);
    let r = undeploy(app, &u, &id).await;
    expect_error(r, 404, "E002").await;

    // 6. Deleting a deployed app takes it down and deletes its artifacts.
    deploy(app, &u, &id).await;
    assert_eq!(settled(app, &u, &id, 5).await["status"], "live");
    assert!(r2_count(app, &format!("deployments/{id}/")) > 0);
    let r = app
        .call(Method::DELETE, &format!("/api/apps/{id}"), &u.token, None)
        .await;
    assert!(r.status().is_success(), "{:?}", r.text().await);
    assert_eq!(visit(app, &id, "/").await.status(), StatusCode::NOT_FOUND);
    wait_deleted(app, &id).await;
    assert_eq!(r2_count(app, &format!("deployments/{id}/")), 0);
}

/// The app's own Worker runs as the deployment's main module: it answers its API, gets the
/// app's cookies but never the platform's or `Authorization`, and has no network.
const ECHO_WORKER: &str = r#"export interface Env { ASSETS: { fetch(request: Request): Promise<Response> } }

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url)
    if (url.pathname === '/api/echo') {
      return Response.json({
        cookie: request.headers.get('cookie'),
        authorization: request.headers.get('authorization'),
      })
    }
    if (url.pathname === '/api/outbound') {
      try {
        await fetch('http://example.com/')
        return new Response('reached')
      } catch {
        return new Response('blocked')
      }
    }
    return env.ASSETS.fetch(request)
  },
}
"#;

#[tokio::test]
async fn an_apps_own_worker_is_deployed_without_the_platforms_credentials_or_network() {
    let app = sandbox_instance();
    let u = app.user("worker-deployer").await;
    let id = app.app(&u, "With a Worker", "private").await;
    sandbox_from(app, &u, &id, "react-vite-worker").await;
    write(
        app,
        &u,
        &id,
        &[
            ("worker/index.ts", ECHO_WORKER),
            ("src/App.tsx", &app_tsx("Worker app")),
        ],
    )
    .await;
    deploy(app, &u, &id).await;
    let d = settled(app, &u, &id, 1).await;
    assert_eq!(d["status"], "live", "{d}");

    let h = host(&id);
    let port = app.base.rsplit(':').next().unwrap();
    let r = app
        .client_for_host(&h)
        .get(format!("http://{h}:{port}/api/echo"))
        .header(
            "Cookie",
            "byte_session=platform-secret; mine=1; byte_csrf=x",
        )
        .header("Authorization", "Bearer platform-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo, json!({ "cookie": "mine=1", "authorization": null }));
    let r = visit(app, &id, "/api/outbound").await;
    assert_eq!(r.text().await.unwrap(), "blocked");
    // Everything else is the single-page app, through the Worker's ASSETS binding.
    let page = visit(app, &id, "/settings").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("<div id=\"root\">"));
}

/// A script that holds `npm run build` until the test writes `release` into the workspace.
const GATED_BUILD: &str =
    "import { existsSync } from 'node:fs'\nconst t = setInterval(() => { if (existsSync('release')) { clearInterval(t) } }, 50)\n";

#[tokio::test]
async fn a_second_deploy_waits_for_the_first_and_the_deploy_limit_holds() {
    let app = sandbox_instance();
    let u = app.user("deploy-serial").await;
    let id = app.app(&u, "Serial", "private").await;
    sandbox_from(app, &u, &id, "react-vite").await;
    let pkg = visit_file(app, &u, &id, "package.json").await;
    let mut pkg: Value = serde_json::from_str(&pkg).unwrap();
    let build = pkg["scripts"]["build"].as_str().unwrap().to_string();
    pkg["scripts"]["build"] = json!(format!("node gate.mjs && {build}"));
    write(
        app,
        &u,
        &id,
        &[
            ("gate.mjs", GATED_BUILD),
            ("package.json", &serde_json::to_string_pretty(&pkg).unwrap()),
        ],
    )
    .await;
    deploy(app, &u, &id).await;
    // The first is held in its build: a second is refused, whatever the timing.
    let r = app
        .call(
            Method::POST,
            &format!("/api/apps/{id}/deploy"),
            &u.token,
            None,
        )
        .await;
    let e = expect_error(r, 409, "E007").await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("#1"),
        "{e}"
    );
    write(app, &u, &id, &[("release", "go")]).await;
    assert_eq!(settled(app, &u, &id, 1).await["status"], "live");

    // The limit counts every deploy request of the user (10 an hour by default).
    let v = app.user("deploy-limit").await;
    let missing = "app_00000000000000000000000000000000";
    for _ in 0..10 {
        let r = app
            .call(
                Method::POST,
                &format!("/api/apps/{missing}/deploy"),
                &v.token,
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let r = app
        .call(
            Method::POST,
            &format!("/api/apps/{missing}/deploy"),
            &v.token,
            None,
        )
        .await;
    expect_error(r, 429, "E003").await;
}

async fn visit_file(app: &Instance, u: &User, id: &str, path: &str) -> String {
    let r = app
        .call(
            Method::GET,
            &format!("/api/apps/{id}/sandbox/files?path={path}"),
            &u.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["content"].as_str().unwrap().to_string()
}

/// The production path under `wrangler dev`: HOSTING=dispatch against the fake Cloudflare API.
/// What is uploaded is exactly what was built; a permanent refusal is E007 with nothing live.
#[tokio::test]
async fn with_dispatch_hosting_the_build_is_uploaded_to_the_namespace_and_a_refusal_is_e007() {
    use crate::fake_cloudflare::{Failure, FakeCloudflare, Route};
    let cf = FakeCloudflare::start();
    let app = Instance::start(&[
        ("SANDBOX_BACKEND", "local".into()),
        ("SANDBOX_URL", crate::harness::sandbox_agent()),
        ("SANDBOX_SECRET", crate::harness::SANDBOX_SECRET.into()),
        ("HOSTING", "dispatch".into()),
        ("CLOUDFLARE_API_BASE_URL", cf.api_base()),
        ("CLOUDFLARE_ACCOUNT_ID", cf.account_id.clone()),
        ("DISPATCH_NAMESPACE", cf.namespace.clone()),
        ("CLOUDFLARE_API_TOKEN", cf.api_token.clone()),
        ("CUSTOM_DOMAIN", "apps.example.com".into()),
    ]);
    let u = app.user("dispatcher").await;
    let id = app.app(&u, "Dispatched", "private").await;
    sandbox_from(&app, &u, &id, "react-vite").await;
    write(
        &app,
        &u,
        &id,
        &[("src/App.tsx", &app_tsx("Dispatched marker"))],
    )
    .await;

    // A transient outage is retried; the upload then holds the built files.
    cf.fail_once(Route::Script, Failure::Status(503));
    deploy(&app, &u, &id).await;
    let d = settled(&app, &u, &id, 1).await;
    assert_eq!(d["status"], "live", "{d}");
    assert_eq!(
        d["url"],
        format!("https://{}.apps.example.com/", label(&id))
    );
    let names = cf.script_names();
    assert_eq!(names.len(), 1, "{names:?}");
    let script = cf.script(&names[0]).unwrap();
    assert!(
        script.assets.contains_key("/index.html"),
        "{:?}",
        script.assets.keys()
    );
    let js = script
        .assets
        .iter()
        .find(|(p, _)| p.starts_with("/assets/") && p.ends_with(".js"))
        .expect("the built script");
    assert!(String::from_utf8_lossy(&js.1.bytes).contains("Dispatched marker"));
    assert!(cf.calls_to(Route::Script) >= 2, "the 503 was retried");

    // A permanent refusal: E007 with Cloudflare's reason, and #1 stays the live one.
    cf.fail_always(
        Route::Session,
        Failure::Refuse {
            status: 403,
            code: 10000,
            message: "Authentication error".into(),
        },
    );
    write(
        &app,
        &u,
        &id,
        &[("src/App.tsx", &app_tsx("Never published"))],
    )
    .await;
    deploy(&app, &u, &id).await;
    let d2 = settled(&app, &u, &id, 2).await;
    assert_eq!(d2["status"], "failed", "{d2}");
    let msg = d2["error"]["message"].as_str().unwrap();
    assert!(msg.contains("Authentication error"), "{msg}");
    assert!(!msg.contains(&cf.api_token), "the token never shows");
    let all = history(&app, &u, &id).await;
    assert_eq!(all.iter().filter(|d| d["status"] == "live").count(), 1);
    let script = cf.script(&names[0]).unwrap();
    let js = script
        .assets
        .iter()
        .find(|(p, _)| p.starts_with("/assets/") && p.ends_with(".js"))
        .unwrap();
    assert!(String::from_utf8_lossy(&js.1.bytes).contains("Dispatched marker"));

    // Undeploy deletes the script from the namespace.
    cf.heal();
    let r = undeploy(&app, &u, &id).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(cf.script_names().is_empty());
}

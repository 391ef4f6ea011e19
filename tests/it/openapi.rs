//! The API contract against the real Worker: `GET /api/openapi.json` is served, real responses
//! of the main routes are what the document says (status documented for the operation, body
//! valid against its schema), and a bounded schemathesis run finds no server error and no
//! response outside the document.

use crate::harness::{contract_instance, Instance, User, PASSWORD};
use byte_platform::domain::openapi::openapi_path;
use byte_platform::domain::routes::resolve;
use byte_platform::domain::web;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// The served document, and the checks of one response against it.
pub struct Contract {
    pub doc: Value,
}

impl Contract {
    pub async fn fetch(i: &Instance) -> Contract {
        let r = i
            .req(Method::GET, "/api/openapi.json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("application/json"), "{ct}");
        let doc: Value = r.json().await.unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        Contract { doc }
    }

    /// The operation a request goes to, found through the route table as the Worker finds it.
    fn operation(&self, method: &Method, path: &str) -> &Value {
        let path = path.split('?').next().unwrap();
        let resolved = resolve(method.as_str(), path)
            .unwrap_or_else(|e| panic!("{method} {path} is no route: {e}"));
        let (template, _) = openapi_path(resolved.entry.pattern);
        let op = &self.doc["paths"][&template][method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        op
    }

    /// Asserts `r`, the answer to `method path`, is documented: its status among the
    /// operation's responses, its content type and body as declared there. Returns the status
    /// and the body (JSON, or a string).
    pub async fn check(&self, method: Method, path: &str, r: Response) -> (u16, Value) {
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let text = r.text().await.unwrap();
        let op = self.operation(&method, path);
        let id = op["operationId"].as_str().unwrap();
        let declared = &op["responses"][status.to_string()];
        assert!(
            declared.is_object(),
            "{method} {path} ({id}): status {status} is not documented; body {text}"
        );
        let Some(content) = declared["content"].as_object() else {
            assert!(
                text.is_empty(),
                "{id} {status}: documented without a body, got {text}"
            );
            return (status, Value::Null);
        };
        let media = ct
            .as_deref()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_string();
        let schema = &content
            .get(&media)
            .unwrap_or_else(|| panic!("{id} {status}: content type {media} not documented"))
            ["schema"];
        if media != "application/json" {
            return (status, Value::String(text));
        }
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{id} {status}: not JSON ({e}): {text}"));
        self.validate(schema, &body).unwrap_or_else(|e| {
            panic!("{id} {status}: body does not match the schema: {e}\n{body}")
        });
        (status, body)
    }

    /// Validates `value` against `schema` (whose `$ref`s point into the document).
    pub fn validate(&self, schema: &Value, value: &Value) -> Result<(), String> {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let v = jsonschema::validator_for(&root).map_err(|e| format!("bad schema: {e}"))?;
        let errors: Vec<String> = v
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

async fn send(
    i: &Instance,
    c: &Contract,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = i.req(method.clone(), path);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    c.check(method, path, req.send().await.unwrap()).await
}

#[tokio::test]
async fn the_validator_rejects_what_the_document_forbids() {
    // A check that cannot fail is no check: a wrong body fails against the document's schemas.
    let i = contract_instance();
    let c = Contract::fetch(i).await;
    let error = json!({ "$ref": "#/components/schemas/Error" });
    assert!(c
        .validate(
            &error,
            &json!({ "error": { "code": "E004", "message": "x" } })
        )
        .is_ok());
    assert!(c
        .validate(
            &error,
            &json!({ "error": { "code": "E999", "message": "x" } })
        )
        .is_err());
    assert!(c.validate(&error, &json!({ "message": "x" })).is_err());
    let app = json!({ "$ref": "#/components/schemas/AppDetail" });
    assert!(c.validate(&app, &json!({ "id": "app_1" })).is_err());
}

#[tokio::test]
async fn real_responses_match_the_document() {
    let i = contract_instance();
    let c = Contract::fetch(i).await;
    let owner = i.user("contract-owner").await;
    let other: User = i.user("contract-other").await;
    let admin = i.admin().await;
    let (o, x, a) = (
        Some(owner.token.as_str()),
        Some(other.token.as_str()),
        Some(admin.token.as_str()),
    );
    use Method as M;

    // A method the runtime does not know is not read as GET.
    let query = Method::from_bytes(b"QUERY").unwrap();
    let r = i.req(query, "/api/templates").send().await.unwrap();
    crate::harness::expect_error(r, 405, "E004").await;

    // Platform and auth.
    assert_eq!(send(i, &c, M::GET, "/api/health", None, None).await.0, 200);
    assert_eq!(
        send(i, &c, M::GET, "/api/openapi.json", None, None).await.0,
        200
    );
    assert_eq!(
        send(i, &c, M::GET, "/api/auth/providers", None, None)
            .await
            .0,
        200
    );
    let email = crate::harness::unique_email("contract-new");
    let creds = json!({ "email": email, "password": PASSWORD });
    assert_eq!(
        send(
            i,
            &c,
            M::POST,
            "/api/auth/register",
            None,
            Some(creds.clone())
        )
        .await
        .0,
        201
    );
    let (s, b) = send(
        i,
        &c,
        M::POST,
        "/api/auth/register",
        None,
        Some(creds.clone()),
    )
    .await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!("E004")));
    let (s, session) = send(i, &c, M::POST, "/api/auth/login", None, Some(creds)).await;
    assert_eq!(s, 200);
    let bad = json!({ "email": email, "password": "wrong password" });
    assert_eq!(
        send(i, &c, M::POST, "/api/auth/login", None, Some(bad))
            .await
            .0,
        401
    );
    assert_eq!(send(i, &c, M::GET, "/api/auth/me", o, None).await.0, 200);
    assert_eq!(send(i, &c, M::GET, "/api/auth/me", None, None).await.0, 401);
    assert_eq!(
        send(i, &c, M::GET, "/api/auth/me", Some("not-a-token"), None)
            .await
            .0,
        401
    );

    // Apps.
    let new =
        json!({ "title": "Contract", "description": "d", "visibility": "public", "tags": ["a"] });
    let (s, app) = send(i, &c, M::POST, "/api/apps", o, Some(new)).await;
    assert_eq!(s, 201);
    let id = app["id"].as_str().unwrap().to_string();
    let (s, b) = send(i, &c, M::POST, "/api/apps", o, Some(json!({}))).await;
    assert_eq!(
        (s, &b["error"]["fields"]["title"]),
        (400, &json!("is required"))
    );
    assert_eq!(
        send(i, &c, M::GET, "/api/apps?limit=5&sort=name", o, None)
            .await
            .0,
        200
    );
    assert_eq!(
        send(i, &c, M::GET, "/api/apps?page=0", o, None).await.0,
        400
    );
    assert_eq!(
        send(i, &c, M::GET, "/api/apps/public", None, None).await.0,
        200
    );
    let app_path = format!("/api/apps/{id}");
    assert_eq!(send(i, &c, M::GET, &app_path, o, None).await.0, 200);
    assert_eq!(send(i, &c, M::GET, &app_path, None, None).await.0, 200);
    let patch = json!({ "visibility": "private", "config": { "k": 1 } });
    assert_eq!(
        send(i, &c, M::PATCH, &app_path, o, Some(patch.clone()))
            .await
            .0,
        200
    );
    assert_eq!(send(i, &c, M::GET, &app_path, x, None).await.0, 404);
    assert_eq!(
        send(i, &c, M::PATCH, &app_path, x, Some(patch)).await.0,
        404
    );

    // Admin.
    assert_eq!(
        send(i, &c, M::GET, "/api/admin/users?limit=2", a, None)
            .await
            .0,
        200
    );
    assert_eq!(
        send(i, &c, M::GET, "/api/admin/users", o, None).await.0,
        403
    );

    // Templates and the sandbox (none runs on this instance: no sandbox, 404).
    assert_eq!(
        send(i, &c, M::GET, "/api/templates", None, None).await.0,
        200
    );
    assert_eq!(
        send(i, &c, M::GET, "/api/templates/nope", None, None)
            .await
            .0,
        404
    );
    let sandbox = format!("{app_path}/sandbox");
    assert_eq!(send(i, &c, M::GET, &sandbox, o, None).await.0, 404);
    let bad_template = json!({ "template": "nope" });
    assert_eq!(
        send(i, &c, M::POST, &sandbox, o, Some(bad_template))
            .await
            .0,
        400
    );
    let tree = format!("{sandbox}/tree");
    assert_eq!(send(i, &c, M::GET, &tree, o, None).await.0, 404);

    // AI settings.
    assert_eq!(send(i, &c, M::GET, "/api/ai/keys", o, None).await.0, 200);
    let key = json!({ "apiKey": "sk-contract-0123456789" });
    let (s, b) = send(i, &c, M::PUT, "/api/ai/keys/openai", o, Some(key)).await;
    assert_eq!((s, &b["provider"]), (200, &json!("openai")));
    assert_eq!(send(i, &c, M::GET, "/api/ai/keys", o, None).await.0, 200);
    assert_eq!(
        send(i, &c, M::DELETE, "/api/ai/keys/openai", o, None)
            .await
            .0,
        204
    );
    assert_eq!(
        send(i, &c, M::DELETE, "/api/ai/keys/openai", o, None)
            .await
            .0,
        404
    );
    assert_eq!(
        send(i, &c, M::DELETE, "/api/ai/keys/nope", o, None).await.0,
        400
    );
    assert_eq!(send(i, &c, M::GET, "/api/ai/models", o, None).await.0, 200);
    let temp = json!({ "temperature": 0.5 });
    assert_eq!(
        send(i, &c, M::PATCH, "/api/ai/models/chat_edit", o, Some(temp))
            .await
            .0,
        200
    );
    assert_eq!(
        send(i, &c, M::DELETE, "/api/ai/models/chat_edit", o, None)
            .await
            .0,
        200
    );
    assert_eq!(send(i, &c, M::GET, "/api/ai/usage", o, None).await.0, 200);
    let (s, _) = send(i, &c, M::POST, "/api/ai/test", o, Some(json!({}))).await;
    assert_eq!(s, 400);

    // The agent (no run: state and versions are empty).
    let state = format!("/api/agent/{id}/state");
    let (s, b) = send(i, &c, M::GET, &state, o, None).await;
    assert_eq!((s, &b["running"]), (200, &json!(false)));
    assert_eq!(send(i, &c, M::GET, &state, x, None).await.0, 404);
    let versions = format!("/api/agent/{id}/versions");
    assert_eq!(send(i, &c, M::GET, &versions, o, None).await.0, 200);
    assert_eq!(
        send(i, &c, M::GET, &format!("{versions}/1"), o, None)
            .await
            .0,
        404
    );
    let chat = format!("/api/agent/chat/{id}");
    assert_eq!(send(i, &c, M::POST, &chat, o, Some(json!({}))).await.0, 400);

    // Deleting, and signing out (the session of the login above).
    assert_eq!(send(i, &c, M::DELETE, &app_path, x, None).await.0, 404);
    assert_eq!(send(i, &c, M::DELETE, &app_path, o, None).await.0, 204);
    assert_eq!(send(i, &c, M::GET, &app_path, o, None).await.0, 404);
    let t = session["token"].as_str();
    assert_eq!(
        send(i, &c, M::POST, "/api/auth/logout", t, None).await.0,
        200
    );
    assert_eq!(send(i, &c, M::GET, "/api/auth/me", t, None).await.0, 401);
}

/// Operations schemathesis leaves out, each with why.
pub const NOT_FUZZED: &[(&str, &str)] = &[
    (
        "agentSocket",
        "a WebSocket upgrade: nothing an HTTP fuzzer can speak",
    ),
    ("oauthStart", "redirects to an external OAuth provider"),
    (
        "oauthCallback",
        "exchanges codes with an external OAuth provider",
    ),
    (
        "aiTest",
        "a real model call (this instance would reach the internet)",
    ),
    (
        "logout",
        "revokes the very session the run authenticates with",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One bounded schemathesis run as `headers` in `phases` (fixed seed, one worker: the single
/// local isolate drops requests when it stalls); its output on failure.
fn schemathesis(i: &Instance, headers: &[String], phases: &str, tag: &str) -> Result<(), String> {
    let st = root().join(".tools/venv/bin/st");
    assert!(
        st.exists(),
        "schemathesis is not installed: run `scripts/ensure-tools.sh` (or `make test`)"
    );
    let dir = crate::harness::tempdir(&format!("schemathesis-{tag}"));
    // The run authenticates only as told: no account of its own from the register route.
    let config = dir.join("schemathesis.toml");
    std::fs::write(&config, "[auth]\nauto-signup = false\n").unwrap();
    let mut cmd = Command::new(st);
    cmd.arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(i.url("/api/openapi.json"))
        .args(["--url", &i.url("")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--workers", "1", "--seed", "20261202", "--max-examples", "5"])
        .args(["--phases", phases])
        .args(["--request-timeout", "30", "--no-shrink"])
        .args(["--suppress-health-check", "all"])
        .arg("--report-dir")
        .arg(dir.join("report"))
        .current_dir(&dir)
        .env("NO_COLOR", "1");
    for (id, _why) in NOT_FUZZED {
        cmd.args(["--exclude-operation-id", id]);
    }
    for h in headers {
        cmd.args(["--header", h]);
    }
    let out = cmd.output().expect("schemathesis runs");
    if out.status.success() {
        // Its summary line (cases run, wall time), for whoever tunes the bounds.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = |needle: &str| {
            let l = stdout.lines().rev().find(|l| l.contains(needle));
            l.unwrap_or("").trim_matches(|c| c == '=' || c == ' ')
        };
        eprintln!(
            "schemathesis ({tag}): {}; {}",
            last("generated"),
            last("=== ")
        );
        Ok(())
    } else {
        Err(format!(
            "schemathesis ({tag}) exited with {}:\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_undocumented_response() {
    let i = contract_instance();
    // Every exclusion names a documented operation (a renamed one would be fuzzed unnoticed).
    let c = Contract::fetch(i).await;
    let ids: Vec<&str> = c.doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    for (id, _) in NOT_FUZZED {
        assert!(ids.contains(id), "NOT_FUZZED names no operation {id}");
    }
    // Two signed-in users: a plain user with a bearer token (every phase), and the admin with
    // the session cookie and CSRF header (the fuzzing phase: admin routes, cookie writes).
    let user = i.user("fuzz-user").await;
    let admin = i.admin().await;
    let r = i
        .req(Method::GET, "/api/auth/me")
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    let me: Value = r.json().await.unwrap();
    let cookie = format!("Cookie: {}={}", web::SESSION_COOKIE, admin.token);
    let csrf = format!(
        "{}: {}",
        web::CSRF_HEADER,
        me["csrfToken"].as_str().unwrap()
    );
    let bearer = format!("Authorization: Bearer {}", user.token);
    let runs = tokio::task::spawn_blocking(move || {
        let i = contract_instance();
        [
            schemathesis(i, &[bearer], "examples,coverage,fuzzing", "user"),
            schemathesis(i, &[cookie, csrf], "fuzzing", "admin"),
        ]
    })
    .await
    .unwrap();
    let failures: Vec<String> = runs.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

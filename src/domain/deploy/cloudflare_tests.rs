use super::*;
use crate::domain::deploy::artifact::Module;
use futures_executor::block_on;
use std::cell::RefCell;

const TOKEN: &str = "cf-token-SECRET-123";
const SESSION_JWT: &str = "session-jwt-777";
const DONE_JWT: &str = "completion-jwt-888";

fn target() -> DispatchTarget {
    DispatchTarget::new(
        Some("http://cf.test/client/v4/"),
        "0123456789abcdef0123456789abcdef",
        "byte-apps",
        TOKEN,
        "2026-05-01",
    )
    .unwrap()
}

type Handler = Box<dyn FnMut(&ApiRequest) -> Result<ApiResponse, String>>;

/// The port: every request recorded, each answered by the test's handler; sleeps recorded (and
/// not slept).
struct FakeApi {
    handler: RefCell<Handler>,
    sent: RefCell<Vec<ApiRequest>>,
    sleeps: RefCell<Vec<u64>>,
}

impl FakeApi {
    fn new(h: impl FnMut(&ApiRequest) -> Result<ApiResponse, String> + 'static) -> Self {
        FakeApi {
            handler: RefCell::new(Box::new(h)),
            sent: RefCell::default(),
            sleeps: RefCell::default(),
        }
    }
    fn sent(&self) -> Vec<ApiRequest> {
        self.sent.borrow().clone()
    }
    fn lines(&self) -> Vec<String> {
        self.sent
            .borrow()
            .iter()
            .map(|r| format!("{} {}", r.method.as_str(), r.url))
            .collect()
    }
    fn puts(&self) -> usize {
        self.sent
            .borrow()
            .iter()
            .filter(|r| r.method == HttpMethod::Put)
            .count()
    }
}

impl CloudflareApi for FakeApi {
    async fn send(&self, req: &ApiRequest) -> Result<ApiResponse, String> {
        self.sent.borrow_mut().push(req.clone());
        (self.handler.borrow_mut())(req)
    }
    async fn sleep(&self, ms: u64) {
        self.sleeps.borrow_mut().push(ms);
    }
}

fn envelope(status: u16, result: Value) -> Result<ApiResponse, String> {
    Ok(ApiResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"success": true, "errors": [], "messages": [], "result": result})
            .to_string()
            .into_bytes(),
    })
}

fn refusal(status: u16, code: u64, message: &str) -> Result<ApiResponse, String> {
    Ok(ApiResponse {
        status,
        headers: vec![],
        body: json!({"success": false, "errors": [{"code": code, "message": message}],
                     "messages": [], "result": null})
        .to_string()
        .into_bytes(),
    })
}

fn status(status: u16, headers: &[(&str, &str)]) -> Result<ApiResponse, String> {
    Ok(ApiResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: b"<html>upstream trouble</html>".to_vec(),
    })
}

/// Cloudflare when all goes well: the session asks for `buckets`, the last bucket upload
/// completes, the script is accepted, a delete succeeds.
fn cloudflare(buckets: Vec<Vec<String>>) -> impl FnMut(&ApiRequest) -> Result<ApiResponse, String> {
    let mut left = buckets.len();
    move |req| {
        if req.url.ends_with("/assets-upload-session") {
            envelope(200, json!({"jwt": SESSION_JWT, "buckets": buckets}))
        } else if req.url.contains("/workers/assets/upload") {
            left -= 1;
            if left == 0 {
                envelope(201, json!({"jwt": DONE_JWT}))
            } else {
                envelope(202, json!({}))
            }
        } else if req.method == HttpMethod::Put {
            envelope(200, json!({"id": "x", "etag": "etag-1"}))
        } else {
            envelope(200, Value::Null)
        }
    }
}

fn asset(path: &str, content_type: &str, bytes: &[u8]) -> Asset {
    Asset {
        path: path.into(),
        content_type: content_type.into(),
        bytes: bytes.to_vec(),
    }
}

fn spa() -> Bundle {
    Bundle {
        assets: vec![
            asset(
                "/index.html",
                "text/html; charset=utf-8",
                b"<div id=root></div>",
            ),
            asset(
                "/assets/app-1.js",
                "text/javascript; charset=utf-8",
                b"console.log(1)",
            ),
            asset("/logo.png", "image/png", &[0x89, b'P', b'N', b'G', 0, 255]),
            // Same bytes as index.html: one hash, uploaded once.
            asset(
                "/copy.html",
                "text/html; charset=utf-8",
                b"<div id=root></div>",
            ),
        ],
        ..Bundle::default()
    }
}

fn h(bytes: &[u8]) -> String {
    asset_hash(bytes)
}

/// A multipart body's parts: (name, filename, content type, body).
fn parts_of(req: &ApiRequest) -> Vec<(String, Option<String>, String, Vec<u8>)> {
    let ct = req.header("content-type").unwrap();
    let boundary = ct.split_once("boundary=").unwrap().1;
    let delim = format!("--{boundary}");
    let body = &req.body;
    let mut out = Vec::new();
    let mut rest: &[u8] = body;
    let pos = |hay: &[u8], needle: &[u8]| memchr::memmem::find(hay, needle);
    let start = pos(rest, delim.as_bytes()).unwrap();
    rest = &rest[start + delim.len()..];
    loop {
        if rest.starts_with(b"--") {
            assert_eq!(rest, b"--\r\n");
            break;
        }
        rest = rest.strip_prefix(b"\r\n").unwrap();
        let end = pos(rest, format!("\r\n{delim}").as_bytes()).unwrap();
        let part = &rest[..end];
        rest = &rest[end + 2 + delim.len()..];
        let split = pos(part, b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&part[..split]).unwrap();
        let content = part[split + 4..].to_vec();
        let mut name = None;
        let mut filename = None;
        let mut ctype = String::new();
        for line in head.split("\r\n") {
            if let Some(d) = line.strip_prefix("Content-Disposition: form-data; ") {
                for attr in d.split("; ") {
                    let (k, v) = attr.split_once('=').unwrap();
                    let v = v.trim_matches('"').to_string();
                    match k {
                        "name" => name = Some(v),
                        "filename" => filename = Some(v),
                        _ => panic!("unexpected attribute {k}"),
                    }
                }
            } else if let Some(t) = line.strip_prefix("Content-Type: ") {
                ctype = t.into();
            } else {
                panic!("unexpected part header {line}");
            }
        }
        out.push((name.unwrap(), filename, ctype, content));
    }
    out
}

fn json_body(req: &ApiRequest) -> Value {
    serde_json::from_slice(&req.body).unwrap()
}

fn metadata_of(req: &ApiRequest) -> Value {
    let parts = parts_of(req);
    assert_eq!(parts[0].0, "metadata");
    assert_eq!(parts[0].2, "application/json");
    serde_json::from_slice(&parts[0].3).unwrap()
}

#[test]
fn an_spa_is_published_in_cloudflares_three_steps() {
    let index = h(b"<div id=root></div>");
    let js = h(b"console.log(1)");
    let png = h(&[0x89, b'P', b'N', b'G', 0, 255]);
    let api = FakeApi::new(cloudflare(vec![
        vec![index.clone(), js.clone()],
        vec![png.clone()],
    ]));
    let t = target();
    let published = block_on(publish(&api, &t, "app-abc", &spa())).unwrap();
    assert_eq!(
        published,
        Published {
            script: "app-abc".into(),
            uploaded: 3,
            main_module: ASSETS_MAIN_MODULE.into(),
            etag: Some("etag-1".into()),
        }
    );
    let ns = "http://cf.test/client/v4/accounts/0123456789abcdef0123456789abcdef/workers";
    assert_eq!(
        api.lines(),
        [
            format!(
                "POST {ns}/dispatch/namespaces/byte-apps/scripts/app-abc/assets-upload-session"
            ),
            format!("POST {ns}/assets/upload?base64=true"),
            format!("POST {ns}/assets/upload?base64=true"),
            format!("PUT {ns}/dispatch/namespaces/byte-apps/scripts/app-abc"),
        ]
    );
    let sent = api.sent();
    assert!(api.sleeps.borrow().is_empty());

    // The manifest: every path with its content's hash and size.
    let session = &sent[0];
    assert_eq!(
        session.header("authorization"),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(session.header("content-type"), Some("application/json"));
    assert_eq!(
        json_body(session),
        json!({"manifest": {
            "/index.html": {"hash": index, "size": 19},
            "/assets/app-1.js": {"hash": js, "size": 14},
            "/logo.png": {"hash": png, "size": 6},
            "/copy.html": {"hash": index, "size": 19},
        }})
    );

    // The buckets: one part per hash, named by it, base64 of the bytes, the file's type; the
    // session jwt as Bearer.
    let b64 = base64::engine::general_purpose::STANDARD;
    for (req, want) in [
        (
            &sent[1],
            vec![
                (
                    &index,
                    "text/html; charset=utf-8",
                    &b"<div id=root></div>"[..],
                ),
                (
                    &js,
                    "text/javascript; charset=utf-8",
                    &b"console.log(1)"[..],
                ),
            ],
        ),
        (
            &sent[2],
            vec![(&png, "image/png", &[0x89, b'P', b'N', b'G', 0, 255][..])],
        ),
    ] {
        assert_eq!(
            req.header("authorization"),
            Some(&*format!("Bearer {SESSION_JWT}"))
        );
        assert!(req
            .header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary="));
        let parts = parts_of(req);
        assert_eq!(parts.len(), want.len());
        for (part, (hash, ctype, bytes)) in parts.iter().zip(want) {
            assert_eq!(&part.0, hash);
            assert_eq!(part.1.as_deref(), Some(hash.as_str()));
            assert_eq!(part.2, ctype);
            assert_eq!(b64.decode(&part.3).unwrap(), bytes);
        }
    }

    // The script: metadata with the completion jwt, then the generated main module.
    let script = &sent[3];
    assert_eq!(
        script.header("authorization"),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(
        metadata_of(script),
        json!({
            "main_module": ASSETS_MAIN_MODULE,
            "compatibility_date": "2026-05-01",
            "bindings": [{"type": "assets", "name": "ASSETS"}],
            "assets": {"jwt": DONE_JWT, "config": {"not_found_handling": "single-page-application"}},
        })
    );
    let parts = parts_of(script);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1].0, ASSETS_MAIN_MODULE);
    assert_eq!(parts[1].2, MODULE_CONTENT_TYPE);
    let source = String::from_utf8(parts[1].3.clone()).unwrap();
    assert!(source.contains("env.ASSETS.fetch(request)"), "{source}");
}

#[test]
fn with_nothing_to_upload_the_session_jwt_completes_the_assets() {
    let api = FakeApi::new(cloudflare(vec![]));
    let published = block_on(publish(&api, &target(), "app-abc", &spa())).unwrap();
    assert_eq!(published.uploaded, 0);
    let sent = api.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(metadata_of(&sent[1])["assets"]["jwt"], SESSION_JWT);
}

#[test]
fn the_apps_own_worker_modules_are_uploaded_as_they_are() {
    let mut bundle = spa();
    bundle.modules = vec![
        Module {
            name: "_worker.js".into(),
            content: "import {x} from './lib.js'; export default {fetch(){return new Response(x)}}"
                .into(),
        },
        Module {
            name: "lib.js".into(),
            content: "export const x = \"--byte-\";".into(),
        },
    ];
    bundle.main_module = Some("_worker.js".into());
    let api = FakeApi::new(cloudflare(vec![]));
    let options = PublishOptions {
        durable_objects: vec![],
        run_worker_first: Some(true),
    };
    let published = block_on(publish_with(&api, &target(), "app-abc", &bundle, &options)).unwrap();
    assert_eq!(published.main_module, "_worker.js");
    let put = &api.sent()[1];
    let meta = metadata_of(put);
    assert_eq!(meta["main_module"], "_worker.js");
    assert_eq!(
        meta["assets"]["config"],
        json!({"not_found_handling": "single-page-application", "run_worker_first": true})
    );
    assert!(meta.get("migrations").is_none());
    let parts = parts_of(put);
    let modules: Vec<_> = parts[1..]
        .iter()
        .map(|p| {
            (
                p.0.as_str(),
                p.2.as_str(),
                String::from_utf8(p.3.clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        modules,
        [
            (
                "_worker.js",
                MODULE_CONTENT_TYPE,
                bundle.modules[0].content.clone()
            ),
            (
                "lib.js",
                MODULE_CONTENT_TYPE,
                bundle.modules[1].content.clone()
            ),
        ]
    );
}

#[test]
fn a_worker_without_assets_skips_the_asset_upload() {
    let bundle = Bundle {
        assets: vec![],
        modules: vec![Module {
            name: "index.js".into(),
            content: "export default {}".into(),
        }],
        main_module: Some("index.js".into()),
    };
    let api = FakeApi::new(cloudflare(vec![]));
    block_on(publish(&api, &target(), "app-abc", &bundle)).unwrap();
    let sent = api.sent();
    assert_eq!(sent.len(), 1);
    let meta = metadata_of(&sent[0]);
    assert!(meta.get("assets").is_none());
    assert_eq!(meta["bindings"], json!([]));
}

#[test]
fn five_hundreds_429s_and_transport_errors_are_retried_with_backoff() {
    // Each step fails once in a different way, then succeeds.
    let mut inner = cloudflare(vec![vec![h(b"<div id=root></div>")]]);
    let mut failed = BTreeSet::new();
    let api = FakeApi::new(move |req| {
        let key = format!("{} {}", req.method.as_str(), req.url);
        if failed.insert(key) {
            if req.url.ends_with("/assets-upload-session") {
                return status(503, &[]);
            } else if req.url.contains("/assets/upload") {
                return Err("connection reset".into());
            } else {
                return status(429, &[("Retry-After", "3")]);
            }
        }
        inner(req)
    });
    let published = block_on(publish(&api, &target(), "app-abc", &spa())).unwrap();
    assert_eq!(published.uploaded, 1);
    assert_eq!(api.sent().len(), 6);
    assert_eq!(*api.sleeps.borrow(), [500, 500, 3000]);
    // The retried upload carried the same parts.
    let sent = api.sent();
    assert_eq!(sent[2], sent[3]);
}

#[test]
fn retries_are_bounded_and_an_outage_is_not_permanent() {
    let api = FakeApi::new(|_| status(502, &[]));
    let err = block_on(publish(&api, &target(), "app-abc", &spa())).unwrap_err();
    assert_eq!(api.sent().len(), MAX_ATTEMPTS as usize);
    assert_eq!(*api.sleeps.borrow(), [500, 1000, 2000, 4000]);
    assert_eq!(err.step, PublishStep::AssetsSession);
    assert_eq!(err.status, Some(502));
    assert!(!err.permanent);
    assert!(err.message.contains("5 attempts"), "{err}");
    assert_eq!(api.puts(), 0);

    // Retry-After is honoured but bounded.
    let api = FakeApi::new(|_| status(429, &[("retry-after", "3600")]));
    block_on(publish(&api, &target(), "app-abc", &spa())).unwrap_err();
    assert_eq!(*api.sleeps.borrow(), [BACKOFF_MAX_MS; 4]);
}

#[test]
fn other_4xx_are_final_at_once_and_publish_nothing() {
    for (step_url, step) in [
        ("/assets-upload-session", PublishStep::AssetsSession),
        ("/assets/upload", PublishStep::AssetsUpload),
    ] {
        let mut inner = cloudflare(vec![vec![h(b"console.log(1)")]]);
        let api = FakeApi::new(move |req| {
            if req.url.contains(step_url) {
                refusal(403, 10000, "Authentication error")
            } else {
                inner(req)
            }
        });
        let err = block_on(publish(&api, &target(), "app-abc", &spa())).unwrap_err();
        assert_eq!(err.step, step);
        assert_eq!(err.status, Some(403));
        assert_eq!(err.codes, [10000]);
        assert!(err.permanent);
        assert!(
            err.message.contains("Authentication error [code: 10000]"),
            "{err}"
        );
        assert!(api.sleeps.borrow().is_empty());
        assert_eq!(api.puts(), 0);
        assert!(err.to_string().starts_with(&step.to_string()));
    }

    // A refused script upload is tried once.
    let mut inner = cloudflare(vec![]);
    let api = FakeApi::new(move |req| {
        if req.method == HttpMethod::Put {
            refusal(400, 10021, "Uncaught SyntaxError: Unexpected token")
        } else {
            inner(req)
        }
    });
    let err = block_on(publish(&api, &target(), "app-abc", &spa())).unwrap_err();
    assert_eq!((err.step, err.permanent), (PublishStep::ScriptUpload, true));
    assert_eq!(api.puts(), 1);
    let failure: DeployFailure = err.into();
    assert!(failure.message.contains("Unexpected token [code: 10021]"));
}

fn with_durable_objects() -> (Bundle, PublishOptions) {
    let bundle = Bundle {
        assets: vec![],
        modules: vec![Module {
            name: "index.js".into(),
            content: "export class Counter {} export class CounterRoom {} export default {}".into(),
        }],
        main_module: Some("index.js".into()),
    };
    let options = PublishOptions {
        durable_objects: vec!["Counter".into(), "CounterRoom".into()],
        run_worker_first: None,
    };
    (bundle, options)
}

#[test]
fn an_existing_durable_object_class_is_dropped_from_the_migrations_and_retried() {
    let (bundle, options) = with_durable_objects();
    let mut answers = vec![
        refusal(
            400,
            DURABLE_OBJECT_EXISTS,
            "Cannot apply new-sqlite-class migration to class 'Counter' that already exists",
        ),
        refusal(
            400,
            DURABLE_OBJECT_EXISTS,
            "Cannot apply new-sqlite-class migration to class 'CounterRoom' that already exists",
        ),
    ]
    .into_iter();
    let api = FakeApi::new(move |_| answers.next().unwrap_or_else(|| envelope(200, json!({}))));
    block_on(publish_with(&api, &target(), "app-abc", &bundle, &options)).unwrap();
    let migrations: Vec<Value> = api
        .sent()
        .iter()
        .map(|r| {
            metadata_of(r)
                .get("migrations")
                .cloned()
                .unwrap_or(Value::Null)
        })
        .collect();
    assert_eq!(
        migrations,
        [
            json!({"new_sqlite_classes": ["Counter", "CounterRoom"]}),
            // `Counter` named as a whole word: CounterRoom stays.
            json!({"new_sqlite_classes": ["CounterRoom"]}),
            Value::Null,
        ]
    );
    // The bindings keep every class.
    let meta = metadata_of(&api.sent()[2]);
    assert_eq!(
        meta["bindings"],
        json!([
            {"type": "durable_object_namespace", "name": "Counter", "class_name": "Counter"},
            {"type": "durable_object_namespace", "name": "CounterRoom", "class_name": "CounterRoom"},
        ])
    );
    assert!(api.sleeps.borrow().is_empty());
}

#[test]
fn a_10074_that_names_no_migrating_class_is_final() {
    let (bundle, options) = with_durable_objects();
    let api = FakeApi::new(|_| {
        refusal(
            400,
            DURABLE_OBJECT_EXISTS,
            "Cannot apply new-sqlite-class migration to class 'Counter' that already exists",
        )
    });
    let err = block_on(publish_with(&api, &target(), "app-abc", &bundle, &options)).unwrap_err();
    // Once with both classes, once without Counter; then it is not ours to drop again.
    assert_eq!(api.puts(), 2);
    assert_eq!(err.codes, [DURABLE_OBJECT_EXISTS]);
    assert!(err.permanent);
}

#[test]
fn unpublish_deletes_with_force_and_a_missing_script_is_done() {
    let api = FakeApi::new(|_| envelope(200, Value::Null));
    block_on(unpublish(&api, &target(), "app-abc")).unwrap();
    let sent = api.sent();
    assert_eq!(
        api.lines(),
        ["DELETE http://cf.test/client/v4/accounts/0123456789abcdef0123456789abcdef/workers/dispatch/namespaces/byte-apps/scripts/app-abc?force=true"]
    );
    assert_eq!(
        sent[0].header("authorization"),
        Some(&*format!("Bearer {TOKEN}"))
    );

    let api = FakeApi::new(|_| refusal(404, 10007, "This Worker does not exist on your account."));
    block_on(unpublish(&api, &target(), "app-abc")).unwrap();

    let mut first = true;
    let api = FakeApi::new(move |_| {
        if std::mem::take(&mut first) {
            status(500, &[])
        } else {
            envelope(200, Value::Null)
        }
    });
    block_on(unpublish(&api, &target(), "app-abc")).unwrap();
    assert_eq!(api.sent().len(), 2);

    let api = FakeApi::new(|_| refusal(403, 10000, "Authentication error"));
    let err = block_on(unpublish(&api, &target(), "app-abc")).unwrap_err();
    assert_eq!((err.step, err.permanent), (PublishStep::ScriptDelete, true));

    let err = block_on(unpublish(&api, &target(), "../other")).unwrap_err();
    assert_eq!(err.step, PublishStep::ScriptDelete);
    assert_eq!(api.sent().len(), 1);
}

#[test]
fn secrets_never_reach_an_error_or_a_debug_line() {
    // An API that quotes back whatever credentials it was sent.
    let echo = |req: &ApiRequest| {
        let auth = req.header("authorization").unwrap_or("").to_string();
        refusal(401, 10000, &format!("bad credentials: {auth}"))
    };
    let api = FakeApi::new(echo);
    let err = block_on(publish(&api, &target(), "app-abc", &spa())).unwrap_err();
    assert!(!format!("{err:?}").contains(TOKEN), "{err:?}");
    assert!(err.message.contains("bad credentials: Bearer [redacted]"));

    // The upload jwts too.
    let mut inner = cloudflare(vec![vec![h(b"console.log(1)")]]);
    let api = FakeApi::new(move |req| {
        if req.method == HttpMethod::Put {
            let meta = metadata_of(req);
            refusal(
                400,
                10000,
                &format!("assets jwt {} is stale", meta["assets"]["jwt"]),
            )
        } else if req.url.contains("/assets/upload") {
            inner(req).map(|mut r| {
                r.status = 201;
                r
            })
        } else {
            inner(req)
        }
    });
    let err = block_on(publish(&api, &target(), "app-abc", &spa())).unwrap_err();
    assert!(
        !err.message.contains(DONE_JWT) && !err.message.contains(SESSION_JWT),
        "{err}"
    );

    // Transport errors are scrubbed as well, and Debug output hides the token.
    let api = FakeApi::new(|req| Err(format!("refused {}", req.header("authorization").unwrap())));
    let err = block_on(unpublish(&api, &target(), "app-abc")).unwrap_err();
    assert!(!err.message.contains(TOKEN), "{err}");
    assert!(!format!("{:?}", target()).contains(TOKEN));
    assert!(!format!("{:?}", api.sent()[0]).contains(TOKEN));
}

#[test]
fn garbled_answers_are_errors_that_may_pass() {
    let api = FakeApi::new(|_| {
        Ok(ApiResponse {
            status: 200,
            headers: vec![],
            body: b"not json".to_vec(),
        })
    });
    let err = block_on(publish(&api, &target(), "app-abc", &spa())).unwrap_err();
    assert!(!err.permanent);
    assert!(err.message.contains("without a JSON body"), "{err}");

    // A bucket naming a file we never listed.
    let api = FakeApi::new(cloudflare(vec![vec![
        "ffffffffffffffffffffffffffffffff".into()
    ]]));
    let err = block_on(publish(&api, &target(), "app-abc", &spa())).unwrap_err();
    assert_eq!(err.step, PublishStep::AssetsSession);
    assert_eq!(api.sent().len(), 1);

    // Every bucket accepted, but no completion token.
    let mut inner = cloudflare(vec![vec![h(b"console.log(1)")]]);
    let api = FakeApi::new(move |req| {
        if req.url.contains("/assets/upload") {
            envelope(202, json!({}))
        } else {
            inner(req)
        }
    });
    let err = block_on(publish(&api, &target(), "app-abc", &spa())).unwrap_err();
    assert_eq!(err.step, PublishStep::AssetsUpload);
    assert_eq!(api.puts(), 0);
}

#[test]
fn bundles_that_cannot_be_published_are_refused_before_any_request() {
    let api = FakeApi::new(|_| panic!("nothing may be sent"));
    let t = target();
    let check = |script: &str, bundle: Bundle, options: PublishOptions, says: &str| {
        let err = block_on(publish_with(&api, &t, script, &bundle, &options)).unwrap_err();
        assert_eq!(err.step, PublishStep::Validate);
        assert!(err.permanent);
        assert!(err.message.contains(says), "{err} should say {says}");
    };
    let none = PublishOptions::default();
    check("App_1", spa(), none.clone(), "not a script name");
    check(
        "a".repeat(64).as_str(),
        spa(),
        none.clone(),
        "not a script name",
    );
    check(
        "app-1",
        Bundle::default(),
        none.clone(),
        "neither files nor Worker code",
    );
    let mut dup = spa();
    dup.assets.push(asset("/index.html", "text/html", b"x"));
    check("app-1", dup, none.clone(), "appears twice");
    let mut relative = spa();
    relative.assets[0].path = "index.html".into();
    check("app-1", relative, none.clone(), "must start with /");
    let mut no_main = spa();
    no_main.modules.push(Module {
        name: "w.js".into(),
        content: String::new(),
    });
    check("app-1", no_main.clone(), none.clone(), "no main module");
    no_main.main_module = Some("other.js".into());
    check(
        "app-1",
        no_main.clone(),
        none.clone(),
        "not among the Worker modules",
    );
    no_main.modules[0].name = "metadata".into();
    no_main.main_module = Some("metadata".into());
    check(
        "app-1",
        no_main,
        none.clone(),
        "cannot name a Worker module",
    );
    let bad_class = PublishOptions {
        durable_objects: vec!["not-a-class".into()],
        run_worker_first: None,
    };
    check(
        "app-1",
        with_durable_objects().0,
        bad_class,
        "cannot name a Durable Object",
    );
    let needs_worker = with_durable_objects().1;
    check(
        "app-1",
        spa(),
        needs_worker,
        "need the app's own Worker code",
    );
    assert!(api.sent().is_empty());
}

#[test]
fn script_names_are_valid_stable_and_distinct() {
    let id = "app_3f9c00112233445566778899aabbccdd";
    let name = script_name(id);
    assert_eq!(name, script_name(id));
    assert!(
        name.starts_with("app-3f9c00112233445566778899aabbccdd-"),
        "{name}"
    );
    for id in [
        id,
        "App_1",
        "app-1",
        "",
        "42",
        "ünïcödé/../../etc",
        &"x".repeat(500),
        "--weird--",
    ] {
        let n = script_name(id);
        assert!(is_script_name(&n), "{id:?} → {n:?}");
    }
    assert_ne!(script_name("App_1"), script_name("app-1"));
    assert_ne!(script_name("app_1"), script_name("app-1"));
    assert_ne!(script_name(&"x".repeat(100)), script_name(&"x".repeat(101)));
    assert_eq!(script_name(&"x".repeat(500)).len(), MAX_SCRIPT_NAME);
}

#[test]
fn a_target_is_checked_and_defaults_to_cloudflares_api() {
    let t = DispatchTarget::new(None, "abc123", "apps", "tok", "2026-05-01").unwrap();
    assert_eq!(t.api_base, DEFAULT_API_BASE);
    assert_eq!(
        t.assets_upload_url(),
        "https://api.cloudflare.com/client/v4/accounts/abc123/workers/assets/upload?base64=true"
    );
    let bad = [
        (
            Some("ftp://x"),
            "abc",
            "apps",
            "tok",
            "2026-05-01",
            "CLOUDFLARE_API_BASE_URL",
        ),
        (
            None,
            "abc/../x",
            "apps",
            "tok",
            "2026-05-01",
            "CLOUDFLARE_ACCOUNT_ID",
        ),
        (
            None,
            "abc",
            "a/b",
            "tok",
            "2026-05-01",
            "DISPATCH_NAMESPACE",
        ),
        (
            None,
            "abc",
            "apps",
            "",
            "2026-05-01",
            "CLOUDFLARE_API_TOKEN",
        ),
        (
            None,
            "abc",
            "apps",
            "t o k",
            "2026-05-01",
            "CLOUDFLARE_API_TOKEN",
        ),
        (None, "abc", "apps", "tok", "May 1", "compatibility date"),
    ];
    for (base, account, ns, token, date, says) in bad {
        let err = DispatchTarget::new(base, account, ns, token, date).unwrap_err();
        assert!(err.contains(says), "{err}");
        assert!(token.is_empty() || !err.contains(token));
    }
}

#[test]
fn the_boundary_never_occurs_in_the_content() {
    let base = "byte-0000";
    let parts = vec![Part {
        name: "a".into(),
        filename: None,
        content_type: "text/plain".into(),
        body: format!("x\r\n--{base}\r\n--{base}-1--").into_bytes(),
    }];
    let b = choose_boundary(base.into(), &parts);
    assert!(!b.is_empty() && memchr::memmem::find(&parts[0].body, b.as_bytes()).is_none());

    // And whatever the content, a body parses back into the same parts.
    let parts = vec![
        Part {
            name: "quote\"d\r\nname".into(),
            filename: Some("f".into()),
            content_type: "text/plain".into(),
            body: b"--\r\n--byte-\r\n\r\n".to_vec(),
        },
        Part {
            name: "empty".into(),
            filename: None,
            content_type: "application/octet-stream".into(),
            body: vec![],
        },
    ];
    let (content_type, body) = multipart(&parts);
    let req = ApiRequest {
        method: HttpMethod::Post,
        url: "http://x".into(),
        headers: vec![("content-type".into(), content_type)],
        body,
    };
    let back = parts_of(&req);
    assert_eq!(back[0].0, "quote%22d%0D%0Aname");
    assert_eq!(back[0].3, parts[0].body);
    assert_eq!(back[1].3, Vec::<u8>::new());
}

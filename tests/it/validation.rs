//! Every class of bad input gets a 400/413 with E004 naming the offending fields, and nothing is
//! written.

use crate::harness::{expect_error, main_instance};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn bad_bodies_are_rejected_and_nothing_is_written() {
    let app = main_instance();
    let u = app.user("bad").await;
    let post = |body: String| {
        app.req(Method::POST, "/api/apps")
            .bearer_auth(&u.token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };

    let e = expect_error(post("{\"title\": ".into()).await.unwrap(), 400, "E004").await;
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("malformed JSON"));
    expect_error(post("[]".into()).await.unwrap(), 400, "E004").await;
    let e = expect_error(
        post(r#"{"title": 42, "tags": "x", "config": [1]}"#.into())
            .await
            .unwrap(),
        400,
        "E004",
    )
    .await;
    assert_eq!(e["error"]["fields"]["title"], "must be a string");
    assert_eq!(e["error"]["fields"]["tags"], "must be an array of strings");
    assert_eq!(e["error"]["fields"]["config"], "must be an object");
    let e = expect_error(
        post(r#"{"description": "no title"}"#.into()).await.unwrap(),
        400,
        "E004",
    )
    .await;
    assert_eq!(e["error"]["fields"]["title"], "is required");
    let e = expect_error(
        post(r#"{"title": "x", "visibility": "secret"}"#.into())
            .await
            .unwrap(),
        400,
        "E004",
    )
    .await;
    assert_eq!(
        e["error"]["fields"]["visibility"],
        "must be one of: public, private"
    );
    let e = expect_error(
        post(json!({ "title": "t".repeat(201) }).to_string())
            .await
            .unwrap(),
        400,
        "E004",
    )
    .await;
    assert_eq!(
        e["error"]["fields"]["title"],
        "must be at most 200 characters"
    );
    let e = expect_error(
        post(json!({ "title": "t", "description": "d".repeat(1001) }).to_string())
            .await
            .unwrap(),
        400,
        "E004",
    )
    .await;
    assert_eq!(
        e["error"]["fields"]["description"],
        "must be at most 1000 characters"
    );
    let e = expect_error(
        post(json!({ "title": "t", "owner": "someone" }).to_string())
            .await
            .unwrap(),
        400,
        "E004",
    )
    .await;
    assert_eq!(e["error"]["fields"]["owner"], "unknown field");
    // Exactly at the limits is fine.
    let r = post(json!({ "title": "é".repeat(200), "description": "d".repeat(1000) }).to_string())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Over 1 MiB: 413 whether or not the client declared the length.
    let huge = json!({ "title": "x", "config": { "blob": "a".repeat(1024 * 1024) } }).to_string();
    expect_error(post(huge.clone()).await.unwrap(), 413, "E004").await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = huge
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let r = app
        .req(Method::POST, "/api/apps")
        .bearer_auth(&u.token)
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    expect_error(r, 413, "E004").await;

    // Wrong content type.
    let r = app
        .req(Method::POST, "/api/apps")
        .bearer_auth(&u.token)
        .header("Content-Type", "text/plain")
        .body("{\"title\":\"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(r, 400, "E004").await["error"]["fields"]["Content-Type"],
        "must be application/json"
    );

    // Only the one valid create happened.
    let list: Value = app
        .call(Method::GET, "/api/apps", &u.token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1);
}

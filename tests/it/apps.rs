//! Apps CRUD, listing (search, sort, visibility, paging) and isolation between users.

use crate::harness::{expect_error, join_statuses, main_instance, tight_instance, TIGHT_MAX_APPS};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn create_get_patch_delete() {
    let app = main_instance();
    let u = app.user("crud").await;
    let r = app.call(Method::POST, "/api/apps", &u.token, Some(&json!({ "title": "  Todo App ", "description": "A simple todo list", "tags": ["react"], "config": {"theme": "dark"} }))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["title"], "Todo App");
    assert_eq!(created["visibility"], "private", "private by default");
    assert_eq!(created["config"]["theme"], "dark");
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));

    let got: Value = app
        .call(Method::GET, &format!("/api/apps/{id}"), &u.token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["description"], "A simple todo list");
    assert!(got["files"].is_object());

    let r = app
        .call(
            Method::PATCH,
            &format!("/api/apps/{id}"),
            &u.token,
            Some(&json!({ "title": "Renamed", "description": null, "visibility": "public" })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(
        (
            patched["title"].as_str(),
            patched["description"].is_null(),
            patched["visibility"].as_str()
        ),
        (Some("Renamed"), true, Some("public"))
    );
    assert_eq!(
        patched["tags"],
        json!(["react"]),
        "fields not in the patch are kept"
    );

    let r = app
        .call(Method::DELETE, &format!("/api/apps/{id}"), &u.token, None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .call(Method::GET, &format!("/api/apps/{id}"), &u.token, None)
        .await;
    expect_error(r, 404, "E002").await;
    let r = app
        .call(Method::DELETE, &format!("/api/apps/{id}"), &u.token, None)
        .await;
    expect_error(r, 404, "E002").await;
}

#[tokio::test]
async fn another_users_private_app_is_404_on_every_route() {
    let app = main_instance();
    let owner = app.user("owner").await;
    let other = app.user("other").await;
    let private = app.app(&owner, "Secret plans", "private").await;
    let public = app.app(&owner, "Shared demo", "public").await;

    for token in [Some(other.token.as_str()), None] {
        let auth = |r: reqwest::RequestBuilder| match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        };
        let r = auth(app.req(Method::GET, &format!("/api/apps/{private}")))
            .send()
            .await
            .unwrap();
        let e = expect_error(r, 404, "E002").await;
        assert_eq!(
            e["error"]["message"], "app not found",
            "same answer as a missing app"
        );
        // The public one can be read by anyone...
        let r = auth(app.req(Method::GET, &format!("/api/apps/{public}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["isOwner"], false);
        assert!(body["containerState"].is_null());
    }
    // ...but written by no one else.
    for id in [&private, &public] {
        let r = app
            .call(
                Method::PATCH,
                &format!("/api/apps/{id}"),
                &other.token,
                Some(&json!({ "title": "pwned" })),
            )
            .await;
        expect_error(r, 404, "E002").await;
        let r = app
            .call(
                Method::DELETE,
                &format!("/api/apps/{id}"),
                &other.token,
                None,
            )
            .await;
        expect_error(r, 404, "E002").await;
    }
    // Unauthenticated writes are 401.
    let r = app
        .req(Method::DELETE, &format!("/api/apps/{public}"))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "E001").await;
    // The owner's apps are untouched and listed only for the owner.
    let mine: Value = app
        .call(Method::GET, "/api/apps", &owner.token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["total"], 2);
    assert!(mine["apps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["title"] != "pwned"));
    let theirs: Value = app
        .call(Method::GET, "/api/apps", &other.token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["total"], 0);
    // The public listing shows the public app and never the private one.
    let public_list: Value = app
        .req(
            Method::GET,
            "/api/apps/public?search=Shared%20demo&limit=100",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = public_list["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&public.as_str()) && !ids.contains(&private.as_str()));
    // A malformed id is simply not found.
    let r = app
        .call(
            Method::GET,
            "/api/apps/app_%2E%2E%2Fusers",
            &owner.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_search_sort_visibility_and_paging() {
    let app = main_instance();
    let u = app.user("list").await;
    for (title, vis) in [
        ("Banana shop", "public"),
        ("apple store", "private"),
        ("Cherry 100% juice", "private"),
        ("date_time app", "public"),
    ] {
        app.app(&u, title, vis).await;
    }
    let get = |q: &'static str| {
        let token = u.token.clone();
        async move {
            let r = app
                .call(Method::GET, &format!("/api/apps{q}"), &token, None)
                .await;
            assert_eq!(r.status(), StatusCode::OK, "{q}");
            r.json::<Value>().await.unwrap()
        }
    };
    let titles = |v: &Value| {
        v["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["title"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    let all = get("").await;
    assert_eq!(
        (
            all["total"].as_u64(),
            all["page"].as_u64(),
            all["totalPages"].as_u64()
        ),
        (Some(4), Some(1), Some(1))
    );
    assert_eq!(titles(&all)[0], "date_time app", "newest first by default");
    assert_eq!(
        titles(&get("?sort=name").await),
        vec![
            "apple store",
            "Banana shop",
            "Cherry 100% juice",
            "date_time app"
        ]
    );
    assert_eq!(
        titles(&get("?sort=name&visibility=public").await),
        vec!["Banana shop", "date_time app"]
    );
    assert_eq!(get("?visibility=private").await["total"], 2);
    // LIKE wildcards in a search match literally.
    assert_eq!(
        titles(&get("?search=100%25").await),
        vec!["Cherry 100% juice"]
    );
    assert_eq!(titles(&get("?search=e_t").await), vec!["date_time app"]);
    assert_eq!(get("?search=%25").await["total"], 1);
    assert_eq!(get("?search=_").await["total"], 1);
    // Paging.
    let p2 = get("?sort=name&limit=3&page=2").await;
    assert_eq!(
        (titles(&p2), p2["totalPages"].as_u64()),
        (vec!["date_time app".to_string()], Some(2))
    );
    assert_eq!(get("?page=9").await["apps"], json!([]));
}

#[tokio::test]
async fn max_apps_is_enforced_even_under_concurrency() {
    let app = tight_instance();
    let u = app.user("quota").await;
    let attempts = 6;
    let results = join_statuses(attempts, |i| {
        app.req(Method::POST, "/api/apps")
            .bearer_auth(&u.token)
            .json(&json!({ "title": format!("app {i}") }))
            .send()
    })
    .await;
    let created = results.iter().filter(|s| **s == 201).count();
    let refused = results.iter().filter(|s| **s == 403).count();
    assert_eq!(
        (created as u64, refused as u64),
        (TIGHT_MAX_APPS, attempts as u64 - TIGHT_MAX_APPS),
        "{results:?}"
    );
    let r = app
        .call(
            Method::POST,
            "/api/apps",
            &u.token,
            Some(&json!({ "title": "one more" })),
        )
        .await;
    let e = expect_error(r, 403, "E004").await;
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 3 apps"));
}

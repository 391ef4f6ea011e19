//! Talking to OAuth providers: the code-for-token exchange and the profile fetch.
//!
//! Invariant: provider secrets and access tokens never appear in logs or responses.

use crate::domain::config::OAuthClient;
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::oauth::{self, Profile, Provider};
use serde_json::Value;
use worker::{Fetch, Headers, Method, Request, RequestInit};

fn provider_error(what: &str) -> ApiError {
    worker::console_error!("oauth: {what}");
    ApiError::new(
        502,
        crate::domain::error::ErrorCode::E001,
        format!("sign-in provider error: {what}"),
    )
}

async fn call(
    url: &str,
    method: Method,
    headers: Headers,
    body: Option<String>,
) -> ApiResult<Value> {
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if let Some(b) = body {
        init.with_body(Some(b.into()));
    }
    let req = Request::new_with_init(url, &init).map_err(|_| provider_error("bad provider URL"))?;
    let mut resp = Fetch::Request(req)
        .send()
        .await
        .map_err(|_| provider_error("provider unreachable"))?;
    let status = resp.status_code();
    let body: Value = resp
        .json()
        .await
        .map_err(|_| provider_error("provider answered with non-JSON"))?;
    if !(200..300).contains(&status) {
        let e = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        return Err(provider_error(&format!("HTTP {status}: {e}")));
    }
    Ok(body)
}

fn headers(pairs: &[(&str, &str)]) -> ApiResult<Headers> {
    let h = Headers::new();
    for (k, v) in pairs {
        h.set(k, v)?;
    }
    Ok(h)
}

/// Exchanges the authorization code (with the PKCE verifier) and fetches the user's profile.
pub async fn exchange_and_fetch_profile(
    p: Provider,
    client: &OAuthClient,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> ApiResult<Profile> {
    let body = oauth::token_request_body(
        code,
        redirect_uri,
        &client.client_id,
        &client.client_secret,
        verifier,
    );
    let token_resp = call(
        &client.endpoints.token,
        Method::Post,
        headers(&[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
        ])?,
        Some(body),
    )
    .await?;
    let token = oauth::access_token(&token_resp).map_err(|e| provider_error(&e))?;
    let auth = format!("Bearer {token}");
    let common = [
        ("Authorization", auth.as_str()),
        ("Accept", "application/json"),
        ("User-Agent", "byte-platform"),
    ];
    match p {
        Provider::Google => {
            let info = call(&client.endpoints.api, Method::Get, headers(&common)?, None).await?;
            oauth::google_profile(&info).map_err(|e| provider_error(&e))
        }
        Provider::Github => {
            let base = client.endpoints.api.trim_end_matches('/');
            let user = call(
                &format!("{base}/user"),
                Method::Get,
                headers(&common)?,
                None,
            )
            .await?;
            // The address list is where GitHub says which addresses are verified; without it
            // there is no address to trust, so a failure here fails the sign-in.
            let emails = call(
                &format!("{base}/user/emails"),
                Method::Get,
                headers(&common)?,
                None,
            )
            .await?;
            oauth::github_profile(&user, &emails).map_err(|e| provider_error(&e))
        }
    }
}

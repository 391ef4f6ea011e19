//! The preview cookie policy applied to whole header lists as the Worker handles them: which
//! headers of a browser's preview request go on to the app's sandbox, and which `Set-Cookie`
//! headers of the app's answer reach the browser; and the signed preview URL an owner is given
//! ([`signed_url`], pure: the clock and the keyed HMAC are the caller's).
//!
//! The policy is stated in `routes/preview.rs` and `sandbox/README.md`; its rules (the platform
//! cookie names, one cookie header, one `Set-Cookie`) live in [`byte_protocol::preview`], which
//! byte-sandbox applies too. Invariants of what these functions return: no `Authorization` or
//! `Proxy-Authorization`; no `Cookie` naming a platform cookie (and no empty `Cookie`); no
//! `Set-Cookie` naming a platform cookie or carrying a `Domain` attribute.

pub use byte_protocol::preview::{
    app_cookies, app_set_cookie, is_platform_cookie, PLATFORM_COOKIES,
};

/// Lifetime of the token in a preview URL (it is exchanged for a cookie on first use).
pub const PREVIEW_URL_TTL_S: i64 = 600;

/// A URL that opens `app_id`'s preview at `<label>.<preview_domain>`, on the `scheme` and
/// `port` the API was reached on (preview hostnames share the Worker's listener), with a token
/// that expires [`PREVIEW_URL_TTL_S`] after `now_s`. `sign` is the deployment's keyed HMAC for
/// previews. `None`: the id has no preview label.
pub fn signed_url(
    scheme: &str,
    preview_domain: &str,
    port: Option<u16>,
    app_id: &str,
    now_s: i64,
    sign: impl Fn(&str) -> String,
) -> Option<String> {
    let label = super::sandbox::preview_label(app_id)?;
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    let token = super::sandbox::preview_token(label, now_s + PREVIEW_URL_TTL_S, sign);
    Some(format!(
        "{scheme}://{label}.{preview_domain}{port}/?__byte_preview={token}"
    ))
}

/// The headers of a browser's preview request as they go on to the app: `Authorization`
/// withheld, `Cookie` reduced to the app's own cookies (left out when none is left), every
/// other header unchanged, in order.
pub fn request_headers<I, K, V>(entries: I) -> Vec<(String, String)>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    entries
        .into_iter()
        .filter_map(|(k, v)| {
            let kept = byte_protocol::preview::request_header(k.as_ref(), v.as_ref())?;
            Some((k.as_ref().to_string(), kept.into_owned()))
        })
        .collect()
}

/// The `Set-Cookie` values to send back for those the app sent, or `None` when all pass
/// unchanged (so the answer can be forwarded as it is, streaming and all).
pub fn set_cookies(values: &[String]) -> Option<Vec<String>> {
    let mut changed = false;
    let kept: Vec<String> = values
        .iter()
        .filter_map(|v| {
            let kept = app_set_cookie(v);
            changed |= kept.as_deref() != Some(v.as_str());
            kept.map(|k| k.into_owned())
        })
        .collect();
    changed.then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_preview_request_keeps_the_apps_cookies_only() {
        let browser = [
            ("accept", "text/html"),
            ("authorization", "Bearer platform-token"),
            (
                "cookie",
                "app_cookie=hello; byte_session=s; byte_csrf=c; byte_preview=p",
            ),
            ("x-requested-with", "fetch"),
        ];
        assert_eq!(
            request_headers(browser),
            pairs(&[
                ("accept", "text/html"),
                ("cookie", "app_cookie=hello"),
                ("x-requested-with", "fetch"),
            ])
        );
        assert_eq!(
            request_headers([("Cookie", "byte_preview=p"), ("Proxy-Authorization", "x")]),
            vec![],
            "nothing of the app's: no Cookie header at all"
        );
    }

    #[test]
    fn set_cookies_pass_unless_they_name_a_platform_cookie() {
        let own = vec![
            "app_cookie=from-app; Path=/".to_string(),
            "theme=dark".to_string(),
        ];
        assert_eq!(set_cookies(&own), None, "unchanged: forward as is");
        assert_eq!(set_cookies(&[]), None);
        let mixed = vec![
            "app_cookie=from-app; Path=/".to_string(),
            "byte_session=forged; Path=/; HttpOnly".to_string(),
            "tossed=1; Domain=preview.localhost; Path=/".to_string(),
            "byte_preview=9999999999.x".to_string(),
        ];
        assert_eq!(
            set_cookies(&mixed),
            Some(vec![
                "app_cookie=from-app; Path=/".to_string(),
                "tossed=1; Path=/".to_string(),
            ])
        );
        assert_eq!(
            set_cookies(&["byte_csrf=x".to_string()]),
            Some(vec![]),
            "every one dropped"
        );
    }

    #[test]
    fn a_signed_url_opens_its_own_preview_until_it_expires() {
        use super::super::sandbox::check_preview_token;
        let sign = |s: &str| format!("mac({s})");
        let id = "app_0123456789abcdef0123456789abcdef";
        let url = signed_url("http", "preview.localhost", Some(8787), id, 1000, sign).unwrap();
        let (base, token) = url.split_once("/?__byte_preview=").unwrap();
        assert_eq!(
            base,
            "http://0123456789abcdef0123456789abcdef.preview.localhost:8787"
        );
        let label = "0123456789abcdef0123456789abcdef";
        assert!(check_preview_token(
            token,
            label,
            1000 + PREVIEW_URL_TTL_S,
            sign
        ));
        assert!(!check_preview_token(
            token,
            label,
            1001 + PREVIEW_URL_TTL_S,
            sign
        ));
        assert!(
            signed_url("https", "p.example.com", None, id, 0, sign)
                .unwrap()
                .starts_with(&format!("https://{label}.p.example.com/?")),
            "no port: none in the URL"
        );
        assert_eq!(signed_url("http", "p", None, "app_bad", 0, sign), None);
    }

    #[test]
    fn platform_cookie_names_are_the_ones_the_worker_reads() {
        use super::super::web;
        for name in [
            web::SESSION_COOKIE,
            web::CSRF_COOKIE,
            web::OAUTH_COOKIE,
            web::PREVIEW_COOKIE,
        ] {
            assert!(is_platform_cookie(name) && PLATFORM_COOKIES.contains(&name));
        }
        assert_eq!(app_cookies("a=1; byte_session=x").as_deref(), Some("a=1"));
    }
}

//! HTTP conventions independent of the runtime: security headers, CORS decisions, cookies, and
//! which rate-limit class a path belongs to.

/// The spec's Content-Security-Policy, plus the framing and base-uri locks a modern app expects.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; connect-src 'self' wss: https:; \
frame-ancestors 'none'; base-uri 'self'; object-src 'none'";

/// The CSP of the platform's own pages and API: [`CSP`] tightened where the web app allows —
/// scripts only from files of this origin (the web app has no inline script and nothing in it,
/// Monaco included, evaluates strings) — plus `frame-src` naming only the preview origins
/// (`*.<preview_domain>`, any port; plain http only for a `.localhost` domain), so the workspace
/// can frame an app's preview and nothing else.
pub fn csp(preview_domain: &str) -> String {
    let d = preview_domain.trim_matches('.');
    let mut frame = format!("'self' https://*.{d}:*");
    if d == "localhost" || d.ends_with(".localhost") {
        frame.push_str(&format!(" http://*.{d}:*"));
    }
    let base = CSP.replace(
        "script-src 'self' 'unsafe-inline' 'unsafe-eval';",
        "script-src 'self';",
    );
    format!("{base}; frame-src {frame}")
}

/// Headers every response carries.
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("Content-Security-Policy", CSP),
    (
        "Strict-Transport-Security",
        "max-age=31536000; includeSubDomains",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
];

pub const CORS_ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
pub const CORS_ALLOW_HEADERS: &str = "Authorization, Content-Type, X-CSRF-Token";
pub const CORS_EXPOSE_HEADERS: &str =
    "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After";

/// The origin to echo in `Access-Control-Allow-Origin`, if the request's origin is allowed.
/// Credentials are allowed, so the answer is always one exact origin, never `*`.
pub fn cors_origin<'a>(allowed: &[String], origin: Option<&'a str>) -> Option<&'a str> {
    let o = origin?;
    allowed.iter().any(|a| a == o).then_some(o)
}

/// The platform's cookie names are part of the preview cookie policy both the Worker and
/// byte-sandbox enforce, so they are defined once, in the protocol crate.
pub use byte_protocol::preview::{
    CSRF_COOKIE, OAUTH_COOKIE, PLATFORM_COOKIES, PREVIEW_COOKIE, SESSION_COOKIE,
};
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// The session cookie on an https origin. The `__Host-` prefix makes browsers accept it only
/// when it is Secure, has `Path=/` and no `Domain`, so a sibling or parent domain (an app on a
/// preview host, say) cannot plant or shadow it.
pub const HOST_SESSION_COOKIE: &str = "__Host-byte_session";

/// The session cookie's name for an origin: [`HOST_SESSION_COOKIE`] over https; the plain
/// [`SESSION_COOKIE`] over http (`make dev` on http://localhost), where a `__Host-` cookie would
/// depend on the browser's treatment of localhost as a secure context (Chromium and Firefox
/// accept it there, not every client does) and no sibling domain exists to guard against.
pub fn session_cookie_name(https: bool) -> &'static str {
    if https {
        HOST_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// A `Set-Cookie` value. Session cookies are HttpOnly; the CSRF cookie is readable by the page
/// (double-submit). All are Secure (browsers treat http://localhost as secure) and SameSite=Lax.
pub fn set_cookie(name: &str, value: &str, max_age: i64, http_only: bool, path: &str) -> String {
    let mut c = format!("{name}={value}; Path={path}; Max-Age={max_age}; Secure; SameSite=Lax");
    if http_only {
        c.push_str("; HttpOnly");
    }
    c
}

/// The preview cookie: set by an app's preview host inside the workspace's iframe, a cross-site
/// frame (`<app>.preview.localhost` under `localhost`), so `SameSite=None` and `Partitioned`
/// (kept per top-level site, which third-party cookie blocking allows).
pub fn set_embedded_cookie(name: &str, value: &str, max_age: i64) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=None; Partitioned"
    )
}

/// A cookie's value from a `Cookie` header (the first, for cookies where a duplicate is
/// harmless; the session cookie goes through [`sole_cookie`]).
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    cookies(header, name).into_iter().next()
}

fn cookies<'a>(header: Option<&'a str>, name: &str) -> Vec<&'a str> {
    header
        .unwrap_or("")
        .split(';')
        .filter_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k.trim() == name).then_some(v.trim())
        })
        .collect()
}

/// A cookie that must appear at most once: `Err(())` when the header carries it twice. Two
/// session cookies mean one was planted (a path- or domain-scoped copy sorts first), and no
/// rule picks the right one, so the request is refused.
#[allow(clippy::result_unit_err)]
pub fn sole_cookie<'a>(header: Option<&'a str>, name: &str) -> Result<Option<&'a str>, ()> {
    match cookies(header, name).as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(()),
    }
}

/// A `Cookie` header without the platform's cookies (`None` when nothing is left), so an app in a
/// preview sees only its own cookies (see [`super::preview`] for the whole policy).
pub fn strip_platform_cookies(header: &str) -> Option<String> {
    byte_protocol::preview::app_cookies(header)
}

/// Methods that change state, and therefore need CSRF protection under cookie auth.
pub fn is_unsafe(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_is_an_exact_allow_list() {
        let allowed = vec!["http://localhost:5173".to_string()];
        assert_eq!(
            cors_origin(&allowed, Some("http://localhost:5173")),
            Some("http://localhost:5173")
        );
        assert_eq!(
            cors_origin(&allowed, Some("http://localhost:5173.evil.com")),
            None
        );
        assert_eq!(cors_origin(&allowed, None), None);
        assert_eq!(cors_origin(&[], Some("http://x")), None);
    }

    #[test]
    fn cookies() {
        assert_eq!(
            cookie(Some("a=1; byte_session=tok; b=2"), SESSION_COOKIE),
            Some("tok")
        );
        assert_eq!(cookie(Some("xbyte_session=tok"), SESSION_COOKIE), None);
        let c = set_cookie(SESSION_COOKIE, "v", 60, true, "/");
        assert!(c.contains("HttpOnly") && c.contains("Secure") && c.contains("SameSite=Lax"));
    }

    #[test]
    fn session_cookie_is_host_prefixed_on_https_and_must_be_unique() {
        assert_eq!(session_cookie_name(true), "__Host-byte_session");
        assert_eq!(session_cookie_name(false), "byte_session");
        let c = set_cookie(session_cookie_name(true), "v", 60, true, "/");
        // What browsers require of a __Host- cookie.
        assert!(c.contains("; Path=/;") && c.contains("Secure") && !c.contains("Domain"));
        assert_eq!(
            sole_cookie(Some("a=1; byte_session=t"), SESSION_COOKIE),
            Ok(Some("t"))
        );
        assert_eq!(sole_cookie(Some("a=1"), SESSION_COOKIE), Ok(None));
        assert_eq!(sole_cookie(None, SESSION_COOKIE), Ok(None));
        assert_eq!(
            sole_cookie(Some("byte_session=planted; byte_session=t"), SESSION_COOKIE),
            Err(())
        );
        assert_eq!(
            sole_cookie(Some("byte_session=t;byte_session=t"), SESSION_COOKIE),
            Err(())
        );
        // The plain name does not satisfy the prefixed one, nor the reverse.
        assert_eq!(
            sole_cookie(Some("byte_session=t"), HOST_SESSION_COOKIE),
            Ok(None)
        );
        assert_eq!(
            sole_cookie(
                Some("__Host-byte_session=t; byte_session=x"),
                HOST_SESSION_COOKIE
            ),
            Ok(Some("t"))
        );
    }

    #[test]
    fn platform_cookies_are_stripped_for_previews() {
        assert_eq!(
            strip_platform_cookies(
                "theme=dark; byte_session=t; byte_csrf=c;byte_preview=p; cart=3"
            )
            .as_deref(),
            Some("theme=dark; cart=3")
        );
        assert_eq!(strip_platform_cookies("byte_session=t; byte_oauth=s"), None);
        assert_eq!(
            strip_platform_cookies("byte_sessionx=keep").as_deref(),
            Some("byte_sessionx=keep")
        );
    }

    #[test]
    fn page_csp_frames_only_previews() {
        let page = csp("preview.localhost");
        assert!(page.starts_with("default-src 'self'; script-src 'self'; style-src"));
        assert!(!page.contains("unsafe-eval"));
        assert!(page.ends_with(
            "; frame-src 'self' https://*.preview.localhost:* http://*.preview.localhost:*"
        ));
        assert!(csp("preview.example.com")
            .ends_with("; frame-src 'self' https://*.preview.example.com:*"));
        assert!(set_embedded_cookie("byte_preview", "t", 60).contains("SameSite=None; Partitioned"));
    }

    #[test]
    fn csp_is_the_specs() {
        assert!(CSP.starts_with("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; connect-src 'self' wss: https:;"));
    }
}

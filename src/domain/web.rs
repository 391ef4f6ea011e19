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

/// A cookie's value from a `Cookie` header.
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
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

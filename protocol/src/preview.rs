//! The preview cookie policy, one set of functions for every hop a preview request takes
//! (browser → Worker route → sandbox object → byte-sandbox proxy → the app's dev server, and
//! back):
//!
//! - an app keeps its own cookies: the request's `Cookie` header reaches it minus the platform's
//!   cookies ([`PLATFORM_COOKIES`]: session, CSRF, OAuth state, preview token);
//! - `Authorization` (and `Proxy-Authorization`) never reach an app;
//! - the app's `Set-Cookie` headers pass back to the browser, except one naming a platform
//!   cookie, which is dropped (an app cannot overwrite or plant the platform's cookies);
//! - an app's cookies are host-only: a `Domain` attribute is removed from its `Set-Cookie`, so
//!   one app cannot set cookies for the platform's domain or for other apps' previews.
//!
//! Cookie names are compared ignoring ASCII case, which drops more rather than less. The
//! functions are pure, so each hop applies them and each side tests them on the host.

use std::borrow::Cow;

/// The platform's login session (bearer token in an HttpOnly cookie).
pub const SESSION_COOKIE: &str = "byte_session";
/// The double-submit CSRF cookie.
pub const CSRF_COOKIE: &str = "byte_csrf";
/// OAuth state binding during a sign-in.
pub const OAUTH_COOKIE: &str = "byte_oauth";
/// The token that opens a private preview, set on the preview host itself.
pub const PREVIEW_COOKIE: &str = "byte_preview";
/// Every cookie the platform reads; none of them ever reaches an app or is set by one.
pub const PLATFORM_COOKIES: [&str; 4] = [SESSION_COOKIE, CSRF_COOKIE, OAUTH_COOKIE, PREVIEW_COOKIE];

/// Request headers an app never receives (lowercase).
pub const WITHHELD_REQUEST_HEADERS: [&str; 2] = ["authorization", "proxy-authorization"];

/// Whether `name` (surrounding spaces ignored) is one of the platform's cookies.
pub fn is_platform_cookie(name: &str) -> bool {
    let name = name.trim();
    PLATFORM_COOKIES
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name))
}

/// The app's own cookies from a request `Cookie` header (`a=1; b=2`), in order, joined with
/// `"; "`; `None` when none is left.
pub fn app_cookies(header: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| !is_platform_cookie(pair.split('=').next().unwrap_or("")))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// The `Set-Cookie` value to pass back to the browser for one the app sent: `None` when it
/// names a platform cookie, else the value without any `Domain` attribute (borrowed when
/// nothing had to change).
pub fn app_set_cookie(value: &str) -> Option<Cow<'_, str>> {
    let mut segments = value.split(';');
    let pair = segments.next().unwrap_or("");
    // A pair without `=` is a nameless cookie to browsers (RFC 6265bis §5.7).
    let name = pair.split_once('=').map_or("", |(n, _)| n);
    if is_platform_cookie(name) {
        return None;
    }
    let is_domain = |attr: &str| {
        attr.split('=')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("domain")
    };
    if !segments.clone().any(is_domain) {
        return Some(Cow::Borrowed(value));
    }
    let mut out = String::with_capacity(value.len());
    out.push_str(pair);
    for attr in segments.filter(|a| !is_domain(a)) {
        out.push(';');
        out.push_str(attr);
    }
    Some(Cow::Owned(out))
}

/// What a request header becomes on its way to an app: `None` to withhold it, the `Cookie`
/// header reduced to the app's cookies, any other header unchanged. `name` in any case.
pub fn request_header<'a>(name: &str, value: &'a str) -> Option<Cow<'a, str>> {
    if WITHHELD_REQUEST_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
    {
        return None;
    }
    if name.eq_ignore_ascii_case("cookie") {
        return app_cookies(value).map(Cow::Owned);
    }
    Some(Cow::Borrowed(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_keeps_its_cookies_and_loses_the_platforms() {
        assert_eq!(
            app_cookies("theme=dark; byte_session=t; byte_csrf=c;byte_preview=p; cart=3")
                .as_deref(),
            Some("theme=dark; cart=3")
        );
        assert_eq!(app_cookies("byte_session=t; byte_oauth=s"), None);
        assert_eq!(app_cookies(""), None);
        assert_eq!(app_cookies(" ; ;"), None);
        assert_eq!(
            app_cookies("byte_sessionx=keep").as_deref(),
            Some("byte_sessionx=keep"),
            "only exact names"
        );
        assert_eq!(
            app_cookies("BYTE_SESSION=t; x_byte_session=k; a=b=c").as_deref(),
            Some("x_byte_session=k; a=b=c"),
            "case-insensitive, and `=` inside a value is the value's"
        );
        assert_eq!(
            app_cookies(" byte_preview =p; lone").as_deref(),
            Some("lone")
        );
    }

    #[test]
    fn set_cookie_naming_a_platform_cookie_is_dropped() {
        for v in [
            "byte_session=evil; Path=/",
            "byte_csrf=x",
            "Byte_Preview=1; Max-Age=999999",
            " byte_oauth =s; HttpOnly",
        ] {
            assert_eq!(app_set_cookie(v), None, "{v}");
        }
        for v in [
            "app_cookie=from-app; Path=/; SameSite=Lax",
            "byte_sessionx=1",
            "nameless",
            "theme=dark; Path=/; byte_session=not-a-name-here",
        ] {
            assert!(
                matches!(app_set_cookie(v), Some(Cow::Borrowed(b)) if b == v),
                "{v}"
            );
        }
    }

    #[test]
    fn app_cookies_are_host_only() {
        assert_eq!(
            app_set_cookie("tossed=1; Domain=preview.localhost; Path=/").as_deref(),
            Some("tossed=1; Path=/")
        );
        assert_eq!(
            app_set_cookie("a=1;domain=.example.com;Secure; DOMAIN = x").as_deref(),
            Some("a=1;Secure")
        );
        assert_eq!(
            app_set_cookie("a=domain; Path=/domain").as_deref(),
            Some("a=domain; Path=/domain"),
            "only the attribute named Domain"
        );
    }

    #[test]
    fn request_headers() {
        assert_eq!(request_header("Authorization", "Bearer t"), None);
        assert_eq!(request_header("proxy-authorization", "Basic x"), None);
        assert_eq!(
            request_header("Cookie", "a=1; byte_session=s").as_deref(),
            Some("a=1")
        );
        assert_eq!(request_header("cookie", "byte_preview=p"), None);
        assert!(matches!(
            request_header("accept", "text/html"),
            Some(Cow::Borrowed("text/html"))
        ));
    }

    #[test]
    fn platform_names() {
        for n in PLATFORM_COOKIES {
            assert!(is_platform_cookie(n) && is_platform_cookie(&n.to_uppercase()));
        }
        assert!(!is_platform_cookie("session") && !is_platform_cookie(""));
    }
}

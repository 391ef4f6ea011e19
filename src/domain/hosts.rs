//! Which `Host` names the Worker answers for. Anything else is a 421 (Misdirected Request): a page
//! on another site that resolves its own name to 127.0.0.1 (DNS rebinding) must not reach a
//! developer's `make dev`, and a production deployment answers only on its own names.
//!
//! Served: the loopback names (`localhost`, `*.localhost`, `127.0.0.1`, `[::1]`: local development
//! and tests; Cloudflare's edge never routes them to a deployed Worker, so answering them costs
//! production nothing), the host of `PUBLIC_URL`, and every name under `PREVIEW_DOMAIN` (previews,
//! routed before this check). Ports are ignored; names compare case-insensitively and without a
//! trailing dot.

/// The host part of a `Host` header value (`name[:port]` or `[v6][:port]`), lowercased, without a
/// trailing dot. `None` when the value is not a plausible host.
pub fn host_name(value: &str) -> Option<String> {
    let v = value.trim();
    let name = if let Some(rest) = v.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        &v[..end + 2]
    } else {
        match v.rsplit_once(':') {
            Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
            Some(_) => return None,
            None => v,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

fn is_loopback(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "[::1]"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

/// The host of an absolute URL, as [`host_name`] gives it.
fn url_host(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = match u.host()? {
        url::Host::Ipv6(a) => format!("[{a}]"),
        h => h.to_string(),
    };
    host_name(&host)
}

/// Whether a request with this `Host` header is for us.
pub fn served(host: &str, public_url: Option<&str>, preview_domain: &str) -> bool {
    let Some(name) = host_name(host) else {
        return false;
    };
    let public = public_url.and_then(url_host);
    if public.as_deref() == Some(name.as_str()) {
        return true;
    }
    let preview = preview_domain.trim_end_matches('.').to_ascii_lowercase();
    if !preview.is_empty() && name.ends_with(&format!(".{preview}")) {
        return true;
    }
    is_loopback(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_drop_the_port_and_case() {
        assert_eq!(host_name("LocalHost:8787").as_deref(), Some("localhost"));
        assert_eq!(host_name("[::1]:8787").as_deref(), Some("[::1]"));
        assert_eq!(host_name("[::1]").as_deref(), Some("[::1]"));
        assert_eq!(host_name("example.com.").as_deref(), Some("example.com"));
        assert_eq!(host_name("a:b"), None);
        assert_eq!(host_name("[::1]x"), None);
        assert_eq!(host_name(""), None);
    }

    #[test]
    fn local_development_answers_on_loopback_only() {
        for h in [
            "localhost:8787",
            "127.0.0.1:8787",
            "[::1]:8787",
            "app.localhost",
        ] {
            assert!(served(h, None, "preview.localhost"), "{h}");
        }
        // DNS rebinding: the attacker's name resolves to 127.0.0.1, the Host header keeps it.
        for h in [
            "evil.example",
            "evil.example:8787",
            "127.0.0.1.evil.example",
            "128.0.0.1",
            "",
        ] {
            assert!(!served(h, None, "preview.localhost"), "{h}");
        }
        assert!(served(
            "x.preview.localhost:8787",
            None,
            "preview.localhost"
        ));
        // A loopback public URL is still local development.
        assert!(served(
            "localhost",
            Some("http://127.0.0.1:8787"),
            "preview.localhost"
        ));
    }

    #[test]
    fn production_answers_on_its_public_and_preview_names() {
        let public = Some("https://build.example.com");
        assert!(served("build.example.com", public, "preview.example.com"));
        assert!(served(
            "BUILD.example.com:443",
            public,
            "preview.example.com"
        ));
        assert!(served(
            "abc.preview.example.com",
            public,
            "preview.example.com"
        ));
        assert!(!served(
            "preview.example.com",
            public,
            "preview.example.com"
        ));
        assert!(served("localhost", public, "preview.example.com"));
        assert!(!served("example.com", public, "preview.example.com"));
        assert!(!served(
            "evilbuild.example.com",
            public,
            "preview.example.com"
        ));
        assert!(!served("anything", Some("not a url"), "p.example"));
        assert!(served("[::1]", Some("http://[::1]:8787"), "p.example"));
    }
}

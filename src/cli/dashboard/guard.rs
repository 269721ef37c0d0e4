//! Who may see the dashboard and who may act through it: one middleware in front of every
//! route, so no handler can forget a check.
//!
//! 1. With `--token`, every request must carry it: `Authorization: Bearer TOKEN`, or HTTP
//!    Basic with TOKEN as the password (any user name; browsers prompt for it). Otherwise
//!    401.
//! 2. Without a token the server listens on loopback only, and answers only requests whose
//!    `Host` is a loopback name (`localhost`, `127.0.0.1`, `[::1]`, with any port): a page on
//!    another site that points its own name at 127.0.0.1 (DNS rebinding) gets 403 and can
//!    read nothing, the CSRF token included.
//! 3. A request that may change something (any method but GET and HEAD) is refused with 403
//!    when the dashboard is `--read-only`, when its `Origin` is not this server's own
//!    (or, without `Origin`, its `Sec-Fetch-Site` says another site sent it), and unless
//!    its form carries the per-process CSRF token the pages embed. The checks run before
//!    the handler, so a refused request changes nothing.
//!
//! Every response also gets headers that keep the pages from being framed, sniffed or
//! made to run script they did not load from this server.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::App;

/// The largest form an action may post (they hold an id and a token).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The name of the form field holding the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf";

/// The Content-Security-Policy of every response: scripts, styles and fetches from this
/// server only, no inline script, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The middleware: the checks of the module docs, then the handler, then the headers.
pub(crate) async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let mut response = match check(&app, req).await {
        Ok(req) => next.run(req).await,
        Err(refusal) => refusal.into_response(),
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Why a request was refused.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    reason: &'static str,
}

impl Refusal {
    fn new(status: StatusCode, reason: &'static str) -> Self {
        Refusal { status, reason }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.reason)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="queuectl dashboard", charset="UTF-8""#),
            );
        }
        response
    }
}

async fn check(app: &App, req: Request) -> Result<Request, Refusal> {
    let headers = req.headers();
    match app.token() {
        Some(token) => {
            if !authorized(headers, token) {
                return Err(Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    "this dashboard needs its token: Authorization: Bearer TOKEN, or the token as the Basic password",
                ));
            }
        }
        None => {
            if !headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(is_loopback_host)
            {
                return Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    "this dashboard answers only to loopback names (localhost, 127.0.0.1, [::1]); start it with --token to serve other names",
                ));
            }
        }
    }
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return Ok(req);
    }
    if app.read_only() {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "this dashboard is read-only (--read-only): actions are off",
        ));
    }
    same_origin(headers)?;
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"))?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "the request is not a form (application/x-www-form-urlencoded)",
        )
    })?;
    let sent = fields
        .iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.as_str());
    if !sent.is_some_and(|t| same_secret(t, app.csrf())) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: reload the dashboard page and try again",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Whether the request carries `token` as a Bearer token or a Basic password.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return same_secret(credentials, token);
    }
    if scheme.eq_ignore_ascii_case("basic") {
        return base64_decode(credentials)
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| {
                pair.split_once(':')
                    .map(|(_, password)| same_secret(password, token))
            })
            .unwrap_or(false);
    }
    false
}

/// Compares secrets in time independent of where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A POST's `Origin` must be this server (scheme and the request's own `Host`); without
/// one, `Sec-Fetch-Site` (sent by browsers) must not name another site.
fn same_origin(headers: &HeaderMap) -> Result<(), Refusal> {
    let refused = || {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "cross-origin request refused: actions must come from the dashboard's own pages",
        )
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(refused)?;
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().map_err(|_| refused())?;
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .ok_or_else(refused)?;
        return if authority.eq_ignore_ascii_case(host) {
            Ok(())
        } else {
            Err(refused())
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin" | "none") => Ok(()),
        Some(_) => Err(refused()),
    }
}

/// Whether a `Host` header names this machine's loopback interface.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [::1] or [::1]:8080
        match rest.split_once(']') {
            Some((addr, tail)) if tail.is_empty() || is_port(tail) => addr,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(&format!(":{port}")) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `:` followed by 1 to 5 digits.
fn is_port(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Standard base64 (with or without padding); `None` when malformed.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_with_and_without_ports() {
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "0.0.0.0:8080",
            "[::1]x",
            "127.0.0.1:",
            "127.0.0.1:123456",
            "[::2]:80",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn basic_and_bearer_credentials() {
        let mut headers = HeaderMap::new();
        assert!(!authorized(&headers, "s3cret"));
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(value).expect("header"),
            );
            h
        };
        assert!(authorized(&with("Bearer s3cret"), "s3cret"));
        assert!(authorized(&with("bearer  s3cret "), "s3cret"));
        assert!(!authorized(&with("Bearer s3cre"), "s3cret"));
        // "anyone:s3cret" and ":s3cret"
        assert!(authorized(&with("Basic YW55b25lOnMzY3JldA=="), "s3cret"));
        assert!(authorized(&with("Basic OnMzY3JldA"), "s3cret"));
        assert!(!authorized(&with("Basic YW55b25lOndyb25n"), "s3cret"));
        assert!(!authorized(&with("Basic !!!"), "s3cret"));
        assert!(!authorized(&with("Digest s3cret"), "s3cret"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("s3cret"));
        assert!(!authorized(&headers, "s3cret"));
    }

    #[test]
    fn base64_round_trips_every_padding() {
        assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("YWJj").as_deref(), Some(&b"abc"[..]));
        assert_eq!(base64_decode("Y"), None);
    }

    #[test]
    fn origin_must_match_host() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        let host = ("host", "127.0.0.1:8080");
        assert!(same_origin(&headers(&[host, ("origin", "http://127.0.0.1:8080")])).is_ok());
        assert!(same_origin(&headers(&[host])).is_ok());
        assert!(same_origin(&headers(&[host, ("sec-fetch-site", "same-origin")])).is_ok());
        for bad in [
            ("origin", "http://evil.example"),
            ("origin", "http://127.0.0.1:8081"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            assert!(same_origin(&headers(&[host, bad])).is_err(), "{bad:?}");
        }
        assert!(same_origin(&headers(&[("origin", "http://127.0.0.1:8080")])).is_err());
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
    }
}

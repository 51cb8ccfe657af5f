//! What the console answers: pages, redirects, the stylesheet, CSV, each
//! with the security headers every console response carries.
//!
//! The Content-Security-Policy allows no script at all (the console has
//! none), styles and images only from here (images also `https:` and
//! `data:`, for creative previews), forms posting only here, and no
//! framing by anyone. A creative preview is an `<iframe sandbox srcdoc>`:
//! its document inherits this policy and, sandboxed, runs nothing.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_DISPOSITION};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; script-src 'none'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'; frame-src 'self'";

/// The stylesheet, embedded.
pub const STYLESHEET: &str = include_str!("../../templates/console/console.css");

/// A response being built: status, headers, body.
pub struct Reply {
    status: StatusCode,
    headers: Vec<(http::HeaderName, String)>,
    body: Bytes,
}

impl Reply {
    /// An HTML page.
    pub fn html(status: u16, page: String) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: vec![(http::header::CONTENT_TYPE, "text/html; charset=utf-8".into())],
            body: Bytes::from(page),
        }
    }

    /// `303 See Other` to a console path (after a form, or to sign in).
    pub fn redirect(location: &str) -> Reply {
        Reply {
            status: StatusCode::SEE_OTHER,
            headers: vec![(http::header::LOCATION, location.to_string())],
            body: Bytes::new(),
        }
    }

    /// The stylesheet.
    pub fn stylesheet() -> Reply {
        Reply {
            status: StatusCode::OK,
            headers: vec![(http::header::CONTENT_TYPE, "text/css; charset=utf-8".into())],
            body: Bytes::from_static(STYLESHEET.as_bytes()),
        }
    }

    /// A CSV download named `filename`.
    pub fn csv(filename: &str, text: String) -> Reply {
        Reply {
            status: StatusCode::OK,
            headers: vec![
                (http::header::CONTENT_TYPE, "text/csv; charset=utf-8".into()),
                (CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
            ],
            body: Bytes::from(text),
        }
    }

    /// Plain text with a status (refusals: 403, 429).
    pub fn text(status: u16, text: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: vec![(http::header::CONTENT_TYPE, "text/plain; charset=utf-8".into())],
            body: Bytes::from(text.to_string()),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: http::HeaderName, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    /// Sets a cookie scoped to the console: `HttpOnly; SameSite=Strict;
    /// Path=/admin`, `Secure` over https; `max_age` 0 deletes it.
    pub fn cookie(self, name: &str, value: &str, max_age: Option<u64>, secure: bool) -> Reply {
        let mut cookie = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/admin");
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={age}"));
        }
        if secure {
            cookie.push_str("; Secure");
        }
        self.header(http::header::SET_COOKIE, cookie)
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// The response, with the security headers.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(name, value);
            }
        }
        headers.insert("content-security-policy", HeaderValue::from_static(CSP));
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

//! HTTP requests from the sandbox, through `wasi:http` (feature `http`).
//!
//! A component has no network by default: the operator grants origins per component or per
//! node (`"http": ["https://api.example.com"]` in the policy). A request to anything else
//! fails with [`HttpError`] saying `HttpRequestDenied` (or `DestinationIpProhibited`), and the
//! runtime's log names what was refused. Requests block the process until the response and its
//! whole body have arrived; redirects are not followed.
//!
//! ```no_run
//! # fn run() -> Result<(), flowd_guest::http::HttpError> {
//! let response = flowd_guest::http::get("https://api.example.com/items")?;
//! if response.status == 200 {
//!     let _text = String::from_utf8_lossy(&response.body);
//! }
//! # Ok(()) }
//! ```

use std::fmt;

use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasi::io::streams::StreamError;

/// A request to send.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `POST`, ... (default `GET`).
    pub method: String,
    /// `http://host[:port]/path?query` or `https://...`.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

/// A response, with its whole body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names and values, as received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request failed: a `wasi:http` error code, or a malformed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError(pub String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

impl From<ErrorCode> for HttpError {
    fn from(code: ErrorCode) -> Self {
        // `ErrorCode::HttpRequestDenied` reads better without its type's name.
        let name = format!("{code:?}");
        HttpError(name.trim_start_matches("ErrorCode::").to_string())
    }
}

impl From<HttpError> for crate::Error {
    fn from(error: HttpError) -> Self {
        crate::Error::msg(format!("HTTP: {error}"))
    }
}

/// Sends a `GET` to `url`.
///
/// # Errors
///
/// What [`send`] says.
pub fn get(url: &str) -> Result<Response, HttpError> {
    send(&Request {
        method: "GET".into(),
        url: url.into(),
        ..Request::default()
    })
}

/// Sends `request` and reads the whole response.
///
/// # Errors
///
/// A URL that is not `http(s)://...`, a request the host refuses (no grant, too many at
/// once), and any failure to connect or read.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    let (scheme, rest) = if let Some(rest) = request.url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = request.url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(HttpError(format!("not an http(s) URL: '{}'", request.url)));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let headers = Fields::new();
    for (name, value) in &request.headers {
        headers
            .append(name, value.as_bytes())
            .map_err(|e| HttpError(format!("header '{name}': {e:?}")))?;
    }
    // A known length rather than chunks: every server reads that.
    let has_length = request
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
    if !request.body.is_empty() && !has_length {
        headers
            .append("content-length", request.body.len().to_string().as_bytes())
            .map_err(|e| HttpError(format!("header 'content-length': {e:?}")))?;
    }
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method.to_ascii_uppercase().as_str() {
        "" | "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    };
    let refused = |what: &str| HttpError(format!("invalid {what}"));
    outgoing
        .set_method(&method)
        .map_err(|()| refused("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    outgoing
        .set_authority(Some(authority))
        .map_err(|()| refused("authority"))?;
    outgoing
        .set_path_with_query(Some(&path))
        .map_err(|()| refused("path"))?;
    let body = outgoing.body().map_err(|()| refused("body"))?;
    let pending = outgoing_handler::handle(outgoing, None)?;
    // The body goes out while the host sends the request; if sending it fails, the
    // response's own error (a refusal, say) is the one that explains why.
    let mut sent = Ok(());
    {
        let stream = body.write().map_err(|()| refused("body"))?;
        for chunk in request.body.chunks(4096) {
            if let Err(error) = stream.blocking_write_and_flush(chunk) {
                sent = Err(HttpError(format!("sending the body: {error:?}")));
                break;
            }
        }
    }
    if sent.is_ok() {
        OutgoingBody::finish(body, None)?;
    }
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(code.into()),
        _ => return Err(HttpError("no response".into())),
    };
    sent?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let incoming = response.consume().map_err(|()| refused("response body"))?;
    let mut body = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| refused("response body"))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(error)) => {
                    return Err(HttpError(format!(
                        "reading the body: {}",
                        error.to_debug_string()
                    )));
                }
            }
        }
    }
    let _trailers = IncomingBody::finish(incoming);
    Ok(Response {
        status,
        headers,
        body,
    })
}

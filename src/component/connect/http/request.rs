//! `http/Request`: an HTTP client, one request per IP.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value};

use super::{DEFAULT_MAX_BODY, headers_and_body, headers_to_json, put_body};
use crate::component::connect::{io_runtime, wait_for};
use crate::component::native::{NativeComponent, error_port, millis, reject, setting::Setting};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::error_chain;
use crate::engine::{ProcessContext, ProcessError};
use crate::ip::{Ip, Payload};

/// How long a request may take, from connecting to the end of the response body, when
/// `timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends an HTTP request for each data IP on `in` and the response to `out`.
///
/// An IP is a URL (text: a `GET`), or a JSON object: `url`, `method` (default `GET`),
/// `headers`, and a body (`body` as text or any JSON value, or `bodyBase64`). The response is
/// an object: `status`, `headers`, the body (`body` as text, or `bodyBase64`), `url`, and the
/// request's `id` when it had one (to match answers to questions). An HTTP error status is a
/// response like any other. Redirects are not followed: a 3xx is sent on as it came.
///
/// A request that fails (the peer refuses, no such host, TLS, over `timeout` milliseconds,
/// default 30,000, or a response body over 16 MiB) goes to `error` with a reason naming the
/// URL, or ends the process if `error` is not connected. `https` uses rustls with the Mozilla
/// root certificates. Requests go one at a time, in order; connections are kept alive and
/// reused. Brackets are forwarded.
#[derive(Default)]
pub struct Request;

impl NativeComponent for Request {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("http/Request", "Sends an HTTP request for each packet")
            .icon("cloud-download")
            .inport(PortSpec::new(
                "in",
                "object",
                "A URL, or {url, method, headers, body}",
            ))
            .inport(PortSpec::new(
                "timeout",
                "number",
                "Milliseconds a request may take in all (default 30000)",
            ))
            .outport(PortSpec::new(
                "out",
                "object",
                "Responses: {status, headers, body, url}",
            ))
            .outport(error_port())
    }
}

impl Component for Request {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let mut timeout = Setting::read(ctx, "timeout", millis, || Ok(DEFAULT_TIMEOUT))?;
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        let errors = ctx.outport("error")?;
        let client = client()?;
        while let Some(ip) = ctx.recv(input)? {
            let Ip::Data(payload) = ip else {
                ctx.send(output, ip)?;
                continue;
            };
            let limit = *timeout.get(ctx)?;
            let outcome = match prepare(&payload) {
                Ok(prepared) => {
                    let client = client.clone();
                    wait_for(ctx, async move {
                        tokio::time::timeout(limit, send(&client, prepared))
                            .await
                            .unwrap_or_else(|_| {
                                Err(format!(
                                    "no complete response within {} ms",
                                    limit.as_millis()
                                ))
                            })
                    })?
                }
                Err(reason) => Err(reason),
            };
            match outcome {
                Ok(response) => ctx.send(output, Ip::Data(Payload::from_json(&response)))?,
                Err(reason) => reject(ctx, errors, &payload, reason)?,
            }
        }
        Ok(())
    }
}

/// A request ready to send: what `send` needs, owned.
struct Prepared {
    request: hyper::Request<Full<Bytes>>,
    url: String,
    id: Option<Value>,
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client for `http` and `https`, with connections kept alive.
fn client() -> Result<HttpClient, ProcessError> {
    let _entered = io_runtime()?.enter();
    let https = HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// The request an IP describes, or why it describes none.
fn prepare(payload: &Payload) -> Result<Prepared, String> {
    let message = match payload.to_json() {
        Value::Object(message) => message,
        Value::String(url) => {
            let mut message = Map::new();
            message.insert("url".into(), Value::String(url));
            message
        }
        other => return Err(format!("expected a URL or a request object, not {other}")),
    };
    let Some(Value::String(url)) = message.get("url") else {
        return Err("a request object needs a 'url'".to_string());
    };
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid URL '{url}': {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!(
            "invalid URL '{url}': expected http://HOST/... or https://HOST/..."
        ));
    }
    let method = match message.get("method") {
        None | Some(Value::Null) => Method::GET,
        Some(Value::String(method)) => Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("invalid method '{method}'"))?,
        Some(other) => return Err(format!("invalid method {other}")),
    };
    let (headers, body) = headers_and_body(&message)?;
    let mut request = hyper::Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(Prepared {
        request,
        url: url.clone(),
        id: message.get("id").cloned(),
    })
}

/// Sends `prepared` and reads the whole response.
async fn send(client: &HttpClient, prepared: Prepared) -> Result<Value, String> {
    let Prepared { request, url, id } = prepared;
    let method = request.method().clone();
    let failed = |why: String| format!("{method} {url}: {why}");
    let response = client
        .request(request)
        .await
        .map_err(|e| failed(error_chain(&e)))?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, DEFAULT_MAX_BODY)
        .collect()
        .await
        .map_err(|e| failed(format!("reading the response body: {e}")))?
        .to_bytes();
    let mut message = Map::new();
    if let Some(id) = id {
        message.insert("id".into(), id);
    }
    message.insert("status".into(), Value::from(parts.status.as_u16()));
    message.insert("headers".into(), headers_to_json(&parts.headers));
    put_body(&mut message, &body);
    message.insert("url".into(), Value::String(url));
    Ok(Value::Object(message))
}

//! `web/Fetch`: fetches each URL from the sandbox, through `wasi:http`.
//!
//! * inport `in` (string): a URL, or a JSON object `{"url", "method", "headers", "body"}`.
//! * outport `out` (object): `{"status", "headers", "body"}` per request, the body as text.
//! * outport `error` (object): `{"error", "input"}` for each request that failed (refused by
//!   the sandbox, unreachable, too slow); when `error` is not connected the process fails.
//!
//! The sandbox lets it reach only the origins the operator grants (`"http": [...]` in the
//! policy); everything else comes back as `HttpRequestDenied`. Brackets pass through.

use flowd_guest::http::{Request, send};
use flowd_guest::{Component, Context, Error, Ip, Port, Result, Spec};
use serde_json::{Map, Value, json};

struct Fetch;

/// The request a packet describes.
fn request(text: &str) -> std::result::Result<Request, String> {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
        return Ok(Request {
            method: "GET".into(),
            url: text.trim().to_string(),
            ..Request::default()
        });
    };
    let field = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_string);
    let url = field("url").ok_or("a request object needs a 'url'")?;
    let headers = match fields.get("headers") {
        Some(Value::Object(headers)) => headers
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let body = match fields.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    Ok(Request {
        method: field("method").unwrap_or_else(|| "GET".into()),
        url,
        headers,
        body,
    })
}

impl Component for Fetch {
    fn describe() -> Spec {
        Spec::new(
            "web/Fetch",
            "Fetches each URL through wasi:http, within its grants",
        )
        .icon("cloud-download")
        .inport(Port::new(
            "in",
            "string",
            "A URL, or {url, method, headers, body}",
        ))
        .outport(Port::new(
            "out",
            "object",
            "{status, headers, body} per request",
        ))
        .outport(Port::new(
            "error",
            "object",
            "{error, input} per failed request",
        ))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let input = ctx.inport("in")?;
        let (output, errors) = (ctx.outport("out")?, ctx.outport("error")?);
        while let Some(ip) = input.recv()? {
            let Ip::Data(bytes) = ip else {
                output.send(ip)?;
                continue;
            };
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let result = request(&text).and_then(|r| send(&r).map_err(|e| e.to_string()));
            match result {
                Ok(response) => {
                    let headers: Map<String, Value> = response
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect();
                    let body = String::from_utf8_lossy(&response.body).into_owned();
                    let answer =
                        json!({"status": response.status, "headers": headers, "body": body});
                    output.send_data(answer.to_string())?;
                }
                Err(reason) if errors.is_connected() => {
                    errors.send_data(json!({"error": reason, "input": text}).to_string())?;
                }
                Err(reason) => return Err(Error::msg(format!("{text}: {reason}"))),
            }
        }
        Ok(())
    }
}

flowd_guest::export!(Fetch);

//! `hostile/Http`: for each packet `URL` or `METHOD URL [BODY]`, sends that request through
//! `wasi:http` and reports `STATUS LENGTH BODY-START` or `error: WHY` on `out`, so that one
//! process can try every way out. Without a grant the sandbox must refuse each.

use flowd_guest::http::{Request, send};
use flowd_guest::{Component, Context, Port, Result, Spec};

struct Http;

impl Component for Http {
    fn describe() -> Spec {
        Spec::new("hostile/Http", "Tries the HTTP request each packet names")
            .inport(Port::new("in", "string", "URL, or METHOD URL [BODY]"))
            .outport(Port::new("out", "string", "What came of it"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let (input, output) = (ctx.inport("in")?, ctx.outport("out")?);
        while let Some(ip) = input.recv()? {
            if !ip.is_data() {
                continue;
            }
            let text = String::from_utf8_lossy(ip.payload()).into_owned();
            let mut parts = text.splitn(3, ' ');
            let (method, url, body) = match (parts.next(), parts.next(), parts.next()) {
                (Some(url), None, _) => ("GET", url, ""),
                (Some(method), Some(url), body) => (method, url, body.unwrap_or("")),
                _ => continue,
            };
            let request = Request {
                method: method.into(),
                url: url.into(),
                headers: vec![("x-guest".into(), "hostile".into())],
                body: body.as_bytes().to_vec(),
            };
            let report = match send(&request) {
                Ok(response) => {
                    let start: String = String::from_utf8_lossy(&response.body)
                        .chars()
                        .take(40)
                        .collect();
                    format!("{} {} {start}", response.status, response.body.len())
                }
                Err(error) => format!("error: {error}"),
            };
            output.send_data(report)?;
        }
        Ok(())
    }
}

flowd_guest::export!(Http);

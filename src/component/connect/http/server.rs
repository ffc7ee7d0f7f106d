//! `http/Server`: each HTTP request becomes an IP; an IP on `response` answers it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Sender, TrySendError};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;

use super::{DEFAULT_MAX_BODY, headers_and_body, headers_to_json, put_body};
use crate::component::connect::{AbortOnDrop, io_runtime};
use crate::component::native::{NativeComponent, error_port, millis, reject, setting::Setting};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{InPort, OutPort, ProcessContext, ProcessError, Received, ReceivedOr};
use crate::ip::{Ip, Payload};

/// How long a request waits for its answer when `timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests handed to the network and not yet answered, at most; more wait in their
/// connections (backpressure on the clients) until one is answered.
const MAX_IN_FLIGHT: usize = 1024;

/// Serves HTTP on the address set on `listen` (such as `127.0.0.1:8080`; port 0 picks a free
/// one), sending each request to `request` as a JSON object: `id`, `method`, `path`, `query`
/// (the text after `?`, or empty), `headers`, `remote` (the client's address) and the body
/// (`body` as text, or `bodyBase64`). The address actually bound goes to `listening` once.
///
/// An object on `response` with the `id` of a waiting request answers it: `status` (default
/// 200), `headers` and `body` (text, `bodyBase64`, or any JSON value, sent as JSON), so an
/// echo is `request -> response` through any component that keeps the `id`. A request not
/// answered within `timeout` milliseconds (default 30,000) gets 504; an answer that comes
/// later, or names no waiting request, is dropped with a warning in the log. A response that
/// is not such an object goes to `error` (or ends the process if `error` is not connected).
/// When `response` is not connected each request is answered 202 Accepted once it is sent on.
///
/// Bodies over 16 MiB are refused with 413. At most 1,024 requests wait for their answers at
/// once; beyond that, clients wait (a slow network slows its clients; nothing queues without
/// bound). HTTP/1.1 and HTTP/2 (cleartext) are served. The server closes, and waiting requests
/// get 503, when the network stops or `response` ends.
#[derive(Default)]
pub struct Server;

impl NativeComponent for Server {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("http/Server", "Serves HTTP: each request becomes a packet")
            .icon("globe")
            .inport(
                PortSpec::new("listen", "string", "The address to listen on (host:port)")
                    .required(),
            )
            .inport(PortSpec::new(
                "response",
                "object",
                "Answers: {id, status, headers, body}",
            ))
            .inport(PortSpec::new(
                "timeout",
                "number",
                "Milliseconds a request waits for its answer before a 504 (default 30000)",
            ))
            .outport(PortSpec::new(
                "request",
                "object",
                "Requests: {id, method, path, query, headers, remote, body}",
            ))
            .outport(PortSpec::new(
                "listening",
                "string",
                "The address bound, once listening",
            ))
            .outport(error_port())
    }
}

/// A request on its way to the network, and where its answer goes.
struct Pending {
    id: String,
    message: Value,
    answer: oneshot::Sender<Answer>,
}

/// What a request is answered with.
struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn status(status: StatusCode, reason: &str) -> Answer {
        Answer {
            status,
            headers: hyper::HeaderMap::new(),
            body: Bytes::from(format!("{reason}\n")),
        }
    }
}

/// What every connection of one server shares.
struct Shared {
    to_process: Sender<Pending>,
    in_flight: Semaphore,
    timeout_ms: AtomicU64,
    next_id: AtomicU64,
}

impl Component for Server {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let address = match ctx.read_config("listen")? {
            Some(address) => address.to_string_lossy().trim().to_string(),
            None => return Err(ProcessError::failed("inport 'listen': no address given")),
        };
        let mut timeout = Setting::read(ctx, "timeout", millis, || Ok(DEFAULT_TIMEOUT))?;
        let responses = ctx.inport("response")?;
        let requests = ctx.outport("request")?;
        let listening = ctx.outport("listening")?;
        let errors = ctx.outport("error")?;
        let listener = bind(&address)?;
        let bound = listener.local_addr()?;
        let (to_process, from_server) = crossbeam_channel::bounded(MAX_IN_FLIGHT);
        let shared = Arc::new(Shared {
            to_process,
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            timeout_ms: AtomicU64::new(millis_of(*timeout.get(ctx)?)),
            next_id: AtomicU64::new(1),
        });
        let runtime = io_runtime()?;
        let serving = {
            let _entered = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(listener)?;
            runtime.spawn(accept(listener, shared.clone()))
        };
        // The accept loop and every connection end with this guard: on stop, on error, on end.
        let _serving = AbortOnDrop(serving);
        tracing::info!(node = ctx.node(), "http/Server listening on http://{bound}");
        ctx.send(listening, Ip::data(bound.to_string()))?;
        ctx.flush()?;

        let answering = !ctx.is_ended(responses);
        let ports: &[InPort] = if answering { &[responses] } else { &[] };
        let mut waiting: HashMap<String, oneshot::Sender<Answer>> = HashMap::new();
        let mut sweep_at = 64;
        loop {
            match ctx.recv_any_or(ports, &from_server)? {
                ReceivedOr::Channel(Some(pending)) => {
                    shared
                        .timeout_ms
                        .store(millis_of(*timeout.get(ctx)?), Ordering::Relaxed);
                    let ip = Ip::Data(Payload::from_json(&pending.message));
                    if answering {
                        waiting.insert(pending.id, pending.answer);
                        // Forget the requests that timed out or whose client left.
                        if waiting.len() >= sweep_at {
                            waiting.retain(|_, answer| !answer.is_closed());
                            sweep_at = (waiting.len() * 2).max(64);
                        }
                        ctx.send(requests, ip)?;
                    } else {
                        ctx.send(requests, ip)?;
                        let _ = pending
                            .answer
                            .send(Answer::status(StatusCode::ACCEPTED, "accepted"));
                    }
                }
                ReceivedOr::Port(Received::Ip(_, Ip::Data(response))) => {
                    answer(ctx, errors, &mut waiting, &response)?;
                }
                ReceivedOr::Port(Received::Ip(..)) => {}
                ReceivedOr::Port(_) | ReceivedOr::Channel(None) => break,
            }
        }
        for (_, answer) in waiting.drain() {
            let _ = answer.send(Answer::status(
                StatusCode::SERVICE_UNAVAILABLE,
                "the network stopped answering",
            ));
        }
        Ok(())
    }
}

/// Answers the waiting request that `response` names.
fn answer(
    ctx: &mut ProcessContext,
    errors: OutPort,
    waiting: &mut HashMap<String, oneshot::Sender<Answer>>,
    response: &Payload,
) -> Result<(), ProcessError> {
    let Value::Object(message) = response.to_json() else {
        let reason = "a response must be a JSON object with the 'id' of its request".to_string();
        return reject(ctx, errors, response, reason);
    };
    let id = match message.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        _ => {
            let reason = "a response has no 'id' naming its request".to_string();
            return reject(ctx, errors, response, reason);
        }
    };
    let Some(waiter) = waiting.remove(&id) else {
        tracing::warn!(
            node = ctx.node(),
            "http/Server: no request '{id}' waits for an answer (answered already, timed out, \
             or its client left)"
        );
        return Ok(());
    };
    match build_answer(&message) {
        Ok(answer) => {
            // The client may have left meanwhile: nothing to do then.
            let _ = waiter.send(answer);
            Ok(())
        }
        Err(reason) => {
            let _ = waiter.send(Answer::status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the network's answer was not valid",
            ));
            reject(ctx, errors, response, format!("response '{id}': {reason}"))
        }
    }
}

/// The answer a JSON response describes.
fn build_answer(message: &Map<String, Value>) -> Result<Answer, String> {
    let status = match message.get("status") {
        None | Some(Value::Null) => StatusCode::OK,
        Some(status) => status
            .as_u64()
            .or_else(|| status.as_str().and_then(|s| s.parse().ok()))
            .and_then(|code| u16::try_from(code).ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or_else(|| format!("invalid status {status}"))?,
    };
    let (headers, body) = headers_and_body(message)?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// A listener on `address`, or an error naming it.
fn bind(address: &str) -> Result<StdListener, ProcessError> {
    let cannot = |why: String| {
        ProcessError::failed(format!(
            "inport 'listen': cannot listen on '{address}': {why}"
        ))
    };
    let addresses: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| cannot(format!("{e} (expected host:port)")))?
        .collect();
    let listener = StdListener::bind(&addresses[..]).map_err(|e| cannot(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| cannot(e.to_string()))?;
    Ok(listener)
}

/// Accepts connections until aborted; aborting it ends every connection too.
async fn accept(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, most often: wait rather than spin.
                tracing::warn!("http/Server: cannot accept a connection: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(request, remote, &shared).await) }
            });
            let served = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!("http/Server: connection from {remote} ended: {error}");
            }
        });
        // Reap the connections that have ended, so the set stays as large as what is open.
        while connections.try_join_next().is_some() {}
    }
}

/// Hands one request to the process and waits for its answer.
async fn handle(
    request: hyper::Request<Incoming>,
    remote: SocketAddr,
    shared: &Shared,
) -> Response<Full<Bytes>> {
    let Ok(_permit) = shared.in_flight.acquire().await else {
        return reply(Answer::status(StatusCode::SERVICE_UNAVAILABLE, "closing"));
    };
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, DEFAULT_MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return reply(Answer::status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large (16 MiB at most)",
            ));
        }
    };
    let id = format!("r{}", shared.next_id.fetch_add(1, Ordering::Relaxed));
    let mut message = Map::new();
    message.insert("id".into(), Value::String(id.clone()));
    message.insert("method".into(), Value::String(parts.method.to_string()));
    message.insert("path".into(), Value::String(parts.uri.path().to_string()));
    let query = parts.uri.query().unwrap_or_default().to_string();
    message.insert("query".into(), Value::String(query));
    message.insert("headers".into(), headers_to_json(&parts.headers));
    message.insert("remote".into(), Value::String(remote.to_string()));
    put_body(&mut message, &body);
    let (answer, answered) = oneshot::channel();
    let pending = Pending {
        id,
        message: Value::Object(message),
        answer,
    };
    // The permits keep the channel from filling: a full or closed one means the process ended.
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
        shared.to_process.try_send(pending)
    {
        return reply(Answer::status(
            StatusCode::SERVICE_UNAVAILABLE,
            "not serving",
        ));
    }
    let timeout = Duration::from_millis(shared.timeout_ms.load(Ordering::Relaxed));
    match tokio::time::timeout(timeout, answered).await {
        Ok(Ok(answer)) => reply(answer),
        Ok(Err(_)) => reply(Answer::status(
            StatusCode::SERVICE_UNAVAILABLE,
            "the network stopped answering",
        )),
        Err(_) => reply(Answer::status(
            StatusCode::GATEWAY_TIMEOUT,
            "the network did not answer in time",
        )),
    }
}

fn reply(answer: Answer) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    response
}

fn millis_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

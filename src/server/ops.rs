//! The operations listener: plain HTTP for monitoring, apart from the protocol server.
//!
//! - `GET /metrics`: every counter in the Prometheus text format ([`Runtime::metrics_text`]);
//! - `GET /healthz`: 200 while the runtime answers (its lock can be taken);
//! - `GET /readyz`: 200 once the protocol server listens and the main graph is loaded, 503
//!   before and while draining.
//!
//! It shows names of graphs, processes and ports, never data: it listens on loopback unless
//! the operator names another address.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::runtime::{Runtime, SharedRuntime};

/// The operations listener, bound.
pub struct OpsServer {
    listener: TcpListener,
    runtime: SharedRuntime,
    ready: Arc<AtomicBool>,
}

impl OpsServer {
    /// Binds `address`; `ready` says whether `/readyz` answers 200.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn bind(
        address: SocketAddr,
        runtime: SharedRuntime,
        ready: Arc<AtomicBool>,
    ) -> std::io::Result<OpsServer> {
        Ok(OpsServer {
            listener: TcpListener::bind(address).await?,
            runtime,
            ready,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves requests until the task running it is dropped.
    pub async fn run(self) {
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!("operations listener: cannot accept: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (runtime, ready) = (self.runtime.clone(), self.ready.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let answer = answer(&request, &runtime, &ready);
                    async move { Ok::<_, Infallible>(answer) }
                });
                let served = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(error) = served {
                    tracing::debug!("operations listener: a connection ended: {error}");
                }
            });
        }
    }
}

fn answer<B>(
    request: &Request<B>,
    runtime: &SharedRuntime,
    ready: &AtomicBool,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match request.uri().path() {
        "/metrics" => {
            // Taken briefly, as a protocol request takes it.
            let text = Runtime::lock(runtime).metrics_text();
            let mut response = plain(StatusCode::OK, text);
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        "/healthz" => {
            drop(Runtime::lock(runtime));
            plain(StatusCode::OK, "ok\n".into())
        }
        "/readyz" if ready.load(Ordering::Acquire) => plain(StatusCode::OK, "ready\n".into()),
        "/readyz" => plain(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

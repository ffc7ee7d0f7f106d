//! Outgoing HTTP for guests: the request a [`NetPolicy`] allows, sent to an address flowd
//! resolved and checked itself, over HTTP/1.1 and rustls, with its limits on time and size.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper::http;
use tokio_rustls::rustls;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::{HostRule, NetPolicy, is_local};

impl NetPolicy {
    /// Sends `request` if a grant allows it, to an address checked here.
    async fn send(
        self: Arc<Self>,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, Driver), HttpError> {
        let uri = request.uri().clone();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(self.refuse(&uri.to_string())),
        };
        let host = uri
            .host()
            .ok_or(HttpError::HttpRequestUriInvalid)?
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let origin = format!("{}://{host}:{port}", if https { "https" } else { "http" });
        let Some(rule) = self.http_rule(https, &host, port).cloned() else {
            return Err(self.refuse(&origin));
        };
        let Ok(_permit) = self.connections.clone().try_acquire_owned() else {
            tracing::warn!(node = %self.node, "refused: HTTP request to {origin}: too many at once");
            return Err(HttpError::ConnectionLimitReached);
        };
        let limit = |asked: Option<Duration>| asked.map_or(self.timeout, |a| a.min(self.timeout));
        let options = options.unwrap_or_default();
        let (connect_timeout, first_byte, between) = (
            limit(options.connect_timeout),
            limit(options.first_byte_timeout),
            limit(options.between_bytes_timeout),
        );
        let bare = host.trim_matches(['[', ']']).to_string();
        let addresses: Vec<SocketAddr> = match tokio::time::timeout(
            connect_timeout,
            tokio::net::lookup_host((bare.as_str(), port)),
        )
        .await
        {
            Ok(Ok(found)) => found.collect(),
            Ok(Err(_)) => return Err(HttpError::DestinationNotFound),
            Err(_) => return Err(HttpError::DnsTimeout),
        };
        // A name must lead where names lead; an address granted as such is taken as given.
        let by_name = !matches!(rule.host, HostRule::Ip(_)) && bare != "localhost";
        let Some(address) = addresses
            .iter()
            .find(|a| !(by_name && is_local(a.ip())))
            .copied()
        else {
            tracing::warn!(
                node = %self.node,
                "refused: {origin} resolves only to local addresses ({addresses:?}), which a name grant does not reach"
            );
            return Err(HttpError::DestinationIpProhibited);
        };
        let stream =
            match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(address))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(HttpError::ConnectionRefused);
                }
                Ok(Err(e)) => return Err(HttpError::Connect(e)),
                Err(_) => return Err(HttpError::ConnectionTimeout),
            };
        // HTTP/1.1 to an origin server takes the path, not the whole URL.
        let mut request = request;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let max_body = self.max_body;
        let request = request.map(move |body| {
            LimitedRequest {
                inner: body,
                left: max_body,
            }
            .boxed_unsync()
        });
        let (response, io) = if https {
            let tls = tls_connector();
            let name = rustls::pki_types::ServerName::try_from(bare.clone())
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
            let stream =
                match tokio::time::timeout(connect_timeout, tls.connect(name, stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return Err(HttpError::Tls(e)),
                    Err(_) => return Err(HttpError::ConnectionTimeout),
                };
            exchange(stream, request, first_byte).await?
        } else {
            exchange(stream, request, first_byte).await?
        };
        let response = response.map(|body| {
            TimedBody {
                inner: body,
                left: max_body,
                between,
                deadline: None,
                _permit: Some(_permit),
            }
            .boxed_unsync()
        });
        Ok((response, io))
    }
}

/// What drives a connection, handed back with its response.
type Driver = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// Sends `request` over `stream` (HTTP/1.1) and waits for the response's head.
async fn exchange<S>(
    stream: S,
    request: http::Request<WasiBody>,
    first_byte: Duration,
) -> Result<(http::Response<hyper::body::Incoming>, Driver), HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(HttpError::Hyper)?;
    // The connection must make progress while the request waits for its response.
    let driving = tokio::spawn(connection);
    let driver: Driver = Box::new(async move {
        match driving.await {
            Ok(result) => result.map_err(HttpError::Hyper),
            Err(_) => Ok(()),
        }
    });
    match tokio::time::timeout(first_byte, sender.send_request(request)).await {
        Ok(Ok(response)) => Ok((response, driver)),
        Ok(Err(e)) => Err(HttpError::Hyper(e)),
        Err(_) => Err(HttpError::ConnectionReadTimeout),
    }
}

/// Takes `frame`'s data from the bytes `left` to a body; `false` if it does not fit.
fn charge(left: &mut u64, frame: &Frame<Bytes>) -> bool {
    let size = frame.data_ref().map_or(0, |data| data.len() as u64);
    match left.checked_sub(size) {
        Some(rest) => {
            *left = rest;
            true
        }
        None => false,
    }
}

/// A request body that fails, past `left` bytes, with `http-request-body-size`.
struct LimitedRequest {
    inner: WasiBody,
    left: u64,
}

impl Body for LimitedRequest {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if !charge(&mut this.left, &frame) {
                    return Poll::Ready(Some(Err(HttpError::HttpRequestBodySize(None))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }
}

/// A response body with a size limit and a time limit between frames; it holds its
/// connection's place among the process's concurrent requests until it is dropped.
struct TimedBody {
    inner: hyper::body::Incoming,
    left: u64,
    between: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.deadline = None;
                if !charge(&mut this.left, &frame) {
                    return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(None))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(HttpError::Hyper(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let between = this.between;
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(between)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

/// TLS for guests' requests: rustls with ring and Mozilla's roots.
fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
        Arc::new(config.unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        }))
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

/// The `wasi:http` hooks of one guest: its policy decides every request.
pub(crate) struct NetHooks(pub(crate) Arc<NetPolicy>);

impl WasiHttpHooks for NetHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, Driver), HttpError>> + Send>
    {
        Box::new(self.0.clone().send(request, options))
    }
}

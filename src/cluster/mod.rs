//! One graph over several flowd runtimes, joined by NATS.
//!
//! A runtime joins a cluster with a connection to a NATS server and a name ([`Cluster`]).
//! Where a graph is split over runtimes ([`placement`]), each edge that crosses from one
//! runtime to another becomes a pair of processes: `remote/Send` at the sending end and
//! `remote/Receive` at the receiving end ([`edge`]), which carry the IPs over two NATS
//! subjects with credit-based flow control, so the edge keeps order, bounds memory at both
//! ends and applies backpressure as a local edge does.
//!
//! Subjects are namespaced by the graph the remote processes run in (and by the run, which
//! the runtime that places the graph chooses), so the processes of one graph cannot read or
//! feed the edges of another: a remote process takes its edge's key from its metadata, but
//! its namespace only from the name its runtime gave its graph.

use std::path::PathBuf;
use std::sync::Arc;

use crate::component::connect::{io_runtime, nats};
use crate::component::{ComponentSpec, NodeInfo, PortSpec, Registry};

mod control;
pub mod edge;
mod frame;
mod member;
mod owner;
pub mod placement;
mod watch;

pub use member::Member;
pub use owner::{PlacedRun, placed_on};

/// The first token of every subject flowd uses in a cluster.
pub const SUBJECT_ROOT: &str = "flowd";

/// How a runtime proves itself to the NATS server and checks the server's certificate: the
/// operator's choice, from the command line, never a protocol client's.
#[derive(Debug, Clone, Default)]
pub struct NatsSecurity {
    /// A credentials file (a user JWT and its NKey seed, as `nsc` writes them).
    pub credentials: Option<PathBuf>,
    /// PEM certificates of the authorities that sign the server's certificate; TLS is then
    /// required.
    pub ca: Option<PathBuf>,
    /// This runtime's certificate and key (PEM), for servers that verify their clients; TLS is
    /// then required.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

impl NatsSecurity {
    /// The files it names.
    fn files(&self) -> impl Iterator<Item = &PathBuf> {
        let pair = self.client_certificate.as_ref();
        self.credentials
            .iter()
            .chain(&self.ca)
            .chain(pair.map(|(cert, _)| cert))
            .chain(pair.map(|(_, key)| key))
    }

    async fn options(&self) -> Result<async_nats::ConnectOptions, String> {
        let mut options = async_nats::ConnectOptions::new();
        if let Some(path) = &self.credentials {
            options = options
                .credentials_file(path)
                .await
                .map_err(|e| format!("cannot use the credentials {}: {e}", path.display()))?;
        }
        if let Some(path) = &self.ca {
            options = options
                .add_root_certificates(path.clone())
                .require_tls(true);
        }
        if let Some((cert, key)) = &self.client_certificate {
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        Ok(options)
    }
}

/// This runtime's membership in a cluster: its name and its connection to the NATS server.
pub struct Cluster {
    client: async_nats::Client,
    name: String,
    url: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish()
    }
}

impl Cluster {
    /// Connects to the NATS server at `url` (`nats://host:port`, several separated by
    /// commas, credentials as `nats://user:password@host`, `tls://` to require TLS) as the
    /// runtime `name`, with the operator's `security`.
    ///
    /// Waits on the connectors' runtime: call it from a plain thread, not from async code.
    ///
    /// # Errors
    ///
    /// When `name` is not a valid runtime name, a file of `security` cannot be read, or the
    /// server cannot be reached or refuses this runtime; the message names the server.
    pub fn connect(url: &str, name: &str, security: &NatsSecurity) -> Result<Arc<Cluster>, String> {
        if name.is_empty() || name.chars().any(|c| !is_name_char(c)) {
            return Err(format!(
                "'{name}' is not a runtime name: use letters, digits, '-' and '_'"
            ));
        }
        for file in security.files() {
            // async-nats reads them only when it connects, and names no file when it fails.
            std::fs::metadata(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        }
        let (address, label) = (url.to_string(), format!("cluster member '{name}' ({url})"));
        let client_name = format!("flowd runtime {name}");
        let security = security.clone();
        let client = wait(async move {
            let options = security.options().await?;
            nats::client_with(options, &address, &client_name, label).await
        })??;
        Ok(Arc::new(Cluster {
            client,
            name: name.to_string(),
            url: url.to_string(),
        }))
    }

    /// This runtime's name in the cluster.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The NATS server.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn client(&self) -> &async_nats::Client {
        &self.client
    }
}

/// Runs `future` to its end on the connectors' runtime, from any thread. A thread of another
/// tokio runtime (the protocol server's) may not block on one, so it hands the future to a
/// helper thread and waits for that.
pub(crate) fn wait<F>(future: F) -> Result<F::Output, String>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    let runtime = io_runtime().map_err(|e| e.to_string())?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(runtime.block_on(future));
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("flowd-cluster-wait".into())
            .spawn_scoped(scope, || runtime.block_on(future))
            .map_err(|e| format!("cannot start a thread: {e}"))?
            .join()
            .map_err(|_| "a request to the NATS server panicked".to_string())
    })
}

/// Subscribes `client` to `subject` and waits until the server has the subscription, so that
/// nothing published after this returns is missed; `what` names the subject in errors.
pub(crate) async fn subscribe(
    client: &async_nats::Client,
    subject: String,
    what: &str,
) -> Result<async_nats::Subscriber, String> {
    let subscriber = client
        .subscribe(subject)
        .await
        .map_err(|e| format!("cannot subscribe to {what}: {e}"))?;
    client
        .flush()
        .await
        .map_err(|e| format!("cannot subscribe to {what}: {e}"))?;
    Ok(subscriber)
}

/// Whether `c` may appear in a runtime's name (which is also a subject token).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// `text` as one NATS subject token: letters, digits, `-` and `_` stay, every other byte
/// becomes `%XX`, so no text can add tokens or wildcards to a subject.
pub(crate) fn subject_token(text: &str) -> String {
    use std::fmt::Write;
    let mut token = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            token.push(char::from(byte));
        } else {
            let _ = write!(token, "%{byte:02X}");
        }
    }
    if token.is_empty() {
        token.push('%');
    }
    token
}

/// Registers `remote/Send` and `remote/Receive`, connected through `cluster`.
///
/// Only in a registry that no protocol client or graph file uses (a [`Registry::snapshot`]
/// made for the shares of placed graphs, as [`Member`] and [`PlacedRun`] do): a graph that
/// could name these components could also choose a graph name that reaches another graph's
/// edges.
pub fn register(registry: &Registry, cluster: &Arc<Cluster>) {
    let sending = cluster.clone();
    registry.register(
        ComponentSpec::new(
            edge::SEND,
            "The sending end of an edge to a process on another runtime (placed by flowd)",
        )
        .icon("sign-out")
        .inport(PortSpec::new("in", "all", "What the edge carries")),
        Arc::new(move |node: &NodeInfo<'_>| {
            Ok(Box::new(edge::RemoteSend::new(
                sending.clone(),
                edge::EdgeLink::of(node)?,
            )))
        }),
    );
    let receiving = cluster.clone();
    registry.register(
        ComponentSpec::new(
            edge::RECEIVE,
            "The receiving end of an edge from a process on another runtime (placed by flowd)",
        )
        .icon("sign-in")
        .outport(PortSpec::new("out", "all", "What the edge carries")),
        Arc::new(move |node: &NodeInfo<'_>| {
            Ok(Box::new(edge::RemoteReceive::new(
                receiving.clone(),
                edge::EdgeLink::of(node)?,
            )))
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_cannot_widen_a_subject() {
        assert_eq!(subject_token("main"), "main");
        assert_eq!(subject_token("a.b"), "a%2Eb");
        assert_eq!(subject_token("*"), "%2A");
        assert_eq!(subject_token(">"), "%3E");
        assert_eq!(subject_token("x y"), "x%20y");
        assert_eq!(subject_token(""), "%");
        assert_ne!(subject_token("a%2Eb"), subject_token("a.b"));
    }
}

//! A runtime serving its cluster: it runs the shares other runtimes deploy to it, stops them
//! when asked, answers pings, and publishes each share's events for the runtime that placed
//! it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;

use super::Cluster;
use super::control::{Answer, Deploy, ShareEvent, Stop, control_subject, events_subject};
use crate::component::Registry;
use crate::component::connect::{AbortOnDrop, io_runtime};
use crate::engine::{Network, NetworkConfig};
use crate::graph::Graph;

/// The shares running here, by name.
type Shares = Arc<Mutex<HashMap<String, Network>>>;

/// Serves the cluster while it lives; dropping it stops listening and every share.
pub struct Member {
    _listener: AbortOnDrop,
    shares: Shares,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member").finish_non_exhaustive()
    }
}

impl Member {
    /// Starts listening for control requests addressed to `cluster`'s runtime name; shares
    /// run with the components of `registry` and `config`.
    ///
    /// # Errors
    ///
    /// When the subscription cannot be made (the connection is gone).
    pub fn start(
        cluster: Arc<Cluster>,
        registry: Arc<Registry>,
        config: NetworkConfig,
    ) -> Result<Member, String> {
        let runtime = io_runtime().map_err(|e| e.to_string())?;
        let client = cluster.client().clone();
        let subject = control_subject(cluster.name(), "*");
        let subscriber =
            runtime.block_on(super::subscribe(&client, subject, "control requests"))?;
        let shares = Shares::default();
        let serving = shares.clone();
        let incarnation = format!(
            "{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        let listener = runtime.spawn(async move {
            let mut subscriber = subscriber;
            while let Some(request) = subscriber.next().await {
                let Some(reply) = request.reply.clone() else {
                    continue;
                };
                let kind = request
                    .subject
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let (cluster, registry, shares) =
                    (cluster.clone(), registry.clone(), serving.clone());
                let (config, incarnation) = (config.clone(), incarnation.clone());
                // Starting a network spawns threads: not on the runtime's workers.
                let answer = tokio::task::spawn_blocking(move || {
                    let done = match kind.as_str() {
                        "deploy" => deploy(&cluster, &registry, &shares, config, &request.payload),
                        "stop" => stop(&shares, &request.payload),
                        "ping" => Ok(()),
                        other => Err(format!("unknown control request '{other}'")),
                    };
                    let running = (kind == "ping").then(|| {
                        shares
                            .lock()
                            .map(|s| s.keys().cloned().collect())
                            .unwrap_or_default()
                    });
                    Answer {
                        error: done.err(),
                        incarnation: incarnation.clone(),
                        shares: running,
                    }
                })
                .await
                .unwrap_or_else(|e| Answer {
                    error: Some(format!("the request failed: {e}")),
                    ..Answer::default()
                });
                let body = serde_json::to_vec(&answer).unwrap_or_default();
                let _ = client.publish(reply, body.into()).await;
            }
        });
        Ok(Member {
            _listener: AbortOnDrop(listener),
            shares,
        })
    }

    /// The names of the shares running here.
    pub fn shares(&self) -> Vec<String> {
        self.shares
            .lock()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Ok(shares) = self.shares.lock() {
            for network in shares.values() {
                network.stop();
            }
        }
    }
}

/// Starts the share a deploy request carries, and a thread publishing its events.
fn deploy(
    cluster: &Arc<Cluster>,
    registry: &Registry,
    shares: &Shares,
    config: NetworkConfig,
    payload: &[u8],
) -> Result<(), String> {
    let request: Deploy =
        serde_json::from_slice(payload).map_err(|e| format!("malformed deploy request: {e}"))?;
    let share = Graph::from_json(&request.share).map_err(|e| e.to_string())?;
    let name = share.name().ok_or("a share must have a name")?.to_string();
    // The remote edges' components exist for the shares alone.
    let registry = registry.snapshot();
    super::register(&registry, cluster);
    share.validate(&registry).map_err(|e| e.to_string())?;
    let mut running = shares.lock().map_err(|_| "the shares' lock is poisoned")?;
    if running.contains_key(&name) {
        return Err(format!("a share named '{name}' runs here already"));
    }
    let config = NetworkConfig {
        external_ports: false,
        watch_edges: request.watch_rate.is_some(),
        watch_rate: request.watch_rate,
        ..config
    };
    let network = Network::start(&share, &registry, config).map_err(|e| e.to_string())?;
    let events = network.events().clone();
    running.insert(name.clone(), network);
    drop(running);
    tracing::info!("running share '{name}' for runtime '{}'", request.owner);
    let (cluster, shares) = (cluster.clone(), shares.clone());
    let subject = events_subject(&name);
    std::thread::Builder::new()
        .name("flowd-share-events".into())
        .spawn(move || {
            let Ok(runtime) = io_runtime() else { return };
            let client = cluster.client();
            for event in events.iter() {
                let Some(report) = ShareEvent::of(cluster.name(), &event) else {
                    continue;
                };
                let ended = matches!(report, ShareEvent::Ended { .. });
                let body = serde_json::to_vec(&report).unwrap_or_default();
                runtime.block_on(async {
                    let _ = client.publish(subject.clone(), body.into()).await;
                    if ended {
                        let _ = client.flush().await;
                    }
                });
                if ended {
                    break;
                }
            }
            if let Ok(mut shares) = shares.lock() {
                shares.remove(&name);
            }
        })
        .map_err(|e| format!("cannot start a thread for the share's events: {e}"))?;
    Ok(())
}

/// Stops the share a stop request names; stopping one that has ended is no error.
fn stop(shares: &Shares, payload: &[u8]) -> Result<(), String> {
    let request: Stop =
        serde_json::from_slice(payload).map_err(|e| format!("malformed stop request: {e}"))?;
    if let Some(network) = shares
        .lock()
        .map_err(|_| "the shares' lock is poisoned")?
        .get(&request.share)
    {
        network.stop();
    }
    Ok(())
}

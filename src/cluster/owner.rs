//! Running a placed graph from the runtime that owns it: deploying each share to its
//! runtime, running the local share, collecting every share's events in one stream, watching
//! that the other runtimes stay alive, and stopping them all.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use futures_util::StreamExt;

use super::Cluster;
use super::control::{Answer, Deploy, ShareEvent, Stop, control_subject, events_subject};
use super::placement::Placement;
use crate::component::Registry;
use crate::component::connect::io_runtime;
use crate::engine::{Network, NetworkConfig};
use crate::graph::Graph;

/// How long a runtime may take to answer a deploy or a stop.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// How long a runtime may take to answer a ping while the graph runs.
const PING_WITHIN: Duration = Duration::from_secs(2);

/// How often the other runtimes are pinged while the graph runs.
const PING_EVERY: Duration = Duration::from_secs(1);

/// Pings in a row a runtime may miss before it is taken for dead.
const MISSES: u32 = 3;

/// A graph running over several runtimes, placed from this one.
pub struct PlacedRun {
    cluster: Arc<Cluster>,
    share: String,
    local: Network,
    events: Receiver<ShareEvent>,
    /// The runtimes whose share has not ended yet.
    running: Arc<Mutex<BTreeSet<String>>>,
}

impl PlacedRun {
    /// Splits `graph` with this runtime as its home (`placed` overriding node metadata),
    /// deploys each other share to its runtime and starts the local one.
    ///
    /// # Errors
    ///
    /// When the graph cannot be placed, a runtime does not answer, or a share does not start
    /// (any share already started is stopped again).
    pub fn start(
        cluster: &Arc<Cluster>,
        registry: &Registry,
        graph: &Graph,
        config: NetworkConfig,
        placed: &BTreeMap<String, String>,
    ) -> Result<PlacedRun, String> {
        let home = cluster.name();
        let run = run_id(home);
        let placement = Placement::split(graph, home, &run, placed).map_err(|e| e.to_string())?;
        let share = placement.shares[home]
            .name()
            .unwrap_or_default()
            .to_string();
        let (sender, events) = crossbeam_channel::bounded(4096);
        forward_remote_events(cluster, &share, sender.clone())?;
        let mut deployed = Vec::new();
        for runtime in placement.others(home) {
            let started = request(cluster, runtime, "ping", Vec::new())
                .map_err(|e| {
                    format!(
                        "runtime '{runtime}' does not answer on {} ({e}): is `flowd serve \
                         --nats {} --name {runtime}` running?",
                        cluster.url(),
                        cluster.url()
                    )
                })
                .and_then(|()| {
                    let deploy = Deploy {
                        share: placement.shares[runtime].to_json(),
                        owner: home.to_string(),
                    };
                    let body = serde_json::to_vec(&deploy).unwrap_or_default();
                    request(cluster, runtime, "deploy", body)
                        .map_err(|e| format!("runtime '{runtime}' cannot run its share: {e}"))
                });
            if let Err(error) = started {
                stop_remote(cluster, &share, &deployed);
                return Err(error);
            }
            deployed.push(runtime.to_string());
        }
        let config = NetworkConfig {
            external_ports: false,
            ..config
        };
        // The remote edges' components exist for the shares alone.
        let registry = registry.snapshot();
        super::register(&registry, cluster);
        let local = match Network::start(&placement.shares[home], &registry, config) {
            Ok(local) => local,
            Err(error) => {
                stop_remote(cluster, &share, &deployed);
                return Err(format!("cannot start the local share: {error}"));
            }
        };
        forward_local_events(home, local.events().clone(), sender.clone());
        let running = Arc::new(Mutex::new(
            placement.shares.keys().cloned().collect::<BTreeSet<_>>(),
        ));
        watch_runtimes(cluster, &placement, home, running.clone(), sender);
        Ok(PlacedRun {
            cluster: cluster.clone(),
            share,
            local,
            events,
            running,
        })
    }

    /// The next event of any share; `None` once every share has ended. A runtime found dead
    /// is reported (an error without a process, then its end) and the rest is stopped.
    pub fn next_event(&mut self) -> Option<ShareEvent> {
        if self.running.lock().map(|r| r.is_empty()).unwrap_or(true) {
            return None;
        }
        let event = self.events.recv().ok()?;
        match &event {
            ShareEvent::Ended { runtime, .. } => {
                if let Ok(mut running) = self.running.lock() {
                    running.remove(runtime);
                }
            }
            ShareEvent::Error { node, .. } if node.is_empty() => self.stop(),
            _ => {}
        }
        Some(event)
    }

    /// Stops every share.
    pub fn stop(&self) {
        self.local.stop();
        let others: Vec<String> = self
            .running
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|n| *n != self.cluster.name())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        stop_remote(&self.cluster, &self.share, &others);
    }
}

/// A run id unique enough that two runs never share subjects.
fn run_id(home: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{home}-{}-{nanos:x}", std::process::id())
}

/// Sends a control request of `kind` to `runtime` and waits for its answer.
fn request(cluster: &Cluster, runtime: &str, kind: &str, body: Vec<u8>) -> Result<(), String> {
    request_within(cluster, runtime, kind, body, ANSWER_WITHIN)
}

/// As [`request`], waiting at most `within`.
fn request_within(
    cluster: &Cluster,
    runtime: &str,
    kind: &str,
    body: Vec<u8>,
    within: Duration,
) -> Result<(), String> {
    let runtime_handle = io_runtime().map_err(|e| e.to_string())?;
    let client = cluster.client().clone();
    let subject = control_subject(runtime, kind);
    let answer = runtime_handle.block_on(async move {
        tokio::time::timeout(within, client.request(subject, body.into())).await
    });
    let message = match answer {
        Err(_) => return Err(format!("no answer within {} s", within.as_secs())),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(message)) => message,
    };
    let answer: Answer =
        serde_json::from_slice(&message.payload).map_err(|e| format!("a malformed answer: {e}"))?;
    answer.error.map_or(Ok(()), Err)
}

/// Asks each of `runtimes` to stop the share; what does not answer is only logged.
fn stop_remote(cluster: &Cluster, share: &str, runtimes: &[String]) {
    let body = serde_json::to_vec(&Stop {
        share: share.to_string(),
    })
    .unwrap_or_default();
    for runtime in runtimes {
        if let Err(error) = request(cluster, runtime, "stop", body.clone()) {
            tracing::warn!("cannot stop the share on runtime '{runtime}': {error}");
        }
    }
}

/// Passes the events the other runtimes publish for `share` to `sender`.
fn forward_remote_events(
    cluster: &Cluster,
    share: &str,
    sender: Sender<ShareEvent>,
) -> Result<(), String> {
    let runtime = io_runtime().map_err(|e| e.to_string())?;
    let client = cluster.client().clone();
    let subject = events_subject(share);
    let mut subscriber = runtime
        .block_on(async {
            let subscriber = client.subscribe(subject).await?;
            client.flush().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(subscriber)
        })
        .map_err(|e| format!("cannot subscribe to the shares' events: {e}"))?;
    std::thread::Builder::new()
        .name("flowd-placed-events".into())
        .spawn(move || {
            while let Some(message) = runtime.block_on(subscriber.next()) {
                match serde_json::from_slice::<ShareEvent>(&message.payload) {
                    Ok(event) => {
                        if sender.send(event).is_err() {
                            break;
                        }
                    }
                    Err(error) => tracing::warn!("ignoring a malformed share event: {error}"),
                }
            }
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    Ok(())
}

/// Passes the local share's events to `sender`.
fn forward_local_events(
    home: &str,
    events: Receiver<crate::engine::Event>,
    sender: Sender<ShareEvent>,
) {
    let home = home.to_string();
    let spawned = std::thread::Builder::new()
        .name("flowd-local-events".into())
        .spawn(move || {
            for event in events.iter() {
                if let Some(report) = ShareEvent::of(&home, &event) {
                    let ended = matches!(report, ShareEvent::Ended { .. });
                    if sender.send(report).is_err() || ended {
                        break;
                    }
                }
            }
        });
    if let Err(error) = spawned {
        tracing::error!("cannot start a thread for the local share's events: {error}");
    }
}

/// Pings every other runtime while its share runs; one that misses [`MISSES`] pings in a
/// row is reported dead, with the processes that ran there.
fn watch_runtimes(
    cluster: &Arc<Cluster>,
    placement: &Placement,
    home: &str,
    running: Arc<Mutex<BTreeSet<String>>>,
    sender: Sender<ShareEvent>,
) {
    let processes: BTreeMap<String, Vec<String>> = placement
        .others(home)
        .map(|runtime| {
            let ids = placement.shares[runtime]
                .nodes
                .iter()
                .filter(|n| !n.id.starts_with("remote-"))
                .map(|n| format!("'{}'", n.id))
                .collect();
            (runtime.to_string(), ids)
        })
        .collect();
    if processes.is_empty() {
        return;
    }
    let cluster = cluster.clone();
    let spawned = std::thread::Builder::new()
        .name("flowd-placed-watch".into())
        .spawn(move || {
            let mut missed: BTreeMap<String, u32> = BTreeMap::new();
            loop {
                std::thread::sleep(PING_EVERY);
                let alive: Vec<String> = match running.lock() {
                    Ok(running) if !running.is_empty() => running
                        .iter()
                        .filter(|r| processes.contains_key(*r))
                        .cloned()
                        .collect(),
                    _ => return,
                };
                for runtime in alive {
                    let misses = missed.entry(runtime.clone()).or_default();
                    if request_within(&cluster, &runtime, "ping", Vec::new(), PING_WITHIN).is_ok() {
                        *misses = 0;
                        continue;
                    }
                    *misses += 1;
                    if *misses < MISSES {
                        continue;
                    }
                    let lost = processes[&runtime].join(", ");
                    let report = ShareEvent::Error {
                        runtime: runtime.clone(),
                        node: String::new(),
                        message: format!(
                            "runtime '{runtime}' stopped answering; its processes {lost} are lost"
                        ),
                    };
                    let ended = ShareEvent::Ended {
                        runtime: runtime.clone(),
                        stopped: true,
                    };
                    if sender.send(report).is_err() || sender.send(ended).is_err() {
                        return;
                    }
                }
            }
        });
    if let Err(error) = spawned {
        tracing::error!("cannot start a thread watching the runtimes: {error}");
    }
}

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
        let mut incarnations = BTreeMap::new();
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
                .and_then(|_| {
                    deploy(cluster, runtime, &placement.shares[runtime], home)
                        .map_err(|e| format!("runtime '{runtime}' cannot run its share: {e}"))
                });
            match started {
                Ok(incarnation) => {
                    incarnations.insert(runtime.to_string(), incarnation);
                    deployed.push(runtime.to_string());
                }
                Err(error) => {
                    stop_remote(cluster, &share, &deployed);
                    return Err(error);
                }
            }
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
        watch_runtimes(
            cluster,
            &placement,
            (home, incarnations),
            running.clone(),
            sender,
        );
        Ok(PlacedRun {
            cluster: cluster.clone(),
            share,
            local,
            events,
            running,
        })
    }

    /// The next event of any share; `None` once every share has ended. A runtime found dead
    /// is reported ([`ShareEvent::Lost`]); unless its share can resume, the rest is stopped.
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
            ShareEvent::Lost { resumes: false, .. } => self.stop(),
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

/// Sends a control request of `kind` to `runtime` and waits for its answer: the incarnation
/// of the runtime that did it.
fn request(cluster: &Cluster, runtime: &str, kind: &str, body: Vec<u8>) -> Result<String, String> {
    request_within(cluster, runtime, kind, body, ANSWER_WITHIN)
}

/// As [`request`], waiting at most `within`.
fn request_within(
    cluster: &Cluster,
    runtime: &str,
    kind: &str,
    body: Vec<u8>,
    within: Duration,
) -> Result<String, String> {
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
    answer.error.map_or(Ok(answer.incarnation), Err)
}

/// Asks `runtime` to run `share` for the runtime `home`; the incarnation that runs it.
fn deploy(cluster: &Cluster, runtime: &str, share: &Graph, home: &str) -> Result<String, String> {
    let deploy = Deploy {
        share: share.to_json_string(),
        owner: home.to_string(),
    };
    let body = serde_json::to_vec(&deploy).unwrap_or_default();
    request(cluster, runtime, "deploy", body)
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
    let mut subscriber =
        runtime.block_on(super::subscribe(&client, subject, "the shares' events"))?;
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

/// What the watcher knows of one other runtime.
struct Watched {
    /// Its share, to deploy again when it comes back.
    share: Graph,
    /// The processes placed there, for messages.
    processes: String,
    /// Whether its share may resume after a crash: every remote edge into it is durable.
    resumes: bool,
    /// Pings missed in a row.
    missed: u32,
    /// Whether it has been reported lost (and waits to come back).
    lost: bool,
    /// The start of the runtime that runs the share.
    incarnation: String,
}

impl Watched {
    fn of(share: &Graph, incarnation: String) -> Watched {
        let placed: Vec<String> = share
            .nodes
            .iter()
            .filter(|n| n.component != super::edge::SEND && n.component != super::edge::RECEIVE)
            .map(|n| format!("'{}'", n.id))
            .collect();
        let resumes = share
            .nodes
            .iter()
            .filter(|n| n.component == super::edge::RECEIVE)
            .all(|n| {
                n.metadata.as_ref().and_then(|m| m.get("durable"))
                    == Some(&serde_json::Value::Bool(true))
            });
        Watched {
            share: share.clone(),
            processes: placed.join(", "),
            resumes,
            missed: 0,
            lost: false,
            incarnation,
        }
    }
}

/// Pings every other runtime while its share runs. One that misses [`MISSES`] pings in a row
/// is reported lost, with the processes that ran there. If every remote edge into its share
/// is durable, it is awaited: when it answers again its share is deployed anew and takes up
/// the stream where it was acknowledged; otherwise its share is ended.
fn watch_runtimes(
    cluster: &Arc<Cluster>,
    placement: &Placement,
    (home, mut incarnations): (&str, BTreeMap<String, String>),
    running: Arc<Mutex<BTreeSet<String>>>,
    sender: Sender<ShareEvent>,
) {
    let mut watched: BTreeMap<String, Watched> = placement
        .others(home)
        .map(|runtime| {
            let incarnation = incarnations.remove(runtime).unwrap_or_default();
            let state = Watched::of(&placement.shares[runtime], incarnation);
            (runtime.to_string(), state)
        })
        .collect();
    if watched.is_empty() {
        return;
    }
    let (cluster, home) = (cluster.clone(), home.to_string());
    let spawned = std::thread::Builder::new()
        .name("flowd-placed-watch".into())
        .spawn(move || {
            let mut down_since = None;
            loop {
                std::thread::sleep(PING_EVERY);
                if let Some(reason) =
                    super::edge::connection_lost(cluster.client(), &mut down_since)
                {
                    // Nothing can be told or awaited without the server: the run ends.
                    let ended: Vec<String> = running
                        .lock()
                        .map(|r| r.iter().cloned().collect())
                        .unwrap_or_default();
                    let _ = sender.send(ShareEvent::Lost {
                        runtime: home.clone(),
                        message: format!("runtime '{home}' {reason}"),
                        resumes: false,
                    });
                    for runtime in ended {
                        let _ = sender.send(ShareEvent::Ended {
                            runtime,
                            stopped: true,
                        });
                    }
                    return;
                }
                let alive: Vec<String> = match running.lock() {
                    Ok(running) if !running.is_empty() => running
                        .iter()
                        .filter(|r| watched.contains_key(*r))
                        .cloned()
                        .collect(),
                    _ => return,
                };
                for runtime in alive {
                    let Some(state) = watched.get_mut(&runtime) else {
                        continue;
                    };
                    let answered =
                        request_within(&cluster, &runtime, "ping", Vec::new(), PING_WITHIN).ok();
                    let events = check(&cluster, &home, &runtime, state, answered);
                    for event in events {
                        if sender.send(event).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    if let Err(error) = spawned {
        tracing::error!("cannot start a thread watching the runtimes: {error}");
    }
}

/// What one ping's answer (or its absence) means for `runtime`.
fn check(
    cluster: &Cluster,
    home: &str,
    runtime: &str,
    state: &mut Watched,
    answered: Option<String>,
) -> Vec<ShareEvent> {
    let mut events = Vec::new();
    if let Some(incarnation) = answered {
        state.missed = 0;
        if !state.lost && incarnation == state.incarnation {
            return events;
        }
        if !state.lost {
            // It restarted between two pings: its share is gone all the same.
            events = lose(runtime, state);
            if !state.resumes {
                return events;
            }
        }
        state.lost = false;
        events.extend(match deploy(cluster, runtime, &state.share, home) {
            Ok(incarnation) => {
                state.incarnation = incarnation;
                vec![ShareEvent::Resumed {
                    runtime: runtime.to_string(),
                }]
            }
            Err(error) => vec![
                ShareEvent::Lost {
                    runtime: runtime.to_string(),
                    message: format!(
                        "runtime '{runtime}' is back but cannot run its share again: {error}"
                    ),
                    resumes: false,
                },
                ShareEvent::Ended {
                    runtime: runtime.to_string(),
                    stopped: true,
                },
            ],
        });
        return events;
    }
    state.missed += 1;
    if state.lost || state.missed < MISSES {
        return events;
    }
    lose(runtime, state)
}

/// Marks `runtime` lost and says so: awaited if its share can resume, ended if not.
fn lose(runtime: &str, state: &mut Watched) -> Vec<ShareEvent> {
    state.lost = true;
    let processes = &state.processes;
    if state.resumes {
        return vec![ShareEvent::Lost {
            runtime: runtime.to_string(),
            message: format!(
                "runtime '{runtime}' stopped answering; its processes {processes} resume when \
                 it comes back (every edge into them is durable)"
            ),
            resumes: true,
        }];
    }
    vec![
        ShareEvent::Lost {
            runtime: runtime.to_string(),
            message: format!(
                "runtime '{runtime}' stopped answering; its processes {processes} are lost"
            ),
            resumes: false,
        },
        ShareEvent::Ended {
            runtime: runtime.to_string(),
            stopped: true,
        },
    ]
}

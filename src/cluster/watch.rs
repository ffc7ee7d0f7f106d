//! Watching, from the runtime that placed a graph, that the runtimes running its other shares
//! stay alive: pinging each, reporting one that stops answering, and deploying its share
//! again when it comes back, if every remote edge into it is durable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;

use super::Cluster;
use super::control::{Answer, PING_WITHIN, ShareEvent, answer, deploy};
use super::placement::{Placement, is_edge_end};
use crate::graph::Graph;

/// How often the other runtimes are pinged while the graph runs.
const PING_EVERY: Duration = Duration::from_secs(1);

/// Pings in a row a runtime may miss before it is taken for dead.
const MISSES: u32 = 3;

/// What the watcher knows of one other runtime.
struct Watched {
    /// Its share, to deploy again when it comes back.
    share: Graph,
    /// The processes placed there.
    processes: Vec<String>,
    /// Whether its share may resume after a crash: every remote edge into it is durable.
    resumes: bool,
    /// Pings missed in a row.
    missed: u32,
    /// Whether it has been reported lost (and waits to come back).
    lost: bool,
    /// The start of the runtime that runs the share.
    incarnation: String,
    /// How its packets are reported, as deployed.
    watch_rate: Option<u32>,
}

impl Watched {
    fn of(share: &Graph, incarnation: String, watch_rate: Option<u32>) -> Watched {
        let processes = share
            .nodes
            .iter()
            .filter(|n| !is_edge_end(n))
            .map(|n| n.id.clone())
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
            processes,
            resumes,
            missed: 0,
            lost: false,
            incarnation,
            watch_rate,
        }
    }
}

/// Pings every other runtime while its share runs. One that misses [`MISSES`] pings in a row
/// is reported lost, with the processes that ran there. If every remote edge into its share
/// is durable, it is awaited: when it answers again its share is deployed anew and takes up
/// the stream where it was acknowledged; otherwise its share is ended.
pub(super) fn watch_runtimes(
    cluster: &Arc<Cluster>,
    placement: &Placement,
    (home, mut incarnations, watch_rate): (&str, BTreeMap<String, String>, Option<u32>),
    running: Arc<Mutex<BTreeSet<String>>>,
    sender: Sender<ShareEvent>,
) {
    let mut watched: BTreeMap<String, Watched> = placement
        .others(home)
        .map(|runtime| {
            let incarnation = incarnations.remove(runtime).unwrap_or_default();
            let state = Watched::of(&placement.shares[runtime], incarnation, watch_rate);
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
                        processes: Vec::new(),
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
                    let answered = answer(&cluster, &runtime, "ping", Vec::new(), PING_WITHIN).ok();
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
    answered: Option<Answer>,
) -> Vec<ShareEvent> {
    let mut events = Vec::new();
    if let Some(Answer {
        incarnation,
        shares,
        ..
    }) = answered
    {
        state.missed = 0;
        if !state.lost && incarnation == state.incarnation {
            let name = state.share.name().unwrap_or_default();
            if shares.is_some_and(|shares| !shares.iter().any(|s| s == name)) {
                // It ended, and said so, but that message did not arrive.
                events.push(ShareEvent::Ended {
                    runtime: runtime.to_string(),
                    stopped: false,
                });
            }
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
        events.extend(
            match deploy(cluster, runtime, &state.share, home, state.watch_rate) {
                Ok(incarnation) => {
                    state.incarnation = incarnation;
                    vec![ShareEvent::Resumed {
                        runtime: runtime.to_string(),
                    }]
                }
                Err(error) => vec![
                    ShareEvent::Lost {
                        runtime: runtime.to_string(),
                        processes: state.processes.clone(),
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
            },
        );
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
    let processes = state
        .processes
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if state.resumes {
        return vec![ShareEvent::Lost {
            runtime: runtime.to_string(),
            processes: state.processes.clone(),
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
            processes: state.processes.clone(),
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

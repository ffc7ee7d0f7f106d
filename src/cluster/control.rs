//! The control messages between runtimes: deploying and stopping shares, liveness, and the
//! events of a share, as JSON on NATS subjects.
//!
//! Each member listens on `flowd.runtime.NAME.{deploy,stop,ping}` (request and reply); each
//! running share publishes its events on `flowd.events.SHARE`, where the runtime that placed
//! the graph collects them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::placement::is_receiving_half;
use super::{Cluster, SUBJECT_ROOT, subject_token};
use crate::engine::{Event, SHOWN_BYTES};
use crate::graph::{Graph, PortRef};
use crate::ip::{Ip, Payload};

/// How long a runtime may take to answer a deploy.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// How long a runtime may take to answer a ping or a stop: one that takes longer is taken
/// for gone (a stop waits while the protocol server waits).
pub(crate) const PING_WITHIN: Duration = Duration::from_secs(2);

/// Where runtime `name` takes control requests of `kind` (`deploy`, `stop`, `ping`).
pub(crate) fn control_subject(name: &str, kind: &str) -> String {
    format!("{SUBJECT_ROOT}.runtime.{}.{kind}", subject_token(name))
}

/// Where the share named `share` publishes its events.
pub(crate) fn events_subject(share: &str) -> String {
    format!("{SUBJECT_ROOT}.events.{}", subject_token(share))
}

/// A request to run a share.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Deploy {
    /// The share, as FBP JSON text (its name namespaces its remote edges).
    pub share: String,
    /// The runtime that placed it.
    pub owner: String,
    /// Packets shown per edge per second, if the share's edges are watched (its packets
    /// are then reported as [`ShareEvent::Packet`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_rate: Option<u32>,
}

/// A request to stop the share of this name.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Stop {
    /// The share's name.
    pub share: String,
}

/// The answer to a control request.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Answer {
    /// Why the request was not done, if it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Which start of the runtime answers: a runtime that restarted answers with another,
    /// and has lost the shares it ran.
    #[serde(default)]
    pub incarnation: String,
    /// To a ping: the shares running there, so that one whose end was not heard (core NATS
    /// may drop a message) is known to have ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<Vec<String>>,
}

/// What a share reports to the runtime that placed it, and what that runtime's watch over
/// the others finds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub(crate) enum ShareEvent {
    /// A process printed a line.
    Output {
        /// The runtime it runs on.
        runtime: String,
        /// The process.
        node: String,
        /// The line.
        message: String,
    },
    /// An IP passed on a watched edge.
    Packet {
        /// The edge's source.
        src: Port,
        /// The edge's target.
        tgt: Port,
        /// `data`, `open` or `close`.
        kind: String,
        /// The start of its payload (at most [`SHOWN_BYTES`]), base64.
        payload: String,
        /// The size of its whole payload.
        size: usize,
    },
    /// A process failed.
    Error {
        /// The runtime.
        runtime: String,
        /// The process.
        node: String,
        /// What went wrong.
        message: String,
    },
    /// The share deadlocked and is being stopped.
    Deadlock {
        /// The runtime.
        runtime: String,
        /// The story.
        message: String,
    },
    /// A runtime stopped answering.
    Lost {
        /// The runtime.
        runtime: String,
        /// The processes placed there.
        processes: Vec<String>,
        /// What was lost, and what happens next.
        message: String,
        /// Whether its share is deployed again when it comes back (every remote edge into
        /// it is durable); if not, the whole graph is stopped.
        resumes: bool,
    },
    /// A runtime that was lost answers again and runs its share anew.
    Resumed {
        /// The runtime.
        runtime: String,
    },
    /// The share ended: by itself, or stopped.
    Ended {
        /// The runtime.
        runtime: String,
        /// Whether it was stopped rather than finishing.
        stopped: bool,
    },
}

impl ShareEvent {
    /// What a network event of the share on `runtime` reports, if anything.
    pub fn of(runtime: &str, event: &Event) -> Option<ShareEvent> {
        let runtime = runtime.to_string();
        Some(match event {
            // A packet crossing runtimes is reported by the sending end alone.
            Event::Data { edge, .. } if is_receiving_half(edge) => return None,
            Event::Data { edge, ip } => {
                let (kind, payload) = match ip {
                    Ip::Data(p) => ("data", p),
                    Ip::Open(p) => ("open", p),
                    Ip::Close(p) => ("close", p),
                };
                let bytes = payload.as_bytes();
                ShareEvent::Packet {
                    src: Port::of(&edge.src),
                    tgt: Port::of(&edge.tgt),
                    kind: kind.to_string(),
                    payload: BASE64.encode(&bytes[..bytes.len().min(SHOWN_BYTES)]),
                    size: bytes.len(),
                }
            }
            Event::Output { node, message } => ShareEvent::Output {
                runtime,
                node: node.clone(),
                message: message.clone(),
            },
            Event::ProcessError { node, message } => ShareEvent::Error {
                runtime,
                node: node.clone(),
                message: message.clone(),
            },
            Event::Deadlock { message, .. } => ShareEvent::Deadlock {
                runtime,
                message: message.clone(),
            },
            Event::Finished { .. } => ShareEvent::Ended {
                runtime,
                stopped: false,
            },
            Event::Stopped { .. } => ShareEvent::Ended {
                runtime,
                stopped: true,
            },
            _ => return None,
        })
    }
}

/// A port, as a share event names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Port {
    process: String,
    port: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
}

impl Port {
    fn of(port: &PortRef) -> Port {
        Port {
            process: port.process.clone(),
            port: port.port.clone(),
            index: port.index,
        }
    }

    /// The port it names.
    pub(crate) fn port_ref(self) -> PortRef {
        PortRef {
            process: self.process,
            port: self.port,
            index: self.index,
        }
    }
}

/// The IP a [`ShareEvent::Packet`] carries: its kind and the start of its payload; `None` if
/// either is malformed.
pub(crate) fn packet_ip(kind: &str, payload: &str) -> Option<Ip> {
    let payload = Payload::from(BASE64.decode(payload).ok()?);
    Some(match kind {
        "data" => Ip::Data(payload),
        "open" => Ip::Open(payload),
        "close" => Ip::Close(payload),
        _ => return None,
    })
}

/// Sends a control request of `kind` to `runtime` and waits at most `within` for its
/// answer: the incarnation of the runtime that did it.
pub(crate) fn request(
    cluster: &Cluster,
    runtime: &str,
    kind: &str,
    body: Vec<u8>,
    within: Duration,
) -> Result<String, String> {
    answer(cluster, runtime, kind, body, within).map(|answer| answer.incarnation)
}

/// As [`request`], the whole answer (unless it says the request failed).
pub(crate) fn answer(
    cluster: &Cluster,
    runtime: &str,
    kind: &str,
    body: Vec<u8>,
    within: Duration,
) -> Result<Answer, String> {
    let client = cluster.client().clone();
    let subject = control_subject(runtime, kind);
    let answer = super::wait(async move {
        tokio::time::timeout(within, client.request(subject, body.into())).await
    })?;
    let message = match answer {
        Err(_) => return Err(format!("no answer within {} s", within.as_secs())),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(message)) => message,
    };
    let answer: Answer =
        serde_json::from_slice(&message.payload).map_err(|e| format!("a malformed answer: {e}"))?;
    match answer.error {
        Some(error) => Err(error),
        None => Ok(answer),
    }
}

/// Asks `runtime` to run `share` for the runtime `home`, its packets reported at `watch_rate`
/// per edge per second if given; the incarnation that runs it.
pub(crate) fn deploy(
    cluster: &Cluster,
    runtime: &str,
    share: &Graph,
    home: &str,
    watch_rate: Option<u32>,
) -> Result<String, String> {
    let deploy = Deploy {
        share: share.to_json_string(),
        owner: home.to_string(),
        watch_rate,
    };
    let body = serde_json::to_vec(&deploy).unwrap_or_default();
    request(cluster, runtime, "deploy", body, ANSWER_WITHIN)
}

/// Asks each of `runtimes` to stop the share; what does not answer is only logged.
pub(crate) fn stop_remote(cluster: &Cluster, share: &str, runtimes: &[String]) {
    let body = serde_json::to_vec(&Stop {
        share: share.to_string(),
    })
    .unwrap_or_default();
    for runtime in runtimes {
        if let Err(error) = request(cluster, runtime, "stop", body.clone(), PING_WITHIN) {
            tracing::warn!("cannot stop the share on runtime '{runtime}': {error}");
        }
    }
}

//! The control messages between runtimes: deploying and stopping shares, liveness, and the
//! events of a share, as JSON on NATS subjects.
//!
//! Each member listens on `flowd.runtime.NAME.{deploy,stop,ping}` (request and reply); each
//! running share publishes its events on `flowd.events.SHARE`, where the runtime that placed
//! the graph collects them.

use serde::{Deserialize, Serialize};

use super::{SUBJECT_ROOT, subject_token};
use crate::engine::Event;

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
}

/// What a share reports to the runtime that placed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum ShareEvent {
    /// A process printed a line.
    Output {
        /// The runtime it runs on.
        runtime: String,
        /// The process.
        node: String,
        /// The line.
        message: String,
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

    /// The runtime it comes from.
    pub fn runtime(&self) -> &str {
        match self {
            ShareEvent::Output { runtime, .. }
            | ShareEvent::Error { runtime, .. }
            | ShareEvent::Deadlock { runtime, .. }
            | ShareEvent::Lost { runtime, .. }
            | ShareEvent::Resumed { runtime }
            | ShareEvent::Ended { runtime, .. } => runtime,
        }
    }
}

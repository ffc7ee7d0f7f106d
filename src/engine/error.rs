//! Errors of the engine.

/// Why a network could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The graph failed validation.
    #[error(transparent)]
    Graph(#[from] crate::graph::Error),
    /// A component could not be instantiated for a process.
    #[error("process '{node}' ({component}): {message}")]
    Instantiate {
        /// The process.
        node: String,
        /// Its component.
        component: String,
        /// Why.
        message: String,
    },
    /// The network has more processes than the runtime has room for at once.
    #[error(transparent)]
    TooManyProcesses(#[from] crate::threads::Refused),
    /// The operating system refused a thread for a process.
    #[error("process '{node}': cannot start a thread: {cause}")]
    Spawn {
        /// The process.
        node: String,
        /// The cause (part of the message, so not also a `source`).
        cause: std::io::Error,
    },
}

/// How a process's `run` ended other than by returning `Ok`.
///
/// Port operations return [`ProcessError::Stopped`] when the network stops and
/// [`ProcessError::Closed`] when every connection of an outport has closed; a component passes
/// them on with `?`, and the engine ends the process quietly. Anything else is a failure and is
/// reported as a process error naming the node.
///
/// Any error type converts into [`ProcessError::Failed`] with `?`, keeping its message.
#[derive(Debug)]
pub enum ProcessError {
    /// The network is stopping (not a failure).
    Stopped,
    /// Every connection of the outport sent to has closed downstream (not a failure).
    Closed {
        /// The outport.
        port: String,
    },
    /// The component failed; the message says why.
    Failed(String),
}

impl ProcessError {
    /// A failure with the given message.
    pub fn failed(message: impl Into<String>) -> ProcessError {
        ProcessError::Failed(message.into())
    }

    /// Whether this ends the process without being a failure.
    pub fn is_quiet(&self) -> bool {
        matches!(self, ProcessError::Stopped | ProcessError::Closed { .. })
    }
}

impl std::fmt::Display for ProcessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessError::Stopped => f.write_str("the network is stopping"),
            ProcessError::Closed { port } => write!(f, "outport '{port}' is closed downstream"),
            ProcessError::Failed(message) => f.write_str(message),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ProcessError {
    fn from(error: E) -> Self {
        ProcessError::Failed(error_chain(&error))
    }
}

/// `error` and its causes on one line, like `{:#}` in anyhow (some errors, hyper's among them,
/// say little without their causes).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

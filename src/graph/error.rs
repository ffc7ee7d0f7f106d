//! Errors of the graph module.

use std::path::PathBuf;

/// Why a graph could not be read, written or accepted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The JSON text is not a valid FBP JSON graph.
    #[error("invalid JSON graph at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The `.fbp` text does not parse.
    #[error("invalid .fbp graph at line {line}, column {column}: {message}")]
    Fbp {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The graph parsed but is not valid; every problem found is listed.
    #[error("{}", ValidationError::join(.0))]
    Invalid(Vec<ValidationError>),
    /// Reading or writing a graph file failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (part of the message, so not also a `source`).
        cause: std::io::Error,
    },
    /// A graph file is larger than the limit it is read with.
    #[error(
        "{}: larger than {limit} bytes, the limit for a graph file (raise it with \
         --max-graph-bytes)",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A graph file failed to load; the inner error says why.
    #[error("{}: {cause}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The cause (part of the message, so not also a `source`).
        cause: Box<Error>,
    },
}

/// One problem that makes a graph invalid, naming the node, port or edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Two processes share an id.
    #[error("duplicate process id '{0}'")]
    DuplicateNode(String),
    /// A process names a component the registry does not have.
    #[error("process '{node}': unknown component '{component}'{}", suggest(.suggestions))]
    UnknownComponent {
        /// The process.
        node: String,
        /// The component it names.
        component: String,
        /// Registered names close to it.
        suggestions: Vec<String>,
    },
    /// A connection or exported port refers to a process that does not exist.
    #[error("{context}: no process '{node}'")]
    MissingNode {
        /// The connection or exported port, described.
        context: String,
        /// The process it names.
        node: String,
    },
    /// A connection or exported port names a port the component does not have.
    #[error("{context}: component '{component}' of process '{node}' has no {direction} '{port}'{}", list_available(.available))]
    UnknownPort {
        /// The connection or exported port, described.
        context: String,
        /// The process.
        node: String,
        /// Its component.
        component: String,
        /// `inport` or `outport`.
        direction: &'static str,
        /// The port named.
        port: String,
        /// The ports of that direction the component has.
        available: Vec<String>,
    },
    /// A connection gives an index to a port that is not an array port.
    #[error(
        "{context}: port '{port}' of process '{node}' is not an array port, but index {index} was given"
    )]
    IndexOnPlainPort {
        /// The connection, described.
        context: String,
        /// The process.
        node: String,
        /// The port.
        port: String,
        /// The index given.
        index: usize,
    },
    /// A port the component requires has no edge, IIP or export.
    #[error("process '{node}': required inport '{port}' of {component} is not connected")]
    RequiredPortUnconnected {
        /// The process.
        node: String,
        /// Its component.
        component: String,
        /// The required port.
        port: String,
    },
    /// A process whose component is a graph cannot be expanded into its parent.
    #[error("process '{node}' (subgraph '{component}'): {problem}")]
    Subgraph {
        /// The process.
        node: String,
        /// Its component (the graph's name).
        component: String,
        /// What is wrong.
        problem: String,
    },
    /// An edge's metadata sets a capacity that is not usable.
    #[error("edge {edge}: {problem}")]
    BadCapacity {
        /// The edge, described.
        edge: String,
        /// What is wrong.
        problem: String,
    },
    /// Two exported ports share a name.
    #[error("duplicate exported {direction} '{name}'")]
    DuplicateExport {
        /// `inport` or `outport`.
        direction: &'static str,
        /// The exported name.
        name: String,
    },
}

impl ValidationError {
    fn join(errors: &[ValidationError]) -> String {
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        texts.join("; ")
    }
}

fn suggest(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", quoted_list(names))
    }
}

fn list_available(names: &[String]) -> String {
    if names.is_empty() {
        " (it has none)".to_string()
    } else {
        format!(" (it has {})", quoted_list(names))
    }
}

fn quoted_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    quoted.join(", ")
}

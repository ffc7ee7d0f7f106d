//! The `.fbp` text language, as the noflo [`fbp`](https://github.com/flowbased/fbp) package
//! (version 1.8.0, `grammar/fbp.peg`) defines it with its default options.
//!
//! ```text
//! # @name Hello
//! # @runtime flowd
//! INPORT=Say.IN:GREETING
//! OUTPORT=Show.OUT:OUT
//!
//! 'hello' -> IN Say(core/Repeat)             # an IIP into a node declared with its component
//! Say OUT -> IN Show(core/Output:x=100,y=50) # an edge; node metadata after a ':'
//! Split(core/Split) OUT[0] -> IN[1] Merge(core/Merge), Merge OUT -> IN Show
//! (core/Kick) OUT -> IN Say                  # an anonymous node: `_core_Kick_1`
//! ```
//!
//! - A statement is a chain `source -> target`: the source is `Node PORT`, an IIP (`'text'`
//!   where only `\'` is an escape, or a JSON value) or a node passed through (`IN Node OUT`);
//!   chains continue (`A OUT -> IN B OUT -> IN C`). A port left out is `IN`/`OUT`, or what
//!   `DEFAULT_INPORT=`/`DEFAULT_OUTPORT=` set. Ports may have an index, `OUT[0]`.
//! - A node is named once with its component, `Name(component/Name:key=value,...)`, and by
//!   name alone elsewhere; in metadata `x` and `y` are numbers and a bare value is `routes`.
//! - Statements end at a newline or `,`; `#` starts a comment; `# @key value` on a line of its
//!   own sets a graph property (`@runtime` sets `environment.type`).
//! - `INPORT=Node.PORT:NAME` and `OUTPORT=Node.PORT:NAME` export ports.
//! - Port names are case-insensitive: they are lower-cased, and the graph has
//!   `caseSensitive: false`. Node names keep their case. Only spaces separate words (a tab
//!   does not).
//!
//! [`Graph::from_fbp`] reads exactly what `fbp` reads, to the same graph (the JSON of one equals
//! `fbp`'s output), quirks included (`fbp`'s grammar is loose: `A(X) OUT -> IN B(Y) junk`
//! reads `junk` as a statement of its own). The differences: a node declared with two
//! different components is an error here, where `fbp` keeps the last; so are port indices
//! beyond `usize` and JSON nested deeper than 128 levels. [`Graph::to_fbp`] writes a graph
//! back.
//!
//! The code: [`scanner`] walks the characters and keeps the furthest failure for error
//! messages, [`lexer`] has the token-level rules, [`parser`] the statement rules and the
//! building of the graph, [`value`] the JSON IIPs with JavaScript's number and key-order
//! semantics, [`writer`] the way back.

mod lexer;
mod parser;
mod scanner;
mod value;
mod writer;

#[cfg(test)]
mod tests;

use super::error::Error;
use super::model::Graph;

impl Graph {
    /// Reads a graph from `.fbp` text, the language of the noflo `fbp` package:
    ///
    /// ```text
    /// # @name Hello
    /// INPORT=Say.IN:GREETING
    /// 'hello' -> IN Say(core/Repeat) OUT -> IN Show(core/Output:x=100,y=50)
    /// Split(core/Split) OUT[0] -> IN[1] Merge(core/Merge), Merge OUT -> IN Show
    /// ```
    ///
    /// Every text the `fbp` package reads (version 1.8.0, default options) reads to the graph
    /// whose JSON ([`Graph::to_json`]) is the one `fbp` writes, except that a node declared
    /// with two different components is an error here (`fbp` keeps the last), as are port
    /// indices beyond `usize` and JSON IIPs nested more than 128 levels deep.
    ///
    /// Empty text (or only comments) is an empty graph. Port names are lower-cased and
    /// `case_sensitive` is `Some(false)`, as the `fbp` package does by default.
    ///
    /// # Errors
    ///
    /// [`Error::Fbp`] with the 1-based line and column of the offending character: a syntax
    /// error (naming what was expected there), a node that never gets a component, a connection
    /// or exported port naming such a node, a node declared with two different components.
    pub fn from_fbp(text: &str) -> Result<Graph, Error> {
        parser::parse(text)
    }

    /// The graph as `.fbp` text, which [`Graph::from_fbp`] reads back to the same graph.
    ///
    /// Port names are written upper-case, as `.fbp` convention has it. What `.fbp` cannot
    /// express (groups, metadata of edges, IIPs and exported ports, metadata values with
    /// spaces or punctuation, names with characters `.fbp` does not allow, unknown keys) is
    /// left out, and a comment at the top lists what was.
    pub fn to_fbp(&self) -> String {
        writer::write(self)
    }
}

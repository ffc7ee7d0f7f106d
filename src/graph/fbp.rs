//! The `.fbp` text language (placeholder until the parser lands).

use super::error::Error;
use super::model::Graph;

impl Graph {
    /// Reads a graph from `.fbp` text.
    ///
    /// # Errors
    ///
    /// [`Error::Fbp`] with line and column.
    pub fn from_fbp(_text: &str) -> Result<Graph, Error> {
        Err(Error::Fbp {
            line: 1,
            column: 1,
            message: "the .fbp reader is not written yet".into(),
        })
    }

    /// The graph as `.fbp` text.
    pub fn to_fbp(&self) -> String {
        String::new()
    }
}

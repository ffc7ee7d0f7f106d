//! Graphs: the pure data of a network, before and apart from running it.
//!
//! A [`Graph`] holds processes ([`Node`]s, each an instance of a named component), the
//! [`Connection`]s between their ports (edges, and IIPs that configure a port), the ports the
//! graph exports to the outside ([`ExportedPort`]), groups, and metadata. It knows nothing of
//! threads, components' behaviour or the protocol.
//!
//! Graphs load from and save to two formats:
//!
//! - the FBP JSON graph format as noflo, fbp-graph and noflo-ui use it ([`Graph::from_json`],
//!   [`Graph::to_json`]); every field survives a load and a save, unknown keys included;
//! - the `.fbp` text language of the noflo `fbp` package ([`Graph::from_fbp`], [`Graph::to_fbp`]).
//!
//! [`load`] picks the format from the file name; [`save`] writes atomically and keeps the
//! previous file as `.bak`. [`Graph::validate`] checks a graph against the component specs
//! before it may run, and [`Graph::unfed_cycles`] finds the cycles that would wait forever. The edit methods (`remove_node`, `rename_node`, `change_node`, ...) change
//! a graph the way live editors expect.

mod cycles;
mod edit;
mod error;
mod fbp;
mod file;
mod flatten;
mod json;
mod model;
mod validate;

pub use edit::{Direction, EditError, RemovedNode, patch_metadata};
pub use error::{Error, ValidationError};
pub use file::{
    DEFAULT_MAX_FILE_BYTES, Format, load, load_as, load_limited, remove_stale_temp_files, save,
};
pub use model::{Connection, Edge, ExportedPort, Graph, Group, Iip, Node, Object, PortRef};
pub use validate::SpecLookup;

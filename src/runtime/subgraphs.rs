//! Subgraphs made by clients (`graph:clear` without `main`, as noflo-ui's "New graph" and
//! "make a subgraph" do), kept with the main graph's file so that a restart loses none.
//!
//! They live in a directory beside the main file named after it (`app.json` keeps its
//! subgraphs in `app.subgraphs/`), one FBP JSON file per graph, named after the graph's id
//! (characters a file name cannot hold written as `%XX`) and carrying the id in its `id`
//! property. They are written whenever the main graph is (`network:persist`, autosave), and
//! loaded before it at start, so that its nodes of them resolve. A file that cannot be read
//! is reported and left as it is.

use std::path::{Path, PathBuf};

use super::Runtime;
use crate::graph::{self, Format, Graph};

/// The component name of graph `id` made by a client: `<library>/<id>`, the library being
/// the one given (without a `noflo-` prefix, as noflo names them) or `namespace`; an id with
/// a `/` is a full name already.
pub(crate) fn component_name(namespace: &str, library: Option<&str>, id: &str) -> String {
    if id.contains('/') {
        return id.to_string();
    }
    let library = match library.filter(|l| !l.is_empty()) {
        Some(library) => library.strip_prefix("noflo-").unwrap_or(library),
        None => namespace,
    };
    format!("{library}/{id}")
}

/// Where the subgraphs of the main file `main` are kept.
fn directory_for(main: &Path) -> PathBuf {
    let stem = main
        .file_stem()
        .map_or_else(|| "main".into(), |s| s.to_string_lossy().into_owned());
    main.with_file_name(format!("{stem}.subgraphs"))
}

/// The file name of graph `id`: the id, with `%XX` for what a portable file name cannot hold
/// (and for a leading dot, which would hide the file).
fn file_name(id: &str) -> String {
    let mut name = String::with_capacity(id.len() + 5);
    for (position, byte) in id.bytes().enumerate() {
        let plain = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b' ')
            || (byte == b'.' && position > 0);
        if plain {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    name.push_str(".json");
    name
}

impl Runtime {
    /// Where this runtime keeps the subgraphs clients make, if it has a main file.
    fn subgraph_directory(&self) -> Option<PathBuf> {
        self.config.main_file.as_deref().map(directory_for)
    }

    /// Loads the subgraphs kept beside the main file and registers each as its component.
    /// Returns how many were loaded; files that cannot be read or graphs that do not
    /// validate are reported in the log and left on disk.
    pub(super) fn load_subgraphs(&mut self) -> usize {
        let Some(directory) = self.subgraph_directory() else {
            return 0;
        };
        let Ok(entries) = std::fs::read_dir(&directory) else {
            return 0;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        let mut loaded = Vec::new();
        for path in files {
            match graph::load_limited(&path, Format::Json, self.config.max_graph_bytes) {
                Ok(graph) => {
                    let id = graph
                        .properties
                        .get("id")
                        .and_then(|v| v.as_str())
                        .map(str::to_string);
                    match id {
                        Some(id) => loaded.push((id, graph)),
                        None => tracing::warn!(
                            "{} has no 'id' property; it is not a subgraph flowd wrote",
                            path.display()
                        ),
                    }
                }
                Err(error) => tracing::warn!("subgraph not loaded: {error}"),
            }
        }
        let count = loaded.len();
        let mut waiting: Vec<(String, String)> = Vec::new();
        for (id, graph) in loaded {
            let library = graph.properties.get("library").and_then(|v| v.as_str());
            let name = component_name(&self.config.namespace, library, &id);
            self.add_graph(&id, graph, false);
            if let Some(entry) = self.graphs.get_mut(&id) {
                entry.component = Some(name.clone());
            }
            waiting.push((id, name));
        }
        // A subgraph may use another: register until a round registers none.
        loop {
            let before = waiting.len();
            let mut failed = Vec::new();
            for (id, name) in std::mem::take(&mut waiting) {
                let Some(graph) = self.graphs.get(&id).map(|e| e.graph.clone()) else {
                    continue;
                };
                if let Err(error) = self.registry.register_graph(&name, graph) {
                    failed.push((id, name, error));
                }
            }
            if failed.is_empty() || failed.len() == before {
                for (id, name, error) in failed {
                    tracing::warn!("subgraph '{id}' is kept but not usable as {name}: {error}");
                }
                break;
            }
            waiting = failed.into_iter().map(|(id, name, _)| (id, name)).collect();
        }
        count
    }

    /// Whether a subgraph made by a client has edits not yet written.
    pub(super) fn subgraphs_dirty(&self) -> bool {
        self.graphs
            .iter()
            .any(|(id, e)| e.dirty && e.component.is_some() && self.main.as_ref() != Some(id))
    }

    /// Writes the subgraphs clients made that changed since last written beside the main file
    /// (atomically, each keeping a `.bak`).
    ///
    /// # Errors
    ///
    /// A file could not be written; the others are written still.
    pub(super) fn persist_subgraphs(&mut self) -> Result<(), String> {
        let Some(directory) = self.subgraph_directory() else {
            return Ok(());
        };
        let main = self.main.clone();
        let mut failures = Vec::new();
        let subgraphs = self
            .graphs
            .iter_mut()
            .filter(|(id, e)| e.component.is_some() && main.as_ref() != Some(*id));
        for (id, entry) in subgraphs {
            if let Err(error) = std::fs::create_dir_all(&directory) {
                return Err(format!("cannot create {}: {error}", directory.display()));
            }
            let path = directory.join(file_name(id));
            if !entry.dirty && path.exists() {
                continue;
            }
            let mut graph: Graph = entry.graph.clone();
            graph.properties.insert("id".into(), id.clone().into());
            match graph::save(&graph, &path) {
                Ok(()) => entry.dirty = false,
                Err(error) => failures.push(format!("cannot save subgraph '{id}': {error}")),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_library_or_the_namespace() {
        assert_eq!(component_name("flowd", None, "Sub"), "flowd/Sub");
        assert_eq!(component_name("flowd", Some("noflo-app"), "Sub"), "app/Sub");
        assert_eq!(component_name("flowd", Some("lib"), "a/Sub"), "a/Sub");
    }

    #[test]
    fn file_names_hold_any_id_and_hide_none() {
        assert_eq!(file_name("project/Sub"), "project%2FSub.json");
        assert_eq!(file_name(".hidden"), "%2Ehidden.json");
        assert_eq!(file_name("../x"), "%2E.%2Fx.json");
        assert_eq!(
            directory_for(Path::new("/srv/app.json")),
            Path::new("/srv/app.subgraphs")
        );
    }
}

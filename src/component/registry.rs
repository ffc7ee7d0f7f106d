//! The registry: every component the runtime can instantiate, by name.
//!
//! # Who may take a name
//!
//! Each component is registered with its [`Origin`]. Components compiled into flowd (and those
//! an embedder registers in Rust) are trusted and may take any name. Everything else, a
//! WebAssembly file, a shared object or a graph sent by a protocol client, may not take a name
//! under `core/`, nor a name another origin holds: the first to claim a name keeps it until it
//! is removed, and a later claim is refused with [`NameError`]. So a third-party file can
//! neither replace a core component nor, by being deleted, unregister one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use super::{Component, ComponentSpec, PortSpec};
use crate::graph::Graph;
use crate::graph::SpecLookup;

/// Creates a component instance for a process.
pub type ComponentFactory =
    Arc<dyn Fn(&NodeInfo<'_>) -> Result<Box<dyn Component>, String> + Send + Sync>;

/// The process a component instance is made for.
#[derive(Debug, Clone, Copy)]
pub struct NodeInfo<'a> {
    /// The process id in its graph.
    pub id: &'a str,
    /// The graph's name, if it has one.
    pub graph: Option<&'a str>,
    /// The process's metadata in the graph, if any.
    pub metadata: Option<&'a crate::graph::Object>,
}

/// Where a registered component comes from: who may replace or remove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into flowd: the core components, and components an embedder registers in
    /// Rust. Trusted: may take any name.
    Builtin,
    /// Loaded from this file: a WebAssembly component or a shared object.
    File(PathBuf),
    /// A graph registered as a component (a subgraph), e.g. by a protocol client.
    Graph,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Builtin => f.write_str("a component built into flowd"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Graph => f.write_str("a graph registered as a component"),
        }
    }
}

/// Why a component was not registered under the name it claimed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Names under `core/` belong to flowd's own components.
    #[error("claims the name '{name}', which is reserved for flowd's core components")]
    Reserved {
        /// The name claimed.
        name: String,
    },
    /// Another origin holds the name.
    #[error("claims the name '{name}', which {owner} registered already")]
    Taken {
        /// The name claimed.
        name: String,
        /// Who holds it.
        owner: Origin,
    },
}

/// Whether `name` is reserved for flowd's own components (`core/...`, in any case).
pub fn is_reserved(name: &str) -> bool {
    name.get(..5)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("core/"))
}

#[derive(Clone)]
struct Entry {
    spec: ComponentSpec,
    factory: ComponentFactory,
    /// For a graph used as a component: the graph, expanded into its parent when it runs.
    graph: Option<Arc<Graph>>,
    origin: Origin,
}

/// A change to the registry, as its followers hear of it ([`Registry::follow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A component was registered under this name, new or replacing one.
    Registered(String),
    /// The component of this name was removed.
    Unregistered(String),
}

/// Every registered component, by full name (`library/Name`).
///
/// The registry is the one list that feeds graph validation, `flowd components` and the
/// protocol's component list. It can be shared between threads and added to while networks run;
/// who needs to know of changes follows it ([`Registry::follow`]).
#[derive(Default)]
pub struct Registry {
    entries: RwLock<BTreeMap<String, Entry>>,
    followers: std::sync::Mutex<Vec<crossbeam_channel::Sender<Change>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A copy of every component registered now, followed by no one: for a network that
    /// needs components of its own that must not be offered to anyone else (the remote
    /// edges of a graph placed over several runtimes).
    pub fn snapshot(&self) -> Registry {
        let entries = self
            .entries
            .read()
            .map(|entries| entries.clone())
            .unwrap_or_default();
        Registry {
            entries: RwLock::new(entries),
            followers: std::sync::Mutex::default(),
        }
    }

    /// A registry holding the native core components ([`super::native`]) and `core/Exec`
    /// ([`super::exec`]), which runs no program until registered again with an allow-list.
    pub fn with_core() -> Registry {
        let registry = Registry::new();
        super::native::register_all(&registry);
        super::connect::register_all(&registry);
        super::exec::register(&registry, super::AllowList::default());
        registry
    }

    /// Adds a component compiled into the program ([`Origin::Builtin`]), replacing any of the
    /// same name.
    pub fn register(&self, spec: ComponentSpec, factory: ComponentFactory) {
        let entry = Entry {
            spec,
            factory,
            graph: None,
            origin: Origin::Builtin,
        };
        let name = entry.spec.name.clone();
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.insert(name.clone(), entry);
        drop(entries);
        self.tell(Change::Registered(name));
    }

    /// Every change from now on, on the returned channel (until it is dropped).
    pub fn follow(&self) -> crossbeam_channel::Receiver<Change> {
        let (tx, rx) = crossbeam_channel::unbounded();
        self.followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    fn tell(&self, change: Change) {
        let mut followers = self.followers.lock().unwrap_or_else(|e| e.into_inner());
        followers.retain(|follower| follower.send(change.clone()).is_ok());
    }

    /// Adds a component from `origin`, replacing one of the same name only if the same origin
    /// registered it (a file loaded again).
    ///
    /// # Errors
    ///
    /// [`NameError`] if the name is reserved or another origin holds it; nothing changes then.
    pub fn register_from(
        &self,
        spec: ComponentSpec,
        factory: ComponentFactory,
        origin: Origin,
    ) -> Result<(), NameError> {
        self.claim(Entry {
            spec,
            factory,
            graph: None,
            origin,
        })
    }

    fn claim(&self, entry: Entry) -> Result<(), NameError> {
        let name = entry.spec.name.clone();
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entry.origin != Origin::Builtin {
            if is_reserved(&name) {
                return Err(NameError::Reserved { name });
            }
            if let Some(held) = entries.get(&name)
                && held.origin != entry.origin
            {
                return Err(NameError::Taken {
                    name,
                    owner: held.origin.clone(),
                });
            }
        }
        entries.insert(name.clone(), entry);
        drop(entries);
        self.tell(Change::Registered(name));
        Ok(())
    }

    /// Registers `graph` as the component `name` (a subgraph): its exported ports are the
    /// component's ports, typed after the ports they point at. Returns the spec.
    ///
    /// # Errors
    ///
    /// The name is reserved or held by a component that is not a graph ([`NameError`]), or
    /// the graph is invalid against this registry, or contains itself.
    pub fn register_graph(&self, name: &str, graph: Graph) -> Result<ComponentSpec, String> {
        let graph = Arc::new(graph);
        let lookup = |component: &str| {
            if component == name {
                Some(graph.clone())
            } else {
                self.graph(component)
            }
        };
        graph.flatten(&lookup).map_err(|e| e.to_string())?;
        graph.validate(self).map_err(|e| e.to_string())?;
        let text = |key: &str| {
            graph
                .properties
                .get(key)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let mut spec = ComponentSpec::new(
            name,
            text("description").unwrap_or_else(|| format!("The graph {name}")),
        )
        .icon(text("icon").unwrap_or_else(|| "sitemap".into()));
        spec.subgraph = true;
        let port = |export: &crate::graph::ExportedPort, inbound: bool| {
            let inner = graph
                .node(&export.process)
                .and_then(|n| self.spec(&n.component))
                .and_then(|s| {
                    if inbound {
                        s.find_inport(&export.port).cloned()
                    } else {
                        s.find_outport(&export.port).cloned()
                    }
                });
            PortSpec {
                name: export.name.clone(),
                datatype: inner.as_ref().map_or("all".into(), |p| p.datatype.clone()),
                description: inner
                    .as_ref()
                    .map_or(String::new(), |p| p.description.clone()),
                array: false,
                required: inner.is_some_and(|p| p.required),
            }
        };
        spec.inports = graph.inports.iter().map(|e| port(e, true)).collect();
        spec.outports = graph.outports.iter().map(|e| port(e, false)).collect();
        let factory: ComponentFactory = Arc::new(|_: &NodeInfo<'_>| {
            Err("a subgraph runs expanded into its parent network, not as one process".into())
        });
        self.claim(Entry {
            spec: spec.clone(),
            factory,
            graph: Some(graph),
            origin: Origin::Graph,
        })
        .map_err(|e| e.to_string())?;
        Ok(spec)
    }

    /// The graph of a subgraph component.
    pub fn graph(&self, name: &str) -> Option<Arc<Graph>> {
        self.entry(name).and_then(|e| e.graph)
    }

    /// Removes the component `name` if `origin` registered it; returns whether it did.
    pub fn unregister_from(&self, name: &str, origin: &Origin) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.get(name).is_some_and(|e| e.origin == *origin) {
            entries.remove(name);
            drop(entries);
            self.tell(Change::Unregistered(name.to_string()));
            return true;
        }
        false
    }

    /// Where the component `name` comes from, if it is registered.
    pub fn origin(&self, name: &str) -> Option<Origin> {
        self.entry(name).map(|e| e.origin)
    }

    /// The spec of the named component.
    pub fn spec(&self, name: &str) -> Option<ComponentSpec> {
        self.entry(name).map(|e| e.spec)
    }

    /// The factory of the named component.
    pub fn factory(&self, name: &str) -> Option<ComponentFactory> {
        self.entry(name).map(|e| e.factory)
    }

    /// Every spec, sorted by name.
    pub fn specs(&self) -> Vec<ComponentSpec> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.values().map(|e| e.spec.clone()).collect()
    }

    /// How many components are registered.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no component is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entry(&self, name: &str) -> Option<Entry> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(name).cloned()
    }
}

impl SpecLookup for Registry {
    fn spec(&self, component: &str) -> Option<ComponentSpec> {
        Registry::spec(self, component)
    }

    fn names(&self) -> Vec<String> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.keys().cloned().collect()
    }
}

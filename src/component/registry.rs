//! The registry: every component the runtime can instantiate, by name.

use std::collections::BTreeMap;
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

#[derive(Clone)]
struct Entry {
    spec: ComponentSpec,
    factory: ComponentFactory,
    /// For a graph used as a component: the graph, expanded into its parent when it runs.
    graph: Option<Arc<Graph>>,
}

/// Every registered component, by full name (`library/Name`).
///
/// The registry is the one list that feeds graph validation, `flowd components` and the
/// protocol's component list. It can be shared between threads and added to while networks run.
#[derive(Default)]
pub struct Registry {
    entries: RwLock<BTreeMap<String, Entry>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A registry holding the native core components ([`super::native`]) and `core/Exec`
    /// ([`super::exec`]), which runs no program until registered again with an allow-list.
    pub fn with_core() -> Registry {
        let registry = Registry::new();
        super::native::register_all(&registry);
        super::exec::register(&registry, super::AllowList::default());
        registry
    }

    /// Adds a component, replacing any of the same name.
    pub fn register(&self, spec: ComponentSpec, factory: ComponentFactory) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.insert(
            spec.name.clone(),
            Entry {
                spec,
                factory,
                graph: None,
            },
        );
    }

    /// Registers `graph` as the component `name` (a subgraph): its exported ports are the
    /// component's ports, typed after the ports they point at. Returns the spec.
    ///
    /// # Errors
    ///
    /// The graph is invalid against this registry, or contains itself.
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
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.insert(
            name.to_string(),
            Entry {
                spec: spec.clone(),
                factory,
                graph: Some(graph),
            },
        );
        Ok(spec)
    }

    /// The graph of a subgraph component.
    pub fn graph(&self, name: &str) -> Option<Arc<Graph>> {
        self.entry(name).and_then(|e| e.graph)
    }

    /// Removes a component; returns whether it was there.
    pub fn unregister(&self, name: &str) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.remove(name).is_some()
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

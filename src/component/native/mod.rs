//! Native core components, compiled in: the fastest kind.
//!
//! One file per component, each with its spec, its behaviour and its tests. [`register_all`]
//! is the one list of them.

use std::sync::Arc;

use super::{Component, ComponentSpec, PortSpec, Registry};

mod drop;
mod output;
mod repeat;

/// Registers every core component in `registry`.
pub fn register_all(registry: &Registry) {
    register::<repeat::Repeat>(registry);
    register::<drop::Drop>(registry);
    register::<output::Output>(registry);
}

/// A native component: a spec, and a way to make a fresh instance for each process.
pub trait NativeComponent: Component + Default + 'static {
    /// The component's spec.
    fn spec() -> ComponentSpec;
}

/// Registers the native component `C`.
pub fn register<C: NativeComponent>(registry: &Registry) {
    registry.register(
        C::spec(),
        Arc::new(|_node: &str| Ok(Box::new(C::default()) as Box<dyn Component>)),
    );
}

/// The usual `in` port: any data.
fn in_port(description: &str) -> PortSpec {
    PortSpec::new("in", "all", description)
}

/// The usual `out` port: any data.
fn out_port(description: &str) -> PortSpec {
    PortSpec::new("out", "all", description)
}

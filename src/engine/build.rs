//! Building a network: instantiating components, sizing queues, resolving port references.

use std::collections::HashMap;

use super::edge::PacketSender;

use super::config::NetworkConfig;
use super::context::OutSlot;
use super::edge::{Outgoing, Upstreams};
use super::error::Error;
use super::events::{EdgeId, EventSender};
use super::process::{InQueue, NodePlan};
use super::watch::{Watch, Watcher};
use crate::component::Registry;
use crate::graph::{Node, PortRef};

/// Instantiates the component of `node` (of graph `graph`).
pub(super) fn plan_node(
    node: &Node,
    graph: Option<&str>,
    registry: &Registry,
) -> Result<NodePlan, Error> {
    let (spec, factory) = registry
        .spec(&node.component)
        .zip(registry.factory(&node.component))
        .ok_or_else(|| Error::Instantiate {
            node: node.id.clone(),
            component: node.component.clone(),
            message: "component not registered".into(),
        })?;
    let info = crate::component::NodeInfo {
        id: &node.id,
        graph,
        metadata: node.metadata.as_ref(),
    };
    let component = factory(&info).map_err(|message| Error::Instantiate {
        node: node.id.clone(),
        component: node.component.clone(),
        message,
    })?;
    Ok(NodePlan {
        id: node.id.clone(),
        spec,
        component,
        inputs: Vec::new(),
        outputs: Vec::new(),
        new_ports: None,
    })
}

/// The sending end of an edge, registered so that it can be watched.
pub(super) fn watched(
    watches: &mut HashMap<EdgeId, Watch>,
    events: &EventSender,
    id: EdgeId,
    tx: PacketSender,
    batch: usize,
    config: &NetworkConfig,
) -> Outgoing {
    let watch = Watch::new(&tx, batch);
    watch.set(config.watches(&id));
    let watcher = Watcher::new(id.clone(), watch.clone(), events.clone(), config.watch_rate);
    watches.insert(id, watch);
    Outgoing::new(tx, batch).watched(watcher)
}

pub(super) fn key(
    index_of: &HashMap<String, usize>,
    port: &PortRef,
) -> (usize, String, Option<usize>) {
    (index_of[&port.process], port.port.clone(), port.index)
}

pub(super) fn queue_for<'a>(
    plans: &'a mut [NodePlan],
    index_of: &HashMap<String, usize>,
    port: &PortRef,
) -> &'a mut InQueue {
    let plan = &mut plans[index_of[&port.process]];
    let position = plan
        .inputs
        .iter()
        .position(|q| q.name == port.port && q.index == port.index);
    match position {
        Some(i) => &mut plan.inputs[i],
        None => {
            // An inport with IIPs only: a queue nobody sends to.
            let (tx, rx) = super::edge::packet_queue(1);
            plan.inputs.push(InQueue {
                name: port.port.clone(),
                index: port.index,
                tx,
                rx,
                upstreams: Upstreams::new(0),
                initial: Vec::new(),
            });
            let last = plan.inputs.len() - 1;
            &mut plan.inputs[last]
        }
    }
}

pub(super) fn out_slot_for<'a>(
    plans: &'a mut [NodePlan],
    index_of: &HashMap<String, usize>,
    port: &PortRef,
) -> &'a mut Vec<Outgoing> {
    let plan = &mut plans[index_of[&port.process]];
    let position = plan
        .outputs
        .iter()
        .position(|s| s.name == port.port && s.index == port.index);
    let i = match position {
        Some(i) => i,
        None => {
            plan.outputs
                .push(OutSlot::new(&port.port, port.index, Vec::new()));
            plan.outputs.len() - 1
        }
    };
    &mut plan.outputs[i].connections
}

/// Gives port references their declared spelling, and array ports without an index the next
/// free one (as noflo does).
#[derive(Default)]
pub(super) struct Resolver {
    next_index: HashMap<(usize, bool, String), usize>,
}

impl Resolver {
    pub(super) fn resolve(
        &mut self,
        plans: &[NodePlan],
        index_of: &HashMap<String, usize>,
        port: &PortRef,
        inport: bool,
    ) -> PortRef {
        let node = index_of[&port.process];
        let spec = &plans[node].spec;
        let decl = if inport {
            spec.find_inport(&port.port)
        } else {
            spec.find_outport(&port.port)
        };
        let Some(decl) = decl else {
            return port.clone();
        };
        let next = self
            .next_index
            .entry((node, inport, decl.name.clone()))
            .or_default();
        let index = match (decl.array, port.index) {
            (false, _) => None,
            (true, Some(i)) => {
                *next = (*next).max(i.saturating_add(1));
                Some(i)
            }
            (true, None) => {
                *next += 1;
                Some(*next - 1)
            }
        };
        PortRef {
            process: port.process.clone(),
            port: decl.name.clone(),
            index,
        }
    }
}

//! A process: one component instance running on its own thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::context::{InSlot, OutSlot, PortDecl, ProcessContext};
use super::edge::{Incoming, Packet, StopSignal, StopTrigger};
use super::events::{Event, EventSender};
use crate::component::{Component, ComponentSpec};
use crate::ip::Ip;

/// What the network builder prepared for one process: its component, inport queues and
/// outport connections.
pub(super) struct NodePlan {
    pub(super) id: String,
    pub(super) spec: ComponentSpec,
    pub(super) component: Box<dyn Component>,
    pub(super) inputs: Vec<InQueue>,
    pub(super) outputs: Vec<OutSlot>,
}

/// The queue of one inport (or array index) while the network is being built.
pub(super) struct InQueue {
    pub(super) name: String,
    pub(super) index: Option<usize>,
    pub(super) tx: crossbeam_channel::Sender<Packet>,
    pub(super) rx: crossbeam_channel::Receiver<Packet>,
    pub(super) upstreams: super::edge::Upstreams,
    pub(super) initial: Vec<Ip>,
}

/// One process: its component and context, run on its own thread.
pub(super) struct Process {
    node: String,
    component: Box<dyn Component>,
    ctx: ProcessContext,
    events: EventSender,
    signal: StopSignal,
    running: Arc<AtomicUsize>,
    stop: Arc<StopTrigger>,
    started: Instant,
}

impl Process {
    pub(super) fn new(
        plan: NodePlan,
        signal: &StopSignal,
        events: &EventSender,
        running: &Arc<AtomicUsize>,
        stop: &Arc<StopTrigger>,
        started: Instant,
    ) -> Process {
        let decls = |ports: &[crate::component::PortSpec]| -> Vec<PortDecl> {
            ports
                .iter()
                .map(|p| PortDecl {
                    name: p.name.clone(),
                    array: p.array,
                })
                .collect()
        };
        let inports = plan
            .inputs
            .into_iter()
            .map(|q| {
                // The process must not hold a sender of its own queue, or it would never end.
                drop(q.tx);
                InSlot::new(
                    &q.name,
                    q.index,
                    Incoming::shared(Some(q.rx), q.upstreams, q.initial),
                )
            })
            .collect();
        let ctx = ProcessContext::new(
            plan.id.clone(),
            decls(&plan.spec.inports),
            decls(&plan.spec.outports),
            inports,
            plan.outputs,
            signal.clone(),
            events.clone(),
        );
        Process {
            node: plan.id,
            component: plan.component,
            ctx,
            events: events.clone(),
            signal: signal.clone(),
            running: running.clone(),
            stop: stop.clone(),
            started,
        }
    }

    /// The process id.
    pub(super) fn node(&self) -> &str {
        &self.node
    }

    pub(super) fn run(mut self) {
        tracing::debug!(node = %self.node, "process started");
        let result = catch_unwind(AssertUnwindSafe(|| self.component.run(&mut self.ctx)));
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(error)) if error.is_quiet() => {
                tracing::debug!(node = %self.node, "process ended: {error}");
                None
            }
            Ok(Err(error)) => Some(error.to_string()),
            Err(panic) => Some(format!("panicked: {}", panic_message(&*panic))),
        };
        if let Some(message) = failure {
            tracing::debug!(node = %self.node, "process error: {message}");
            self.events.send(
                Event::ProcessError {
                    node: self.node.clone(),
                    message,
                },
                Some(&self.signal),
            );
        }
        self.ctx.finish();
        // Dropping the component and context closes this process's inports upstream.
        drop(self.component);
        drop(self.ctx);
        self.events.send(
            Event::ProcessEnded {
                node: self.node.clone(),
            },
            Some(&self.signal),
        );
        if self.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            let uptime = self.started.elapsed();
            let last = if self.stop.is_triggered() {
                Event::Stopped { uptime }
            } else {
                Event::Finished { uptime }
            };
            self.events.send(last, None);
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

//! A process: one component instance running on its own thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::context::{InSlot, OutSlot, PortDecl, ProcessContext};
use super::edge::{Incoming, PacketReceiver, PacketSender, StopSignal, StopTrigger};
use super::events::{Event, EventSender};
use super::live::NewPorts;
use crate::component::{Component, ComponentSpec};
use crate::ip::Ip;
use crate::threads::Permit;

/// What the network builder prepared for one process: its component, inport queues and
/// outport connections.
pub(super) struct NodePlan {
    pub(super) id: String,
    pub(super) spec: ComponentSpec,
    pub(super) component: Box<dyn Component>,
    pub(super) inputs: Vec<InQueue>,
    pub(super) outputs: Vec<OutSlot>,
    /// Where live edits hand over new indexes of its array ports, if it has any.
    pub(super) new_ports: Option<Arc<NewPorts>>,
}

/// The queue of one inport (or array index) while the network is being built.
pub(super) struct InQueue {
    pub(super) name: String,
    pub(super) index: Option<usize>,
    pub(super) tx: PacketSender,
    pub(super) rx: PacketReceiver,
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
    permit: Permit,
    /// Whether the process runs on a thread of its own rather than as a task.
    on_thread: bool,
    /// The span the process runs in (entered by whatever runs it: a thread, or a worker each
    /// time it resumes the task).
    span: tracing::Span,
}

impl Process {
    pub(super) fn new(
        plan: NodePlan,
        permit: Permit,
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
                    &plan.id,
                    &q.name,
                    q.index,
                    Incoming::shared(Some(q.rx), q.upstreams, q.initial),
                )
            })
            .collect();
        let mut ctx = ProcessContext::new(
            plan.id.clone(),
            decls(&plan.spec.inports),
            decls(&plan.spec.outports),
            inports,
            plan.outputs,
            signal.clone(),
            events.clone(),
        );
        if let Some(new_ports) = plan.new_ports {
            ctx.take_new_ports_from(new_ports);
        }
        Process {
            node: plan.id,
            component: plan.component,
            ctx,
            events: events.clone(),
            signal: signal.clone(),
            running: running.clone(),
            stop: stop.clone(),
            started,
            permit,
            on_thread: true,
            span: tracing::Span::none(),
        }
    }

    /// The process, running in `span`.
    pub(super) fn in_span(self, span: tracing::Span) -> Process {
        Process { span, ..self }
    }

    /// The process, on a thread of its own if `on_thread`, else as a task.
    pub(super) fn on_thread(self, on_thread: bool) -> Process {
        Process { on_thread, ..self }
    }

    /// Starts the process: as a task on the scheduler's workers (where `placement` says), or,
    /// if its component needs a thread, on the thread its permit set aside or a new one.
    ///
    /// # Errors
    ///
    /// The operating system's error if it refuses a new thread or a task's stack.
    pub(super) fn start(mut self, placement: crate::sched::Placement) -> std::io::Result<()> {
        let span = std::mem::replace(&mut self.span, tracing::Span::none());
        if self.on_thread {
            let thread = self.permit.take_thread();
            return thread.start(Box::new(move || {
                let _in_span = span.enter();
                self.run();
            }));
        }
        let cpu = match self.signal.activity() {
            Some(activity) => activity.task_cpu(),
            None => Arc::default(),
        };
        crate::sched::spawn(Box::new(move || self.run()), span, cpu, placement)
    }

    /// Whether the process runs as a task.
    pub(super) fn is_task(&self) -> bool {
        !self.on_thread
    }

    /// The process id.
    pub(super) fn node(&self) -> &str {
        &self.node
    }

    /// Runs the component to its end, then closes the process's ports.
    ///
    /// A panic anywhere in this (the component's `run`, flushing and closing the outports,
    /// dropping the component or the context) ends this process only: it is reported as a
    /// process error naming the node, the process's receivers still see its streams end, and
    /// the network still counts the process as ended.
    pub(super) fn run(self) {
        let Process {
            node,
            component,
            mut ctx,
            events,
            signal,
            running,
            stop,
            started,
            permit,
            on_thread: _,
            span: _,
        } = self;
        tracing::debug!(node = %node, "process started");
        if let Some(activity) = signal.activity() {
            activity.started();
        }
        // Declared first so that it is dropped last, after everything below, even on a panic
        // that escapes: the network's count of running processes must always come down.
        let _ended = Ended {
            node: node.clone(),
            events: events.clone(),
            signal: signal.clone(),
            running,
            stop,
            started,
            _permit: permit,
        };
        let fail = |message: String| {
            tracing::debug!(node = %node, "process error: {message}");
            if let Some(activity) = signal.activity() {
                activity.failed();
            }
            events.send(
                Event::ProcessError {
                    node: node.clone(),
                    message,
                },
                Some(&signal),
            );
        };
        let mut component = component;
        match catch_unwind(AssertUnwindSafe(|| component.run(&mut ctx))) {
            Ok(Ok(())) => {}
            Ok(Err(error)) if error.is_quiet() => {
                tracing::debug!(node = %node, "process ended: {error}");
            }
            Ok(Err(error)) => fail(error.to_string()),
            Err(panic) => fail(format!("panicked: {}", panic_message(&*panic))),
        }
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| ctx.finish())) {
            fail(format!(
                "panicked while closing its outports: {}",
                panic_message(&*panic)
            ));
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| ctx.abandon())) {
                fail(format!(
                    "panicked again while closing its outports: {}",
                    panic_message(&*panic)
                ));
            }
        }
        // Dropping the component and context closes this process's inports upstream.
        if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(component))) {
            fail(format!(
                "panicked while its component was dropped: {}",
                panic_message(&*panic)
            ));
        }
        if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(ctx))) {
            fail(format!(
                "panicked while its ports were dropped: {}",
                panic_message(&*panic)
            ));
        }
    }
}

/// Reports a process's end when dropped, however the process ended: [`Event::ProcessEnded`],
/// then, for the last process of the network, [`Event::Finished`] or [`Event::Stopped`].
struct Ended {
    node: String,
    events: EventSender,
    signal: StopSignal,
    running: Arc<AtomicUsize>,
    stop: Arc<StopTrigger>,
    started: Instant,
    /// Given back after the process is counted out (fields drop after `drop` runs).
    _permit: Permit,
}

impl Drop for Ended {
    fn drop(&mut self) {
        if let Some(activity) = self.signal.activity() {
            activity.ended();
        }
        self.events.send(
            Event::ProcessEnded {
                node: std::mem::take(&mut self.node),
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

/// The message a panic was raised with (`(no message)` for a payload that is not text).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

//! Deadlock detection: a network whose every running process waits on an edge, with nothing
//! outside able to feed it, would wait forever; it is reported and stopped instead.
//!
//! Each process publishes what it does in an [`Activity`]: running (computing, sleeping, or
//! waiting with a deadline or on something other than an edge), blocked receiving from its
//! inports, or blocked sending to a full edge. Only the slow path of a wait touches it, right
//! before the thread parks, so the hot path pays nothing.
//!
//! One watchdog thread, started with the first network and ending with the last, looks at
//! every network a few times a second. A network is deadlocked when, on
//! [`CONFIRMATIONS`] looks in a row:
//! - every started process that has not ended is blocked, and none has woken in between;
//! - each blocked receiver's queues are empty and each blocked sender's queue is full (so no
//!   packet is on its way to a process about to wake);
//! - nothing outside can feed it: no exported inport is open, and no process added live
//!   waits for its first input (a client is in the middle of editing).
//!
//! The watchdog then reports [`Event::Deadlock`] naming each process and what it waits on, and
//! stops the network, which ends with [`Event::Stopped`].

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::edge::{Packet, StopTrigger};
use super::events::{EdgeId, Event, EventSender};
use super::metrics::{ProcessMetrics, ProcessState};
use super::queue::QueueProbe;

/// How often the watchdog looks at each network.
const LOOK_EVERY: Duration = Duration::from_millis(150);

/// Looks in a row that must find the same processes blocked before a deadlock is reported.
const CONFIRMATIONS: u32 = 3;

const NOT_STARTED: u8 = 0;
const RUNNING: u8 = 1;
const BLOCKED: u8 = 2;
const ENDED: u8 = 3;

/// What a blocked process waits on.
enum Wait {
    /// Nothing: the process is not blocked.
    Nothing,
    /// An IP on any of these inports (names as written, with index), from these queues.
    Receive {
        ports: Vec<Arc<str>>,
        queues: Vec<QueueProbe<Packet>>,
    },
    /// Room on this edge's queue.
    Send {
        edge: Option<EdgeId>,
        queue: QueueProbe<Packet>,
    },
}

/// What one process is doing, as far as deadlock detection (and the operator: see
/// [`super::metrics`]) cares.
pub(crate) struct Activity {
    node: String,
    component: String,
    state: AtomicU8,
    /// Counts the waits the process came out of: a blocked process that woke is not stuck.
    wakes: AtomicU64,
    /// What the process waits on, and since when.
    wait: Mutex<(Wait, Instant)>,
    stop: Arc<StopTrigger>,
    /// Nanoseconds spent blocked receiving, over the waits that ended.
    receive_blocked: AtomicU64,
    /// Nanoseconds spent blocked sending to a full edge, over the waits that ended.
    send_blocked: AtomicU64,
    /// Whether the process failed.
    failed: AtomicBool,
    /// The CPU time of the process's thread, as [`super::cpu`] measures it.
    cpu: super::cpu::ThreadCpu,
    /// Bytes of memory the process reports in use (a WebAssembly guest's linear memories).
    memory: Arc<AtomicU64>,
}

impl Activity {
    /// The process starts running, on the calling thread.
    pub(crate) fn started(&self) {
        self.cpu.start();
        self.state.store(RUNNING, Ordering::SeqCst);
    }

    /// Where a worker counts the time it runs the process as a task.
    pub(crate) fn task_cpu(&self) -> Arc<AtomicU64> {
        self.cpu.task_time()
    }

    /// Where the process reports the bytes of memory it uses.
    pub(crate) fn memory(&self) -> &Arc<AtomicU64> {
        &self.memory
    }

    /// The process has ended (called on its thread).
    pub(crate) fn ended(&self) {
        self.cpu.stop();
        self.state.store(ENDED, Ordering::SeqCst);
    }

    /// The process is about to park until one of `queues` (its inports `ports`) has a packet.
    pub(crate) fn receiving(&self, ports: Vec<Arc<str>>, queues: Vec<QueueProbe<Packet>>) {
        self.block(Wait::Receive { ports, queues });
    }

    /// The process is about to park until `queue` (of `edge`) has room.
    pub(crate) fn sending(&self, edge: Option<&EdgeId>, queue: QueueProbe<Packet>) {
        self.block(Wait::Send {
            edge: edge.cloned(),
            queue,
        });
    }

    fn block(&self, wait: Wait) {
        *self.wait.lock().unwrap_or_else(|e| e.into_inner()) = (wait, Instant::now());
        self.state.store(BLOCKED, Ordering::SeqCst);
    }

    /// The process woke from the wait it announced.
    pub(crate) fn woke(&self) {
        self.state.store(RUNNING, Ordering::SeqCst);
        self.wakes.fetch_add(1, Ordering::SeqCst);
        let mut wait = self.wait.lock().unwrap_or_else(|e| e.into_inner());
        let (ended, since) = std::mem::replace(&mut *wait, (Wait::Nothing, Instant::now()));
        if let Some(total) = self.blocked_total(&ended) {
            let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
            total.fetch_add(nanos, Ordering::Relaxed);
        }
    }

    /// The process failed.
    pub(crate) fn failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// Where the time of `wait` is counted.
    fn blocked_total(&self, wait: &Wait) -> Option<&AtomicU64> {
        match wait {
            Wait::Nothing => None,
            Wait::Receive { .. } => Some(&self.receive_blocked),
            Wait::Send { .. } => Some(&self.send_blocked),
        }
    }

    /// How the process is doing now.
    pub(crate) fn metrics(&self) -> ProcessMetrics {
        let state = match self.state.load(Ordering::SeqCst) {
            NOT_STARTED => ProcessState::Waiting,
            RUNNING => ProcessState::Running,
            BLOCKED => ProcessState::Blocked,
            _ if self.failed.load(Ordering::Relaxed) => ProcessState::Failed,
            _ => ProcessState::Ended,
        };
        let (mut receiving, mut sending) = (
            self.receive_blocked.load(Ordering::Relaxed),
            self.send_blocked.load(Ordering::Relaxed),
        );
        // A wait in progress counts too: a process blocked for good shows it.
        let wait = self.wait.lock().unwrap_or_else(|e| e.into_inner());
        let ongoing = u64::try_from(wait.1.elapsed().as_nanos()).unwrap_or(u64::MAX);
        match wait.0 {
            Wait::Nothing => {}
            Wait::Receive { .. } => receiving = receiving.saturating_add(ongoing),
            Wait::Send { .. } => sending = sending.saturating_add(ongoing),
        }
        ProcessMetrics {
            node: self.node.clone(),
            component: self.component.clone(),
            state,
            receive_blocked: Duration::from_nanos(receiving),
            send_blocked: Duration::from_nanos(sending),
            cpu: self.cpu.used(),
            memory: self.memory.load(Ordering::Relaxed),
        }
    }

    /// What the process waits on, if it is blocked for good: its queues are as its wait
    /// implies (empty to receive, full to send).
    fn stuck_on(&self) -> Option<String> {
        let wait = self.wait.lock().unwrap_or_else(|e| e.into_inner());
        match &wait.0 {
            Wait::Nothing => None,
            Wait::Receive { ports, queues } => queues
                .iter()
                .all(QueueProbe::is_empty)
                .then(|| format!("waits to receive on {}", ports.join(" or "))),
            Wait::Send { edge, queue } => queue.is_full().then(|| match edge {
                Some(edge) => format!("waits to send on {edge}, which is full"),
                None => "waits to send on a full edge".to_string(),
            }),
        }
    }
}

/// What one network is doing: its processes' activities and what could feed it from outside.
pub(crate) struct NetworkActivity {
    processes: Mutex<Vec<Arc<Activity>>>,
    /// Exported inports whose handles are open.
    open_inports: AtomicUsize,
    events: EventSender,
    stop: Arc<StopTrigger>,
    /// The watchdog's last look: the wakes of each blocked process, and how many looks in a
    /// row found them so.
    last_look: Mutex<(Vec<u64>, u32)>,
}

impl NetworkActivity {
    /// Watches a new network, which reports on `events` and stops with `stop`.
    pub(crate) fn watch(events: EventSender, stop: Arc<StopTrigger>) -> Arc<NetworkActivity> {
        let network = Arc::new(NetworkActivity {
            processes: Mutex::new(Vec::new()),
            open_inports: AtomicUsize::new(0),
            events,
            stop,
            last_look: Mutex::new((Vec::new(), 0)),
        });
        watchdog::add(Arc::downgrade(&network));
        network
    }

    /// The activity of a new process `node` of `component`, which `stop` stops.
    pub(crate) fn process(
        &self,
        node: &str,
        component: &str,
        stop: Arc<StopTrigger>,
    ) -> Arc<Activity> {
        let activity = Arc::new(Activity {
            node: node.to_string(),
            component: component.to_string(),
            state: AtomicU8::new(NOT_STARTED),
            wakes: AtomicU64::new(0),
            wait: Mutex::new((Wait::Nothing, Instant::now())),
            stop,
            receive_blocked: AtomicU64::new(0),
            send_blocked: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            cpu: super::cpu::ThreadCpu::default(),
            memory: Arc::new(AtomicU64::new(0)),
        });
        let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        // Ended processes are of no more interest (live edits may add and remove many). They
        // are swept as the list doubles, so that adding n processes costs O(n), not O(n²).
        if processes.len() >= 64 && processes.len().is_power_of_two() {
            processes.retain(|p| p.state.load(Ordering::SeqCst) != ENDED);
        }
        processes.push(activity.clone());
        activity
    }

    /// How each process of the network is doing (those that ended before the last process
    /// was added may be gone).
    pub(crate) fn metrics(&self) -> Vec<ProcessMetrics> {
        let processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        processes.iter().map(|p| p.metrics()).collect()
    }

    /// An exported inport's handle was opened.
    pub(crate) fn inport_opened(&self) {
        self.open_inports.fetch_add(1, Ordering::SeqCst);
    }

    /// An exported inport's handle was closed.
    pub(crate) fn inport_closed(&self) {
        self.open_inports.fetch_sub(1, Ordering::SeqCst);
    }

    /// Looks once; reports and stops the network when the deadlock is confirmed. Returns
    /// false once the network needs no more looks.
    fn look(&self) -> bool {
        if self.stop.is_triggered() {
            return false;
        }
        let stuck = self.stuck();
        let mut last = self.last_look.lock().unwrap_or_else(|e| e.into_inner());
        let Some((wakes, waits)) = stuck else {
            *last = (Vec::new(), 0);
            return true;
        };
        if last.1 == 0 || last.0 != wakes {
            *last = (wakes, 1);
            return true;
        }
        last.1 += 1;
        if last.1 < CONFIRMATIONS {
            return true;
        }
        let message = describe(&waits);
        // Whoever runs the network tells its user; the log has it for the curious.
        tracing::debug!("{message}");
        let event = Event::Deadlock {
            processes: waits
                .into_iter()
                .map(|(activity, wait)| (activity.node.clone(), wait))
                .collect(),
            message,
        };
        if !self.events.try_send(event) {
            // Whoever drains the events is behind: look again later.
            *last = (Vec::new(), 0);
            return true;
        }
        self.stop.trigger();
        for process in self
            .processes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            process.stop.trigger();
        }
        false
    }

    /// If every started process that has not ended is blocked for good and nothing outside
    /// can feed the network: each one's wakes, and what it waits on.
    #[allow(clippy::type_complexity)]
    fn stuck(&self) -> Option<(Vec<u64>, Vec<(Arc<Activity>, String)>)> {
        if self.open_inports.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        let mut wakes = Vec::new();
        let mut waits = Vec::new();
        for process in processes.iter() {
            match process.state.load(Ordering::SeqCst) {
                ENDED => continue,
                BLOCKED => {}
                // Running, or added live and waiting for its first input from an edit.
                _ => return None,
            }
            let wait = process.stuck_on()?;
            wakes.push(process.wakes.load(Ordering::SeqCst));
            waits.push((process.clone(), wait));
        }
        if waits.is_empty() {
            return None;
        }
        Some((wakes, waits))
    }
}

/// The deadlock, in words.
fn describe(waits: &[(Arc<Activity>, String)]) -> String {
    let each: Vec<String> = waits
        .iter()
        .map(|(activity, wait)| format!("'{}' ({}) {wait}", activity.node, activity.component))
        .collect();
    format!(
        "deadlock: every running process waits on an edge and nothing outside the network can \
         feed it, so the network was stopped: {}",
        each.join("; ")
    )
}

/// The one thread that looks at every network.
mod watchdog {
    use super::*;

    struct Watched {
        networks: Vec<Weak<NetworkActivity>>,
        thread_running: bool,
    }

    static WATCHED: Mutex<Watched> = Mutex::new(Watched {
        networks: Vec::new(),
        thread_running: false,
    });

    fn watched() -> std::sync::MutexGuard<'static, Watched> {
        WATCHED.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts watching `network`, and the watchdog if it is not running.
    pub(super) fn add(network: Weak<NetworkActivity>) {
        let mut watched = watched();
        watched.networks.push(network);
        if watched.thread_running {
            return;
        }
        match crate::threads::spawn("flowd-deadlock", run) {
            Ok(_) => watched.thread_running = true,
            // Not fatal: the network runs, without deadlock detection until the next start.
            Err(error) => tracing::warn!("deadlock detection is off for now: {error}"),
        }
    }

    fn run() {
        loop {
            std::thread::sleep(LOOK_EVERY);
            let networks: Vec<Arc<NetworkActivity>> = {
                let mut watched = watched();
                watched.networks.retain(|n| n.strong_count() > 0);
                if watched.networks.is_empty() {
                    watched.thread_running = false;
                    return;
                }
                watched.networks.iter().filter_map(Weak::upgrade).collect()
            };
            let done: Vec<*const NetworkActivity> = networks
                .iter()
                .filter(|network| !network.look())
                .map(Arc::as_ptr)
                .collect();
            if !done.is_empty() {
                watched().networks.retain(|n| !done.contains(&n.as_ptr()));
            }
        }
    }
}

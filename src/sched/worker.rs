//! A worker thread: its queue of tasks ready to run, its timers, and the waiters that put
//! parked tasks back on the queue.

use std::collections::{BinaryHeap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult};

use super::stack::{Canary, TaskStack};
use super::{BUDGET, CURRENT, Job, Suspend, TaskYielder};

/// One process's coroutine and where it belongs.
pub(crate) struct Task {
    coroutine: Coroutine<(), Suspend, (), TaskStack>,
    /// The yielder on the task's stack, known once it first ran.
    yielder: *const TaskYielder,
    worker: usize,
    span: tracing::Span,
    cpu: Arc<AtomicU64>,
    canary: Canary,
}

// SAFETY: a task is only resumed, and dropped once finished, on its own worker; other
// threads only move it between queues and waiters, without touching its stack.
unsafe impl Send for Task {}

impl Task {
    pub(super) fn new(
        job: Job,
        stack: TaskStack,
        span: tracing::Span,
        cpu: Arc<AtomicU64>,
        worker: usize,
    ) -> Box<Task> {
        let canary = stack.canary();
        let coroutine = Coroutine::with_stack(stack, move |yielder: &TaskYielder, ()| {
            CURRENT.with(|c| c.set(yielder));
            // The job reports its own panics; one that escapes must not take the worker.
            let _ = catch_unwind(AssertUnwindSafe(job));
        });
        Box::new(Task {
            coroutine,
            yielder: std::ptr::null(),
            worker,
            span,
            cpu,
            canary,
        })
    }
}

/// What a worker shares with the threads that wake its tasks.
pub(crate) struct Shared {
    ready: Mutex<Ready>,
    wake: Condvar,
    /// Tasks placed on this worker that have not ended: running, ready or parked.
    tasks: AtomicUsize,
}

struct Ready {
    tasks: VecDeque<Box<Task>>,
    sleeping: bool,
}

impl Shared {
    /// Starts worker `index`.
    pub(super) fn start(index: usize) -> Arc<Shared> {
        let shared = Arc::new(Shared {
            ready: Mutex::new(Ready {
                tasks: VecDeque::new(),
                sleeping: false,
            }),
            wake: Condvar::new(),
            tasks: AtomicUsize::new(0),
        });
        let worker = shared.clone();
        let started = std::thread::Builder::new()
            .name(format!("flowd-worker-{index}"))
            .spawn(move || run(&worker));
        if let Err(error) = started {
            // Its tasks would never run: fail loudly rather than hang networks.
            tracing::error!("cannot start worker thread {index}: {error}");
        }
        shared
    }

    fn lock(&self) -> MutexGuard<'_, Ready> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `task`, new, as one of this worker's, and queues it to run.
    pub(super) fn adopt(&self, task: Box<Task>) {
        self.tasks.fetch_add(1, Ordering::Relaxed);
        self.push(task);
    }

    /// How many tasks this worker has that have not ended.
    pub(super) fn load(&self) -> usize {
        self.tasks.load(Ordering::Relaxed)
    }

    /// Queues `task` to run.
    pub(super) fn push(&self, task: Box<Task>) {
        let mut ready = self.lock();
        ready.tasks.push_back(task);
        if ready.sleeping {
            ready.sleeping = false;
            self.wake.notify_one();
        }
    }
}

/// Puts `task` back on its worker's queue.
fn schedule(task: Box<Task>) {
    let pool = super::pool();
    pool.workers[task.worker].push(task);
}

const IDLE: u8 = 0;
const NOTIFIED: u8 = 1;
const PARKED: u8 = 2;

/// Wakes one parked task, now or at its next wait (like a thread's park token).
#[derive(Default)]
pub(crate) struct Waiter {
    state: AtomicU8,
    parked: Mutex<Option<Box<Task>>>,
}

impl Waiter {
    fn slot(&self) -> MutexGuard<'_, Option<Box<Task>>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the task.
    pub(crate) fn notify(&self) {
        if self.state.swap(NOTIFIED, Ordering::AcqRel) == PARKED
            && let Some(task) = self.slot().take()
        {
            schedule(task);
        }
    }

    /// Waits, in the running task, until rung or until `deadline`; `false` on timeout.
    /// Outside a task it sleeps in short steps instead (nothing should wait so).
    pub(crate) fn wait(self: &Arc<Self>, deadline: Option<Instant>) -> bool {
        loop {
            if self
                .state
                .compare_exchange(NOTIFIED, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            if !super::suspend(Suspend::Park(self.clone(), deadline)) {
                let step = Duration::from_millis(1);
                let step = deadline.map_or(step, |d| {
                    d.saturating_duration_since(Instant::now()).min(step)
                });
                std::thread::sleep(step);
            }
        }
    }

    /// Takes `task`, which just parked on this waiter; gives it back if it was rung already.
    fn park(&self, task: Box<Task>) -> Option<Box<Task>> {
        *self.slot() = Some(task);
        if self
            .state
            .compare_exchange(IDLE, PARKED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return self.slot().take();
        }
        None
    }

    /// The deadline of the parked task passed: gives it back unless a ring took it.
    fn expire(&self) -> Option<Box<Task>> {
        let task = self.slot().take()?;
        let _ = self
            .state
            .compare_exchange(PARKED, IDLE, Ordering::AcqRel, Ordering::Acquire);
        Some(task)
    }
}

/// A parked task's deadline, soonest first in the heap.
struct Timer(Instant, Arc<Waiter>);

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.cmp(&self.0)
    }
}

fn run(shared: &Shared) {
    let mut timers: BinaryHeap<Timer> = BinaryHeap::new();
    loop {
        let next = shared.lock().tasks.pop_front();
        if let Some(task) = next {
            resume(task, shared, &mut timers);
            continue;
        }
        if expire_due(&mut timers, shared) {
            continue;
        }
        if spin(shared) {
            continue;
        }
        let mut ready = shared.lock();
        while ready.tasks.is_empty() {
            let now = Instant::now();
            if timers.peek().is_some_and(|t| t.0 <= now) {
                break;
            }
            ready.sleeping = true;
            ready = match timers.peek() {
                Some(timer) => {
                    self::wait_timeout(&shared.wake, ready, timer.0.saturating_duration_since(now))
                }
                None => shared.wake.wait(ready).unwrap_or_else(|e| e.into_inner()),
            };
        }
        ready.sleeping = false;
    }
}

fn wait_timeout<'a>(
    wake: &Condvar,
    ready: MutexGuard<'a, Ready>,
    timeout: Duration,
) -> MutexGuard<'a, Ready> {
    match wake.wait_timeout(ready, timeout) {
        Ok((ready, _)) => ready,
        Err(e) => e.into_inner().0,
    }
}

/// Yields the CPU for a while as long as nothing is ready; whether something became ready.
fn spin(shared: &Shared) -> bool {
    super::spin_before_sleeping(None, || !shared.lock().tasks.is_empty())
}

/// Queues the tasks whose deadline passed; whether there were any.
fn expire_due(timers: &mut BinaryHeap<Timer>, shared: &Shared) -> bool {
    let now = Instant::now();
    let mut any = false;
    while timers.peek().is_some_and(|t| t.0 <= now) {
        if let Some(Timer(_, waiter)) = timers.pop()
            && let Some(task) = waiter.expire()
        {
            shared.push(task);
            any = true;
        }
    }
    any
}

/// Runs `task` until it suspends or ends.
fn resume(mut task: Box<Task>, shared: &Shared, timers: &mut BinaryHeap<Timer>) {
    CURRENT.with(|c| c.set(task.yielder));
    BUDGET.with(|b| b.set(0));
    let started = Instant::now();
    let result = {
        let _in_span = task.span.enter();
        task.coroutine.resume(())
    };
    let ran = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    task.cpu.fetch_add(ran, Ordering::Relaxed);
    task.yielder = CURRENT.with(|c| c.replace(std::ptr::null()));
    if task.canary.is_gone() {
        // The task wrote past its stack, into another's: nothing can be trusted any more,
        // as when a thread runs past its guard page.
        eprintln!("flowd: a process overflowed its task stack; aborting");
        std::process::abort();
    }
    match result {
        CoroutineResult::Yield(Suspend::Yield) => shared.push(task),
        CoroutineResult::Yield(Suspend::Park(waiter, deadline)) => {
            if let Some(task) = waiter.park(task) {
                shared.push(task);
            } else if let Some(deadline) = deadline {
                timers.push(Timer(deadline, waiter));
            }
        }
        CoroutineResult::Return(()) => {
            shared.tasks.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

//! Processes as tasks: stackful coroutines on a few worker threads (ADR 0010).
//!
//! A task runs a process's whole life, blocking `run` and all, on a stack of its own
//! ([`stack`]). When the process waits (an empty inport, a full edge, a sleep), the task
//! suspends back to its worker instead of parking a thread, and the worker runs another
//! task. A [`Waiter`] rung from any thread puts the task back on its worker's queue.
//!
//! A task stays on the worker that first ran it: code on a coroutine's stack may have cached
//! the address of a thread-local, so moving a started task to another thread is not safe.
//! New tasks go to the workers in turn.
//!
//! A task that never waits would keep its worker from the others, so every batch a process
//! hands over or takes counts against a budget ([`tick`]); past it, the task goes to the back
//! of its worker's queue.

pub(crate) mod stack;
mod worker;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use corosensei::Yielder;

pub(crate) use worker::Waiter;

/// A task's whole work: a process's life.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Batches a task hands over or takes before it lets the other tasks of its worker run.
const BATCH_BUDGET: u32 = 64;

/// Why a task gave its worker back.
pub(crate) enum Suspend {
    /// Until the waiter rings, or the deadline passes.
    Park(Arc<Waiter>, Option<Instant>),
    /// Only to let the other tasks run first.
    Yield,
}

type TaskYielder = Yielder<(), Suspend>;

thread_local! {
    /// The yielder of the task running on this thread (null outside tasks).
    static CURRENT: Cell<*const TaskYielder> = const { Cell::new(std::ptr::null()) };
    /// Batches the running task moved since it was resumed.
    static BUDGET: Cell<u32> = const { Cell::new(0) };
}

struct Pool {
    workers: Vec<Arc<worker::Shared>>,
    next: AtomicUsize,
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// The most worker threads `FLOWD_WORKERS` may ask for: a typo must not start a million.
const MAX_WORKERS: usize = 1024;

/// How many worker threads to start: `FLOWD_WORKERS` if set (for a container whose CPU quota
/// the system does not report, or to leave cores to other programs), else one per core.
fn worker_count() -> usize {
    let cores = || std::thread::available_parallelism().map_or(2, usize::from);
    let Some(asked) = std::env::var_os("FLOWD_WORKERS") else {
        return cores();
    };
    match asked.to_str().and_then(|n| n.trim().parse::<usize>().ok()) {
        Some(count @ 1..=MAX_WORKERS) => count,
        _ => {
            tracing::warn!(
                "FLOWD_WORKERS={asked:?} is not a number of worker threads from 1 to \
                 {MAX_WORKERS}; starting one per core"
            );
            cores()
        }
    }
}

/// The workers, started on first use.
fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        let count = worker_count();
        let workers = (0..count).map(worker::Shared::start).collect();
        Pool {
            workers,
            next: AtomicUsize::new(0),
        }
    })
}

/// Where a new task goes among the workers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placement {
    /// The next worker in turn.
    Next,
    /// Task `index` of `count` started together: the tasks go to the workers in contiguous
    /// blocks, so that neighbours in a graph (which its nodes' order usually follows) share a
    /// worker and hand batches over without waking another thread.
    Block { index: usize, count: usize },
}

/// Runs `job` as a task, in `span`, counting the time it runs in `cpu` (nanoseconds).
///
/// # Errors
///
/// The system's error if it has no memory for the task's stack, or refuses a worker thread.
pub(crate) fn spawn(
    job: Job,
    span: tracing::Span,
    cpu: Arc<AtomicU64>,
    placement: Placement,
) -> std::io::Result<()> {
    let stack = stack::TASK_STACKS.take()?;
    let pool = pool();
    let workers = pool.workers.len();
    if workers == 0 {
        return Err(std::io::Error::other("no worker threads"));
    }
    let index = match placement {
        Placement::Next => pool.next.fetch_add(1, Ordering::Relaxed) % workers,
        Placement::Block { index, count } => index.saturating_mul(workers) / count.max(1) % workers,
    };
    let task = worker::Task::new(job, stack, span, cpu, index);
    pool.workers[index].push(task);
    Ok(())
}

/// Whether the caller runs in a task.
pub(crate) fn in_task() -> bool {
    !CURRENT.with(Cell::get).is_null()
}

/// Gives the worker back until `suspend` says; `false` outside a task (nothing happened).
pub(crate) fn suspend(suspend: Suspend) -> bool {
    let yielder = CURRENT.with(Cell::get);
    if yielder.is_null() {
        return false;
    }
    // SAFETY: the worker sets CURRENT to the running task's yielder, which lives on that
    // task's stack for as long as the task runs; this is that task.
    unsafe { (*yielder).suspend(suspend) };
    true
}

/// Runs `f` so that nothing in it suspends the running task: waits in `f` hold the worker
/// (a task's parker then sleeps in short steps) instead of switching stacks.
///
/// For code on a stack the task does not own, such as a wasmtime fiber: switching to another
/// task from there would interleave two guests' wasmtime state on one thread.
pub(crate) fn pinned<R>(f: impl FnOnce() -> R) -> R {
    /// Puts the task's yielder back, also when `f` panics.
    struct Restore(*const TaskYielder);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(std::ptr::null())));
    f()
}

/// Lets other work run: the other tasks of this worker, or other threads outside tasks.
pub(crate) fn yield_now() {
    if !suspend(Suspend::Yield) {
        std::thread::yield_now();
    }
}

/// Counts a batch moved by the running task, yielding to the others past the budget.
#[inline]
pub(crate) fn tick() {
    let spent = BUDGET.with(|b| {
        let spent = b.get() + 1;
        b.set(spent);
        spent
    });
    if spent >= BATCH_BUDGET {
        BUDGET.with(|b| b.set(0));
        suspend(Suspend::Yield);
    }
}

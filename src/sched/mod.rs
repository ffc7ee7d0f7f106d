//! Processes as tasks: stackful coroutines on a few worker threads (ADR 0010).
//!
//! A task runs a process's whole life, blocking `run` and all, on a stack of its own
//! ([`stack`]). When the process waits (an empty inport, a full edge, a sleep), the task
//! suspends back to its worker instead of parking a thread, and the worker runs another
//! task. A [`Waiter`] rung from any thread puts the task back on its worker's queue.
//!
//! A task stays on the worker that first ran it: code on a coroutine's stack may have cached
//! the address of a thread-local, so moving a started task to another thread is not safe.
//! So where a task goes is decided when it is spawned ([`Placement`]): a network starts on its
//! least loaded worker, and spreads over more only when it has enough processes to keep each
//! busy.
//!
//! A task that never waits would keep its worker from the others, so every batch a process
//! hands over or takes counts against a budget ([`tick`]); past it, the task goes to the back
//! of its worker's queue.

pub(crate) mod stack;
mod worker;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

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

/// The fewest tasks of one network that get a worker to themselves.
///
/// A hand-over between two workers wakes a thread, and on a machine with few cores the
/// spinning workers then compete with the threads feeding the network: one IP through an idle
/// 4-stage network took 3.6 µs on one worker and 19.8 µs split over two (ADR 0010). A smaller
/// network stays on one worker; a larger one is cut into blocks of at least this many.
const MIN_TASKS_PER_WORKER: usize = 16;

/// Where a new task goes among the workers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placement {
    /// Worker `n` (counted round the workers): where the network the task joins started.
    On(usize),
    /// Task `index` of the `count` tasks of a network started together, starting at worker
    /// `first` ([`least_loaded_worker`]): the tasks go to the workers in contiguous blocks of
    /// at least [`MIN_TASKS_PER_WORKER`], so that neighbours in a graph (which its nodes'
    /// order usually follows) share a worker and hand batches over without waking another
    /// thread.
    Block {
        index: usize,
        count: usize,
        first: usize,
    },
}

impl Placement {
    /// The worker, of `workers`, that the task goes to.
    fn worker(self, workers: usize) -> usize {
        match self {
            Placement::On(worker) => worker % workers,
            Placement::Block {
                index,
                count,
                first,
            } => {
                let blocks = (count / MIN_TASKS_PER_WORKER).clamp(1, workers);
                let block = index.saturating_mul(blocks) / count.max(1);
                (first + block) % workers
            }
        }
    }
}

/// The worker running the fewest tasks; among equals, the next in turn, so that networks
/// started one after another on an idle runtime spread over the workers.
pub(crate) fn least_loaded_worker() -> usize {
    let pool = pool();
    let workers = pool.workers.len().max(1);
    let start = pool.next.fetch_add(1, Ordering::Relaxed);
    (0..workers)
        .map(|offset| (start + offset) % workers)
        .min_by_key(|&index| pool.workers.get(index).map_or(usize::MAX, |w| w.load()))
        .unwrap_or(0)
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
    let index = placement.worker(workers);
    let task = worker::Task::new(job, stack, span, cpu, index);
    pool.workers[index].adopt(task);
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

/// How long a thread with nothing to do keeps yielding its CPU and looking again before it
/// sleeps: a worker with no task ready, or a thread outside the network waiting for it (the
/// reader of an exported outport). Work that comes a moment later then costs no wake-up of a
/// sleeping thread, dear on a virtual machine whose idle CPU halts: one IP through an idle
/// 4-stage network took 20–23 µs with the reader sleeping at once, 3.7–4.1 µs with it
/// spinning first (ADR 0010).
const SPIN_BEFORE_SLEEPING: Duration = Duration::from_micros(50);

/// Yields the CPU and asks `ready` again until it says so, for [`SPIN_BEFORE_SLEEPING`] at
/// most and never past `deadline`; whether it said so.
pub(crate) fn spin_before_sleeping(
    deadline: Option<Instant>,
    mut ready: impl FnMut() -> bool,
) -> bool {
    let spin = Instant::now() + SPIN_BEFORE_SLEEPING;
    let until = deadline.map_or(spin, |deadline| deadline.min(spin));
    while Instant::now() < until {
        std::thread::yield_now();
        if ready() {
            return true;
        }
    }
    false
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

#[cfg(test)]
mod tests {
    use super::{MIN_TASKS_PER_WORKER, Placement};

    fn workers_of(count: usize, first: usize, workers: usize) -> Vec<usize> {
        (0..count)
            .map(|index| {
                Placement::Block {
                    index,
                    count,
                    first,
                }
                .worker(workers)
            })
            .collect()
    }

    #[test]
    fn a_small_network_stays_on_its_first_worker() {
        for count in [1, 4, 2 * MIN_TASKS_PER_WORKER - 1] {
            assert_eq!(workers_of(count, 3, 8), vec![3; count], "{count} tasks");
        }
    }

    #[test]
    fn a_large_network_is_cut_into_contiguous_blocks_from_its_first_worker() {
        let placed = workers_of(2 * MIN_TASKS_PER_WORKER, 1, 2);
        let mut expected = vec![1; MIN_TASKS_PER_WORKER];
        expected.extend(vec![0; MIN_TASKS_PER_WORKER]);
        assert_eq!(placed, expected);

        // Never more blocks than workers, each at least the minimum.
        let placed = workers_of(1000, 0, 4);
        assert!(placed.windows(2).all(|pair| pair[0] <= pair[1]));
        for worker in 0..4 {
            assert_eq!(placed.iter().filter(|&&w| w == worker).count(), 250);
        }
        let placed = workers_of(3 * MIN_TASKS_PER_WORKER, 0, 8);
        for worker in 0..3 {
            let block = placed.iter().filter(|&&w| w == worker).count();
            assert_eq!(block, MIN_TASKS_PER_WORKER, "worker {worker}");
        }
    }
}

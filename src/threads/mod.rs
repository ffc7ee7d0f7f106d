//! Every thread flowd starts, and the system's limits on them.
//!
//! flowd runs one thread per process (ADR 0001), plus helper threads: one per running network
//! to report its events, one per exported port, a few per external program. The system bounds
//! how many threads a program may have ([`limits`]), and going past some of those bounds does
//! not fail cleanly: Rust aborts the whole program when it cannot map a new thread's signal
//! stack. So threads start here, against a budget read from the system:
//!
//! - [`admit`] counts a whole network's processes at once, before any is instantiated,
//!   against the operator's maximum. Most processes run as tasks on the scheduler's worker
//!   threads (ADR 0010); [`reserve_threads`] makes room for those that need a thread of their
//!   own, and refuses the network with [`Refused`], naming the count and the limit, if they do
//!   not fit. Each admitted process holds a [`Permit`] until it ends.
//! - [`spawn`] starts a helper thread, or returns an error: never an abort.
//!
//! Reading the limits costs a pass over `/proc/self/maps`, so the budget keeps what it read as
//! credit, spends it on each thread, and reads the limits again when the credit runs out or is
//! older than [`CREDIT_LIFETIME`]. A thread that ends gives nothing back until the next
//! reading, which errs on the safe side.

pub(crate) mod limits;
mod pool;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a reading of the limits is trusted: other things (WebAssembly instances, files,
/// other programs' threads) take their share meanwhile, within the reserves of [`limits`].
pub(crate) const CREDIT_LIFETIME: Duration = Duration::from_millis(250);

/// Processes admitted and not yet ended, over every network of this program.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

static BUDGET: Mutex<Budget> = Mutex::new(Budget {
    credit: 0,
    read_at: None,
    bound: None,
});

/// Threads that may start before the limits are read again.
struct Budget {
    credit: usize,
    read_at: Option<Instant>,
    bound: Option<String>,
}

impl Budget {
    /// Takes credit for `threads` threads, reading the limits again if the credit is short or
    /// old; `Err` with the credit and its bound when even a fresh reading has no room.
    fn take(&mut self, threads: usize) -> Result<(), (usize, Option<String>)> {
        let fresh = self
            .read_at
            .is_some_and(|at| at.elapsed() < CREDIT_LIFETIME);
        if !fresh || self.credit < threads {
            let room = limits::room();
            self.credit = room.threads;
            self.bound = room.bound;
            self.read_at = Some(Instant::now());
        }
        if self.credit < threads {
            return Err((self.credit, self.bound.clone()));
        }
        self.credit -= threads;
        Ok(())
    }
}

fn budget() -> std::sync::MutexGuard<'static, Budget> {
    BUDGET.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why processes were not admitted: they would pass a limit on threads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot start {requested} processes: this runtime can run at most {limit} at once \
     ({running} running now), limited by {bound}"
)]
pub struct Refused {
    /// The processes asked for.
    pub requested: usize,
    /// The processes running when they were asked for.
    pub running: usize,
    /// How many processes could run at once, counting those running.
    pub limit: usize,
    /// The limit that decides, for an operator: a system setting with its value, or the
    /// operator's own maximum.
    pub bound: String,
}

/// One admitted process's share of the budget, given back when dropped (when the process
/// ends): a thread set aside for it, or room for a new one.
#[derive(Debug)]
pub(crate) struct Permit {
    worker: Option<pool::Worker>,
}

impl Permit {
    /// Takes the thread set aside for the process out of the permit, to start the process on;
    /// the permit stays with the process until it ends.
    pub(crate) fn take_thread(&mut self) -> ProcessThread {
        ProcessThread(self.worker.take())
    }
}

/// The thread an admitted process runs on: an idle one set aside at admission, or a new one.
#[derive(Debug)]
pub(crate) struct ProcessThread(Option<pool::Worker>);

impl ProcessThread {
    /// Runs `job`, the whole life of a process, on this thread.
    ///
    /// # Errors
    ///
    /// The operating system's error if it refuses a new thread.
    pub(crate) fn start(self, job: pool::Job) -> std::io::Result<()> {
        pool::run(job, self.0)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            pool::give_back(worker);
        }
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Admits `count` processes, unless they would pass `max_processes` (the operator's limit,
/// over every network). Processes run as tasks and need no thread of their own; those that do
/// get one with [`reserve_threads`].
///
/// # Errors
///
/// [`Refused`], with the count, the limit and what sets it; nothing is admitted then.
pub(crate) fn admit(count: usize, max_processes: Option<usize>) -> Result<Vec<Permit>, Refused> {
    let _budget = budget();
    let running = RUNNING.load(Ordering::SeqCst);
    if let Some(refused) = past_maximum(count, running, max_processes) {
        return Err(refused);
    }
    RUNNING.fetch_add(count, Ordering::SeqCst);
    Ok((0..count).map(|_| Permit { worker: None }).collect())
}

/// Admits one process, as [`admit`].
///
/// # Errors
///
/// As [`admit`].
pub(crate) fn admit_one(max_processes: Option<usize>) -> Result<Permit, Refused> {
    let mut permits = admit(1, max_processes)?;
    permits.pop().ok_or_else(|| Refused {
        requested: 1,
        running: running_processes(),
        limit: 0,
        bound: "the system".into(),
    })
}

/// Makes room for `count` processes that need a thread of their own, unless that would pass
/// a limit of the system: idle process threads are set aside for them first.
///
/// # Errors
///
/// [`Refused`], naming the count and the limit; no thread is set aside then.
pub(crate) fn reserve_threads(count: usize) -> Result<Threads, Refused> {
    if count == 0 {
        return Ok(Threads(Vec::new()));
    }
    let mut budget = budget();
    // The processes asked for are admitted already.
    let running = RUNNING.load(Ordering::SeqCst).saturating_sub(count);
    let idle = pool::take_idle(count);
    if let Err((credit, bound)) = budget.take(count - idle.len()) {
        let reusable = idle.len();
        idle.into_iter().for_each(pool::give_back);
        return Err(Refused {
            requested: count,
            running,
            limit: running.saturating_add(reusable).saturating_add(credit),
            bound: bound.unwrap_or_else(|| "the system".into()),
        });
    }
    Ok(Threads(idle))
}

/// Room made by [`reserve_threads`]: idle threads set aside, handed to permits one by one;
/// those not handed out go back when dropped.
#[derive(Debug)]
pub(crate) struct Threads(Vec<pool::Worker>);

impl Threads {
    /// Gives `permit` a thread of its own: an idle one set aside, or room for a new one.
    pub(crate) fn assign(&mut self, permit: &mut Permit) {
        permit.worker = self.0.pop();
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.0.drain(..).for_each(pool::give_back);
    }
}

/// The refusal of `count` more processes when `running` run and the operator's maximum is
/// `max_processes`, if they pass it.
fn past_maximum(count: usize, running: usize, max_processes: Option<usize>) -> Option<Refused> {
    let max = max_processes?;
    (running.saturating_add(count) > max).then(|| Refused {
        requested: count,
        running,
        limit: max,
        bound: format!("the operator's maximum of {max} processes (--max-processes)"),
    })
}

/// Processes admitted and not yet ended, over every network of this program.
pub fn running_processes() -> usize {
    RUNNING.load(Ordering::SeqCst)
}

/// Starts a helper thread called `name` running `f`, if the system has room for it.
///
/// # Errors
///
/// An error of kind [`std::io::ErrorKind::OutOfMemory`] naming the limit when there is no
/// room, or the system's error if it refuses the thread.
pub(crate) fn spawn<F, T>(name: &str, f: F) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    budget().take(1).map_err(|(_, bound)| {
        std::io::Error::new(
            std::io::ErrorKind::OutOfMemory,
            format!(
                "no room for another thread, limited by {}",
                bound.as_deref().unwrap_or("the system")
            ),
        )
    })?;
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(limits::STACK_SIZE)
        .spawn(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_maximum_counts_what_runs_already() {
        assert_eq!(past_maximum(8, 2, Some(10)), None);
        assert_eq!(past_maximum(8, 2, None), None);
        let refused = past_maximum(9, 2, Some(10)).expect("11 pass 10");
        assert_eq!(
            (refused.requested, refused.running, refused.limit),
            (9, 2, 10)
        );
        assert!(refused.to_string().contains("--max-processes"), "{refused}");
    }

    #[test]
    fn more_processes_than_the_system_has_room_for_are_refused_with_the_limit() {
        let room = limits::room();
        if room.bound.is_none() {
            return;
        }
        let too_many = room.threads.saturating_mul(2).max(room.threads + 1);
        let _permits = admit(too_many, None).expect("no operator's maximum");
        let refused = reserve_threads(too_many).expect_err("more than the room");
        assert_eq!(refused.requested, too_many);
        assert!(refused.limit < too_many, "{refused}");
        assert!(
            refused.to_string().contains(&too_many.to_string()),
            "{refused}"
        );
    }
}

//! Guest calls as wasmtime async calls, so that a guest that waits holds no thread.
//!
//! A guest runs on a wasmtime fiber. When it calls the host for something that may wait
//! (a receive, a send into a full connection, a sleep), the host does not wait on the fiber:
//! it hands the wait to [`drive`] through the process's [`Offload`] and suspends the fiber;
//! `drive` runs the wait on the process's own stack, where waiting suspends the process's
//! task (or parks its thread), then resumes the guest with the result.
//!
//! Why not wait on the fiber: a task switch there would leave the guest's wasmtime state
//! current on the worker thread while another task runs another guest. So while a guest
//! runs, the scheduler is pinned ([`crate::sched::pinned`]), and the few waits left on the
//! fiber (a full event queue) hold the worker for their moment instead.
//!
//! An epoch tick that finds the guest running yields the fiber as well: `drive` lets the other
//! tasks of the worker run, then resumes the guest where it was.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

type Job = Box<dyn FnOnce() + Send>;

/// How host calls hand their waits to [`drive`], shared by a guest's store and its driver.
#[derive(Clone)]
pub(crate) struct Offload(Arc<Shared>);

struct Shared {
    job: Mutex<Option<Job>>,
    /// The engine's epoch ticks so far.
    ticks: Arc<AtomicU64>,
    /// The tick at which the guest last resumed after giving its fiber up.
    resumed_at: AtomicU64,
}

impl Offload {
    /// An offload for a guest of the engine whose ticks `ticks` counts.
    pub(crate) fn new(ticks: Arc<AtomicU64>) -> Offload {
        Offload(Arc::new(Shared {
            job: Mutex::new(None),
            ticks,
            resumed_at: AtomicU64::new(u64::MAX),
        }))
    }

    /// Runs `work` off the guest's fiber, on the stack of the thread or task driving the
    /// call; `None` if the call was abandoned before `work` ran.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let result = Arc::new(Mutex::new(None));
        let sink = result.clone();
        *lock(&self.0.job) = Some(Box::new(move || {
            let value = work();
            *lock(&sink) = Some(value);
        }));
        SuspendOnce(false).await;
        lock(&result).take()
    }

    /// Whether no epoch tick has passed since the guest last resumed: an epoch callback
    /// then only reports ticks that passed while the guest was not running.
    pub(crate) fn just_resumed(&self) -> bool {
        self.0.resumed_at.load(Ordering::Relaxed) == self.0.ticks.load(Ordering::Relaxed)
    }

    fn take(&self) -> Option<Job> {
        lock(&self.0.job).take()
    }

    fn resuming(&self) {
        let now = self.0.ticks.load(Ordering::Relaxed);
        self.0.resumed_at.store(now, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pending once, then ready: gives the fiber up so that the driver runs the offloaded job.
struct SuspendOnce(bool);

impl Future for SuspendOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// Runs a guest call to its end: polls it (pinned, see the module docs), runs the waits its
/// host calls offload, and lets other tasks run when an epoch tick yields it.
pub(crate) fn drive<F: Future>(call: F, offload: &Offload) -> F::Output {
    let mut call = pin!(call);
    // Nothing wakes the call from outside: it is pending only when it gave its fiber up for
    // a job or a yield, and the loop resumes it right after.
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = crate::sched::pinned(|| call.as_mut().poll(&mut context)) {
            return output;
        }
        match offload.take() {
            Some(job) => job(),
            None => crate::sched::yield_now(),
        }
        offload.resuming();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offloaded_work_runs_in_the_driver_and_its_result_comes_back() {
        let offload = Offload::new(Arc::default());
        let driver = std::thread::current().id();
        let inner = offload.clone();
        let (ran_on, sum) = drive(
            async move {
                let ran_on = inner.run(|| std::thread::current().id()).await;
                let sum = inner.run(|| 2 + 3).await;
                (ran_on, sum)
            },
            &offload,
        );
        assert_eq!(ran_on, Some(driver));
        assert_eq!(sum, Some(5));
    }

    #[test]
    fn a_resume_counts_as_fresh_until_the_next_tick() {
        let ticks = Arc::new(AtomicU64::new(7));
        let offload = Offload::new(ticks.clone());
        assert!(!offload.just_resumed());
        offload.resuming();
        assert!(offload.just_resumed());
        ticks.fetch_add(1, Ordering::Relaxed);
        assert!(!offload.just_resumed());
    }
}

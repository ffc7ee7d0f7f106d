//! The CPU time of a process. A process on a thread of its own: its thread's CPU clock, from
//! when the process started on it (threads are reused) to when it ended, read from any thread
//! while it runs. A process that runs as a task: the time its worker spent running it, summed
//! by the worker over each stretch (reading a thread's CPU clock costs a system call, too much
//! for every switch; a worker is rarely descheduled while it runs a task).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A process's CPU time: its share of its thread's CPU clock, or its time on a worker.
#[derive(Default)]
pub(crate) struct ThreadCpu(Mutex<Span>, Arc<AtomicU64>);

#[derive(Default)]
enum Span {
    /// Not started, or the clock cannot be read here.
    #[default]
    Unknown,
    /// Running: the thread's clock, and its reading when the process started.
    Running { clock: Clock, at_start: Duration },
    /// Ended after using this much.
    Ended(Duration),
}

impl ThreadCpu {
    /// The process starts on the calling thread (a task's worker counts for it instead).
    pub(crate) fn start(&self) {
        if crate::sched::in_task() {
            return;
        }
        if let Some(clock) = Clock::of_this_thread()
            && let Some(at_start) = clock.read()
        {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Span::Running { clock, at_start };
        }
    }

    /// The process ends (on its thread, before the thread runs anything else).
    pub(crate) fn stop(&self) {
        let mut span = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let used = self.measure(&span);
        *span = Span::Ended(used);
    }

    /// The CPU time used so far.
    pub(crate) fn used(&self) -> Duration {
        self.measure(&self.0.lock().unwrap_or_else(|e| e.into_inner()))
            + Duration::from_nanos(self.1.load(Ordering::Relaxed))
    }

    /// Where a worker adds the nanoseconds it ran the process as a task.
    pub(crate) fn task_time(&self) -> Arc<AtomicU64> {
        self.1.clone()
    }

    fn measure(&self, span: &Span) -> Duration {
        match span {
            Span::Unknown => Duration::ZERO,
            Span::Running { clock, at_start } => clock
                .read()
                .map_or(Duration::ZERO, |now| now.saturating_sub(*at_start)),
            Span::Ended(used) => *used,
        }
    }
}

/// A thread's CPU clock.
#[derive(Clone, Copy)]
struct Clock(#[cfg(target_os = "linux")] libc::clockid_t);

impl Clock {
    #[cfg(target_os = "linux")]
    fn of_this_thread() -> Option<Clock> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: pthread_self() is the calling thread; `clock` is a valid place to write.
        let status = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
        (status == 0).then_some(Clock(clock))
    }

    #[cfg(not(target_os = "linux"))]
    fn of_this_thread() -> Option<Clock> {
        None
    }

    #[cfg(target_os = "linux")]
    fn read(self) -> Option<Duration> {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec to write; a clock of a thread that has exited
        // gives an error, not undefined behaviour.
        let status = unsafe { libc::clock_gettime(self.0, &mut now) };
        (status == 0).then(|| {
            Duration::new(
                u64::try_from(now.tv_sec).unwrap_or(0),
                u32::try_from(now.tv_nsec).unwrap_or(0),
            )
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn read(self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_busy_process_counts_its_cpu_and_keeps_it_after_it_ends() {
        let cpu = std::sync::Arc::new(ThreadCpu::default());
        let measured = cpu.clone();
        std::thread::spawn(move || {
            measured.start();
            let until = std::time::Instant::now() + Duration::from_millis(30);
            let mut spins = 0u64;
            while std::time::Instant::now() < until {
                spins = std::hint::black_box(spins + 1);
            }
            measured.stop();
        })
        .join()
        .expect("the thread");
        let used = cpu.used();
        assert!(used > Duration::ZERO, "{used:?}");
        assert_eq!(cpu.used(), used, "fixed once ended");
    }
}

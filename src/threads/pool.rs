//! Process threads, kept for reuse.
//!
//! Every process runs on a thread of its own (ADR 0001). Creating and destroying a thread is
//! not free: its stack, and for a WebAssembly guest the signal stack wasmtime sets up, are
//! mapped and unmapped, and in a busy multi-threaded process each unmapping interrupts every
//! core to flush its TLB. So a thread whose process has ended waits [`KEEP_ALIVE`] for another
//! process before it exits; starting a network whose processes recently ended elsewhere costs
//! no thread creation at all.
//!
//! Admission ([`super::admit`]) takes idle threads off the list for the processes it admits,
//! so that what it counted as reusable is still there when the processes start.

use std::sync::Mutex;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

/// How long an idle process thread waits for another process before it exits.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// A process's whole life on its thread.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// An idle thread, taken off the idle list: it runs the next job sent to it.
#[derive(Debug)]
pub(crate) struct Worker(Sender<Job>);

/// Idle threads, each waiting on its own channel.
static IDLE: Mutex<Vec<Worker>> = Mutex::new(Vec::new());

fn idle_list() -> std::sync::MutexGuard<'static, Vec<Worker>> {
    IDLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes up to `max` idle threads off the list.
pub(super) fn take_idle(max: usize) -> Vec<Worker> {
    let mut idle = idle_list();
    let keep = idle.len().saturating_sub(max);
    idle.split_off(keep)
}

/// Puts a thread taken with [`take_idle`] and not used back on the list.
pub(super) fn give_back(worker: Worker) {
    idle_list().push(worker);
}

/// Runs `job` on `worker`, or on a new thread if there is none (or it has gone).
///
/// # Errors
///
/// The operating system's error if it refuses a new thread.
pub(crate) fn run(job: Job, worker: Option<Worker>) -> std::io::Result<()> {
    let job = match worker {
        // A worker taken off the idle list always receives what is sent to it (see `work`).
        Some(Worker(worker)) => match worker.send(job) {
            Ok(()) => return Ok(()),
            Err(returned) => returned.into_inner(),
        },
        None => job,
    };
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("flowd-process".into())
        .stack_size(super::limits::STACK_SIZE)
        .spawn(move || work(job, tx, rx))?;
    Ok(())
}

fn work(first: Job, me: Sender<Job>, jobs: Receiver<Job>) {
    let mut job = first;
    loop {
        job();
        idle_list().push(Worker(me.clone()));
        job = match jobs.recv_timeout(KEEP_ALIVE) {
            Ok(next) => next,
            Err(_) => {
                let mut idle = idle_list();
                match idle.iter().position(|w| w.0.same_channel(&me)) {
                    Some(at) => {
                        idle.swap_remove(at);
                        return;
                    }
                    // Someone took this worker off the list just now: a job is on its way.
                    None => {
                        drop(idle);
                        match jobs.recv() {
                            Ok(next) => next,
                            Err(_) => return,
                        }
                    }
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_reused() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let tx = tx.clone();
            let worker = take_idle(1).pop();
            run(
                Box::new(move || {
                    let _ = tx.send(std::thread::current().id());
                }),
                worker,
            )
            .unwrap();
            seen.insert(rx.recv().unwrap());
            // Let the thread go back to the idle list (other tests may take it meanwhile).
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(seen.len() < 20, "no thread was reused");
    }
}

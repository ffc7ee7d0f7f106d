//! Process threads, kept for reuse.
//!
//! Every process runs on a thread of its own (ADR 0001). Creating and destroying a thread is
//! not free: its stack, and for a WebAssembly guest the signal stack wasmtime sets up, are
//! mapped and unmapped, and in a busy multi-threaded process each unmapping interrupts every
//! core to flush its TLB. So a thread whose process has ended waits [`KEEP_ALIVE`] for another
//! process before it exits; starting a network whose processes recently ended elsewhere costs
//! no thread creation at all.

use std::sync::Mutex;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

/// How long an idle process thread waits for another process before it exits.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Idle threads, each waiting on its own channel.
static IDLE: Mutex<Vec<Sender<Job>>> = Mutex::new(Vec::new());

/// Runs `job` on an idle process thread, or on a new one.
///
/// # Errors
///
/// The operating system's error if it refuses a new thread.
pub(crate) fn spawn(job: Job) -> std::io::Result<()> {
    let mut job = job;
    loop {
        let idle = IDLE.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let Some(worker) = idle else {
            break;
        };
        // A worker taken off the idle list always receives what is sent to it (see `work`).
        match worker.send(job) {
            Ok(()) => return Ok(()),
            Err(returned) => job = returned.into_inner(),
        }
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("flowd-process".into())
        .spawn(move || work(job, tx, rx))?;
    Ok(())
}

fn work(first: Job, me: Sender<Job>, jobs: Receiver<Job>) {
    let mut job = first;
    loop {
        job();
        IDLE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(me.clone());
        job = match jobs.recv_timeout(KEEP_ALIVE) {
            Ok(next) => next,
            Err(_) => {
                let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
                match idle.iter().position(|s| s.same_channel(&me)) {
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
            spawn(Box::new(move || {
                let _ = tx.send(std::thread::current().id());
            }))
            .unwrap();
            seen.insert(rx.recv().unwrap());
            // Let the thread go back to the idle list (other tests may take it meanwhile).
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(seen.len() < 20, "no thread was reused");
    }
}

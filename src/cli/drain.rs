//! Following a network from the command line to its end, and ending it gracefully on a
//! signal: the first SIGINT or SIGTERM lets what is in flight finish (graph inports closed)
//! for up to `--drain-timeout`, then stops what is left; a second one stops at once.

use std::io::Write;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};

use crate::cluster::PlacedRun;
use crate::engine::Event;

/// Each SIGINT and SIGTERM the process gets, from now on, as a message on the channel.
///
/// # Errors
///
/// When the signal handlers or their thread cannot be set up.
pub(super) fn signals() -> anyhow::Result<Receiver<()>> {
    let (sender, signals) = crossbeam_channel::unbounded();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The handlers are in place before this returns: no signal in between is missed.
    let mut handlers = runtime.block_on(async { SignalHandlers::new() })?;
    std::thread::Builder::new()
        .name("flowd-signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                while handlers.next().await {
                    if sender.send(()).is_err() {
                        return;
                    }
                }
            });
        })?;
    Ok(signals)
}

/// SIGINT and SIGTERM, listened for.
pub(super) struct SignalHandlers {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl SignalHandlers {
    /// Installs the handlers (within a tokio runtime): the signals no longer end the process
    /// by themselves.
    pub(super) fn new() -> std::io::Result<SignalHandlers> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(SignalHandlers {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(SignalHandlers {})
    }

    /// Waits for the next signal; false if none can come any more.
    pub(super) async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            tokio::select! {
                got = self.terminate.recv() => got.is_some(),
                got = self.interrupt.recv() => got.is_some(),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}

/// How a command-line run ends a network on a signal.
pub(super) struct Drain<'a> {
    /// The signals, as [`signals`] gives them.
    pub signals: &'a Receiver<()>,
    /// How long in-flight IPs may take to finish after the first signal.
    pub timeout: Duration,
    /// Stops the network.
    pub stop: &'a dyn Fn(),
}

/// Prints a network's output to stdout and its failures to stderr until its last event;
/// whether anything failed. A placed network's failures name the runtime they happened on.
/// A signal drains the network (see the module).
pub(super) fn follow_events(
    events: &Receiver<Event>,
    placed: Option<&PlacedRun>,
    drain: &Drain<'_>,
) -> bool {
    let stdout = std::io::stdout();
    let mut failed = false;
    let mut signalled = false;
    let mut deadline: Option<Instant> = None;
    loop {
        let timer = deadline.map_or_else(crossbeam_channel::never, crossbeam_channel::at);
        let event = select! {
            recv(events) -> event => match event {
                Ok(event) => event,
                Err(_) => return failed,
            },
            recv(drain.signals) -> _ => {
                if signalled {
                    eprintln!("flowd: stopping now");
                    (drain.stop)();
                    return failed;
                }
                signalled = true;
                eprintln!(
                    "flowd: draining: letting what is in flight finish for up to {} s (again \
                     to stop now)",
                    drain.timeout.as_secs_f64()
                );
                // A deadline past what the clock can hold is none: the drain waits.
                deadline = Instant::now().checked_add(drain.timeout);
                continue;
            },
            recv(timer) -> _ => {
                eprintln!(
                    "flowd: still running after {} s of draining: stopping",
                    drain.timeout.as_secs_f64()
                );
                (drain.stop)();
                deadline = None;
                continue;
            },
        };
        match event {
            Event::Output { message, .. } => {
                let mut out = stdout.lock();
                // A closed stdout (e.g. `| head`) must not fail the network.
                let _ = writeln!(out, "{message}");
            }
            Event::ProcessError { node, message } => {
                failed = true;
                match placed.and_then(|run| run.runtime_of(&node).filter(|r| *r != run.home())) {
                    Some(runtime) => {
                        eprintln!("flowd: process '{node}' (runtime '{runtime}') failed: {message}")
                    }
                    None => eprintln!("flowd: process '{node}' failed: {message}"),
                }
            }
            Event::Deadlock { message, .. } => {
                failed = true;
                eprintln!("flowd: {message}");
            }
            Event::RuntimeLost {
                message, resumes, ..
            } => {
                eprintln!("flowd: {message}");
                if !resumes {
                    failed = true;
                    placed.inspect(|run| run.stop());
                }
            }
            Event::RuntimeResumed { runtime } => {
                eprintln!("flowd: runtime '{runtime}' is back and runs its share again");
            }
            Event::Finished { uptime } | Event::Stopped { uptime } => {
                tracing::info!("network ended after {uptime:?}");
                return failed;
            }
            _ => {}
        }
    }
}

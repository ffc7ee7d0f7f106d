//! `core/Exec`: components in any language, as programs that read IPs on stdin and write IPs
//! on stdout.
//!
//! The process starts its program as a child, writes each IP from `in` to the child's stdin
//! and sends each frame the child writes to stdout on `out`. How IPs are cut into frames, and
//! what happens to brackets, is set per process ([`framing`]). Each line of stderr is reported
//! as output of the process (`network:output` for protocol clients), and the last lines are
//! quoted when the child fails.
//!
//! # Operating it
//!
//! - **Off by default.** A program runs with flowd's rights, so `core/Exec` runs only programs
//!   the operator allowed (`--allow-exec PATH`, a program or a directory of them). Without
//!   that, the process fails with an error naming the flag. Allowing an interpreter allows
//!   whatever script it is given.
//! - **A clean environment.** The child gets `PATH` and the variables of the `env` setting,
//!   nothing else of flowd's environment. Variables of the dynamic loader (`LD_*`, `DYLD_*`)
//!   are refused: they would make any allowed program load any code.
//! - **Bounded.** A child that does not read its stdin stops the process from taking IPs
//!   (backpressure upstream); frames read back are limited by `max_frame`.
//! - **Cleaned up.** When the network stops, the child's process group (the child and what it
//!   started) gets SIGTERM, then SIGKILL after a second if anything of it still holds the
//!   pipes; on Linux the child itself is also killed if flowd dies.
//! - **Restarts.** With `restart` set to `on-failure` or `always`, a child that ends while
//!   input is still coming is started again, after a pause growing from 100 ms to 5 s for
//!   failures, up to `max_restarts` failed runs in a row (a child that ends well but read
//!   nothing waits 100 ms too). IPs the child had not answered when it ended are lost. Output
//!   that is not frames of the chosen framing ends the process, restart or not.

mod child;
pub(crate) mod framing;
mod settings;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::native::try_send;
use super::{AllowList, Component, ComponentSpec, NodeInfo, PortSpec, Registry};
use crate::engine::{InPort, OutPort, ProcessContext, ProcessError, Received, ReceivedOr};
use child::{Child, ChildEvent, Launch, WRITE_BATCH, describe};
use settings::{Restart, Settings};

/// How many of the child's last stderr lines a failure quotes.
const STDERR_TAIL: usize = 5;

/// The pause before the first restart after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Registers `core/Exec`, running the programs `allowed` allows (none, by default).
pub fn register(registry: &Registry, allowed: AllowList) {
    let allowed = Arc::new(allowed);
    registry.register(
        spec(),
        Arc::new(move |_: &NodeInfo<'_>| {
            Ok(Box::new(Exec {
                allowed: allowed.clone(),
            }) as Box<dyn Component>)
        }),
    );
}

fn spec() -> ComponentSpec {
    ComponentSpec::new(
        "core/Exec",
        "Runs a program: IPs go to its stdin, its stdout comes back as IPs (needs --allow-exec)",
    )
    .icon("terminal")
    .inport(PortSpec::new(
        "in",
        "all",
        "IPs written to the program's stdin",
    ))
    .inport(
        PortSpec::new(
            "program",
            "string",
            "The program: a name looked up in PATH, or a path",
        )
        .required(),
    )
    .inport(PortSpec::new(
        "args",
        "array",
        "Its arguments: a JSON array of strings",
    ))
    .inport(PortSpec::new(
        "env",
        "object",
        "Its environment besides PATH: a JSON object of names to strings",
    ))
    .inport(PortSpec::new(
        "cwd",
        "string",
        "Its working directory (default: flowd's)",
    ))
    .inport(PortSpec::new(
        "framing",
        "string",
        "lines (default), length (4-byte big-endian length, then bytes) or netstring",
    ))
    .inport(PortSpec::new(
        "brackets",
        "all",
        "drop (default), or {\"open\": MARKER, \"close\": MARKER}: brackets travel as frames \
         starting with a marker, followed by the label",
    ))
    .inport(PortSpec::new(
        "restart",
        "string",
        "never (default), on-failure or always: when a child that ended is started again",
    ))
    .inport(PortSpec::new(
        "max_restarts",
        "int",
        "Failed runs in a row restarted before giving up (default 5)",
    ))
    .inport(PortSpec::new(
        "max_frame",
        "int",
        "The longest frame read from stdout, in bytes (default 16 MiB)",
    ))
    .outport(PortSpec::new(
        "out",
        "all",
        "The frames the program writes to stdout",
    ))
}

/// A `core/Exec` process.
struct Exec {
    allowed: Arc<AllowList>,
}

/// How one run of the child went.
struct Run {
    /// Its exit status, if it was seen.
    status: Option<std::process::ExitStatus>,
    /// Its last lines of stderr.
    stderr: VecDeque<String>,
    /// Whether it was given any IP.
    took_input: bool,
}

impl Component for Exec {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let settings = Settings::read(ctx)?;
        let launch = settings.launch(&self.allowed)?;
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        let mut input_ended = false;
        let mut failures = 0u32;
        loop {
            let run = run_once(ctx, &launch, &settings, input, output, &mut input_ended)?;
            let failed = run.status.is_none_or(|s| !s.success());
            let again = !input_ended
                && match settings.restart {
                    Restart::Never => false,
                    Restart::OnFailure => failed,
                    Restart::Always => true,
                };
            if !failed {
                failures = 0;
                if !again {
                    return Ok(());
                }
                // A program that ends at once without reading must not be restarted in a
                // tight loop.
                if !run.took_input {
                    ctx.sleep(FIRST_BACKOFF)?;
                }
                continue;
            }
            let how = format!(
                "'{}' {}{}",
                launch.name,
                run.status.map_or_else(|| "ended".to_string(), describe),
                quote(&run.stderr)
            );
            if !again {
                return Err(ProcessError::failed(how));
            }
            failures += 1;
            if failures > settings.max_restarts {
                return Err(ProcessError::failed(format!(
                    "{how}; giving up after {} failed runs in a row",
                    failures
                )));
            }
            let pause = FIRST_BACKOFF
                .saturating_mul(1 << (failures - 1).min(16))
                .min(MAX_BACKOFF);
            ctx.output(format!("{how}; restarting in {} ms", pause.as_millis()));
            ctx.sleep(pause)?;
        }
    }
}

/// Runs the child once: feeds it from `input` until that ends or the child stops reading, and
/// sends what it writes on `output`, until it has exited and closed its output.
fn run_once(
    ctx: &mut ProcessContext,
    launch: &Launch,
    settings: &Settings,
    input: InPort,
    output: OutPort,
    input_ended: &mut bool,
) -> Result<Run, ProcessError> {
    let wire = &settings.wire;
    let mut child = Child::spawn(launch, wire).map_err(|e| {
        ProcessError::failed(format!("cannot start '{}': {e}", launch.program.display()))
    })?;
    if *input_ended {
        child.close_stdin();
    }
    let mut stderr = VecDeque::with_capacity(STDERR_TAIL);
    let mut took_input = false;
    while !child.is_finished() {
        let accepting = !*input_ended && child.status().is_none() && child.can_write();
        let ports: &[InPort] = if accepting { &[input] } else { &[] };
        let event = match ctx.recv_any_or(ports, child.events())? {
            ReceivedOr::Port(Received::Ip(_, ip)) => {
                // What else has arrived goes along in the same batch: one hand-over, one wake-up.
                let mut batch = Vec::new();
                let mut next = Some(ip);
                while let Some(ip) = next {
                    if wire.carries(&ip) {
                        batch.push(ip);
                    }
                    next = if batch.len() < WRITE_BATCH {
                        ctx.try_recv(input)?
                    } else {
                        None
                    };
                }
                if !batch.is_empty() {
                    took_input = true;
                    child.write(batch);
                }
                continue;
            }
            ReceivedOr::Port(Received::Ended(_) | Received::AllEnded) => {
                *input_ended = true;
                child.close_stdin();
                continue;
            }
            ReceivedOr::Port(Received::Timeout) => continue,
            ReceivedOr::Channel(Some(event)) => event,
            // Every thread of the child has ended.
            ReceivedOr::Channel(None) => break,
        };
        child.observe(&event);
        match event {
            ChildEvent::Output(ips) => {
                for ip in ips {
                    // Once everything downstream has gone, the child's output is dropped.
                    try_send(ctx, output, ip)?;
                }
            }
            ChildEvent::Stderr(line) => {
                if stderr.len() == STDERR_TAIL {
                    stderr.pop_front();
                }
                stderr.push_back(line.clone());
                ctx.output(line);
            }
            ChildEvent::StdoutEnded(Some(error)) => {
                return Err(ProcessError::failed(format!(
                    "'{}' wrote output that is not {} frames: {error}",
                    launch.name,
                    wire.framing.name()
                )));
            }
            ChildEvent::StdinFailed(error) => {
                tracing::debug!("{}: stdin of '{}' closed: {error}", ctx.node(), launch.name);
                child.close_stdin();
            }
            ChildEvent::StdoutEnded(None)
            | ChildEvent::StderrEnded
            | ChildEvent::Written
            | ChildEvent::Exited(_) => {}
        }
    }
    Ok(Run {
        status: child.status(),
        stderr,
        took_input,
    })
}

/// `stderr` as the end of an error message.
fn quote(stderr: &VecDeque<String>) -> String {
    if stderr.is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = stderr.iter().map(String::as_str).collect();
    format!("; its last stderr: {}", lines.join(" | "))
}

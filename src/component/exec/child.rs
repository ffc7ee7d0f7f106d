//! One run of an external program: the child process and the threads that feed and read it.
//!
//! The process thread never blocks on a pipe. Four threads do that, and report on one bounded
//! channel of [`ChildEvent`]s, which the process waits on together with its inport:
//!
//! - the **writer** takes batches of IPs from a small bounded queue and writes them, framed,
//!   to stdin;
//! - the **reader** reads frames from stdout and sends them on in batches;
//! - the **stderr reader** sends each line of stderr;
//! - the **waiter** reports the exit status.
//!
//! So a child that does not read its stdin fills the pipe, then the writer's queue, and then
//! the process stops taking IPs from its inport: backpressure reaches upstream and memory stays
//! bounded. A child that writes faster than downstream takes blocks on its stdout the same way.
//!
//! The child leads a process group of its own. Dropping a [`Child`] that is still running
//! sends the group SIGTERM, then SIGKILL after a grace period, so that programs started by the
//! child (a shell's commands) end too.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{ChildStdin, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::framing::Wire;
use crate::ip::Ip;

/// Batches queued for the writer, beyond what the pipe holds; each holds at most
/// [`WRITE_BATCH`] IPs.
const WRITE_QUEUE: usize = 16;
pub(crate) const WRITE_BATCH: usize = 256;

/// Events queued for the process thread; each output batch is at most [`BATCH_BYTES`] (plus
/// one frame) and [`BATCH_FRAMES`].
const EVENT_QUEUE: usize = 16;
const BATCH_FRAMES: usize = 256;
const BATCH_BYTES: usize = 64 * 1024;

/// Longer stderr lines are cut to this many bytes.
const STDERR_LINE: usize = 4096;

/// How long a child has to end after SIGTERM before it gets SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(1);

/// What the threads of a child report.
#[derive(Debug)]
pub(crate) enum ChildEvent {
    /// Frames read from stdout, in order.
    Output(Vec<Ip>),
    /// Stdout ended: at its end (`None`) or on a frame that could not be read.
    StdoutEnded(Option<String>),
    /// A line written to stderr.
    Stderr(String),
    /// Stderr ended.
    StderrEnded,
    /// The writer wrote what it had; its queue has room.
    Written,
    /// Writing to stdin failed (usually: the child closed it); nothing more will be written.
    StdinFailed(String),
    /// The child exited.
    Exited(ExitStatus),
}

/// How to start the program.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The program, resolved and allowed.
    pub(crate) program: PathBuf,
    /// `argv[0]`: the name the program was given as.
    pub(crate) name: String,
    /// The arguments.
    pub(crate) args: Vec<String>,
    /// The whole environment of the child.
    pub(crate) env: Vec<(OsString, OsString)>,
    /// The working directory, if not flowd's.
    pub(crate) cwd: Option<PathBuf>,
}

/// A running child and its threads.
pub(crate) struct Child {
    pid: i32,
    stdin: Option<Sender<Vec<Ip>>>,
    events: Receiver<ChildEvent>,
    /// Its exit status, once seen.
    status: Option<ExitStatus>,
    stdout_open: bool,
    stderr_open: bool,
}

impl Child {
    /// Starts the program, with its pipes framed by `wire`.
    pub(crate) fn spawn(launch: &Launch, wire: &Wire) -> std::io::Result<Child> {
        let mut command = std::process::Command::new(&launch.program);
        command
            .arg0(&launch.name)
            .args(&launch.args)
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(cwd) = &launch.cwd {
            command.current_dir(cwd);
        }
        die_with_parent(&mut command);
        let mut child = command.spawn()?;
        let (Ok(pid), Some(stdin), Some(stdout), Some(stderr)) = (
            i32::try_from(child.id()),
            child.stdin.take(),
            child.stdout.take(),
            child.stderr.take(),
        ) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("the child's pipes were not set up"));
        };
        let (events_tx, events) = crossbeam_channel::bounded(EVENT_QUEUE);
        let (stdin_tx, stdin_rx) = crossbeam_channel::bounded(WRITE_QUEUE);
        let name = |role: &str| format!("exec-{pid}-{role}");
        let spawned = [
            {
                let (wire, events) = (wire.clone(), events_tx.clone());
                crate::threads::spawn(&name("stdin"), move || {
                    write_stdin(stdin, &wire, &stdin_rx, &events)
                })
            },
            {
                let (wire, events) = (wire.clone(), events_tx.clone());
                crate::threads::spawn(&name("stdout"), move || read_stdout(stdout, &wire, &events))
            },
            {
                let events = events_tx.clone();
                crate::threads::spawn(&name("stderr"), move || read_stderr(stderr, &events))
            },
            crate::threads::spawn(&name("wait"), move || {
                if let Ok(status) = child.wait() {
                    let _ = events_tx.send(ChildEvent::Exited(status));
                }
            }),
        ];
        let child = Child {
            pid,
            stdin: Some(stdin_tx),
            events,
            status: None,
            stdout_open: true,
            stderr_open: true,
        };
        // On failure, dropping `child` kills the program, which ends the threads that started.
        for thread in spawned {
            thread?;
        }
        Ok(child)
    }

    /// The channel the process waits on.
    pub(crate) fn events(&self) -> &Receiver<ChildEvent> {
        &self.events
    }

    /// Whether the writer can take a batch now.
    pub(crate) fn can_write(&self) -> bool {
        self.stdin.as_ref().is_some_and(|tx| !tx.is_full())
    }

    /// Queues `ips` (at most [`WRITE_BATCH`]) for stdin; they are dropped if stdin is closed.
    /// Callers check [`Child::can_write`] first, so the queue has room.
    pub(crate) fn write(&mut self, ips: Vec<Ip>) {
        if let Some(tx) = &self.stdin
            && let Err(TrySendError::Disconnected(_)) = tx.try_send(ips)
        {
            self.stdin = None;
        }
    }

    /// Closes stdin once the queued IPs are written.
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Takes note of what `event` says about the child's state.
    pub(crate) fn observe(&mut self, event: &ChildEvent) {
        match event {
            ChildEvent::Exited(status) => self.status = Some(*status),
            ChildEvent::StdoutEnded(_) => self.stdout_open = false,
            ChildEvent::StderrEnded => self.stderr_open = false,
            _ => {}
        }
    }

    /// Its exit status, once seen.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Whether it has exited and its output has ended: nothing of it is left.
    pub(crate) fn is_finished(&self) -> bool {
        self.status.is_some() && !self.stdout_open && !self.stderr_open
    }

    /// Sends `signal` to the child's process group.
    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with a negative pid signals that process group; it touches no memory.
        unsafe {
            libc::kill(-self.pid, signal);
        }
    }

    /// Waits until it is finished or `deadline` passes, discarding what it sends.
    fn wait_finished(&mut self, deadline: Instant) -> bool {
        while !self.is_finished() {
            match self.events.recv_deadline(deadline) {
                Ok(event) => self.observe(&event),
                // Every thread has ended: nothing is left either.
                Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
        true
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stdin = None;
        if self.is_finished() {
            return;
        }
        // To the group: when the child has exited already, what it started may hold its pipes.
        self.signal(libc::SIGTERM);
        if self.wait_finished(Instant::now() + STOP_GRACE) {
            return;
        }
        // The child, or what it started, outlived the grace. The group's id cannot have been
        // reused while a member of it holds the pipes.
        self.signal(libc::SIGKILL);
        if !self.wait_finished(Instant::now() + STOP_GRACE) {
            tracing::warn!("child {} and its group did not end after SIGKILL", self.pid);
        }
    }
}

/// Asks Linux to kill the child if flowd dies first, so children never outlive the runtime.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut std::process::Command) {
    // SAFETY: the closure runs between fork and exec and only makes one async-signal-safe
    // system call.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut std::process::Command) {}

/// The writer: frames queued IPs onto stdin, flushing whenever the queue runs dry; closing
/// stdin when the queue's sender is dropped.
fn write_stdin(
    stdin: ChildStdin,
    wire: &Wire,
    queue: &Receiver<Vec<Ip>>,
    events: &Sender<ChildEvent>,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, stdin);
    let result = (|| -> std::io::Result<()> {
        while let Ok(first) = queue.recv() {
            for ips in std::iter::once(first).chain(queue.try_iter()) {
                for ip in &ips {
                    wire.encode(ip, &mut out)?;
                }
            }
            out.flush()?;
            // The process may be waiting for room; a full event queue means it has news anyway.
            let _ = events.try_send(ChildEvent::Written);
        }
        out.flush()
    })();
    if let Err(error) = result {
        let _ = events.send(ChildEvent::StdinFailed(error.to_string()));
    }
}

/// The reader: decodes stdout into IPs, sent in batches.
fn read_stdout(stdout: std::process::ChildStdout, wire: &Wire, events: &Sender<ChildEvent>) {
    let pipe = StdoutPipe {
        stdout,
        batch: Vec::new(),
        bytes: 0,
        events: events.clone(),
    };
    let mut input = BufReader::with_capacity(64 * 1024, pipe);
    // A panic here must still end stdout, or the process would wait for it forever.
    let end = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        loop {
            match wire.decode(&mut input) {
                Ok(Some(ip)) => {
                    if !input.get_mut().push(ip) {
                        return None;
                    }
                }
                Ok(None) => return Some(None),
                Err(error) => return Some(Some(error.to_string())),
            }
        }
    }))
    .unwrap_or_else(|_| Some(Some("flowd failed to read it".to_string())));
    let Some(end) = end else {
        return;
    };
    if input.get_mut().send() {
        let _ = events.send(ChildEvent::StdoutEnded(end));
    }
}

/// The child's stdout, with the IPs decoded from it so far. They are sent before any read of
/// the pipe, which may block: so a complete frame never waits for the next one, however the
/// child's writes are cut.
struct StdoutPipe {
    stdout: std::process::ChildStdout,
    batch: Vec<Ip>,
    bytes: usize,
    events: Sender<ChildEvent>,
}

impl StdoutPipe {
    /// Adds `ip` to the batch, sending it when full; false once the process has gone.
    fn push(&mut self, ip: Ip) -> bool {
        self.bytes += ip.payload().as_bytes().len();
        self.batch.push(ip);
        if self.batch.len() >= BATCH_FRAMES || self.bytes >= BATCH_BYTES {
            return self.send();
        }
        true
    }

    /// Sends the batch, if any; false once the process has gone.
    fn send(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        self.bytes = 0;
        self.events
            .send(ChildEvent::Output(std::mem::take(&mut self.batch)))
            .is_ok()
    }
}

impl Read for StdoutPipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.send() {
            return Err(std::io::Error::other("the process has gone"));
        }
        self.stdout.read(buf)
    }
}

/// The stderr reader: one event per line, cut to [`STDERR_LINE`] bytes.
fn read_stderr(stderr: std::process::ChildStderr, events: &Sender<ChildEvent>) {
    let mut input = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Reads the whole line even when it is cut, so that the rest is not a line of its own.
        match Read::by_ref(&mut input)
            .take(STDERR_LINE as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') && skip_line(&mut input) {
            line.extend_from_slice("…".as_bytes());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if events.send(ChildEvent::Stderr(text)).is_err() {
            return;
        }
    }
    let _ = events.send(ChildEvent::StderrEnded);
}

/// Skips the rest of a line; whether there was anything to skip.
fn skip_line(input: &mut impl BufRead) -> bool {
    let mut skipped = false;
    loop {
        let (used, done) = match input.fill_buf() {
            Ok([]) | Err(_) => return skipped,
            Ok(buffer) => match buffer.iter().position(|b| *b == b'\n') {
                Some(at) => (at + 1, true),
                None => (buffer.len(), false),
            },
        };
        input.consume(used);
        skipped |= used > usize::from(done);
        if done {
            return skipped;
        }
    }
}

/// How a child ended, in words: `exited with status 3`, `was killed by signal 9`.
pub(crate) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended".to_string(),
    }
}

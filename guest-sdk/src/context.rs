//! [`Context`], [`InPort`], [`OutPort`] and the runtime services.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::raw::flowd::component::{ports, runtime, types};
use crate::{Batch, Error, Ip, Result};

/// Severity of a log line, for [`Context::log`] and the [`log!`](macro@crate::log) macros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation worth noting.
    Info,
    /// Something unexpected that the component handled.
    Warn,
    /// A failure.
    Error,
}

impl From<Level> for types::LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => types::LogLevel::Trace,
            Level::Debug => types::LogLevel::Debug,
            Level::Info => types::LogLevel::Info,
            Level::Warn => types::LogLevel::Warn,
            Level::Error => types::LogLevel::Error,
        }
    }
}

/// Writes a line to flowd's log, tagged with this process. The [`log!`](macro@crate::log),
/// [`info!`](crate::info) ... macros format and call this.
///
/// Off WebAssembly (in a component's unit tests on the host) it prints the line to standard
/// error instead, so that code which logs can be tested natively.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    runtime::log(level.into(), message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// The running process: opens ports, reads settings, logs, sleeps.
///
/// [`Component::run`](crate::Component::run) gets one. Ports opened from it are independent
/// values: keep them in local variables or in a struct.
pub struct Context {
    _private: (),
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn new() -> Self {
        Context { _private: () }
    }

    /// Opens the plain inport `name`. Fails with [`Error::UnknownPort`] if the component did not
    /// declare it (or declared it as an array port: use [`Context::inport_at`]).
    pub fn inport(&self, name: &str) -> Result<InPort> {
        InPort::open(name, None)
    }

    /// Opens index `index` of the array inport `name`.
    pub fn inport_at(&self, name: &str, index: u32) -> Result<InPort> {
        InPort::open(name, Some(index))
    }

    /// The connected indexes of the array inport `name`, in order.
    pub fn inport_indexes(&self, name: &str) -> Vec<u32> {
        ports::inport_indexes(name)
    }

    /// Opens every connected index of the array inport `name`, in index order.
    pub fn inports(&self, name: &str) -> Result<Vec<InPort>> {
        self.inport_indexes(name)
            .into_iter()
            .map(|i| self.inport_at(name, i))
            .collect()
    }

    /// Opens the plain outport `name`. An unconnected outport opens fine and drops what is sent
    /// to it; see [`OutPort::is_connected`].
    pub fn outport(&self, name: &str) -> Result<OutPort> {
        OutPort::open(name, None)
    }

    /// Opens index `index` of the array outport `name`.
    pub fn outport_at(&self, name: &str, index: u32) -> Result<OutPort> {
        OutPort::open(name, Some(index))
    }

    /// The connected indexes of the array outport `name`, in order.
    pub fn outport_indexes(&self, name: &str) -> Vec<u32> {
        ports::outport_indexes(name)
    }

    /// Opens every connected index of the array outport `name`, in index order.
    pub fn outports(&self, name: &str) -> Result<Vec<OutPort>> {
        self.outport_indexes(name)
            .into_iter()
            .map(|i| self.outport_at(name, i))
            .collect()
    }

    /// Waits until one of `ports` has an IP or reaches end of stream, serving them in turn; with
    /// a `timeout`, gives up after it (rounded up to whole milliseconds).
    ///
    /// The index in the result is the position in `ports`. Each port's end is reported once, as
    /// [`Received::Ended`]; when all have ended, [`Received::AllEnded`].
    ///
    /// ```no_run
    /// # use flowd_guest::{Context, Received, Result};
    /// # fn run(ctx: &mut Context) -> Result<()> {
    /// let (data, control) = (ctx.inport("in")?, ctx.inport("reset")?);
    /// loop {
    ///     match ctx.recv_any(&[&data, &control], None)? {
    ///         Received::Ip(0, ip) => { /* data */ }
    ///         Received::Ip(_, _) => { /* reset */ }
    ///         Received::Ended(_) => {}
    ///         Received::AllEnded | Received::Timeout => break,
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn recv_any(&self, ports: &[&InPort], timeout: Option<Duration>) -> Result<Received> {
        let raw: Vec<&ports::Inport> = ports.iter().map(|p| &p.raw).collect();
        let timeout_ms = timeout.map(duration_to_ms);
        Ok(match ports::recv_any(&raw, timeout_ms)? {
            types::Received::Ip((i, ip)) => Received::Ip(i as usize, ip),
            types::Received::Ended(i) => Received::Ended(i as usize),
            types::Received::AllEnded => Received::AllEnded,
            types::Received::Timeout => Received::Timeout,
        })
    }

    /// Reads a required setting: the first data IP of inport `port` (usually its IIP), as UTF-8
    /// text with surrounding whitespace trimmed, parsed with [`FromStr`].
    ///
    /// Fails with [`Error::MissingConfig`] if the port ends without a data IP, and with
    /// [`Error::BadConfig`] (naming the port, the value and the parse error) if it does not
    /// parse.
    ///
    /// ```no_run
    /// # use flowd_guest::{Context, Result};
    /// # fn run(ctx: &mut Context) -> Result<()> {
    /// let limit: u32 = ctx.read_config("limit")?;
    /// let factor = ctx.read_config_or("factor", 1.0f64)?;
    /// let name: Option<String> = ctx.read_config_opt("name")?;
    /// # Ok(()) }
    /// ```
    pub fn read_config<T>(&self, port: &str) -> Result<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.read_config_opt(port)?
            .ok_or_else(|| Error::MissingConfig {
                port: port.to_owned(),
            })
    }

    /// Reads an optional setting (see [`Context::read_config`]): `None` if the port ends without
    /// a data IP.
    pub fn read_config_opt<T>(&self, port: &str) -> Result<Option<T>>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.read_config_bytes(port)? {
            None => Ok(None),
            Some(bytes) => parse_setting(port, &bytes).map(Some),
        }
    }

    /// Reads a setting with a default for when the port ends without a data IP. A value that
    /// is given but does not parse is still an error.
    pub fn read_config_or<T>(&self, port: &str, default: T) -> Result<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        Ok(self.read_config_opt(port)?.unwrap_or(default))
    }

    /// Reads the raw bytes of a setting, untrimmed: `None` if the port ends without a data IP.
    pub fn read_config_bytes(&self, port: &str) -> Result<Option<Vec<u8>>> {
        Ok(ports::read_config(port)?)
    }

    /// Hands partly filled output batches to their connections now. The host does this by
    /// itself whenever the process waits; call it before a long computation.
    pub fn flush(&self) -> Result<()> {
        Ok(ports::flush()?)
    }

    /// The id of this process in its graph.
    pub fn node_id(&self) -> String {
        runtime::node_id()
    }

    /// Writes a line to flowd's log, tagged with this process.
    pub fn log(&self, level: Level, message: impl AsRef<str>) {
        log(level, message.as_ref());
    }

    /// Logs at [`Level::Trace`].
    pub fn log_trace(&self, message: impl AsRef<str>) {
        self.log(Level::Trace, message);
    }

    /// Logs at [`Level::Debug`].
    pub fn log_debug(&self, message: impl AsRef<str>) {
        self.log(Level::Debug, message);
    }

    /// Logs at [`Level::Info`].
    pub fn log_info(&self, message: impl AsRef<str>) {
        self.log(Level::Info, message);
    }

    /// Logs at [`Level::Warn`].
    pub fn log_warn(&self, message: impl AsRef<str>) {
        self.log(Level::Warn, message);
    }

    /// Logs at [`Level::Error`].
    pub fn log_error(&self, message: impl AsRef<str>) {
        self.log(Level::Error, message);
    }

    /// Reports a line of output for the user (like printing to standard output, but one call is
    /// one line, whatever it contains).
    pub fn output(&self, message: impl AsRef<str>) {
        runtime::output(message.as_ref());
    }

    /// Whether the network is stopping. Long computations should check now and then, or use
    /// [`Context::check_stopping`].
    pub fn is_stopping(&self) -> bool {
        runtime::is_stopping()
    }

    /// `Err(Error::Stopped)` if the network is stopping, so that `ctx.check_stopping()?` in a
    /// long loop ends the process quietly.
    pub fn check_stopping(&self) -> Result<()> {
        if self.is_stopping() {
            Err(Error::Stopped)
        } else {
            Ok(())
        }
    }

    /// Sleeps for `duration` (rounded up to whole milliseconds) after flushing outputs.
    /// Returns `Err(Error::Stopped)` early if the network stops, so `ctx.sleep(d)?` ends the
    /// process quietly.
    pub fn sleep(&self, duration: Duration) -> Result<()> {
        if runtime::sleep(duration_to_ms(duration)) {
            Ok(())
        } else {
            Err(Error::Stopped)
        }
    }
}

fn duration_to_ms(d: Duration) -> u32 {
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    u32::try_from(ms).unwrap_or(u32::MAX)
}

pub(crate) fn parse_setting<T>(port: &str, bytes: &[u8]) -> Result<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    let bad = |reason: String| Error::BadConfig {
        port: port.to_owned(),
        value: String::from_utf8_lossy(bytes).into_owned(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8 text: {e}")))?;
    text.trim().parse().map_err(|e: T::Err| bad(e.to_string()))
}

/// What [`Context::recv_any`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An IP arrived on the port at this position of the list given.
    Ip(usize, Ip),
    /// The port at this position has just reached end of stream (reported once per port).
    Ended(usize),
    /// Every port of the list has ended.
    AllEnded,
    /// The timeout passed first.
    Timeout,
}

/// An open inport (or one index of an array inport).
///
/// Receiving returns `Ok(None)` at end of stream, and `Err(Error::Stopped)` when the network
/// stops: let that propagate with `?`.
pub struct InPort {
    raw: ports::Inport,
    name: String,
    index: Option<u32>,
}

impl fmt::Debug for InPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InPort")
            .field("name", &self.name)
            .field("index", &self.index)
            .finish()
    }
}

impl InPort {
    fn open(name: &str, index: Option<u32>) -> Result<Self> {
        Ok(InPort {
            raw: ports::open_inport(name, index)?,
            name: name.to_owned(),
            index,
        })
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The index, for an array port.
    pub fn index(&self) -> Option<u32> {
        self.index
    }

    /// The next IP, waiting for it; `None` at end of stream.
    pub fn recv(&self) -> Result<Option<Ip>> {
        Ok(self.raw.recv()?)
    }

    /// The next IP if one is there now, without waiting.
    pub fn try_recv(&self) -> Result<Option<Ip>> {
        Ok(self.raw.try_recv()?)
    }

    /// Waits for at least one IP, then returns what is queued, up to `max` (at least 1).
    /// `None` at end of stream.
    ///
    /// Each IP of a `Vec<Ip>` costs an allocation when it crosses the boundary; for many small
    /// IPs, [`InPort::recv_packed`] is faster.
    pub fn recv_batch(&self, max: u32) -> Result<Option<Vec<Ip>>> {
        let ips = self.raw.recv_batch(max.max(1))?;
        Ok((!ips.is_empty()).then_some(ips))
    }

    /// As [`InPort::recv_batch`], in the packed encoding: three allocations per batch. `None` at
    /// end of stream.
    ///
    /// ```no_run
    /// # use flowd_guest::{Context, Result};
    /// # fn run(ctx: &mut Context) -> Result<()> {
    /// let (input, output) = (ctx.inport("in")?, ctx.outport("out")?);
    /// while let Some(mut batch) = input.recv_packed(256)? {
    ///     batch.for_each_data_mut(|d| d.make_ascii_uppercase());
    ///     output.send_packed(&batch)?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn recv_packed(&self, max: u32) -> Result<Option<Batch>> {
        let raw = self.raw.recv_packed(max.max(1))?;
        if raw.kinds.is_empty() {
            return Ok(None);
        }
        Batch::from_raw(raw).map(Some)
    }

    /// Whether the port has reached end of stream.
    pub fn is_ended(&self) -> bool {
        self.raw.is_ended()
    }

    /// An iterator over the IPs until end of stream, one [`InPort::recv`] each:
    /// `for ip in input.iter() { let ip = ip?; ... }`.
    pub fn iter(&self) -> Recv<'_> {
        Recv {
            port: self,
            done: false,
        }
    }
}

impl<'a> IntoIterator for &'a InPort {
    type Item = Result<Ip>;
    type IntoIter = Recv<'a>;

    fn into_iter(self) -> Recv<'a> {
        self.iter()
    }
}

/// Iterator over an inport's IPs, from [`InPort::iter`]. Yields `Err` once (for example
/// [`Error::Stopped`]) and then ends.
#[derive(Debug)]
pub struct Recv<'a> {
    port: &'a InPort,
    done: bool,
}

impl Iterator for Recv<'_> {
    type Item = Result<Ip>;

    fn next(&mut self) -> Option<Result<Ip>> {
        if self.done {
            return None;
        }
        let next = self.port.recv().transpose();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}

/// An open outport (or one index of an array outport).
///
/// Sending waits while a connection is full (backpressure). It fails with
/// [`Error::Closed`] once every connection has closed downstream and with [`Error::Stopped`]
/// when the network stops; both are quiet, so `?` is the right response.
pub struct OutPort {
    raw: ports::Outport,
    name: String,
    index: Option<u32>,
}

impl fmt::Debug for OutPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutPort")
            .field("name", &self.name)
            .field("index", &self.index)
            .finish()
    }
}

impl OutPort {
    fn open(name: &str, index: Option<u32>) -> Result<Self> {
        Ok(OutPort {
            raw: ports::open_outport(name, index)?,
            name: name.to_owned(),
            index,
        })
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The index, for an array port.
    pub fn index(&self) -> Option<u32> {
        self.index
    }

    /// Sends an IP to every connection of the port. Takes an `Ip` or an `&Ip` (to send the same
    /// IP to several ports without cloning).
    pub fn send(&self, ip: impl std::borrow::Borrow<Ip>) -> Result<()> {
        Ok(self.raw.send(ip.borrow())?)
    }

    /// Sends a data IP. Accepts `&str`, `String`, `&[u8]`, `Vec<u8>`.
    pub fn send_data(&self, payload: impl Into<Vec<u8>>) -> Result<()> {
        self.send(Ip::Data(payload.into()))
    }

    /// Sends an opening bracket (`""` for no label).
    pub fn send_open(&self, label: impl Into<Vec<u8>>) -> Result<()> {
        self.send(Ip::Open(label.into()))
    }

    /// Sends a closing bracket (`""` for no label).
    pub fn send_close(&self, label: impl Into<Vec<u8>>) -> Result<()> {
        self.send(Ip::Close(label.into()))
    }

    /// Sends many IPs, in order.
    pub fn send_batch(&self, ips: &[Ip]) -> Result<()> {
        if ips.is_empty() {
            return Ok(());
        }
        Ok(self.raw.send_batch(ips)?)
    }

    /// Sends a packed batch, in order. An empty batch sends nothing.
    pub fn send_packed(&self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        Ok(self.raw.send_packed(batch.as_raw())?)
    }

    /// Whether at least one connection is still open downstream. `false` for an unconnected
    /// port, which drops what is sent to it.
    pub fn is_connected(&self) -> bool {
        self.raw.is_connected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_trimmed_with_clear_errors() {
        assert_eq!(parse_setting::<u32>("n", b" 42\n").unwrap(), 42);
        assert_eq!(parse_setting::<String>("s", b" a b ").unwrap(), "a b");
        let err = parse_setting::<u32>("limit", b"many").unwrap_err();
        assert!(
            matches!(&err, Error::BadConfig { port, value, .. } if port == "limit" && value == "many")
        );
        assert!(err.to_string().contains("invalid digit"), "{err}");
        let err = parse_setting::<String>("s", &[0xff]).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }

    #[test]
    fn durations_round_up_to_milliseconds() {
        assert_eq!(duration_to_ms(Duration::ZERO), 0);
        assert_eq!(duration_to_ms(Duration::from_micros(1)), 1);
        assert_eq!(duration_to_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(duration_to_ms(Duration::from_micros(1500)), 2);
        assert_eq!(duration_to_ms(Duration::from_secs(u64::MAX)), u32::MAX);
    }
}

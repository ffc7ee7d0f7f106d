//! `net/TcpConnect` and `net/TcpListen`: TCP streams cut into frames, as `core/Exec` cuts a
//! program's output.
//!
//! Sockets here are plain blocking ones, each read by a thread of its own that hands frames to
//! the process through a bounded channel (a process that falls behind stops the reading, and
//! TCP's own window stops the peer). Writes happen on the process's thread, in steps short
//! enough that a network stop is never held up by a peer that does not read.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::wait_for;
use crate::component::exec::framing::{Brackets, Framing, Wire};
use crate::component::native::{NativeComponent, setting};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{InPort, ProcessContext, ProcessError, Received, ReceivedOr};
use crate::ip::{Ip, Payload};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one write may wait for a peer that does not read before the connection is given
/// up (net/TcpListen) or the process fails (net/TcpConnect).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Each blocked write wakes this often to see whether the network is stopping.
const WRITE_STEP: Duration = Duration::from_millis(100);

/// The longest frame read, and the size of each read in `bytes` framing.
const MAX_FRAME: usize = 16 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// Frames read and not yet taken by the process, at most, per process.
const QUEUED: usize = 256;

/// Connections open at once, at most, per listener; more are closed at once, and logged.
const MAX_CONNECTIONS: usize = 1024;

/// How the bytes of a stream are cut into IPs.
#[derive(Clone)]
enum Cut {
    /// As they come: each read is an IP, each IP is written as it is.
    Bytes,
    /// Frames of a `core/Exec` framing.
    Frames(Wire),
}

impl Cut {
    /// The framing set on `framing` (default `lines`).
    fn read(ctx: &mut ProcessContext) -> Result<Cut, ProcessError> {
        let name = match ctx.read_config("framing")? {
            Some(name) => setting::text("framing", name)?.trim().to_string(),
            None => "lines".to_string(),
        };
        if name == "bytes" {
            return Ok(Cut::Bytes);
        }
        let framing = Framing::named(&name).ok_or_else(|| {
            ProcessError::failed(format!(
                "inport 'framing': invalid value '{name}': expected bytes, lines, length or \
                 netstring"
            ))
        })?;
        Ok(Cut::Frames(Wire {
            framing,
            brackets: Brackets::Drop,
            max_frame: MAX_FRAME,
        }))
    }

    /// The bytes `payload` is sent as.
    fn encode(&self, payload: &Payload) -> io::Result<Vec<u8>> {
        match self {
            Cut::Bytes => Ok(payload.as_bytes().to_vec()),
            Cut::Frames(wire) => {
                let mut bytes = Vec::with_capacity(payload.len() + 8);
                wire.encode(&Ip::Data(payload.clone()), &mut bytes)?;
                Ok(bytes)
            }
        }
    }

    /// Reads `stream` to its end, handing each frame to `deliver` (which says whether to go
    /// on); the error, if the stream broke or held something that is not a frame.
    fn read_all(
        &self,
        stream: TcpStream,
        mut deliver: impl FnMut(Payload) -> bool,
    ) -> Option<String> {
        match self {
            Cut::Bytes => {
                let mut stream = stream;
                let mut buffer = vec![0; CHUNK];
                loop {
                    match stream.read(&mut buffer) {
                        Ok(0) => return None,
                        Ok(n) => {
                            if !deliver(Payload::copy_from_slice(&buffer[..n])) {
                                return None;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Some(e.to_string()),
                    }
                }
            }
            Cut::Frames(wire) => {
                let mut reader = BufReader::with_capacity(CHUNK, stream);
                loop {
                    match wire.decode(&mut reader) {
                        Ok(Some(ip)) => {
                            if !deliver(ip.into_payload()) {
                                return None;
                            }
                        }
                        Ok(None) => return None,
                        Err(e) => return Some(e.to_string()),
                    }
                }
            }
        }
    }
}

fn framing_port() -> PortSpec {
    PortSpec::new(
        "framing",
        "string",
        "How the stream is cut into packets: bytes, lines (default), length or netstring",
    )
}

fn address_port(description: &str) -> PortSpec {
    PortSpec::new("address", "string", description).required()
}

/// The text set on `address`.
fn read_address(ctx: &mut ProcessContext) -> Result<String, ProcessError> {
    match ctx.read_config("address")? {
        Some(address) => Ok(setting::text("address", address)?.trim().to_string()),
        None => Err(ProcessError::failed("inport 'address': no address given")),
    }
}

/// Writes all of `bytes` to `stream`, waking every `WRITE_STEP` to see whether the network is
/// stopping; gives up after `WRITE_TIMEOUT` without progress.
fn write_all(ctx: &ProcessContext, stream: &mut TcpStream, bytes: &[u8]) -> Result<(), String> {
    let mut written = 0;
    let mut progress = Instant::now();
    while written < bytes.len() {
        match stream.write(&bytes[written..]) {
            Ok(0) => return Err("the connection closed".into()),
            Ok(n) => {
                written += n;
                progress = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if ctx.is_stopping() {
                    return Err("the network is stopping".into());
                }
                if progress.elapsed() >= WRITE_TIMEOUT {
                    return Err(format!(
                        "the peer has not read for {} s",
                        WRITE_TIMEOUT.as_secs()
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Connects to the server at `address` and keeps one connection: each data IP on `in` is sent
/// as a frame (see `framing`), and each frame the server sends comes out of `out`.
///
/// The process ends when the server closes the connection (after `out` has everything it
/// sent), or, once `in` has ended, when the server closes its side. A server that cannot be
/// reached, breaks the connection, sends something that is not a frame, or does not read for
/// 30 s ends the process with an error naming it. Brackets are not sent.
#[derive(Default)]
pub struct TcpConnect;

impl NativeComponent for TcpConnect {
    fn spec() -> ComponentSpec {
        ComponentSpec::new(
            "net/TcpConnect",
            "Talks to a TCP server, one frame per packet",
        )
        .icon("plug")
        .inport(PortSpec::new("in", "all", "Packets to send"))
        .inport(address_port("The server (host:port)"))
        .inport(framing_port())
        .outport(PortSpec::new(
            "out",
            "all",
            "What the server sends, frame by frame",
        ))
    }
}

impl Component for TcpConnect {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let address = read_address(ctx)?;
        let cut = Cut::read(ctx)?;
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        let failed = |why: String| ProcessError::failed(format!("{address}: {why}"));
        let mut stream = connect(ctx, &address)?.map_err(failed)?;
        let _ = stream.set_nodelay(true);
        stream
            .set_write_timeout(Some(WRITE_STEP))
            .map_err(|e| failed(e.to_string()))?;
        let reading = stream.try_clone().map_err(|e| failed(e.to_string()))?;
        let (frames, from_reader) = crossbeam_channel::bounded::<Result<Payload, String>>(QUEUED);
        let reader_cut = cut.clone();
        let reader = std::thread::Builder::new()
            .name(format!("{}-read", ctx.node()))
            .spawn(move || {
                let error =
                    reader_cut.read_all(reading, |payload| frames.send(Ok(payload)).is_ok());
                if let Some(error) = error {
                    let _ = frames.send(Err(error));
                }
            })
            .map_err(|e| failed(format!("cannot start a thread: {e}")))?;
        let closing = Closing(stream.try_clone().map_err(|e| failed(e.to_string()))?);
        let mut ports: Vec<InPort> = vec![input];
        let result = loop {
            match ctx.recv_any_or(&ports, &from_reader)? {
                ReceivedOr::Port(Received::Ip(_, Ip::Data(payload))) => {
                    let bytes = cut.encode(&payload).map_err(|e| failed(e.to_string()))?;
                    write_all(ctx, &mut stream, &bytes).map_err(failed)?;
                }
                ReceivedOr::Port(Received::Ip(..)) => {}
                ReceivedOr::Port(_) => {
                    // Nothing more to send: say so, and read what the server still sends.
                    let _ = stream.shutdown(Shutdown::Write);
                    ports.clear();
                }
                ReceivedOr::Channel(Some(Ok(payload))) => ctx.send(output, Ip::Data(payload))?,
                ReceivedOr::Channel(Some(Err(error))) => break Err(failed(error)),
                ReceivedOr::Channel(None) => break Ok(()),
            }
        };
        drop(from_reader);
        drop(closing);
        let _ = reader.join();
        result
    }
}

/// A socket that is shut down when dropped, which wakes the thread reading it (a clone of the
/// socket), however the process ends.
struct Closing(TcpStream);

impl Drop for Closing {
    fn drop(&mut self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// A connection to the first address of `address` that answers, made so that a network stop
/// ends the wait at once.
fn connect(
    ctx: &mut ProcessContext,
    address: &str,
) -> Result<Result<TcpStream, String>, ProcessError> {
    let target = address.to_string();
    wait_for(ctx, async move {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host(target.as_str())
            .await
            .map_err(|e| format!("{e} (expected host:port)"))?
            .collect();
        let mut last = "no address".to_string();
        for candidate in addresses {
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(candidate))
                .await
            {
                Ok(Ok(stream)) => {
                    let stream = stream.into_std().map_err(|e| e.to_string())?;
                    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                    return Ok(stream);
                }
                Ok(Err(e)) => last = format!("cannot connect: {e}"),
                Err(_) => last = format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            }
        }
        Err(last)
    })
}

/// Listens on `address` and serves every client at once: each frame a client sends comes out
/// of `out` as a substream labelled with the connection's id (`< c1`, frame, `> c1`), and a
/// substream on `in` labelled with an id sends its frames to that connection, so `out -> in`
/// through any component that keeps brackets is an echo server. The address bound (port 0
/// picks one) goes to `listening` once.
///
/// At most 1,024 connections are open at once (more are closed at once); a client that sends
/// something that is not a frame, or does not read for 30 s, is disconnected; each is logged.
/// Frames for a connection that has closed are dropped, as is a frame on `in` outside a
/// substream (logged). It serves until the network stops.
#[derive(Default)]
pub struct TcpListen;

impl NativeComponent for TcpListen {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("net/TcpListen", "Serves TCP clients, one frame per packet")
            .icon("server")
            .inport(PortSpec::new(
                "in",
                "all",
                "Replies: each substream labelled with a connection id goes to that connection",
            ))
            .inport(address_port("The address to listen on (host:port)"))
            .inport(framing_port())
            .outport(PortSpec::new(
                "out",
                "all",
                "Each frame received, in a substream labelled with its connection id",
            ))
            .outport(PortSpec::new(
                "listening",
                "string",
                "The address bound, once listening",
            ))
    }
}

/// What the threads of a listener tell its process.
enum Heard {
    Connected(String, Closing),
    Frame(String, Payload),
    Closed(String, Option<String>),
}

impl Component for TcpListen {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let address = read_address(ctx)?;
        let cut = Cut::read(ctx)?;
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        let listening = ctx.outport("listening")?;
        let cannot = |why: String| {
            ProcessError::failed(format!(
                "inport 'address': cannot listen on '{address}': {why}"
            ))
        };
        let listener = TcpListener::bind(&address).map_err(|e| cannot(e.to_string()))?;
        let bound = listener.local_addr().map_err(|e| cannot(e.to_string()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| cannot(e.to_string()))?;
        let (heard, from_threads) = crossbeam_channel::bounded::<Heard>(QUEUED);
        let done = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (done, cut) = (done.clone(), cut.clone());
            std::thread::Builder::new()
                .name(format!("{}-accept", ctx.node()))
                .spawn(move || accept(&listener, &cut, &heard, &done))
                .map_err(|e| cannot(format!("cannot start a thread: {e}")))?
        };
        ctx.send(listening, Ip::data(bound.to_string()))?;
        ctx.flush()?;
        let result = serve(ctx, input, output, &cut, &from_threads);
        done.store(true, Ordering::Relaxed);
        drop(from_threads);
        let _ = acceptor.join();
        result
    }
}

/// The process's side of a listener: frames out, replies in.
fn serve(
    ctx: &mut ProcessContext,
    input: InPort,
    output: crate::engine::OutPort,
    cut: &Cut,
    from_threads: &Receiver<Heard>,
) -> Result<(), ProcessError> {
    let mut open: HashMap<String, Closing> = HashMap::new();
    let mut ports = vec![input];
    // The connection the substream on `in` is for, and how deep it is.
    let mut replying: Option<(String, usize)> = None;
    loop {
        match ctx.recv_any_or(&ports, from_threads)? {
            ReceivedOr::Channel(Some(Heard::Connected(id, stream))) => {
                open.insert(id, stream);
            }
            ReceivedOr::Channel(Some(Heard::Frame(id, payload))) => {
                ctx.send(output, Ip::open(id.clone()))?;
                ctx.send(output, Ip::Data(payload))?;
                ctx.send(output, Ip::close(id))?;
            }
            ReceivedOr::Channel(Some(Heard::Closed(id, error))) => {
                if let Some(error) = error {
                    tracing::warn!(node = ctx.node(), "net/TcpListen: connection {id}: {error}");
                }
                open.remove(&id);
            }
            ReceivedOr::Port(Received::Ip(_, Ip::Open(label))) => {
                replying = match replying {
                    Some((id, depth)) => Some((id, depth + 1)),
                    None => Some((label.to_string_lossy().into_owned(), 1)),
                };
            }
            ReceivedOr::Port(Received::Ip(_, Ip::Close(_))) => {
                replying = replying.and_then(|(id, depth)| (depth > 1).then(|| (id, depth - 1)));
            }
            ReceivedOr::Port(Received::Ip(_, Ip::Data(payload))) => {
                let Some((id, _)) = &replying else {
                    tracing::warn!(
                        node = ctx.node(),
                        "net/TcpListen: a reply outside a substream naming its connection is dropped"
                    );
                    continue;
                };
                let Some(Closing(stream)) = open.get_mut(id) else {
                    continue;
                };
                let sent = cut
                    .encode(&payload)
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| write_all(ctx, stream, &bytes));
                if let Err(error) = sent {
                    if ctx.is_stopping() {
                        return Err(ProcessError::Stopped);
                    }
                    tracing::warn!(
                        node = ctx.node(),
                        "net/TcpListen: connection {id}: {error}; closing it"
                    );
                    open.remove(id);
                }
            }
            // No more replies: serving goes on, for clients that only send.
            ReceivedOr::Port(_) => ports.clear(),
            ReceivedOr::Channel(None) => return Ok(()),
        }
    }
}

/// Accepts connections until `done`, starting a reader thread for each.
fn accept(listener: &TcpListener, cut: &Cut, heard: &Sender<Heard>, done: &AtomicBool) {
    let mut serial = 0u64;
    let readers: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
    while !done.load(Ordering::Relaxed) {
        let (stream, remote) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => {
                tracing::warn!("net/TcpListen: cannot accept a connection: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if readers.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            tracing::warn!(
                "net/TcpListen: {MAX_CONNECTIONS} connections are open; closing the one from {remote}"
            );
            continue;
        }
        serial += 1;
        let id = format!("c{serial}");
        let prepared = stream.set_nonblocking(false).and_then(|()| {
            stream.set_nodelay(true)?;
            stream.set_write_timeout(Some(WRITE_STEP))?;
            stream.try_clone()
        });
        let Ok(reading) = prepared else {
            continue;
        };
        if heard
            .send(Heard::Connected(id.clone(), Closing(stream)))
            .is_err()
        {
            return;
        }
        let (heard, cut, counted) = (heard.clone(), cut.clone(), readers.clone());
        readers.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name(format!("tcp-{id}"))
            .spawn(move || {
                let error = cut.read_all(reading, |payload| {
                    heard.send(Heard::Frame(id.clone(), payload)).is_ok()
                });
                counted.fetch_sub(1, Ordering::Relaxed);
                let _ = heard.send(Heard::Closed(id, error));
            });
        if spawned.is_err() {
            readers.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!("net/TcpListen: cannot start a thread for the connection from {remote}");
        }
    }
}

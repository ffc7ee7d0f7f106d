//! Real message brokers for the connector tests: `nats-server` and `mosquitto`, from the
//! distribution's packages (installed by `.ci/run`), each started on a free loopback port and
//! killed when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A broker process listening on `address` (host:port).
pub struct Broker {
    child: Child,
    pub address: String,
    /// Keeps the broker's files (configuration, storage) for its life.
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `program` is: PATH, then the sbin directories Debian installs brokers to.
fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// A port free now on loopback (the broker binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `None` (the test is skipped, saying why) when `program` is missing outside CI; under CI
/// (`CI` set, as `.ci/run` does) a missing broker fails the test.
fn required(program: &str) -> Option<PathBuf> {
    let found = find(program);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is not installed (CI installs it: see .ci/run)"
        );
        eprintln!("skipped: {program} is not installed (apt-get install {program})");
    }
    found
}

/// Starts `command` and waits until `address` accepts connections.
fn start(mut command: Command, address: String, dir: tempfile::TempDir, name: &str) -> Broker {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let mut broker = Broker {
        child,
        address,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&broker.address).is_err() {
        if let Ok(Some(status)) = broker.child.try_wait() {
            panic!("{name} exited at start: {status}");
        }
        assert!(Instant::now() < deadline, "{name} did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker
}

/// A NATS server on a free loopback port, with JetStream, or `None` if none is installed
/// (outside CI).
pub fn nats() -> Option<Broker> {
    nats_with(&[])
}

/// As [`nats`], with `extra` arguments for the server (TLS, say).
pub fn nats_with(extra: &[&str]) -> Option<Broker> {
    let program = required("nats-server")?;
    let port = free_port();
    let dir = tempfile::tempdir().expect("a directory for the server");
    let mut command = Command::new(program);
    command.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"]);
    command.arg(dir.path()).args(extra);
    Some(start(
        command,
        format!("127.0.0.1:{port}"),
        dir,
        "nats-server",
    ))
}

/// A mosquitto MQTT broker on a free loopback port, or `None` if none is installed (outside
/// CI).
pub fn mosquitto() -> Option<Broker> {
    let program = required("mosquitto")?;
    let port = free_port();
    let dir = tempfile::tempdir().expect("a directory for the broker");
    let config = dir.path().join("mosquitto.conf");
    std::fs::write(
        &config,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .expect("a configuration");
    let mut command = Command::new(program);
    command.arg("-c").arg(&config);
    Some(start(
        command,
        format!("127.0.0.1:{port}"),
        dir,
        "mosquitto",
    ))
}

/// A NATS client speaking the text protocol over a plain socket: an independent peer for the
/// connector tests.
pub struct NatsPeer {
    reader: std::io::BufReader<TcpStream>,
    writer: TcpStream,
}

impl NatsPeer {
    pub fn connect(address: &str) -> NatsPeer {
        use std::io::BufRead;
        let stream = TcpStream::connect(address).expect("connects to nats-server");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a timeout");
        let writer = stream.try_clone().expect("a second handle");
        let mut reader = std::io::BufReader::new(stream);
        let mut info = String::new();
        reader.read_line(&mut info).expect("INFO");
        assert!(info.starts_with("INFO"), "{info}");
        let mut peer = NatsPeer { reader, writer };
        peer.write(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
        peer
    }

    fn write(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.writer.write_all(bytes).expect("writes to nats-server");
    }

    pub fn publish(&mut self, subject: &str, payload: &[u8]) {
        let mut frame = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.write(&frame);
    }

    pub fn subscribe(&mut self, subject: &str) {
        self.write(format!("SUB {subject} 1\r\n").as_bytes());
        self.sync();
    }

    /// Waits until the server has handled everything sent so far (PING, then its PONG).
    pub fn sync(&mut self) {
        self.write(b"PING\r\n");
        while self.next_line() != "PONG" {}
    }

    fn next_line(&mut self) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .expect("a line from nats-server");
        line.trim_end().to_string()
    }

    /// The payload of the next message (answering the server's PINGs meanwhile).
    pub fn next_message(&mut self) -> Vec<u8> {
        use std::io::Read;
        loop {
            let line = self.next_line();
            if line == "PING" {
                self.write(b"PONG\r\n");
                continue;
            }
            if let Some(header) = line.strip_prefix("MSG ") {
                let length: usize = header
                    .split_whitespace()
                    .last()
                    .and_then(|n| n.parse().ok())
                    .expect("a length");
                let mut payload = vec![0; length + 2];
                self.reader.read_exact(&mut payload).expect("a payload");
                payload.truncate(length);
                return payload;
            }
        }
    }
}

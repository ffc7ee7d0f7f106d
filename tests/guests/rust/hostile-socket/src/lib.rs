//! `hostile/Socket`: for each packet `tcp HOST:PORT`, `udp HOST:PORT`, `listen HOST:PORT` or
//! `lookup NAME`, tries it with `std::net` (`wasi:sockets` underneath) and reports `ok ...` or
//! `error: WHY` on `out`. A `tcp` connection that succeeds sends `hello` and reports what the
//! peer answers. Without a grant the sandbox must refuse each.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};

use flowd_guest::{Component, Context, Port, Result, Spec};

struct Socket;

fn attempt(what: &str, target: &str) -> std::io::Result<String> {
    match what {
        "tcp" => {
            let mut stream = TcpStream::connect(target)?;
            stream.write_all(b"hello\n")?;
            // The peer's answer may arrive in pieces: read the whole line.
            let mut answer = String::new();
            BufReader::new(stream.take(256)).read_line(&mut answer)?;
            Ok(format!("ok {}", answer.trim()))
        }
        "udp" => {
            let socket = UdpSocket::bind("0.0.0.0:0")?;
            socket.send_to(b"hello", target)?;
            Ok("ok sent".into())
        }
        "listen" => {
            let listener = TcpListener::bind(target)?;
            Ok(format!("ok {}", listener.local_addr()?))
        }
        "lookup" => {
            let found: Vec<_> = (target, 80).to_socket_addrs()?.collect();
            Ok(format!("ok {found:?}"))
        }
        other => Ok(format!("unknown {other}")),
    }
}

impl Component for Socket {
    fn describe() -> Spec {
        Spec::new(
            "hostile/Socket",
            "Tries the socket operation each packet names",
        )
        .inport(Port::new(
            "in",
            "string",
            "tcp|udp|listen HOST:PORT, or lookup NAME",
        ))
        .outport(Port::new("out", "string", "What came of it"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let (input, output) = (ctx.inport("in")?, ctx.outport("out")?);
        while let Some(ip) = input.recv()? {
            if !ip.is_data() {
                continue;
            }
            let text = String::from_utf8_lossy(ip.payload()).into_owned();
            let (what, target) = text.split_once(' ').unwrap_or((&text, ""));
            let report = attempt(what, target).unwrap_or_else(|e| format!("error: {e}"));
            output.send_data(report)?;
        }
        Ok(())
    }
}

flowd_guest::export!(Socket);

//! `flowd serve` as a child process, as a user starts it: killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `flowd serve` on a free loopback port.
pub struct Served {
    pub child: Child,
    /// The first line it printed on stdout (where it listens).
    pub line: String,
    /// Its WebSocket address.
    pub url: String,
}

impl Served {
    /// Starts `flowd serve` with `args`, keeping its state in `state`; returns once it listens.
    pub fn start(args: &[&str], state: &Path) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flowd"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state)
            .args(args)
            .env_remove("FLOWD_LOG")
            .env_remove("FLOWD_SECRET")
            .stdout(Stdio::piped())
            // Not read: a full pipe must never hold flowd up.
            .stderr(Stdio::null())
            .spawn()
            .expect("start flowd");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("flowd prints where it listens");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("ws://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Served { child, line, url }
    }

    /// Its resident memory, in KiB (0 if it cannot be read).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Whether it still runs.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The sandbox of a guest: limits, grants, and what the guest's WASI sees.
//!
//! A guest gets nothing by default: no files, no network, no environment variables, no wall
//! clock (it reads the Unix epoch, 1970-01-01T00:00:00Z; the monotonic clock works), standard
//! input closed, 64 MiB of memory, and at most 5 s of running without calling the host. Its
//! standard output and standard error are captured line by line as output of its process.
//! [`Grants`] add to this, per component or per node, from the operator's policy file or the
//! graph's node metadata.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use wasmtime::ResourceLimiter;

use super::capture::OutputCapture;
use super::net::{
    DEFAULT_NET_BODY_MIB, DEFAULT_NET_CONNECTIONS, DEFAULT_NET_TIMEOUT_MS, NetPolicy,
};

/// Memory a guest may use unless granted more.
pub const DEFAULT_MEMORY_MIB: u64 = 64;
/// How long a guest may run without calling the host unless granted more.
pub const DEFAULT_CPU_MS: u64 = 5_000;
/// How often running guests are checked (stop requests, the CPU limit).
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What a guest is allowed beyond the defaults. Every field is optional; later grants (a node's)
/// override earlier ones (its component's) field by field, and lists add up.
///
/// As JSON (in a policy file, or under `grants` in a node's metadata):
///
/// ```json
/// { "memory_mib": 128, "cpu_ms": 10000,
///   "dirs": [{"host": "/srv/data", "guest": "/data", "write": false}],
///   "env": ["LANG", "MODE=fast"], "wall_clock": true }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Memory limit in MiB.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Longest time in milliseconds the guest may run without calling the host.
    #[serde(default)]
    pub cpu_ms: Option<u64>,
    /// Host directories the guest may open.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Environment variables: `NAME` passes the runtime's value, `NAME=value` sets one.
    #[serde(default)]
    pub env: Vec<String>,
    /// Whether the guest reads the host's wall clock (the date and time); without it, the
    /// wall clock reads the Unix epoch.
    #[serde(default)]
    pub wall_clock: Option<bool>,
    /// Origins the guest may send HTTP requests to (`wasi:http`): `https://api.example.com`,
    /// `http://127.0.0.1:*`, `https://*.example.com:8443` (see [`super::net`]).
    #[serde(default)]
    pub http: Vec<String>,
    /// Addresses the guest's sockets may connect or send to (`wasi:sockets`): `host:port`,
    /// port `*` for any.
    #[serde(default)]
    pub connect: Vec<String>,
    /// Addresses the guest's sockets may listen on (`wasi:sockets`): `host:port`.
    #[serde(default)]
    pub listen: Vec<String>,
    /// How long, in milliseconds, an HTTP request may wait to connect, for its first byte, and
    /// between bytes (default 30,000).
    #[serde(default)]
    pub net_timeout_ms: Option<u64>,
    /// The largest HTTP body a guest may send or read, in MiB (default 16).
    #[serde(default)]
    pub net_body_mib: Option<u64>,
    /// HTTP requests the guest may have open at once (default 16).
    #[serde(default)]
    pub net_connections: Option<u64>,
}

/// A host directory made visible to a guest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the guest sees it (default: the same path).
    #[serde(default)]
    pub guest: Option<String>,
    /// Whether the guest may write (default: read only).
    #[serde(default)]
    pub write: bool,
}

impl Grants {
    /// These grants with `later` applied on top.
    pub fn merged(mut self, later: &Grants) -> Grants {
        self.memory_mib = later.memory_mib.or(self.memory_mib);
        self.cpu_ms = later.cpu_ms.or(self.cpu_ms);
        self.wall_clock = later.wall_clock.or(self.wall_clock);
        self.net_timeout_ms = later.net_timeout_ms.or(self.net_timeout_ms);
        self.net_body_mib = later.net_body_mib.or(self.net_body_mib);
        self.net_connections = later.net_connections.or(self.net_connections);
        self.dirs.extend(later.dirs.iter().cloned());
        self.env.extend(later.env.iter().cloned());
        self.http.extend(later.http.iter().cloned());
        self.connect.extend(later.connect.iter().cloned());
        self.listen.extend(later.listen.iter().cloned());
        self
    }

    /// What these grants let the guest of `node` reach on the network.
    ///
    /// # Errors
    ///
    /// A grant that is malformed, or names a host that cannot be looked up.
    pub(crate) fn net_policy(&self, node: &str) -> Result<NetPolicy, String> {
        NetPolicy::new(
            node,
            &self.http,
            &self.connect,
            &self.listen,
            (
                self.net_timeout_ms.unwrap_or(DEFAULT_NET_TIMEOUT_MS),
                self.net_body_mib.unwrap_or(DEFAULT_NET_BODY_MIB),
                self.net_connections.unwrap_or(DEFAULT_NET_CONNECTIONS),
            ),
        )
    }

    /// Whether nothing beyond the defaults is granted.
    pub fn is_empty(&self) -> bool {
        *self == Grants::default()
    }

    /// The memory limit in bytes.
    pub fn memory_bytes(&self) -> usize {
        let mib = self.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB);
        usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// Whether the guest may wait in the operating system (on files or the network): such a
    /// process gets a thread of its own, so that its waits do not hold a worker.
    pub fn blocks_in_os(&self) -> bool {
        !(self.dirs.is_empty()
            && self.http.is_empty()
            && self.connect.is_empty()
            && self.listen.is_empty())
    }

    /// The CPU limit.
    pub fn cpu_limit(&self) -> Duration {
        Duration::from_millis(self.cpu_ms.unwrap_or(DEFAULT_CPU_MS))
    }

    /// One line for logs and `flowd check`: what is granted beyond the defaults.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(mib) = self.memory_mib {
            parts.push(format!("memory {mib} MiB"));
        }
        if let Some(ms) = self.cpu_ms {
            parts.push(format!("cpu {ms} ms"));
        }
        for dir in &self.dirs {
            let mode = if dir.write { "rw" } else { "ro" };
            let guest = dir
                .guest
                .clone()
                .unwrap_or_else(|| dir.host.display().to_string());
            parts.push(format!("dir {} as {guest} ({mode})", dir.host.display()));
        }
        for env in &self.env {
            parts.push(format!("env {}", env.split('=').next().unwrap_or(env)));
        }
        if self.wall_clock == Some(true) {
            parts.push("wall clock".into());
        }
        for origin in &self.http {
            parts.push(format!("http {origin}"));
        }
        for address in &self.connect {
            parts.push(format!("connect {address}"));
        }
        for address in &self.listen {
            parts.push(format!("listen {address}"));
        }
        if parts.is_empty() {
            "nothing beyond the defaults".into()
        } else {
            parts.join(", ")
        }
    }

    /// The WASI context these grants allow, with standard output and error captured.
    pub(crate) fn wasi(
        &self,
        stdout: OutputCapture,
        stderr: OutputCapture,
        net: &Arc<NetPolicy>,
    ) -> Result<wasmtime_wasi::WasiCtx, String> {
        let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
        builder.stdout(stdout).stderr(stderr);
        // Sockets are on, and every address goes through the grants: a refusal is then logged
        // with what was tried, where switching sockets off would refuse silently.
        let policy = net.clone();
        builder
            .allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(net.allows_name_lookup(&self.connect))
            .socket_addr_check(move |addr, usage| {
                let allowed = policy.allows_socket(addr, usage);
                Box::pin(async move { allowed })
            });
        if self.wall_clock != Some(true) {
            builder.wall_clock(EpochClock);
        }
        for dir in &self.dirs {
            let perms = if dir.write {
                wasmtime_wasi::FsPerms::ReadWrite
            } else {
                wasmtime_wasi::FsPerms::ReadOnly
            };
            let guest = dir
                .guest
                .clone()
                .unwrap_or_else(|| dir.host.display().to_string());
            builder
                .preopened_dir(&dir.host, &guest, perms)
                .map_err(|e| format!("cannot grant directory {}: {e}", dir.host.display()))?;
        }
        for env in &self.env {
            match env.split_once('=') {
                Some((name, value)) => {
                    builder.env(name, value);
                }
                None => {
                    if let Ok(value) = std::env::var(env) {
                        builder.env(env, value);
                    }
                }
            }
        }
        Ok(builder.build())
    }
}

/// The wall clock of a guest not granted the real one: always the Unix epoch, so that the
/// date and time of the host stay private and a guest cannot tell when it runs.
struct EpochClock;

impl wasmtime_wasi::HostWallClock for EpochClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// Why the host stopped a guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Violation {
    /// The network is stopping.
    #[error("the network is stopping")]
    Stopped,
    /// The guest ran too long without calling the host.
    #[error("ran for more than {} ms without calling the host (its CPU limit); stopped", .0.as_millis())]
    Cpu(Duration),
    /// The guest asked for more memory than it may have.
    #[error("exceeded its memory limit of {limit} MiB (asked for {asked} MiB)")]
    Memory {
        /// The limit in MiB.
        limit: u64,
        /// What it asked for, in MiB.
        asked: u64,
    },
}

/// Enforces the memory limit; a refused growth traps with [`Violation::Memory`]. What the
/// guest has is added up in `in_use`, for the operator's metrics.
pub(crate) struct MemoryLimiter {
    limit: usize,
    in_use: Option<Arc<AtomicU64>>,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: usize, in_use: Option<Arc<AtomicU64>>) -> MemoryLimiter {
        MemoryLimiter { limit, in_use }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(wasmtime::Error::new(Violation::Memory {
                limit: (self.limit >> 20) as u64,
                asked: desired.div_ceil(1 << 20) as u64,
            }));
        }
        if let Some(in_use) = &self.in_use {
            in_use.fetch_add(desired.saturating_sub(current) as u64, Ordering::Relaxed);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Tracks whether a running guest calls the host, for the CPU limit.
pub(crate) struct Watchdog {
    /// Bumped by every host call.
    pub(crate) host_calls: u64,
    seen_calls: u64,
    idle_ticks: u64,
    max_idle_ticks: u64,
    limit: Duration,
}

impl Watchdog {
    pub(crate) fn new(limit: Duration) -> Watchdog {
        let ticks = limit.as_millis() / EPOCH_TICK.as_millis().max(1);
        Watchdog {
            host_calls: 0,
            seen_calls: 0,
            idle_ticks: 0,
            max_idle_ticks: u64::try_from(ticks).unwrap_or(u64::MAX).max(1),
            limit,
        }
    }

    /// Called on every epoch tick while the guest runs: decides whether it may go on.
    pub(crate) fn tick(&mut self, stopping: bool) -> Result<(), Violation> {
        if stopping {
            return Err(Violation::Stopped);
        }
        if self.host_calls != self.seen_calls {
            self.seen_calls = self.host_calls;
            self.idle_ticks = 0;
            return Ok(());
        }
        self.idle_ticks += 1;
        if self.idle_ticks > self.max_idle_ticks {
            return Err(Violation::Cpu(self.limit));
        }
        Ok(())
    }
}

/// Advances an engine's epoch every [`EPOCH_TICK`] on a thread of its own, until dropped.
pub(crate) struct Ticker {
    done: Arc<AtomicBool>,
    ticks: Arc<AtomicU64>,
}

impl Ticker {
    pub(crate) fn start(engine: wasmtime::Engine) -> Ticker {
        let done = Arc::new(AtomicBool::new(false));
        let ticks = Arc::new(AtomicU64::new(0));
        let (flag, count) = (done.clone(), ticks.clone());
        let spawned = std::thread::Builder::new()
            .name("flowd-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        if let Err(error) = spawned {
            tracing::error!("cannot start the epoch thread: {error}; guests cannot be preempted");
        }
        Ticker { done, ticks }
    }

    /// The ticks so far (wasmtime does not tell an engine's epoch).
    pub(crate) fn ticks(&self) -> Arc<AtomicU64> {
        self.ticks.clone()
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_grants_override_and_add() {
        let component = Grants {
            memory_mib: Some(128),
            env: vec!["A".into()],
            ..Grants::default()
        };
        let node = Grants {
            cpu_ms: Some(100),
            env: vec!["B=1".into()],
            ..Grants::default()
        };
        let merged = component.merged(&node);
        assert_eq!(merged.memory_mib, Some(128));
        assert_eq!(merged.cpu_ms, Some(100));
        assert_eq!(merged.env, vec!["A", "B=1"]);
        assert_eq!(
            merged.describe(),
            "memory 128 MiB, cpu 100 ms, env A, env B"
        );
    }

    #[test]
    fn the_watchdog_allows_a_guest_that_calls_the_host() {
        let mut dog = Watchdog::new(Duration::from_millis(30));
        for _ in 0..100 {
            dog.host_calls += 1;
            assert!(dog.tick(false).is_ok());
        }
        assert!(dog.tick(false).is_ok());
        assert!(dog.tick(false).is_ok());
        assert!(dog.tick(false).is_ok());
        assert_eq!(
            dog.tick(false),
            Err(Violation::Cpu(Duration::from_millis(30)))
        );
        assert_eq!(dog.tick(true), Err(Violation::Stopped));
    }

    #[test]
    fn unknown_grant_fields_are_refused() {
        let parsed: Result<Grants, _> = serde_json::from_str(r#"{"memory": 5}"#);
        assert!(parsed.is_err());
    }
}

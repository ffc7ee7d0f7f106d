//! The `flowd` command line: argument definitions and one function per command.
//!
//! Exit codes: 0 on success; 1 when a graph is invalid, a process fails or a command cannot do
//! its work; 2 for a usage error (reported by clap).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use crate::cluster::{Cluster, Member, NatsSecurity, PlacedRun};
use crate::component::Registry;
use crate::component::dylib;
use crate::component::wasm::{ComponentDir, WasmConfig, WasmHost};
use crate::component::{AllowList, exec};
use crate::engine::{Network, NetworkConfig};
use crate::graph::{self, Format, Graph};
use drain::{Drain, follow_events};

mod drain;
mod serve;
mod top;

pub use serve::{ServeArgs, ui_url};

/// The example graph served by `flowd` with no command (and by `flowd serve` without
/// `--graph`).
const EXAMPLE_GRAPH: &str = include_str!("../../examples/hello.fbp");

/// flowd: a Flow-Based Programming runtime.
///
/// Runs graphs of processes that exchange information packets over bounded connections.
/// Without a command, serves the FBP protocol (as `flowd serve`) with a bundled example graph.
#[derive(Debug, Parser)]
#[command(name = "flowd", version, about, long_about = None)]
pub struct Args {
    /// Log level: error, warn, info, debug, trace, or a tracing filter such as
    /// `flowd=debug`. Defaults to `warn`.
    #[arg(long, global = true, env = "FLOWD_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// How log lines are written to stderr: `text` for people, `json` (one object per line,
    /// a process's lines carrying its graph, node and component) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Register every WebAssembly component (`*.wasm`) in DIR; new and changed files are
    /// picked up while flowd runs. May be given several times.
    #[arg(long, global = true, value_name = "DIR")]
    pub components: Vec<PathBuf>,

    /// A JSON policy granting WebAssembly components more than the sandbox's defaults:
    /// `{"components": {"lib/Name": GRANTS}, "nodes": {"node-id": GRANTS}}`, where GRANTS is
    /// `{"memory_mib": 128, "cpu_ms": 10000, "dirs": [{"host": "/data", "write": false}],
    /// "env": ["LANG"], "wall_clock": true, "http": ["https://api.example.com"],
    /// "connect": ["127.0.0.1:4222"], "listen": ["127.0.0.1:9000"]}`.
    #[arg(long, global = true, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Where compiled WebAssembly is cached [default: $XDG_CACHE_HOME/flowd/wasm].
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compile WebAssembly components afresh instead of using the cache.
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// Pre-allocate room for up to N WebAssembly instances at once (wasmtime's pooling
    /// allocator): faster start of many WebAssembly processes; more would fail to start.
    #[arg(long, global = true, value_name = "N")]
    pub wasm_pool: Option<u32>,

    /// Load the native shared-object components at PATH (a file, or a directory of them).
    /// Such a library runs with flowd's full rights and a crash in it stops flowd: only for
    /// code you trust. May be given several times; without it no shared object is loaded.
    #[arg(long, global = true, value_name = "PATH")]
    pub allow_native: Vec<PathBuf>,

    /// Let `core/Exec` run the program at PATH (or the programs in a directory). A program
    /// runs with flowd's rights, and allowing an interpreter allows any script it is given.
    /// May be given several times; without it core/Exec runs nothing.
    #[arg(long, global = true, value_name = "PATH")]
    pub allow_exec: Vec<PathBuf>,

    /// Run at most N processes at once, over every network (one thread each). Without it,
    /// as many as the system has room for: a network that would pass the limit does not
    /// start, with an error naming both numbers.
    #[arg(long, global = true, value_name = "N")]
    pub max_processes: Option<usize>,

    /// Refuse graph files larger than BYTES (a `.fbp` or JSON graph is read whole).
    #[arg(long, global = true, value_name = "BYTES", default_value_t = graph::DEFAULT_MAX_FILE_BYTES)]
    pub max_graph_bytes: u64,

    /// Join a cluster of flowd runtimes through the NATS server at URL (`nats://host:port`;
    /// `nats://user:password@host:port` for credentials): `serve` runs the shares other
    /// runtimes place on it, `run` places a graph's processes on the runtimes their metadata
    /// (`"runtime": "NAME"`) names. Needs --name.
    #[arg(long, global = true, value_name = "URL", requires = "name")]
    pub nats: Option<String>,

    /// This runtime's name in the cluster (letters, digits, '-', '_'); with --nats.
    #[arg(long, global = true, value_name = "NAME", requires = "nats")]
    pub name: Option<String>,

    /// A NATS credentials file (user JWT and NKey seed, as `nsc` writes it); with --nats.
    #[arg(long, global = true, value_name = "FILE", requires = "nats")]
    pub nats_creds: Option<PathBuf>,

    /// PEM certificates of the authorities that sign the NATS server's certificate; makes TLS
    /// required. With --nats.
    #[arg(long, global = true, value_name = "FILE", requires = "nats")]
    pub nats_ca: Option<PathBuf>,

    /// This runtime's certificate (PEM), for a NATS server that verifies its clients; makes
    /// TLS required. With --nats and --nats-key.
    #[arg(long, global = true, value_name = "FILE", requires_all = ["nats", "nats_key"])]
    pub nats_cert: Option<PathBuf>,

    /// The key of --nats-cert (PEM).
    #[arg(long, global = true, value_name = "FILE", requires = "nats_cert")]
    pub nats_key: Option<PathBuf>,

    /// On SIGINT or SIGTERM, let what is in flight finish for up to SECS (graph inports
    /// closed), then stop (and, serving, autosave); a second signal stops at once.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30)]
    pub drain_timeout: u64,

    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the FBP Network Protocol over WebSocket, for noflo-ui and other clients.
    ///
    /// Prints one line on stdout once listening, with the address and the noflo-ui URL that
    /// opens this runtime. Drains and stops on SIGINT or SIGTERM (see --drain-timeout).
    Serve(Box<ServeArgs>),
    /// Run a graph (FBP JSON or .fbp) to completion.
    ///
    /// Output of components such as core/Output goes to stdout; process errors go to stderr.
    /// Exits with 1 if the graph is invalid or any process failed.
    Run {
        /// The graph file (`.fbp` for the text language, anything else FBP JSON).
        graph: PathBuf,
        /// Default capacity of an edge, in packets.
        #[arg(long, default_value_t = NetworkConfig::default().default_capacity)]
        capacity: usize,
        /// With --nats: a JSON object placing processes on runtimes, `{"process": "runtime"}`,
        /// which takes precedence over the processes' metadata.
        #[arg(long, value_name = "FILE", requires = "nats")]
        placement: Option<PathBuf>,
    },
    /// Show a running `flowd serve --metrics` live: its busiest processes and fullest edges.
    Top {
        /// Its operations listener: ADDR or http://ADDR, as `flowd serve` printed it.
        #[arg(default_value = "127.0.0.1:9090")]
        address: String,
        /// Seconds between views.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Print one view and exit.
        #[arg(long)]
        once: bool,
    },
    /// Check a graph against the registered components without running it.
    Check {
        /// The graph file.
        graph: PathBuf,
    },
    /// List the registered components and their ports.
    Components {
        /// Print the specs as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a graph in the other format.
    Convert {
        /// The graph file.
        graph: PathBuf,
        /// The format to print.
        #[arg(long, value_enum)]
        to: FormatArg,
    },
}

/// A graph format on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// FBP JSON, as noflo and noflo-ui use it.
    Json,
    /// The .fbp text language.
    Fbp,
}

/// Sets up `tracing` output on stderr from `--log`, `FLOWD_LOG` or `RUST_LOG`.
pub fn init_logging(args: &Args) {
    use std::io::IsTerminal;
    let wanted = args
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "warn".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&wanted).unwrap_or_else(|error| {
        eprintln!("flowd: ignoring the log filter '{wanted}' ({error}); using 'warn'");
        tracing_subscriber::EnvFilter::new("warn")
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// Runs the command the arguments name.
///
/// # Errors
///
/// Any failure that stops the command, with its context; printed by `main` with `{:#}`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let registry = Arc::new(Registry::with_core());
    let serving = matches!(args.command, None | Some(Command::Serve(_)));
    let watch = serving || matches!(args.command, Some(Command::Run { .. }));
    // Graphs from protocol clients must not grant their own guests rights.
    let _watchers = load_components(&args, &registry, watch, !serving)?;
    load_native(&args, &registry);
    exec::register(
        &registry,
        AllowList::allowing(args.allow_exec.iter().cloned()),
    );
    let limits = Limits {
        max_processes: args.max_processes,
        max_graph_bytes: args.max_graph_bytes,
    };
    let load = |path: &Path| -> anyhow::Result<Graph> {
        Ok(graph::load_limited(
            path,
            Format::from_path(path),
            limits.max_graph_bytes,
        )?)
    };
    let max_processes = limits.max_processes;
    let drain_timeout = Duration::from_secs(args.drain_timeout);
    let cluster = match (&args.nats, &args.name) {
        (Some(url), Some(name)) => {
            let security = NatsSecurity {
                credentials: args.nats_creds.clone(),
                ca: args.nats_ca.clone(),
                client_certificate: args.nats_cert.clone().zip(args.nats_key.clone()),
            };
            Some(Cluster::connect(url, name, &security).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
    // Serving a cluster: the shares other runtimes place here run while this one serves.
    let _member = match (&cluster, serving) {
        (Some(cluster), true) => Some(
            Member::start(
                cluster.clone(),
                registry.clone(),
                NetworkConfig {
                    max_processes,
                    ..NetworkConfig::default()
                },
            )
            .map_err(anyhow::Error::msg)?,
        ),
        _ => None,
    };
    match args.command {
        None => serve::serve(
            ServeArgs::default(),
            registry,
            limits,
            cluster,
            drain_timeout,
        ),
        Some(Command::Serve(serve_args)) => {
            serve::serve(*serve_args, registry, limits, cluster, drain_timeout)
        }
        Some(Command::Run {
            graph: path,
            capacity,
            placement,
        }) => {
            let mut graph = load(&path)?;
            // Log lines name the graph: by its file, if it has no name of its own.
            if graph.name().is_none()
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                graph.properties.insert("name".into(), stem.into());
            }
            let drain = (drain::signals()?, drain_timeout);
            // A placed graph is checked share by share, each by the runtime it runs on
            // (with the components that runtime has).
            if cluster.is_none() {
                validate(&graph, &registry, &path)?;
            }
            let config = NetworkConfig {
                default_capacity: capacity.max(1),
                max_processes,
                ..NetworkConfig::default()
            };
            match cluster {
                Some(cluster) => {
                    let placed = match placement {
                        Some(file) => read_placement(&file)?,
                        None => BTreeMap::new(),
                    };
                    run_placed(&cluster, &graph, &registry, config, &placed, &drain)
                }
                None => run_graph(&graph, &registry, config, &drain),
            }
        }
        Some(Command::Check { graph: path }) => {
            let graph = load(&path)?;
            validate(&graph, &registry, &path)?;
            for cycle in graph.unfed_cycles() {
                eprintln!(
                    "flowd: warning: {} {} in a cycle that nothing feeds (no IIP, exported \
                     inport or process outside it): unless a component in it sends unasked, \
                     the network will deadlock",
                    cycle
                        .iter()
                        .map(|id| format!("'{id}'"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if cycle.len() == 1 { "is" } else { "are" }
                );
            }
            println!(
                "{}: ok ({} processes, {} connections)",
                path.display(),
                graph.nodes.len(),
                graph.connections.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Top {
            address,
            interval,
            once,
        }) => {
            let interval = Duration::try_from_secs_f64(interval)
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_millis(100));
            top::top(&address, interval, once)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Components { json }) => {
            print_components(&registry, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Convert { graph, to }) => {
            let graph = load(&graph)?;
            let format = match to {
                FormatArg::Json => Format::Json,
                FormatArg::Fbp => Format::Fbp,
            };
            write_stdout(format.render(&graph).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Sets up the WebAssembly host and registers the components of every `--components` DIR;
/// files that fail to load are reported and skipped.
fn load_components(
    args: &Args,
    registry: &Arc<Registry>,
    watch: bool,
    trust_graph_grants: bool,
) -> anyhow::Result<Vec<ComponentDir>> {
    if args.components.is_empty() {
        return Ok(Vec::new());
    }
    let mut config = WasmConfig {
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir
                .clone()
                .or_else(WasmConfig::default_cache_dir)
        },
        trust_graph_grants,
        pooling: args.wasm_pool,
        ..WasmConfig::default()
    };
    if let Some(policy) = &args.policy {
        config.read_policy(policy).map_err(anyhow::Error::msg)?;
    }
    let host = WasmHost::new(config).map_err(anyhow::Error::msg)?;
    let mut watchers = Vec::new();
    for dir in &args.components {
        let report = if watch {
            let (watcher, report) =
                ComponentDir::watch(host.clone(), registry.clone(), dir, Duration::from_secs(1))
                    .map_err(anyhow::Error::msg)?;
            watchers.push(watcher);
            report
        } else {
            ComponentDir::load_once(host.clone(), registry.clone(), dir)
                .map_err(anyhow::Error::msg)?
        };
        for error in report.failed {
            eprintln!("flowd: warning: skipped {error}");
        }
        tracing::info!("{} components from {}", report.loaded.len(), dir.display());
    }
    Ok(watchers)
}

/// Loads the shared objects `--allow-native` names; failures are reported and skipped. Shared
/// objects lying in `--components` directories without permission are pointed out.
fn load_native(args: &Args, registry: &Registry) {
    let policy = AllowList::allowing(args.allow_native.iter().cloned());
    for path in dylib::shared_objects(&policy) {
        if let Err(error) = dylib::load(&path, &policy, registry) {
            eprintln!("flowd: warning: skipped {error}");
        }
    }
    for dir in &args.components {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let refused = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == dylib::EXTENSION))
            .filter(|p| !policy.allows(p))
            .count();
        if refused > 0 {
            eprintln!(
                "flowd: note: {} has {refused} shared object(s) that were not loaded: native \
                 components need --allow-native {} (they run with flowd's full rights)",
                dir.display(),
                dir.display()
            );
        }
    }
}

/// The runtime-wide limits set on the command line, for every command.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `--max-processes`.
    pub max_processes: Option<usize>,
    /// `--max-graph-bytes`.
    pub max_graph_bytes: u64,
}

/// Validates, listing every problem on its own line.
fn validate(graph: &Graph, registry: &Registry, path: &Path) -> anyhow::Result<()> {
    match graph.validate(registry) {
        Ok(()) => Ok(()),
        Err(graph::Error::Invalid(problems)) => {
            let lines: Vec<String> = problems.iter().map(|p| format!("\n  - {p}")).collect();
            anyhow::bail!("{}: invalid graph:{}", path.display(), lines.concat())
        }
        Err(other) => Err(other.into()),
    }
}

/// The signals and the drain timeout of a command-line run.
type Draining = (crossbeam_channel::Receiver<()>, Duration);

fn run_graph(
    graph: &Graph,
    registry: &Registry,
    config: NetworkConfig,
    drain: &Draining,
) -> anyhow::Result<ExitCode> {
    let config = NetworkConfig {
        external_ports: false,
        ..config
    };
    let network = Network::start(graph, registry, config).context("cannot start the network")?;
    let stop = || network.stop();
    let drain = Drain {
        signals: &drain.0,
        timeout: drain.1,
        stop: &stop,
    };
    let failed = follow_events(network.events(), None, &drain);
    // Every process has ended (the last event said so); dropping the handle releases the rest.
    drop(network);
    Ok(exit_code(failed))
}

fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Reads a placement file: a JSON object from process id to runtime name.
fn read_placement(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the placement {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: a placement is a JSON object from process to runtime name",
            path.display()
        )
    })
}

/// Runs `graph` over the runtimes of `cluster` from this one, printing every share's output
/// and errors as `run_graph` does for one network, the runtime in front.
fn run_placed(
    cluster: &Arc<Cluster>,
    graph: &Graph,
    registry: &Registry,
    config: NetworkConfig,
    placed: &BTreeMap<String, String>,
    drain: &Draining,
) -> anyhow::Result<ExitCode> {
    let config = NetworkConfig {
        external_ports: false,
        ..config
    };
    let run = PlacedRun::start(cluster, registry, graph, config, placed)
        .map_err(anyhow::Error::msg)
        .context("cannot run the placed graph")?;
    let stop = || run.stop();
    let drain = Drain {
        signals: &drain.0,
        timeout: drain.1,
        stop: &stop,
    };
    let failed = follow_events(run.events(), Some(&run), &drain);
    run.finish();
    Ok(exit_code(failed))
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

fn print_components(registry: &Registry, json: bool) -> anyhow::Result<()> {
    let specs = registry.specs();
    if json {
        let mut text = serde_json::to_string_pretty(&specs)?;
        text.push('\n');
        return write_stdout(text.as_bytes());
    }
    let mut text = String::new();
    for spec in specs {
        text.push_str(&format!(
            "{}  ({})\n    {}\n",
            spec.name, spec.icon, spec.description
        ));
        for (label, ports) in [("in ", &spec.inports), ("out", &spec.outports)] {
            for port in ports {
                let name = if port.array {
                    format!("{}[]", port.name)
                } else {
                    port.name.clone()
                };
                let required = if port.required { " (required)" } else { "" };
                text.push_str(&format!(
                    "    {label} {name:<12} {:<8} {}{required}\n",
                    port.datatype, port.description
                ));
            }
        }
        text.push('\n');
    }
    write_stdout(text.as_bytes())
}

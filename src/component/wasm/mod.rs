//! WebAssembly components: third-party code in any language, run sandboxed in wasmtime.
//!
//! A component implements the `flowd-component` world of `wit/component.wit`. [`WasmHost`]
//! holds one wasmtime `Engine` and `Linker` for the runtime: loading a file compiles it once
//! (the compiled code is cached on disk, so a second start of flowd does not compile again),
//! type-checks it against the world into an `InstancePre`, and calls its `describe` to learn
//! its spec. Each process then gets a fresh instance in a `Store` of its own, holding the
//! process's ports, its memory limit, its CPU watchdog and a WASI context that grants nothing
//! but what the operator allowed ([`sandbox`]).
//!
//! What can go wrong, and what flowd says:
//!
//! - loading: not a WebAssembly file, a core module instead of a component, a component of
//!   another world or missing an export, a `describe` that traps: [`LoadError`], and the file
//!   is not registered;
//! - running: a trap (panic, `unreachable`), more memory than allowed, running longer than the
//!   CPU limit without calling the host: a process error naming the node and the cause. The
//!   instance is discarded; the runtime and the other processes go on.
//!
//! A guest runs as its process's task does, on a wasmtime async fiber (`drive.rs`): a port
//! call that waits holds no thread, and is woken by `stop` like any process. At each epoch
//! tick (every 10 ms) a guest running its own code gives way to the other tasks of its worker,
//! and a stopping or runaway guest is interrupted. A guest granted files or the network may
//! wait in the operating system, so it gets a thread of its own.

mod bindings;
mod capture;
mod drive;
mod host;
mod library;
mod net;
pub mod sandbox;
mod stacks;

/// The decoder of packed IP batches from guests, for the fuzz targets in `fuzz/`.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn unpack_for_fuzzing(
    kinds: Vec<u8>,
    ends: Vec<u32>,
    data: Vec<u8>,
) -> Result<(Vec<crate::Ip>, Vec<u8>, Vec<u32>, Vec<u8>), String> {
    let ips = bindings::unpack(bindings::PackedIps { kinds, ends, data })
        .map_err(|e| format!("{e:?}"))?;
    let packed = bindings::pack(ips.clone());
    Ok((ips, packed.kinds, packed.ends, packed.data))
}

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, Store};

pub use library::{ComponentDir, LoadReport};
pub use sandbox::{DirGrant, Grants};

use self::bindings::{ComponentInfo, FlowdComponent, FlowdComponentPre};
use self::capture::OutputCapture;
use self::drive::{Offload, drive};
use self::host::HostState;
use self::sandbox::{MemoryLimiter, Ticker, Violation, Watchdog};
use super::{Component, ComponentFactory, ComponentSpec, NodeInfo, PortSpec};
use crate::engine::{ProcessContext, ProcessError};

/// Why a file could not be loaded as a component.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The bytes are not WebAssembly.
    #[error("{}: not a WebAssembly file (no \\0asm header)", path.display())]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// The file is a core module; flowd runs components.
    #[error(
        "{}: a WebAssembly core module, not a component (build for wasm32-wasip2, or wrap it with `wasm-tools component new`)",
        path.display()
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// wasmtime refused the component (malformed, or uses unsupported features).
    #[error("{}: invalid component: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// wasmtime's reason.
        message: String,
    },
    /// The component does not implement the `flowd:component` world.
    #[error(
        "{}: does not implement the flowd:component@0.1.0 world (flowd-component): {message}",
        path.display()
    )]
    WrongWorld {
        /// The file.
        path: PathBuf,
        /// What is missing or mismatched.
        message: String,
    },
    /// `describe` failed or described something unusable.
    #[error("{}: describe: {message}", path.display())]
    Describe {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The component claims a name it may not take (reserved, or another's).
    #[error("{}: {problem}", path.display())]
    Name {
        /// The file.
        path: PathBuf,
        /// Which name, and who holds it.
        problem: crate::component::NameError,
    },
}

/// How the WebAssembly host is set up. The defaults suit most uses.
#[derive(Debug, Clone, Default)]
pub struct WasmConfig {
    /// Where compiled code is cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Grants per component name (`library/Name`), from the operator's policy.
    pub component_grants: std::collections::HashMap<String, Grants>,
    /// Grants per process id, from the operator's policy.
    pub node_grants: std::collections::HashMap<String, Grants>,
    /// Whether `grants` in a node's graph metadata are honoured (they are for `flowd run`,
    /// where the operator wrote the graph).
    pub trust_graph_grants: bool,
    /// Use wasmtime's pooling allocator for up to this many instances at once (fast
    /// instantiation of many processes); `None` allocates on demand.
    pub pooling: Option<u32>,
}

impl WasmConfig {
    /// The default cache directory: `$XDG_CACHE_HOME/flowd/wasm` or `~/.cache/flowd/wasm`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("flowd").join("wasm"))
    }

    /// Reads a policy file: `{"components": {NAME: grants}, "nodes": {ID: grants}}`.
    ///
    /// # Errors
    ///
    /// A message naming the file and what is wrong.
    pub fn read_policy(&mut self, path: &Path) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Policy {
            #[serde(default)]
            components: std::collections::HashMap<String, Grants>,
            #[serde(default)]
            nodes: std::collections::HashMap<String, Grants>,
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let policy: Policy =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        self.component_grants.extend(policy.components);
        self.node_grants.extend(policy.nodes);
        Ok(())
    }
}

/// The WebAssembly host: one engine and linker for the runtime.
pub struct WasmHost {
    engine: Engine,
    linker: Linker<HostState>,
    config: WasmConfig,
    ticker: Ticker,
}

/// A component loaded from a file: compiled, type-checked and described.
pub struct LoadedComponent {
    /// Its spec, from `describe`.
    pub spec: ComponentSpec,
    /// The file it came from.
    pub path: PathBuf,
    pre: FlowdComponentPre<HostState>,
}

impl WasmHost {
    /// Creates the engine, the linker (WASI and the flowd interfaces) and the epoch ticker.
    ///
    /// # Errors
    ///
    /// A message if wasmtime cannot be set up (e.g. the cache directory is unusable).
    pub fn new(config: WasmConfig) -> Result<Arc<WasmHost>, String> {
        let mut wasm = Config::new();
        wasm.epoch_interruption(true).wasm_component_model(true);
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cache directory {}: {e}", dir.display()))?;
        }
        // The pooling allocator keeps its own stacks.
        if config.pooling.is_none() {
            wasm.async_stack_size(stacks::FIBER_STACK_SIZE)
                .with_host_stack(Arc::new(stacks::SlabStacks));
        }
        if let Some(instances) = config.pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(instances)
                .total_core_instances(instances.saturating_mul(4))
                .total_memories(instances.saturating_mul(2))
                .total_tables(instances.saturating_mul(2))
                .total_stacks(instances)
                .max_memory_size(1 << 30);
            wasm.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wasm).map_err(|e| format!("wasmtime: {e:#}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| format!("linking WASI: {e:#}"))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .map_err(|e| format!("linking wasi:http: {e:#}"))?;
        FlowdComponent::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| format!("linking the flowd interfaces: {e:#}"))?;
        let ticker = Ticker::start(engine.clone());
        Ok(Arc::new(WasmHost {
            engine,
            linker,
            config,
            ticker,
        }))
    }

    /// Loads a component file: checks it, compiles it (or takes it from the cache),
    /// type-checks it against the world and calls `describe`.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] saying which check failed and why.
    pub fn load(&self, path: &Path) -> Result<LoadedComponent, LoadError> {
        let read_error = |cause| LoadError::Read {
            path: path.to_path_buf(),
            cause,
        };
        let mut header = [0u8; 8];
        let header_len = {
            use std::io::Read;
            let mut file = std::fs::File::open(path).map_err(read_error)?;
            file.read(&mut header).map_err(read_error)?
        };
        check_header(path, &header[..header_len])?;
        let cached = self.cache_file(path);
        // A compiled copy keyed by the file's path, size and modification time: no need to
        // read, hash or compile the file again.
        if let Some(cached) = cached.as_ref().filter(|c| c.exists()) {
            // SAFETY: the cache directory belongs to the operator and holds only what this
            // host serialized; wasmtime also checks that the file suits this engine.
            match unsafe { wasmtime::component::Component::deserialize_file(&self.engine, cached) }
            {
                Ok(component) => return self.prepare(path, component),
                Err(error) => tracing::debug!("ignoring cached {}: {error:#}", cached.display()),
            }
        }
        let bytes = std::fs::read(path).map_err(read_error)?;
        let component = self.compile(path, &bytes)?;
        if let Some(cached) = cached {
            store_compiled(&component, &cached);
        }
        self.prepare(path, component)
    }

    /// Loads a component from bytes (without the disk cache); `path` names it in errors.
    ///
    /// # Errors
    ///
    /// As [`WasmHost::load`].
    pub fn load_bytes(&self, path: &Path, bytes: &[u8]) -> Result<LoadedComponent, LoadError> {
        check_header(path, bytes)?;
        let component = self.compile(path, bytes)?;
        self.prepare(path, component)
    }

    fn compile(
        &self,
        path: &Path,
        bytes: &[u8],
    ) -> Result<wasmtime::component::Component, LoadError> {
        wasmtime::component::Component::new(&self.engine, bytes).map_err(|e| LoadError::Invalid {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })
    }

    /// Where the compiled code of `path`, as it is now, is cached.
    fn cache_file(&self, path: &Path) -> Option<PathBuf> {
        use std::hash::{Hash, Hasher};
        let dir = self.config.cache_dir.as_ref()?;
        let meta = std::fs::metadata(path).ok()?;
        let modified = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        std::fs::canonicalize(path).ok()?.hash(&mut hasher);
        (meta.len(), modified.as_nanos()).hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        Some(dir.join(format!("{:016x}.cwasm", hasher.finish())))
    }

    /// Type-checks a compiled component against the world and asks for its spec.
    fn prepare(
        &self,
        path: &Path,
        component: wasmtime::component::Component,
    ) -> Result<LoadedComponent, LoadError> {
        let path = path.to_path_buf();
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(FlowdComponentPre::new)
            .map_err(|e| LoadError::WrongWorld {
                path: path.clone(),
                message: format!("{e:#}"),
            })?;
        let describe_error = |message: String| LoadError::Describe {
            path: path.clone(),
            message,
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (mut store, _, _) = self
            .store(ProcessContext::detached(&name), &Grants::default())
            .map_err(describe_error)?;
        let offload = store.data().offload.clone();
        let info = drive(
            async {
                let instance = pre.instantiate_async(&mut store).await?;
                instance.call_describe(&mut store).await
            },
            &offload,
        )
        .map_err(|e| describe_error(explain_trap(&e, None)))?;
        let spec = spec_from_info(info).map_err(describe_error)?;
        Ok(LoadedComponent { spec, path, pre })
    }

    /// The factory that makes a process of `loaded` for each node.
    pub fn factory(self: &Arc<Self>, loaded: Arc<LoadedComponent>) -> ComponentFactory {
        let host = self.clone();
        Arc::new(move |node: &NodeInfo<'_>| {
            let grants = host.grants_for(&loaded.spec.name, node)?;
            if !grants.is_empty() {
                tracing::info!(node = node.id, component = %loaded.spec.name, "granted {}", grants.describe());
            }
            Ok(Box::new(WasmProcess {
                host: host.clone(),
                loaded: loaded.clone(),
                grants,
            }) as Box<dyn Component>)
        })
    }

    /// What a process of `component` for `node` is granted: the policy for the component,
    /// then the policy for the node, then (if trusted) the node's `grants` metadata.
    ///
    /// # Errors
    ///
    /// A message if the node's `grants` metadata is malformed.
    pub fn grants_for(&self, component: &str, node: &NodeInfo<'_>) -> Result<Grants, String> {
        let mut grants = Grants::default();
        if let Some(g) = self.config.component_grants.get(component) {
            grants = grants.merged(g);
        }
        if let Some(g) = self.config.node_grants.get(node.id) {
            grants = grants.merged(g);
        }
        if let Some(value) = node.metadata.and_then(|m| m.get("grants")) {
            if !self.config.trust_graph_grants {
                return Err("the node asks for grants in its metadata, which this runtime does not honour; the operator grants through the policy file".into());
            }
            let from_graph: Grants = serde_json::from_value(value.clone())
                .map_err(|e| format!("metadata 'grants': {e}"))?;
            grants = grants.merged(&from_graph);
        }
        Ok(grants)
    }

    /// A store for one guest: its context, its sandbox and the watchdog.
    fn store(
        &self,
        ctx: ProcessContext,
        grants: &Grants,
    ) -> Result<(Store<HostState>, OutputCapture, OutputCapture), String> {
        let node = ctx.node().to_string();
        let sink = Some(ctx.output_sink());
        let stdout = OutputCapture::new(sink.clone(), &node, "stdout");
        let stderr = OutputCapture::new(sink, &node, "stderr");
        let net = Arc::new(grants.net_policy(&node)?);
        let wasi = grants.wasi(stdout.clone(), stderr.clone(), &net)?;
        let memory = ctx.memory_gauge();
        // A guest in a task gives its worker up at each tick it runs through; on a thread of
        // its own it has nobody to give way to.
        let yields = crate::sched::in_task();
        let state = HostState {
            ctx: Some(ctx),
            offload: Offload::new(self.ticker.ticks()),
            wasi,
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            net: net::NetHooks(net),
            table: wasmtime::component::ResourceTable::new(),
            limiter: MemoryLimiter::new(grants.memory_bytes(), memory),
            watchdog: Watchdog::new(grants.cpu_limit()),
            handles: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut store| {
            let state = store.data_mut();
            let stopping = state.ctx.as_ref().is_some_and(ProcessContext::is_stopping);
            // Ticks that passed while the guest waited for its worker are not its running time.
            if yields && !stopping && state.offload.just_resumed() {
                return Ok(wasmtime::UpdateDeadline::Continue(1));
            }
            match state.watchdog.tick(stopping) {
                Ok(()) if yields => Ok(wasmtime::UpdateDeadline::Yield(1)),
                Ok(()) => Ok(wasmtime::UpdateDeadline::Continue(1)),
                Err(violation) => Err(wasmtime::Error::new(violation)),
            }
        });
        Ok((store, stdout, stderr))
    }
}

/// Refuses what is not a component, saying what it is instead.
fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let path = path.to_path_buf();
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm { path });
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::CoreModule { path });
    }
    Ok(())
}

/// Writes compiled code to the cache (atomically: a temporary file, then a rename); a failure
/// only costs a compilation next time.
fn store_compiled(component: &wasmtime::component::Component, file: &Path) {
    let written = component
        .serialize()
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            let temp = file.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&temp, bytes)
                .and_then(|()| std::fs::rename(&temp, file))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&temp);
                    e.to_string()
                })
        });
    if let Err(error) = written {
        tracing::warn!("cannot cache compiled code in {}: {error}", file.display());
    }
}

/// One process of a WebAssembly component.
struct WasmProcess {
    host: Arc<WasmHost>,
    loaded: Arc<LoadedComponent>,
    grants: Grants,
}

impl Component for WasmProcess {
    /// A guest waits in the host, which suspends its task; only one granted files or the
    /// network may wait in the operating system, and gets a thread.
    fn needs_thread(&self) -> bool {
        self.grants.blocks_in_os()
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let (mut store, stdout, stderr) = self
            .host
            .store(ctx.take(), &self.grants)
            .map_err(ProcessError::Failed)?;
        let offload = store.data().offload.clone();
        let pre = &self.loaded.pre;
        // A panic in a host call must not take the process's ports down with the store.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drive(
                async {
                    let instance = pre.instantiate_async(&mut store).await?;
                    instance.call_run(&mut store).await
                },
                &offload,
            )
        }))
        .unwrap_or_else(|_| {
            Err(wasmtime::format_err!(
                "the host panicked serving this guest"
            ))
        });
        stdout.finish();
        stderr.finish();
        let state = store.into_data();
        let stopping = state.ctx.as_ref().is_none_or(ProcessContext::is_stopping);
        match state.ctx {
            Some(own) => *ctx = own,
            None => tracing::error!(
                node = ctx.node(),
                "the guest's call ended while its context was away"
            ),
        }
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(ProcessError::Failed(message)),
            Err(_) if stopping => Err(ProcessError::Stopped),
            Err(error) => match error.downcast_ref::<Violation>() {
                Some(Violation::Stopped) => Err(ProcessError::Stopped),
                _ => Err(ProcessError::Failed(explain_trap(
                    &error,
                    stderr.last_words(),
                ))),
            },
        }
    }
}

/// A one-line account of why a guest call failed.
fn explain_trap(error: &wasmtime::Error, last_words: Option<String>) -> String {
    if let Some(violation) = error.downcast_ref::<Violation>() {
        return violation.to_string();
    }
    let mut message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => format!("trapped: {trap}"),
        None => format!("failed: {}", error.root_cause()),
    };
    if let Some(words) = last_words {
        message.push_str(&format!("; its stderr ended with: {words}"));
    }
    message
}

/// Checks what `describe` returned and turns it into a spec.
fn spec_from_info(info: ComponentInfo) -> Result<ComponentSpec, String> {
    let name = info.name.trim();
    if name.is_empty() {
        return Err("the component has an empty name".into());
    }
    let name = if name.contains('/') {
        name.to_string()
    } else {
        format!("wasm/{name}")
    };
    let convert = |ports: Vec<bindings::flowd::component::types::PortInfo>| -> Vec<PortSpec> {
        ports
            .into_iter()
            .map(|p| PortSpec {
                name: p.name,
                datatype: if p.data_type.is_empty() {
                    "all".into()
                } else {
                    p.data_type
                },
                description: p.description,
                array: p.is_array,
                required: p.required,
            })
            .collect()
    };
    let spec = ComponentSpec {
        name,
        description: info.description,
        icon: if info.icon.is_empty() {
            "cube".into()
        } else {
            info.icon
        },
        subgraph: false,
        inports: convert(info.inports),
        outports: convert(info.outports),
    };
    spec.check_ports()?;
    Ok(spec)
}

//! Native shared-object components: the privileged escape hatch.
//!
//! A shared object exporting `flowd_component_v1` (see `guest-sdk/include/flowd.h`) describes
//! itself and runs with host functions, like a WebAssembly component, but without a sandbox:
//! **it runs with the runtime's rights, and a crash in it takes the runtime down.** So nothing
//! is loaded unless the operator names it: an [`AllowList`] holds the paths `--allow-native`
//! allows, and [`load`] refuses everything else. Protocol clients have no way to load one.
//!
//! A missing file, a library that is not a flowd component, a wrong ABI version or a malformed
//! description is refused with an error naming the file and the cause.

mod ffi;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    AllowList, Component, ComponentFactory, ComponentSpec, NodeInfo, Origin, PortSpec, Registry,
};
use crate::engine::{ProcessContext, ProcessError};
use ffi::{ABI_VERSION, ENTRY, HOST_API, HostProcess, RawComponent, RawPort, c_str};

/// The file names shared objects have on this platform.
pub const EXTENSION: &str = std::env::consts::DLL_EXTENSION;

/// Why a shared object was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum DylibError {
    /// The operator did not allow this path.
    #[error(
        "{}: native components are off; start flowd with --allow-native {} to load it (a \
         native library runs with flowd's full rights, and a crash in it stops flowd)",
        .0.display(), .0.display()
    )]
    NotAllowed(PathBuf),
    /// There is no such file.
    #[error("{}: no such file", .0.display())]
    Missing(PathBuf),
    /// The dynamic loader refused the file.
    #[error("{}: cannot load it as a shared object: {cause}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        cause: String,
    },
    /// The library has no `flowd_component_v1`.
    #[error(
        "{}: not a flowd component: it exports no `flowd_component_v1` (see \
         guest-sdk/include/flowd.h)", .0.display()
    )]
    MissingEntry(PathBuf),
    /// The library was built for another ABI version.
    #[error(
        "{}: built for flowd ABI version {found}, but this flowd speaks version {expected}",
        path.display()
    )]
    WrongAbi {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// Ours.
        expected: u32,
    },
    /// The description is unusable.
    #[error("{}: invalid component description: {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
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

/// Every shared object `allowed` names: allowed files, and the shared objects directly in
/// allowed directories, sorted.
pub fn shared_objects(allowed: &AllowList) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in allowed.paths() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(path) {
                files.extend(
                    entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|e| e == EXTENSION) && p.is_file()),
                );
            }
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    files
}

/// A loaded library and its component description.
struct Library {
    // Kept loaded for as long as any process may call into it.
    _library: libloading::Library,
    component: *const RawComponent,
}

// SAFETY: the description is immutable static data of the library, and the ABI requires `run`
// to be callable from any thread; the library stays loaded while this value lives.
unsafe impl Send for Library {}
// SAFETY: as above: shared access only reads the description.
unsafe impl Sync for Library {}

/// Loads the shared object at `path`, if `policy` allows it, and registers its component.
/// Returns the component's spec.
///
/// # Errors
///
/// [`DylibError`] naming the file and the cause.
pub fn load(
    path: &Path,
    policy: &AllowList,
    registry: &Registry,
) -> Result<ComponentSpec, DylibError> {
    if !path.exists() {
        return Err(DylibError::Missing(path.to_path_buf()));
    }
    if !policy.allows(path) {
        return Err(DylibError::NotAllowed(path.to_path_buf()));
    }
    // SAFETY: loading runs the library's initialisers: that is the privilege the operator
    // granted with --allow-native.
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| DylibError::Open {
        path: path.to_path_buf(),
        cause: e.to_string(),
    })?;
    // SAFETY: the symbol's type is the ABI's `const flowd_component *(*)(void)`.
    let entry = unsafe { library.get::<extern "C" fn() -> *const RawComponent>(ENTRY) }
        .map_err(|_| DylibError::MissingEntry(path.to_path_buf()))?;
    let component = entry();
    let invalid = |problem: &str| DylibError::Invalid {
        path: path.to_path_buf(),
        problem: problem.into(),
    };
    if component.is_null() {
        return Err(invalid("flowd_component_v1 returned NULL"));
    }
    // SAFETY: non-null, and the ABI requires it to point to a static `flowd_component`.
    let raw = unsafe { &*component };
    if raw.abi_version != ABI_VERSION {
        return Err(DylibError::WrongAbi {
            path: path.to_path_buf(),
            found: raw.abi_version,
            expected: ABI_VERSION,
        });
    }
    let spec = describe(raw).map_err(|problem| invalid(&problem))?;
    if raw.run.is_none() {
        return Err(invalid("`run` is NULL"));
    }
    let library = Arc::new(Library {
        _library: library,
        component,
    });
    let factory: ComponentFactory = Arc::new(move |_: &NodeInfo<'_>| {
        Ok(Box::new(Native {
            library: library.clone(),
        }) as Box<dyn Component>)
    });
    registry
        .register_from(spec.clone(), factory, Origin::File(path.to_path_buf()))
        .map_err(|problem| DylibError::Name {
            path: path.to_path_buf(),
            problem,
        })?;
    tracing::info!(
        "loaded native component {} from {}",
        spec.name,
        path.display()
    );
    Ok(spec)
}

/// Reads the library's description into a spec.
fn describe(raw: &RawComponent) -> Result<ComponentSpec, String> {
    // SAFETY (all c_str calls): the ABI requires NUL-terminated strings or NULL.
    let name = unsafe { c_str(raw.name) }
        .filter(|n| n.contains('/') && !n.starts_with('/') && !n.ends_with('/'))
        .ok_or("`name` must be UTF-8 with a library prefix, like \"native/Upper\"")?;
    let description = unsafe { c_str(raw.description) }.unwrap_or_default();
    let mut spec = ComponentSpec::new(name, description);
    if let Some(icon) = unsafe { c_str(raw.icon) }.filter(|i| !i.is_empty()) {
        spec = spec.icon(icon);
    }
    spec.inports = ports(raw.inports, raw.inport_count, "inports")?;
    spec.outports = ports(raw.outports, raw.outport_count, "outports")?;
    spec.check_ports()?;
    Ok(spec)
}

/// At most this many ports per direction: more means a corrupt count.
const MAX_PORTS: usize = 1024;

fn ports(list: *const RawPort, count: usize, what: &str) -> Result<Vec<PortSpec>, String> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if list.is_null() || count > MAX_PORTS {
        return Err(format!(
            "`{what}` is NULL or `{what}_count` is over {MAX_PORTS}"
        ));
    }
    // SAFETY: non-null, and the ABI requires `count` ports there.
    let raw = unsafe { std::slice::from_raw_parts(list, count) };
    raw.iter()
        .map(|port| {
            // SAFETY: as in `describe`.
            let name = unsafe { c_str(port.name) }
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("a port of `{what}` has no UTF-8 name"))?;
            let datatype = unsafe { c_str(port.datatype) }.unwrap_or("all");
            let description = unsafe { c_str(port.description) }.unwrap_or_default();
            let mut spec = PortSpec::new(name, datatype, description);
            spec.array = port.array != 0;
            spec.required = port.required != 0;
            Ok(spec)
        })
        .collect()
}

/// One process of a native component.
struct Native {
    library: Arc<Library>,
}

impl Component for Native {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        // SAFETY: `component` points into the library, which `self.library` keeps loaded.
        let raw = unsafe { &*self.library.component };
        let Some(run) = raw.run else {
            return Err(ProcessError::failed("the library's `run` is NULL"));
        };
        let mut process = HostProcess::new(ctx);
        let pointer = (&raw mut process).cast::<std::ffi::c_void>();
        let status = run(&HOST_API, pointer);
        if status == 0 {
            return Ok(());
        }
        if process.stopped {
            return Err(ProcessError::Stopped);
        }
        Err(ProcessError::failed(process.failure.take().unwrap_or_else(
            || format!("the native component returned {status}"),
        )))
    }
}

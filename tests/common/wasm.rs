//! Helpers for tests with WebAssembly guests: building them, loading them into a registry.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use flowd::Registry;
use flowd::component::wasm::{ComponentDir, Grants, WasmConfig, WasmHost};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the Rust guests once per test binary (the script is quick when nothing changed).
pub fn build_rust_guests() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new("bash")
            .arg(root().join("components/build-rust.sh"))
            .status()
            .expect("bash runs");
        assert!(status.success(), "components/build-rust.sh failed");
    });
}

/// The directory of the example components (`components/dist`).
pub fn components_dir() -> PathBuf {
    build_rust_guests();
    root().join("components/dist")
}

/// The directory of the purpose-built hostile guests (`tests/guests/dist`).
pub fn hostile_dir() -> PathBuf {
    build_rust_guests();
    root().join("tests/guests/dist")
}

/// A compilation cache shared by the tests, so each guest compiles once per machine.
pub fn cache_dir() -> PathBuf {
    root().join("target/test-wasm-cache")
}

/// A WebAssembly host with the given policy grants per component.
pub fn host(grants: &[(&str, Grants)]) -> Arc<WasmHost> {
    let config = WasmConfig {
        cache_dir: Some(cache_dir()),
        component_grants: grants
            .iter()
            .map(|(name, g)| (name.to_string(), g.clone()))
            .collect(),
        trust_graph_grants: true,
        ..WasmConfig::default()
    };
    WasmHost::new(config).expect("the wasm host starts")
}

/// The core components plus every component in `dirs`, loaded by `host`.
pub fn registry_with(host: &Arc<WasmHost>, dirs: &[&Path]) -> Arc<Registry> {
    let registry = Arc::new(Registry::with_core());
    for dir in dirs {
        let report = ComponentDir::load_once(host.clone(), registry.clone(), dir)
            .expect("the component directory is readable");
        // The guest of another world and the one claiming a core name are there to be
        // refused.
        let unexpected: Vec<_> = report
            .failed
            .iter()
            .map(ToString::to_string)
            .filter(|e| {
                !e.contains("hostile_other_world.wasm") && !e.contains("hostile_core_name.wasm")
            })
            .collect();
        assert!(unexpected.is_empty(), "failed to load: {unexpected:?}");
    }
    registry
}

/// A guest built by an optional toolchain (C, Python). Tests that use one are ignored
/// unless the build script found it (or `CI` is set): here it must be there.
pub fn optional_guest(file: &str) -> PathBuf {
    let path = root().join("components/dist").join(file);
    assert!(
        path.is_file(),
        "{} is missing: build it with `bash components/build.sh`",
        path.display()
    );
    path
}

//! Loading: the compilation cache, and a watched directory picking up changes.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::wasm::{components_dir, hostile_dir};
use flowd::Registry;
use flowd::component::wasm::{ComponentDir, WasmConfig, WasmHost};

#[test]
fn compiled_code_is_cached_on_disk() {
    let cache = tempfile::tempdir().expect("temp dir");
    let config = || WasmConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..WasmConfig::default()
    };
    let file = components_dir().join("text_uppercase.wasm");
    WasmHost::new(config())
        .expect("host")
        .load(&file)
        .expect("loads");
    let entries = walk(cache.path());
    assert!(entries > 0, "nothing was cached");
    // A second host (a second start of flowd) loads from the cache and compiles nothing new.
    WasmHost::new(config())
        .expect("host")
        .load(&file)
        .expect("loads");
    assert_eq!(walk(cache.path()), entries);
}

/// Compiled artefacts in the cache (wasmtime also keeps usage `.stats` files, written later).
fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        usize::from(e.path().extension().is_none_or(|x| x != "stats"))
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The core components, and a watcher of `dir` looking every 50 ms (watching while it lives).
fn watched(dir: &std::path::Path) -> (Arc<Registry>, ComponentDir, Vec<String>) {
    let host = WasmHost::new(WasmConfig {
        cache_dir: Some(common::wasm::cache_dir()),
        ..WasmConfig::default()
    })
    .expect("host");
    let registry = Arc::new(Registry::with_core());
    let (watcher, report) =
        ComponentDir::watch(host, registry.clone(), dir, Duration::from_millis(50))
            .expect("watches");
    (registry, watcher, report.loaded)
}

fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_watched_directory_picks_up_new_changed_and_removed_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (registry, _watcher, loaded) = watched(dir.path());
    assert!(loaded.is_empty());

    let file = dir.path().join("component.wasm");
    std::fs::copy(components_dir().join("text_uppercase.wasm"), &file).expect("copied");
    eventually("the new file is registered", || {
        registry.spec("text/Uppercase").is_some()
    });

    // Replaced by another component under the same file name.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::copy(hostile_dir().join("hostile_print.wasm"), &file).expect("copied");
    eventually("the changed file is registered", || {
        registry.spec("hostile/Print").is_some() && registry.spec("text/Uppercase").is_none()
    });

    std::fs::remove_file(&file).expect("removed");
    eventually("the removed file is unregistered", || {
        registry.spec("hostile/Print").is_none()
    });
}

#[test]
fn a_watched_file_claiming_a_core_name_never_replaces_or_removes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (registry, _watcher, _) = watched(dir.path());
    let core_count = registry.spec("core/Count").expect("core/Count");

    // Two files with one name: the first keeps it; when it goes, the second takes it.
    let first = dir.path().join("first.wasm");
    std::fs::copy(hostile_dir().join("hostile_print.wasm"), &first).expect("copied");
    eventually("the first file is registered", || {
        registry.spec("hostile/Print").is_some()
    });
    let second = dir.path().join("second.wasm");
    std::fs::copy(hostile_dir().join("hostile_print.wasm"), &second).expect("copied");
    let fake = dir.path().join("count.wasm");
    std::fs::copy(hostile_dir().join("hostile_core_name.wasm"), &fake).expect("copied");
    // Give the watcher a few scans to (wrongly) pick them up.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(registry.spec("core/Count"), Some(core_count.clone()));
    assert_eq!(
        registry.origin("hostile/Print"),
        Some(flowd::component::Origin::File(first.clone()))
    );

    std::fs::remove_file(&fake).expect("removed");
    std::fs::remove_file(&first).expect("removed");
    eventually("the second file takes the name the first gave up", || {
        registry.origin("hostile/Print") == Some(flowd::component::Origin::File(second.clone()))
    });
    // Removing the impostor did not unregister the real core/Count.
    assert_eq!(registry.spec("core/Count"), Some(core_count));
}

//! A directory of component files, registered and kept up to date without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use super::{LoadError, WasmHost};
use crate::component::Registry;

/// What loading a directory did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Names of the components registered.
    pub loaded: Vec<String>,
    /// Files that failed to load, and why.
    pub failed: Vec<LoadError>,
}

/// A watched component directory: every `*.wasm` file in it is registered; new and changed
/// files are picked up, removed ones unregistered, by a thread that looks every interval.
/// Dropping it stops the watching (what was registered stays).
pub struct ComponentDir {
    done: Arc<AtomicBool>,
}

/// What is known of one file: when it last changed, and what it registered.
struct Seen {
    stamp: (SystemTime, u64),
    name: Option<String>,
}

struct Scanner {
    host: Arc<WasmHost>,
    registry: Arc<Registry>,
    dir: PathBuf,
    seen: HashMap<PathBuf, Seen>,
}

impl ComponentDir {
    /// Loads every component in `dir` now, then watches it every `interval`.
    ///
    /// # Errors
    ///
    /// A message if `dir` cannot be read at all. Files that fail to load are in the report.
    pub fn watch(
        host: Arc<WasmHost>,
        registry: Arc<Registry>,
        dir: &Path,
        interval: Duration,
    ) -> Result<(ComponentDir, LoadReport), String> {
        let mut scanner = Scanner {
            host,
            registry,
            dir: dir.to_path_buf(),
            seen: HashMap::new(),
        };
        let report = scanner.scan()?;
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        std::thread::Builder::new()
            .name("flowd-components".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    match scanner.scan() {
                        Ok(report) => {
                            for error in report.failed {
                                tracing::warn!("{error}");
                            }
                        }
                        Err(error) => tracing::warn!("{error}"),
                    }
                }
            })
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        Ok((ComponentDir { done }, report))
    }

    /// Loads every component in `dir` once, without watching.
    ///
    /// # Errors
    ///
    /// A message if `dir` cannot be read at all.
    pub fn load_once(
        host: Arc<WasmHost>,
        registry: Arc<Registry>,
        dir: &Path,
    ) -> Result<LoadReport, String> {
        Scanner {
            host,
            registry,
            dir: dir.to_path_buf(),
            seen: HashMap::new(),
        }
        .scan()
    }
}

impl Drop for ComponentDir {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

impl Scanner {
    fn scan(&mut self) -> Result<LoadReport, String> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("component directory {}: {e}", self.dir.display()))?;
        let mut report = LoadReport::default();
        let mut present = Vec::new();
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .collect();
        files.sort();
        for path in files {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let stamp = (
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                meta.len(),
            );
            present.push(path.clone());
            if self.seen.get(&path).is_some_and(|s| s.stamp == stamp) {
                continue;
            }
            let previous = self.seen.get(&path).and_then(|s| s.name.clone());
            let name = match self.host.load(&path) {
                Ok(loaded) => {
                    let name = loaded.spec.name.clone();
                    if let Some(old) = previous.as_ref().filter(|old| **old != name) {
                        self.registry.unregister(old);
                    }
                    let spec = loaded.spec.clone();
                    let factory = self.host.factory(Arc::new(loaded));
                    self.registry.register(spec, factory);
                    tracing::info!("registered {name} from {}", path.display());
                    report.loaded.push(name.clone());
                    Some(name)
                }
                Err(error) => {
                    // A broken new version does not take the working one away.
                    report.failed.push(error);
                    previous
                }
            };
            self.seen.insert(path, Seen { stamp, name });
        }
        let gone: Vec<PathBuf> = self
            .seen
            .keys()
            .filter(|path| !present.contains(path))
            .cloned()
            .collect();
        for path in gone {
            if let Some(Seen {
                name: Some(name), ..
            }) = self.seen.remove(&path)
            {
                self.registry.unregister(&name);
                tracing::info!("unregistered {name}: {} is gone", path.display());
            }
        }
        Ok(report)
    }
}

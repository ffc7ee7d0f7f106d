//! A directory of component files, registered and kept up to date without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use super::{LoadError, WasmHost};
use crate::component::{Origin, Registry};

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

/// What is known of one file: when it last changed, what it registered, and the name it was
/// refused (it is loaded again once that name is free).
struct Seen {
    stamp: (SystemTime, u64),
    name: Option<String>,
    refused: Option<String>,
}

/// A stamp no file has: the file is loaded again at the next scan.
const NOT_SEEN: (SystemTime, u64) = (SystemTime::UNIX_EPOCH, u64::MAX);

impl Seen {
    fn keeping(name: Option<String>) -> Seen {
        Seen {
            stamp: NOT_SEEN,
            name,
            refused: None,
        }
    }
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
        self.retry_refused();
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
            let seen = self.load(&path, previous, &mut report);
            self.seen.insert(path, Seen { stamp, ..seen });
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
                && self
                    .registry
                    .unregister_from(&name, &Origin::File(path.clone()))
            {
                tracing::info!("unregistered {name}: {} is gone", path.display());
            }
        }
        Ok(report)
    }

    /// Loads the file at `path` (which registered `previous` before) and registers it;
    /// returns what to remember of it (its stamp is the caller's).
    fn load(&self, path: &Path, previous: Option<String>, report: &mut LoadReport) -> Seen {
        let origin = Origin::File(path.to_path_buf());
        let loaded = match self.host.load(path) {
            Ok(loaded) => loaded,
            Err(error) => {
                // A broken new version does not take the working one away.
                report.failed.push(error);
                return Seen::keeping(previous);
            }
        };
        let name = loaded.spec.name.clone();
        let spec = loaded.spec.clone();
        let factory = self.host.factory(Arc::new(loaded));
        if let Err(problem) = self.registry.register_from(spec, factory, origin.clone()) {
            report.failed.push(LoadError::Name {
                path: path.to_path_buf(),
                problem,
            });
            return Seen {
                refused: Some(name),
                ..Seen::keeping(previous)
            };
        }
        if let Some(old) = previous.filter(|old| *old != name) {
            self.registry.unregister_from(&old, &origin);
        }
        tracing::info!("registered {name} from {}", path.display());
        report.loaded.push(name.clone());
        Seen {
            name: Some(name),
            ..Seen::keeping(None)
        }
    }

    /// Files refused a name that is free now are loaded again at this scan.
    fn retry_refused(&mut self) {
        for seen in self.seen.values_mut() {
            if seen
                .refused
                .as_ref()
                .is_some_and(|name| self.registry.origin(name).is_none())
            {
                seen.stamp = NOT_SEEN;
                seen.refused = None;
            }
        }
    }
}

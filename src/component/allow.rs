//! Allow-lists of paths: what the operator lets flowd load or run outside the sandbox.
//!
//! Native shared objects (`--allow-native`) and external programs (`--allow-exec`) run with
//! flowd's own rights, so each needs the operator to name it, or a directory holding it.
//! Paths are compared after resolving symbolic links and `..`, so a link placed in an allowed
//! directory does not allow what it points to elsewhere.

use std::path::{Path, PathBuf};

/// Files, and directories whose files (at any depth) are allowed. Empty allows nothing.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    allowed: Vec<PathBuf>,
}

impl AllowList {
    /// Allows the files and directories in `paths` (canonicalized; paths that do not exist are
    /// kept as given and so allow nothing that exists elsewhere).
    pub fn allowing(paths: impl IntoIterator<Item = PathBuf>) -> AllowList {
        AllowList {
            allowed: paths
                .into_iter()
                .map(|p| p.canonicalize().unwrap_or(p))
                .collect(),
        }
    }

    /// Whether anything is allowed.
    pub fn is_enabled(&self) -> bool {
        !self.allowed.is_empty()
    }

    /// Whether `path` is allowed: it exists and, once resolved, is an allowed file or lies
    /// under an allowed directory.
    pub fn allows(&self, path: &Path) -> bool {
        self.resolve(path).is_some()
    }

    /// `path` resolved (links and `..`), if it is allowed: use exactly that path, so that
    /// what runs is what was checked, whatever happens to the links meanwhile.
    pub fn resolve(&self, path: &Path) -> Option<PathBuf> {
        let path = path.canonicalize().ok()?;
        self.allowed
            .iter()
            .any(|a| path == *a || path.starts_with(a))
            .then_some(path)
    }

    /// The allowed paths, as resolved.
    pub fn paths(&self) -> &[PathBuf] {
        &self.allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_named_files_and_what_lies_under_named_directories() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let inside = dir.path().join("sub");
        std::fs::create_dir(&inside).expect("created");
        let file = inside.join("tool");
        let other = dir.path().join("other");
        std::fs::write(&file, "").expect("written");
        std::fs::write(&other, "").expect("written");

        let by_dir = AllowList::allowing([inside.clone()]);
        assert!(by_dir.allows(&file));
        assert!(!by_dir.allows(&other));
        assert!(!by_dir.allows(&inside.join("../other")));

        let by_file = AllowList::allowing([file.clone()]);
        assert!(by_file.allows(&file));
        assert!(!by_file.allows(&other));

        assert!(!AllowList::default().allows(&file));
        assert!(!AllowList::default().is_enabled());
    }

    #[test]
    fn a_link_into_an_allowed_directory_does_not_allow_its_target() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let allowed = dir.path().join("allowed");
        std::fs::create_dir(&allowed).expect("created");
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "").expect("written");
        let link = allowed.join("link");
        std::os::unix::fs::symlink(&outside, &link).expect("linked");
        assert!(!AllowList::allowing([allowed]).allows(&link));
    }
}

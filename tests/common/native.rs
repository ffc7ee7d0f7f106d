//! Building native shared-object components for tests: gcc for C, cargo for the Rust cdylib.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use flowd::component::dylib;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles a C source into a shared object in `dir` (gcc, against guest-sdk/include).
pub fn build_c(source: &Path, defines: &[&str], dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(format!("lib{name}.{}", dylib::EXTENSION));
    let mut gcc = Command::new("gcc");
    gcc.args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-I"])
        .arg(root().join("guest-sdk/include"));
    for define in defines {
        gcc.arg(format!("-D{define}"));
    }
    let status = gcc
        .arg(source)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("gcc runs");
    assert!(status.success(), "gcc failed for {}", source.display());
    out
}

/// The C example, built once per test binary.
pub fn upper() -> &'static Path {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &BUILT
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = build_c(
                &root().join("components/native/c/upper.c"),
                &[],
                dir.path(),
                "upper",
            );
            (dir, path)
        })
        .1
}

/// The Rust example (a cdylib), built once per test binary.
pub fn reverse() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = root().join("target/native");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(root().join("components/native/rust/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the Rust native example failed");
        target.join(format!(
            "release/libflowd_native_reverse.{}",
            dylib::EXTENSION
        ))
    })
}

pub fn broken(define: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = build_c(
        &root().join("tests/native/broken.c"),
        &[define],
        dir.path(),
        &define.to_lowercase(),
    );
    (dir, path)
}

//! Tells the integration tests which optional tools are there, so that a test needing a missing
//! one is listed as ignored, with what builds it, instead of passing without running.
//!
//! - `flowd_c_guest`, `flowd_python_guest`, `flowd_js_guest`: the C, Python and JavaScript
//!   example guests are built (`bash components/build.sh`);
//! - `flowd_npm_tools`: the noflo `fbp` package is installed (`npm ci --prefix tools`).
//!
//! Under CI (`CI` set) every one is on: there a missing tool fails its tests.

use std::path::Path;

fn main() {
    let ci = std::env::var_os("CI").is_some();
    let present = |cfg: &str, file: &str| {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if ci || Path::new(file).is_file() {
            println!("cargo::rustc-cfg={cfg}");
        }
    };
    present("flowd_c_guest", "components/dist/c_prefix.wasm");
    present("flowd_python_guest", "components/dist/py_format.wasm");
    present("flowd_js_guest", "components/dist/js_fetch.wasm");
    present("flowd_npm_tools", "tools/node_modules/fbp/package.json");
    // Directories that always exist (a missing path would rerun this script on every build).
    println!("cargo::rerun-if-changed=components");
    println!("cargo::rerun-if-changed=tools");
    println!("cargo::rerun-if-env-changed=CI");
}

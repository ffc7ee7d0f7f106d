//! `componentize`: the small build tool behind `components/build-c.sh`.
//!
//! * `componentize new CORE.wasm OUT.wasm [--command]` turns a core wasm module that carries a
//!   `component-type` custom section (from `wit-bindgen c`'s `*_component_type.o`) into a
//!   component. A module that imports `wasi_snapshot_preview1` (libc stdio, say) gets the
//!   preview1 reactor adapter (or the command adapter with `--command`); one that does not,
//!   as our C guests, gets no adapter and no WASI imports at all. DWARF sections are dropped,
//!   the `name` section is kept.
//! * `componentize wit FILE.wasm` prints the WIT world of a component.
//! * `componentize check FILE.wasm` checks that FILE is a component of the flowd world: it
//!   exports `describe` and `run` and imports nothing but `flowd:component/*` and `wasi:*`.
//!   It prints one summary line, or an error and exits 1.

use std::path::Path;
use std::process::ExitCode;

use wasi_preview1_component_adapter_provider as adapters;
use wit_component::{ComponentEncoder, DecodedWasm, WitPrinter};
use wit_parser::{Resolve, WorldId, WorldKey};

type Result<T> = std::result::Result<T, String>;

const USAGE: &str = "usage:
  componentize new CORE.wasm OUT.wasm [--command]   make a component of a core module
  componentize wit FILE.wasm                        print a component's WIT world
  componentize check FILE.wasm                      check a component against the flowd world";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["new", core, out] => new(Path::new(core), Path::new(out), false),
        ["new", core, out, "--command"] => new(Path::new(core), Path::new(out), true),
        ["wit", file] => wit(Path::new(file)),
        ["check", file] => check(Path::new(file)),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unexpected arguments {args:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("componentize: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn new(core: &Path, out: &Path, command: bool) -> Result<()> {
    let module = strip_dwarf(&read(core)?).map_err(|e| format!("{}: {e}", core.display()))?;
    let adapter = if command {
        adapters::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER
    } else {
        adapters::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
    };
    // The adapter is only linked in when the module imports from `wasi_snapshot_preview1`.
    let component = ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.adapter("wasi_snapshot_preview1", adapter))
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("{}: {e:#}", core.display()))?;
    // Write next to the target, then rename: a failed build never leaves half a file.
    let tmp = out.with_extension("wasm.part");
    std::fs::write(&tmp, &component).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, out).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(())
}

/// Drops the DWARF sections (`.debug_*`) of a core module, which make up almost all of an
/// unstripped C build (870 KB of a 880 KB module), and keeps everything else, the `name`
/// section included: traps then still show function names.
fn strip_dwarf(module: &[u8]) -> std::result::Result<Vec<u8>, String> {
    fn leb128(bytes: &[u8], pos: &mut usize) -> std::result::Result<usize, String> {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let byte = *bytes.get(*pos).ok_or("truncated module")?;
            *pos += 1;
            value |= usize::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
            shift += 7;
            if shift > 28 {
                return Err("malformed section size".into());
            }
        }
    }
    if module.len() < 8 || module[..4] != *b"\0asm" || module[4..8] != [1, 0, 0, 0] {
        return Err("not a core WebAssembly module".into());
    }
    let mut out = module[..8].to_vec();
    let mut pos = 8;
    while pos < module.len() {
        let start = pos;
        let id = module[pos];
        pos += 1;
        let size = leb128(module, &mut pos)?;
        let end = pos
            .checked_add(size)
            .filter(|&e| e <= module.len())
            .ok_or("truncated section")?;
        let dwarf = id == 0 && {
            let mut p = pos;
            let len = leb128(module, &mut p)?;
            module
                .get(p..p + len)
                .is_some_and(|name| name.starts_with(b".debug"))
        };
        if !dwarf {
            out.extend_from_slice(&module[start..end]);
        }
        pos = end;
    }
    Ok(out)
}

fn decode_component(path: &Path) -> Result<(Resolve, WorldId)> {
    let bytes = read(path)?;
    if bytes.len() < 8 || bytes[..4] != *b"\0asm" || bytes[4..8] != [0x0d, 0x00, 0x01, 0x00] {
        return Err(format!("{} is not a WebAssembly component", path.display()));
    }
    match wit_component::decode(&bytes).map_err(|e| format!("{}: {e:#}", path.display()))? {
        DecodedWasm::Component(resolve, world) => Ok((resolve, world)),
        DecodedWasm::WitPackage(..) => Err(format!(
            "{} is a WIT package, not a component",
            path.display()
        )),
    }
}

fn wit(path: &Path) -> Result<()> {
    let (resolve, world) = decode_component(path)?;
    // The world of a decoded component lives in a synthesized package of its own; the packages
    // it uses are printed after it.
    let pkg = resolve.worlds[world]
        .package
        .ok_or_else(|| "decoded world has no package".to_string())?;
    let nested: Vec<_> = resolve
        .packages
        .iter()
        .map(|(id, _)| id)
        .filter(|id| *id != pkg)
        .collect();
    let mut printer = WitPrinter::default();
    printer
        .print(&resolve, pkg, &nested)
        .map_err(|e| format!("{e:#}"))?;
    print!("{}", printer.output);
    Ok(())
}

fn key_name(resolve: &Resolve, key: &WorldKey) -> String {
    match key {
        WorldKey::Name(name) => name.clone(),
        WorldKey::Interface(id) => resolve.id_of(*id).unwrap_or_else(|| format!("{id:?}")),
    }
}

fn check(path: &Path) -> Result<()> {
    let (resolve, world) = decode_component(path)?;
    let w = &resolve.worlds[world];
    let exports: Vec<String> = w.exports.keys().map(|k| key_name(&resolve, k)).collect();
    let imports: Vec<String> = w
        .imports
        .iter()
        // Types pulled in by `use` show up as imports too; only functions and interfaces count.
        .filter(|(_, item)| !matches!(item, wit_parser::WorldItem::Type { .. }))
        .map(|(k, _)| key_name(&resolve, k))
        .collect();
    for needed in ["describe", "run"] {
        if !exports.iter().any(|e| e == needed) {
            return Err(format!(
                "{} does not export `{needed}` (exports: {})",
                path.display(),
                exports.join(", ")
            ));
        }
    }
    let foreign: Vec<&String> = imports
        .iter()
        .filter(|i| !i.starts_with("flowd:component/") && !i.starts_with("wasi:"))
        .collect();
    if !foreign.is_empty() {
        return Err(format!(
            "{} imports interfaces the flowd host does not provide: {}",
            path.display(),
            foreign
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let (wasi, flowd): (Vec<&String>, Vec<&String>) =
        imports.iter().partition(|i| i.starts_with("wasi:"));
    let flowd: Vec<&str> = flowd.iter().map(|s| s.as_str()).collect();
    println!(
        "{}: component; exports {}; imports {}{}",
        path.display(),
        exports.join(", "),
        if flowd.is_empty() {
            "nothing from flowd".to_string()
        } else {
            flowd.join(", ")
        },
        match wasi.len() {
            0 => ", no WASI".to_string(),
            n => format!(" and {n} WASI interfaces"),
        }
    );
    Ok(())
}

#!/usr/bin/env bash
# Builds flowd's C components: components/c/<name>/*.c -> components/dist/c_<name>.wasm
#
#   components/build-c.sh [--force] [NAME...]     (from any directory)
#
# 1. wit-bindgen-cli (pinned below) generates the C bindings of wit/ into
#    target/components/c/bindings/; it is installed with `cargo install` if the right version
#    is not on PATH or in ~/.cargo/bin (a few minutes, once per machine).
# 2. Zig's clang, from the PyPI package `ziglang` in a venv under target/components/c/, compiles
#    each component with the bindings to a wasm32-wasi core module (reactor).
# 3. Our componentize tool (components/tools/componentize, wit-component) makes the component
#    and checks that it exports `describe` and `run`.
# Up-to-date components are skipped; --force rebuilds them.
set -euo pipefail

WIT_BINDGEN_VERSION=0.63.0
ZIGLANG_VERSION=0.17.1
WORLD=flowd-component

lang=c
tool=build-c
script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
# shellcheck source=components/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_args "$@"
if [ ${#names[@]} -eq 0 ]; then
    for dir in "$src"/*/; do
        compgen -G "$dir*.c" >/dev/null && names+=("$(basename "$dir")")
    done
fi
[ ${#names[@]} -gt 0 ] || die "no components found in $src (each is a directory of .c files)"
mkdir -p "$build" "$dist"

# --- wit-bindgen ------------------------------------------------------------------------------
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
wit_bindgen=""
for candidate in "$(command -v wit-bindgen || true)" "$cargo_bin/wit-bindgen"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] \
        && [ "$("$candidate" --version 2>/dev/null)" = "wit-bindgen-cli $WIT_BINDGEN_VERSION" ]; then
        wit_bindgen="$candidate"
        break
    fi
done
if [ -z "$wit_bindgen" ]; then
    command -v cargo >/dev/null || die "cargo not found: it is needed to install wit-bindgen-cli"
    say "installing wit-bindgen-cli $WIT_BINDGEN_VERSION with cargo (2.5 to 12 minutes, once) ..."
    start=$SECONDS
    cargo install wit-bindgen-cli --version "$WIT_BINDGEN_VERSION" --locked --quiet
    wit_bindgen="$cargo_bin/wit-bindgen"
    [ -x "$wit_bindgen" ] || die "cargo install did not leave $wit_bindgen"
    say "installed $wit_bindgen in $((SECONDS - start)) s"
fi

# --- zig, from PyPI, in our own venv ----------------------------------------------------------
zig_version() { "$venv/bin/python" -m ziglang version 2>/dev/null || true; }
if [ ! -x "$venv/bin/python" ] || [ "$(zig_version)" != "$ZIGLANG_VERSION" ]; then
    pip_install "ziglang==$ZIGLANG_VERSION"
fi
cc=("$venv/bin/python" -m ziglang cc)

# --- the componentize tool (cargo knows when it is up to date) --------------------------------
tool_target="$repo/target/components/tools"
tool="$tool_target/debug/componentize"
if [ ! -x "$tool" ]; then
    say "building the componentize tool (about a minute, once) ..."
fi
cargo build --quiet --locked --manifest-path "$here/tools/componentize/Cargo.toml" \
    --target-dir "$tool_target"

# --- bindings ---------------------------------------------------------------------------------
bindings="$build/bindings"
stamp="$bindings/.stamp"
if [ $force = 1 ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$WIT_BINDGEN_VERSION $WORLD" ] \
    || [ -n "$(find "$wit" -newer "$stamp" -print -quit)" ]; then
    rm -rf "$bindings"
    mkdir -p "$bindings"
    if ! log="$("$wit_bindgen" c "$wit" --world "$WORLD" --out-dir "$bindings" 2>&1)"; then
        printf "%s\n" "$log" >&2
        die "wit-bindgen failed"
    fi
    echo "$WIT_BINDGEN_VERSION $WORLD" >"$stamp"
    say "bindings: $bindings"
fi
stem="${WORLD//-/_}" # flowd_component.{h,c}, flowd_component_component_type.o
for f in "$stem.h" "$stem.c" "${stem}_component_type.o"; do
    [ -f "$bindings/$f" ] || die "wit-bindgen did not generate $bindings/$f"
done

# --- the components ---------------------------------------------------------------------------
for name in "${names[@]}"; do
    dir="$src/$name"
    compgen -G "$dir/*.c" >/dev/null || die "no .c files in $dir"
    out="$dist/c_$name.wasm"
    if [ $force = 0 ] && [ -f "$out" ] \
        && [ -z "$(find "$dir" "$stamp" "$script" "$tool" -newer "$out" -print -quit)" ]; then
        say "c/$name is up to date: $out"
        continue
    fi
    say "compiling c/$name ..."
    start=$SECONDS
    core="$build/c_$name.core.wasm"
    # Debug info is kept here and dropped by componentize, which keeps the name section.
    "${cc[@]}" --target=wasm32-wasi -mexec-model=reactor -O2 -g -Wall -Wextra \
        -I "$bindings" -I "$dir" "$dir"/*.c \
        "$bindings/$stem.c" "$bindings/${stem}_component_type.o" -o "$core"
    "$tool" new "$core" "$out"
    [ "$(od -An -tx1 -j4 -N4 "$out" | tr -d ' \n')" = "0d000100" ] || die "$out is not a component"
    say "c/$name: $out ($(wc -c <"$out") bytes, $((SECONDS - start)) s)"
done

# --- check: our tool always, wasm-tools too when it is installed ---------------------------------
for name in "${names[@]}"; do
    out="$dist/c_$name.wasm"
    "$tool" check "$out" >&2
    if command -v wasm-tools >/dev/null; then
        wasm-tools validate "$out" || die "wasm-tools validate $out failed"
        [ "$(wasm-tools component wit "$out" | grep -cE '^\s*export (describe|run):')" = 2 ] \
            || die "wasm-tools component wit $out: no \`export describe\` and \`export run\`"
    fi
    echo "$out"
done

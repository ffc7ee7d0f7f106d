#!/usr/bin/env bash
# Builds flowd's Rust guest components and collects them:
#
#   components/   (example components)  ->  components/dist/<crate_name>.wasm
#   tests/guests/ (hostile test guests) ->  tests/guests/dist/<crate_name>.wasm
#
# File names are the crates' library names: text-uppercase -> text_uppercase.wasm. Both
# workspaces build for wasm32-wasip2 in release, into one shared target directory
# (<repo>/target/guests, or $CARGO_TARGET_DIR if set), so they share compiled dependencies.
# Idempotent: an unchanged build copies nothing and leaves the dist/ files untouched. Other
# files in dist/ (C and Python components) are left alone.
#
# Usage: components/build-rust.sh [extra cargo build arguments, e.g. --locked]
# Works from any directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
target=wasm32-wasip2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target/guests}"
out_dir="$CARGO_TARGET_DIR/$target/release"

# The target: checking first keeps a warm build offline and quiet.
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx "$target"; then
        rustup target add "$target"
    fi
else
    echo "build-rust.sh: no rustup; assuming the $target standard library is installed" >&2
fi

# Whether a file is a WebAssembly component (not a core module): bytes 4..8 are 0d 00 01 00.
is_component() {
    [[ "$(od -An -tx1 -j4 -N4 "$1" | tr -d ' \n')" == "0d000100" ]]
}

# build_workspace WORKSPACE_DIR DIST_DIR [cargo args...]
build_workspace() {
    local ws="$1" dist="$2"
    shift 2
    cargo build --manifest-path "$ws/Cargo.toml" --workspace --release --target "$target" "$@"
    mkdir -p "$dist"

    local manifest name file wanted=()
    for manifest in "$ws"/rust/*/Cargo.toml; do
        # The package name is the first `name = "..."` line (under [package]).
        name="$(sed -n 's/^name *= *"\([^"]*\)".*/\1/p' "$manifest" | head -n 1)"
        [[ -n "$name" ]] || { echo "build-rust.sh: no package name in $manifest" >&2; exit 1; }
        file="${name//-/_}.wasm"
        [[ -f "$out_dir/$file" ]] || { echo "build-rust.sh: $out_dir/$file was not built" >&2; exit 1; }
        is_component "$out_dir/$file" || { echo "build-rust.sh: $file is not a component" >&2; exit 1; }
        if ! cmp -s "$out_dir/$file" "$dist/$file"; then
            cp "$out_dir/$file" "$dist/$file"
        fi
        wanted+=("$file")
    done

    # Remove what a renamed or deleted crate left behind: only files that this script copied
    # before (listed in $list), since other build scripts (C, Python) share dist/.
    local list="$dist/.build-rust.list" old
    if [[ -f "$list" ]]; then
        while IFS= read -r old; do
            if [[ -n "$old" && " ${wanted[*]} " != *" $old "* ]]; then
                rm -f "$dist/$old"
            fi
        done <"$list"
    fi
    printf '%s\n' "${wanted[@]}" >"$list.tmp" && mv "$list.tmp" "$list"

    echo "${dist#"$repo"/}:"
    for file in "${wanted[@]}"; do
        printf '  %-32s %8d bytes\n' "$file" "$(wc -c <"$dist/$file")"
    done
}

build_workspace "$repo/components" "$repo/components/dist" "$@"
build_workspace "$repo/tests/guests" "$repo/tests/guests/dist" "$@"

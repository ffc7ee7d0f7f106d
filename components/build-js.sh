#!/usr/bin/env bash
# Builds flowd's JavaScript components: components/js/<name>/app.js -> components/dist/js_<name>.wasm
#
#   components/build-js.sh [--force] [NAME...]     (from any directory)
#
# Uses componentize-js (pinned in js/package.json and js/package-lock.json), installed with
# `npm ci` into target/components/js/ on the first run. A component is rebuilt only when its
# sources, the WIT, this script or the toolchain changed; --force rebuilds anyway. Each takes
# about 20 s and comes out at about 12 MB (a JavaScript engine is inside).
set -euo pipefail

lang=js
tool=build-js
script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
# shellcheck source=components/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_args "$@"
if [ ${#names[@]} -eq 0 ]; then
    for dir in "$src"/*/; do
        [ -f "$dir/app.js" ] && names+=("$(basename "$dir")")
    done
fi
[ ${#names[@]} -gt 0 ] || die "no components found in $src (each is a directory with app.js)"
command -v node >/dev/null || die "node not found (Node.js 20 or later)"

# --- componentize-js, installed from the lock file -------------------------------------------
mkdir -p "$build"
if ! cmp -s "$src/package-lock.json" "$build/package-lock.json" \
    || [ ! -d "$build/node_modules/@bytecodealliance/componentize-js" ]; then
    say "installing componentize-js into $build"
    cp "$src/package.json" "$src/package-lock.json" "$build/"
    (cd "$build" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
cp "$src/componentize.mjs" "$build/componentize.mjs"

# --- the components ---------------------------------------------------------------------------
mkdir -p "$dist"
for name in "${names[@]}"; do
    dir="$src/$name"
    [ -f "$dir/app.js" ] || die "$dir/app.js not found"
    out="$dist/js_$name.wasm"
    if [ $force = 0 ] && [ -f "$out" ] \
        && [ -z "$(find "$dir" "$wit" "$src/package-lock.json" "$src/componentize.mjs" \
                    "${BASH_SOURCE[0]}" -newer "$out" -print -quit)" ]; then
        say "js/$name is up to date: $out"
        continue
    fi
    say "componentizing js/$name ..."
    start=$SECONDS
    tmp="$build/js_$name.wasm.part"
    rm -f "$tmp"
    (cd "$repo" && node "$build/componentize.mjs" "$dir/app.js" "$wit" "$tmp")
    [ "$(od -An -tx1 -j4 -N4 "$tmp" | tr -d ' \n')" = "0d000100" ] || die "$tmp is not a component"
    mv -f "$tmp" "$out"
    say "js/$name: $out ($(($(wc -c <"$out") / 1024)) KiB, $((SECONDS - start)) s)"
done

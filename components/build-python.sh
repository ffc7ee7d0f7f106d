#!/usr/bin/env bash
# Builds flowd's Python components: components/python/<name>/app.py -> components/dist/py_<name>.wasm
#
#   components/build-python.sh [--force] [NAME...]     (from any directory)
#
# Uses componentize-py (pinned below) from a venv under target/components/python/, made on the
# first run. A component is rebuilt only when its sources, the WIT, this script or the
# componentize-py version changed; --force rebuilds anyway. The bindings, for editors and for
# the unit tests in components/python/tests/<name>/ (run natively, before componentizing), are
# generated into target/components/python/bindings/.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1
WORLD=flowd-component

lang=python
tool=build-python
script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
# shellcheck source=components/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_args "$@"
if [ ${#names[@]} -eq 0 ]; then
    for dir in "$src"/*/; do
        [ -f "$dir/app.py" ] && names+=("$(basename "$dir")")
    done
fi
[ ${#names[@]} -gt 0 ] || die "no components found in $src (each is a directory with app.py)"

# --- componentize-py, in our own venv -------------------------------------------------------
cpy="$venv/bin/componentize-py"
have=""
[ -x "$cpy" ] && have="$("$cpy" --version 2>/dev/null | awk '{print $2}')" || true
if [ "$have" != "$COMPONENTIZE_PY_VERSION" ]; then
    pip_install "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

# --- bindings (not needed by componentize, which makes its own: for editors and tests) --------
bindings="$build/bindings"
stamp="$bindings/.stamp"
if [ $force = 1 ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$COMPONENTIZE_PY_VERSION $WORLD" ] \
    || [ -n "$(find "$wit" -newer "$stamp" -print -quit)" ]; then
    rm -rf "$bindings"
    "$cpy" -d "$wit" -w "$WORLD" bindings "$bindings" >/dev/null
    echo "$COMPONENTIZE_PY_VERSION $WORLD" >"$stamp"
    say "bindings: $bindings"
fi

# --- native unit tests: python/tests/<name>/, against fake ports (a fraction of a second) ------
for name in "${names[@]}"; do
    tests="$src/tests/$name"
    [ -d "$tests" ] || continue
    if ! log="$(cd "$tests" && PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$bindings:$src/$name" \
                "$venv/bin/python" -m unittest discover -s "$tests" 2>&1)"; then
        printf '%s\n' "$log" >&2
        die "unit tests of py/$name failed ($tests)"
    fi
    say "py/$name unit tests: $(printf '%s\n' "$log" | grep -E '^Ran ' || true), ok"
done

# --- the components ---------------------------------------------------------------------------
mkdir -p "$dist"
is_component() { # the layout word after "\0asm": 0d 00 01 00 is a component, 01 00 00 00 a module
    [ "$(od -An -tx1 -j4 -N4 "$1" | tr -d ' \n')" = "0d000100" ]
}
for name in "${names[@]}"; do
    dir="$src/$name"
    [ -f "$dir/app.py" ] || die "$dir/app.py not found"
    out="$dist/py_$name.wasm"
    key="$build/py_$name.key"
    want="componentize-py $COMPONENTIZE_PY_VERSION world $WORLD"
    if [ $force = 0 ] && [ -f "$out" ] && [ -f "$key" ] && [ "$(cat "$key")" = "$want" ] \
        && [ -z "$(find "$dir" "$wit" "${BASH_SOURCE[0]}" -newer "$out" -not -path '*/__pycache__*' -print -quit)" ]; then
        say "py/$name is up to date: $out"
        continue
    fi
    say "componentizing py/$name ..."
    start=$SECONDS
    tmp="$build/py_$name.wasm.part"
    rm -f "$tmp"
    # componentize-py writes __pycache__ next to the sources it reads: give it a copy.
    copy="$build/src/$name"
    rm -rf "$copy" && mkdir -p "$copy"
    (cd "$dir" && tar --exclude=__pycache__ -cf - .) | (cd "$copy" && tar -xf -)
    "$cpy" -d "$wit" -w "$WORLD" componentize -p "$copy" app -o "$tmp" >/dev/null
    is_component "$tmp" || die "$tmp is not a component"
    mv -f "$tmp" "$out"
    echo "$want" >"$key"
    say "py/$name: $out ($(($(wc -c <"$out") / 1024)) KiB, $((SECONDS - start)) s)"
done

# --- check: our tool when build-c.sh has built it, wasm-tools when installed ---------------------
checker="$repo/target/components/tools/debug/componentize"
for name in "${names[@]}"; do
    out="$dist/py_$name.wasm"
    checked=0
    if [ -x "$checker" ]; then
        "$checker" check "$out" >&2
        checked=1
    fi
    if command -v wasm-tools >/dev/null; then
        wasm-tools validate "$out" || die "wasm-tools validate $out failed"
        [ "$(wasm-tools component wit "$out" | grep -cE '^\s*export (describe|run):')" = 2 ] \
            || die "wasm-tools component wit $out: no \`export describe\` and \`export run\`"
        checked=1
    fi
    [ $checked = 1 ] || say "$out: a component (build-c.sh builds the tool that checks its world)"
    echo "$out"
done

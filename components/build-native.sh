#!/usr/bin/env bash
# Builds the native shared-object example components into components/dist/native/:
# native/Upper and native/Passthrough in C (gcc, against guest-sdk/include/flowd.h) and
# native/Reverse in Rust (a cdylib for the host). They are not sandboxed: flowd loads them only with --allow-native.
#
#   bash components/build-native.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
dist="$here/dist/native"
ext="so"
case "$(uname -s)" in Darwin) ext="dylib" ;; esac
mkdir -p "$dist"

command -v gcc >/dev/null || { echo "build-native: gcc is required" >&2; exit 1; }
for name in upper passthrough; do
    gcc -shared -fPIC -O2 -Wall -Werror -I "$repo/guest-sdk/include" \
        "$here/native/c/$name.c" -o "$dist/lib$name.$ext"
    echo "build-native: $dist/lib$name.$ext" >&2
done

cargo build --release --quiet --manifest-path "$here/native/rust/Cargo.toml" \
    --target-dir "$repo/target/native"
cp "$repo/target/native/release/libflowd_native_reverse.$ext" "$dist/libreverse.$ext"
echo "build-native: $dist/libreverse.$ext" >&2

#!/usr/bin/env bash
# Builds every example component (Rust, C, Python, JavaScript; native shared objects) into components/dist/ and the hostile test
# guests into tests/guests/dist/. Each step installs what it needs and is quick when nothing
# changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/build-rust.sh"
bash "$here/build-c.sh"
bash "$here/build-python.sh"
bash "$here/build-js.sh"
bash "$here/build-native.sh"

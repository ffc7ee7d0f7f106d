#!/usr/bin/env bash
# Runs the official FBP Network Protocol suite (fbp-test from npm fbp-protocol, pinned in
# tools/package.json) against a flowd binary, which the suite starts and stops itself.
#
#   tools/run-fbp-test.sh PATH_TO_FLOWD_BINARY [extra flowd args...]
#
# Exit status: that of fbp-test, i.e. the number of failed tests and hooks (0 = all passed);
# 2 for bad usage or a missing tool.
# Environment: FBP_PROTOCOL_SECRET (sent by the suite as the secret, if set);
# FLOWD_STDERR=FILE appends flowd's stderr to FILE (the suite otherwise discards it).
#
# How fbp-test's command mode works (node_modules/fbp-protocol/src/WebSocket.js,
# testRuntimeCommand), and what follows from it here:
# - it runs `command` through a shell (spawn with shell: true) in its own working directory,
#   so the binary path is made absolute and every argument shell-quoted;
# - it waits for the first byte on the child's stdout (stderr is ignored), then connects 100 ms
#   later; starting and connecting must fit in the 4 s of the "Connecting" test. flowd's
#   `serve` prints its readiness line on stdout once listening;
# - at the end it destroys the child's stdout and sends SIGTERM, then SIGKILL after 100 ms, to
#   the shell: `exec` makes flowd that process, or it would be orphaned;
# - fbp-test runs ./node_modules/.bin/_mocha relative to the current directory and reads
#   fbp-config.json from $PROJECT_HOME or the current directory: so it runs from tools/, with
#   PROJECT_HOME pointing there too.
set -euo pipefail

tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
runtime_id='0f8d2a3c-5b6e-4c1d-9a7f-3e2b1c0d9e8f'

if [ $# -lt 1 ]; then
  echo "usage: $0 PATH_TO_FLOWD_BINARY [extra flowd args...]" >&2
  exit 2
fi
binary="$1"
shift
if [ -d "$binary" ] || [ ! -x "$binary" ]; then
  echo "$0: $binary is not an executable file" >&2
  exit 2
fi
# Absolute, since fbp-test starts it from tools/ while the path may be relative to the caller.
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"

for tool in python3 node npx; do
  if ! command -v "$tool" >/dev/null; then
    echo "$0: $tool is required" >&2
    exit 2
  fi
done

if [ ! -e "$tools/node_modules/fbp-protocol/bin/fbp-test" ]; then
  # The optional native wrtc (pulled in by fbp-client's WebRTC transport, unused here) only
  # slows the install down or fails; leave it out.
  echo "tools/node_modules is missing: running npm ci" >&2
  (cd "$tools" && npm ci --omit=optional --no-audit --no-fund) >&2
fi

# A free port: bind port 0 and let the kernel choose. Another process could take it before
# flowd binds it; flowd then exits and the suite fails with "Child exited" (rerun).
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"

# fbp-config.json (gitignored). Python writes it so that paths and arguments with spaces or
# quotes survive both the JSON and the shell that fbp-test runs the command in.
python3 - "$tools/fbp-config.json" "$port" "$runtime_id" "${FLOWD_STDERR:-}" "$binary" "$@" <<'PY'
import json, shlex, sys

path, port, runtime_id, stderr_file, binary = sys.argv[1:6]
extra = sys.argv[6:]
argv = [binary, "serve", "--listen", f"127.0.0.1:{port}", "--id", runtime_id] + extra
command = "exec " + " ".join(shlex.quote(arg) for arg in argv)
if stderr_file:
    command += " 2>>" + shlex.quote(stderr_file)
config = {
    "name": "flowd",
    "command": command,
    "host": "127.0.0.1",
    "port": int(port),
    "collection": "core",
    "version": "0.7",
}
with open(path, "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
PY

echo "fbp-test: $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["command"])' "$tools/fbp-config.json")" >&2
cd "$tools"
status=0
PROJECT_HOME="$tools" npx --no -- fbp-test || status=$?
echo "fbp-test exit status: $status (number of failed tests and hooks)" >&2
exit "$status"

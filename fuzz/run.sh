#!/usr/bin/env bash
# Runs flowd's fuzz targets, each for a while (cargo fuzz on the nightly toolchain).
#
#   fuzz/run.sh [SECONDS] [TARGET...]     # default: 60 seconds each, every target
#
# The committed corpus (fuzz/corpus/TARGET) seeds each run; what the fuzzer finds goes to
# fuzz/target/corpus/TARGET, so runs never touch the committed files. A crash stops the script
# with the input saved under fuzz/artifacts/TARGET and its reproduction command printed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(fbp_reader json_reader protocol_frames packed_ips)
fi
for target in "${targets[@]}"; do
    work="fuzz/target/corpus/$target"
    mkdir -p "$work"
    echo "== fuzz $target for ${seconds}s"
    # No sanitizer: flowd's own unsafe code is not on these paths, and it runs several times
    # faster; debug assertions and overflow checks stay on.
    cargo +nightly fuzz run --sanitizer none "$target" "$work" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
done

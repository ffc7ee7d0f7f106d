# Shared by build-c.sh and build-python.sh (sourced, not run): paths, messages, arguments and
# the Python venv each keeps its tools in.
#
# Before sourcing, set `lang` (the folder under components/ and target/components/, e.g. `c`),
# `tool` (the message prefix) and `script` (the calling script's path, for --help).

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
wit="$repo/wit"
src="$here/$lang"
dist="$here/dist"
build="$repo/target/components/$lang"
venv="$build/venv"
python="${PYTHON:-python3}"

say() { printf '%s: %s\n' "$tool" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# parse_args ARGS...: sets `force` (--force) and `names` (the components named, if any); --help
# prints the calling script's header comment.
parse_args() {
    force=0
    names=()
    local arg
    for arg in "$@"; do
        case "$arg" in
            --force) force=1 ;;
            -h|--help) sed -n '2,/^set -euo pipefail/p' "$script" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
            -*) die "unknown option $arg" ;;
            *) names+=("$arg") ;;
        esac
    done
}

# pip_install PACKAGE==VERSION: installs it into the venv, making the venv first if needed.
pip_install() {
    command -v "$python" >/dev/null || die "$python not found (set PYTHON=...)"
    mkdir -p "$build"
    if [ ! -x "$venv/bin/pip" ]; then
        say "creating venv $venv"
        "$python" -m venv "$venv" || die "cannot create a venv with $python (Debian: apt-get install python3-venv)"
    fi
    say "installing $1 into $venv"
    local start=$SECONDS
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$1"
    say "installed in $((SECONDS - start)) s"
}

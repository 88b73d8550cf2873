#!/usr/bin/env bash
# Measures a newcomer's wait for the README's two set-up commands on a clean
# build: `cargo run [PROFILE] -- demo`, then `cargo test --workspace`, each
# timed on its own, from an empty target directory (and, with
# FRESH_CARGO_HOME=1, an empty cargo cache: crates downloaded too).
#
#   .ci/newcomer-wait.sh NAME [CARGO_ARGS ...]
#
# NAME labels the candidate; CARGO_ARGS are given to both commands, e.g.
#   .ci/newcomer-wait.sh dev
#   .ci/newcomer-wait.sh dev-deps-o1 --config 'profile.dev.package."*".opt-level=1'
#   .ci/newcomer-wait.sh release-demo --release     (the demo only in release)
# Prints one line per command: wall seconds and peak memory. Run it on an
# idle machine: it measures the machine as much as the build.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
shift
work=$(mktemp -d "${TMPDIR:-/tmp}/newcomer-$name.XXXX")
export CARGO_TARGET_DIR="$work/target"
if [ "${FRESH_CARGO_HOME:-0}" = 1 ]; then
  mkdir -p "$work/cargo-home"
  # Keep the toolchain (rustup's), start the registry cache empty.
  export CARGO_HOME="$work/cargo-home"
fi
measure() {
  local label=$1
  shift
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/peak" "$@" >"$work/$label.log" 2>&1 || {
    echo "$name $label: failed, see $work/$label.log" >&2
    exit 1
  }
  end=$(date +%s.%N)
  printf '%s\t%s\twall %.0f s\tpeak %d MiB\n' "$name" "$label" \
    "$(echo "$end - $start" | bc)" "$(($(tail -1 "$work/peak") / 1024))"
}
demo_args=()
test_args=()
for arg in "$@"; do
  demo_args+=("$arg")
  # `--release` is the demo's alone (the README tests in debug).
  [ "$arg" = --release ] || test_args+=("$arg")
done
measure demo cargo run "${demo_args[@]}" -- demo
measure test cargo test --workspace "${test_args[@]}"
echo "logs in $work (remove it when done: it holds a whole target directory)"

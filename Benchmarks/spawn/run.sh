#!/usr/bin/env bash
# Spawn benchmark: N trivial commands (/bin/true) through our runner
# (Host.ProcessRunner via Spawner: spawn, pipes, log, wait) vs fork+exec of the
# same command from a shell loop, in the same run. Bar: at most 2 ms per
# command above the shell's.
#
# usage: Benchmarks/spawn/run.sh [--count N]
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=500
while [ $# -gt 0 ]; do
  case "$1" in
    --count) COUNT=$2; shift 2 ;;
    *) echo "usage: $0 [--count N]" >&2; exit 64 ;;
  esac
done
swift build -c release --product spawn-bench >/dev/null
BIN=$(swift build -c release --show-bin-path)/spawn-bench
WORK=$(mktemp -d "${TMPDIR:-/tmp}/spawn-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Warm both paths once (page cache, dynamic loader).
"$BIN" 20 "$WORK/warm.log" /bin/true >/dev/null
for _ in $(seq 20); do /bin/true; done

start=$(date +%s%N)
for _ in $(seq "$COUNT"); do /bin/true; done
end=$(date +%s%N)
shell=$(awk -v ns=$((end - start)) 'BEGIN { printf "%.6f", ns / 1e9 }')
ours=$("$BIN" "$COUNT" "$WORK/runner.log" /bin/true)
logged=$(grep -c '^.*\$ /bin/true' "$WORK/runner.log" || true)

awk -v n="$COUNT" -v shell="$shell" -v ours="$ours" -v logged="$logged" 'BEGIN {
  s = shell / n * 1000; o = ours / n * 1000
  printf "commands:          %d (/bin/true; %d logged by the runner)\n", n, logged
  printf "shell fork+exec:   %.3f s  (%.2f ms per command)\n", shell, s
  printf "runner:            %.3f s  (%.2f ms per command)\n", ours, o
  printf "runner - shell:    %.2f ms per command (bar: <= 2.00)\n", o - s
  printf "ratio runner/shell: %.2f\n", ours / shell
  exit (o - s <= 2.0 ? 0 : 1)
}'

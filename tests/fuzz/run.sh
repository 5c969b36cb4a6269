#!/usr/bin/env bash
# tests/fuzz/run.sh BUILD SECONDS TARGET... - runs each libFuzzer target
# BUILD/fuzz/fuzz_<TARGET> for SECONDS seconds (what `make fuzz` does).
#
# Each target first replays its seed corpus tests/fuzz/<TARGET>/ (read-only:
# regression inputs live there) and then writes what it discovers into
# BUILD/fuzz/corpus/<TARGET>/, one process, one job. Any finding (a crash, a
# sanitizer report, a leak, a timeout) fails the run; the input is saved as
# BUILD/fuzz/artifacts/<TARGET>-<kind>-<sha1>, and the log's end is printed.
# The figures (runs, exec/s, coverage) of every target are printed at the end.
#
# Everything runs in a network namespace of its own with only loopback up, so
# nothing a fuzz input types (an AT+MQTTCONN to any host) leaves the machine:
# root, or an unprivileged user namespace, is needed.
set -euo pipefail

if (($# < 3)); then
  echo "usage: $0 BUILD SECONDS TARGET..." >&2
  exit 2
fi
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [[ -z "${VMODULE_FUZZ_NETNS:-}" ]]; then
  export VMODULE_FUZZ_NETNS=1
  if unshare -n true 2>/dev/null; then exec unshare -n "$0" "$@"; fi
  if unshare -rn true 2>/dev/null; then exec unshare -rn "$0" "$@"; fi
  echo "run.sh: cannot create a network namespace (run as root, or allow user namespaces)" >&2
  exit 1
fi
ip link set lo up

build=$1 seconds=$2
shift 2
mkdir -p "$build/fuzz/artifacts"
failed=()
summary=()
for t in "$@"; do
  bin=$build/fuzz/fuzz_$t seeds=tests/fuzz/$t corpus=$build/fuzz/corpus/$t log=$build/fuzz/$t.log
  mkdir -p "$corpus"
  echo "== fuzz_$t: ${seconds}s, seeds $seeds ($(find "$seeds" -type f 2>/dev/null | wc -l) files)"
  rc=0
  "$bin" -max_total_time="$seconds" -max_len=8192 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz/artifacts/$t-" "$corpus" "$seeds" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //' || true)
  summary+=("$(printf '%-16s %10s runs %8s exec/s  cov %s' "$t" "${runs:-?}" "${eps:-?}" "${cov:-?}")")
  if ((rc != 0)); then
    echo "run.sh: fuzz_$t FAILED (exit $rc); the end of $log:" >&2
    tail -n 60 "$log" >&2
    failed+=("$t")
  fi
done
echo "== fuzzing summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "run.sh: findings in: ${failed[*]} (inputs in $build/fuzz/artifacts/)" >&2
  exit 1
fi

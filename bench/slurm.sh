#!/usr/bin/env bash
# The supervisor's load on slurmctld, and how fast the end of a Slurm job is reported.
#
#   bench/slurm.sh [JOBS]     (default 50; needs the cluster of `.ci/slurm up` and SLURM_CONF,
#                              e.g. `export $(.ci/slurm env)`; root, for `sdiag -r`)
#
# It runs `trainwatch run --unattended` on a config of JOBS Slurm jobs (each sleeps 2–6 s,
# stamps the time it ended, and exits; the cluster runs a few at a time, the others wait in
# the queue, all followed at once), with the Slurm commands on PATH wrapped to count what
# trainwatch runs, and prints:
#   - commands per minute by kind, and slurmctld's own RPC counts for the run (`sdiag`), next
#     to a poller that asks about each job once a second (JOBS × 60 per minute);
#   - end → "Training Complete" on the console, p50 / p99 / max, from the job's own last stamp
#     (an upper bound: it includes Slurm noticing the end) and from Slurm's EndTime (whole
#     seconds, so up to 1 s more than the truth). Target: under 2 s at p99.
# The binary is TRAINWATCH_BIN, else target/release/trainwatch (built if missing). Everything
# it makes is in a temporary folder, removed at exit; its jobs are cancelled at exit.
set -euo pipefail

N="${1:-50}"
: "${SLURM_CONF:?SLURM_CONF is not set: run .ci/slurm up, then export \$(.ci/slurm env)}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${TRAINWATCH_BIN:-$ROOT/target/release/trainwatch}"
if [ ! -x "$BIN" ]; then
    echo "building the release binary (cargo build --release)…" >&2
    (cd "$ROOT" && cargo build --release --quiet)
fi
WORK="$(mktemp -d)"
TAG="twbench$$"
cleanup() {
    scancel --quiet --name="$(seq -f "${TAG}_%g" 1 "$N" | paste -sd,)" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Count every Slurm command trainwatch runs: a wrapper per command, first on PATH.
mkdir -p "$WORK/shims" "$WORK/ends"
for c in sbatch squeue scontrol sacct scancel; do
    real="$(command -v "$c")"
    printf '#!/bin/sh\necho %s >> %s/calls\nexec %s "$@"\n' "$c" "$WORK" "$real" >"$WORK/shims/$c"
    chmod +x "$WORK/shims/$c"
done

{
    echo '[store]'
    echo 'path = "state/state.db"'
    for i in $(seq 1 "$N"); do
        s=$((2 + i % 5))
        cat <<EOF
[jobs.${TAG}_$i]
argv = ["bash", "-c", "echo start; sleep $s; echo done; date +%s.%N > $WORK/ends/${TAG}_$i"]
executor = "slurm"
log = "logs/${TAG}_$i.log"
status_interval = "1h"
[jobs.${TAG}_$i.slurm]
time_limit = "10m"
EOF
    done
} >"$WORK/tw.toml"

sdiag -r >/dev/null
t0="$EPOCHREALTIME"
(cd "$WORK" && PATH="$WORK/shims:$PATH" "$BIN" run --unattended --color never --config tw.toml 2>"$WORK/stderr") |
    while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done >"$WORK/out"
t1="$EPOCHREALTIME"
sdiag >"$WORK/sdiag"

minutes="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 60 }')"
completed="$(grep -c 'Training Complete' "$WORK/out" || true)"
echo "Slurm supervision, $N jobs, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "  run: $(awk -v m="$minutes" 'BEGIN { printf "%.1f", m * 60 }') s, $completed of $N reported Training Complete"
echo
echo "Commands trainwatch ran (per minute over the run; a per-job poller: $((N * 60))/min)"
for c in squeue scontrol sacct sbatch scancel; do
    n="$(grep -cx "$c" "$WORK/calls" || true)"
    awk -v c="$c" -v n="$n" -v m="$minutes" 'BEGIN { printf "  %-9s %6d  %8.1f/min\n", c, n, n / m }'
done
total="$(wc -l <"$WORK/calls")"
awk -v n="$total" -v m="$minutes" -v j="$N" 'BEGIN { printf "  all       %6d  %8.1f/min  (%.3f of a per-job poller)\n", n, n / m, (n / m) / (j * 60) }'
echo
echo "slurmctld RPCs during the run (sdiag; the supervisor's kinds, then all kinds)"
client='REQUEST_JOB_INFO|REQUEST_FED_INFO|REQUEST_PARTITION_INFO|REQUEST_SUBMIT_BATCH_JOB|REQUEST_CANCEL_JOB|REQUEST_KILL_JOB|REQUEST_UPDATE_JOB'
sed -n '/by message type/,/by user/p' "$WORK/sdiag" | grep 'count:' | while read -r name _ _ cnt _; do
    n="${cnt#count:}"
    awk -v t="$name" -v n="$n" -v m="$minutes" 'BEGIN { printf "  %-34s %6d  %8.1f/min\n", t, n, n / m }'
done
sum() { grep -o 'count:[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }'; }
all="$(sed -n '/by message type/,/by user/p' "$WORK/sdiag" | sum)"
ours="$(sed -n '/by message type/,/by user/p' "$WORK/sdiag" | grep -E "$client" | sum)"
awk -v a="$all" -v o="$ours" -v m="$minutes" 'BEGIN { printf "  query/submit/cancel kinds: %d (%.1f/min); all kinds, slurmd and srun included: %d (%.1f/min)\n", o, o / m, a, a / m }'
echo

# End → report latency per job.
: >"$WORK/lat_stamp"
: >"$WORK/lat_endtime"
for i in $(seq 1 "$N"); do
    name="${TAG}_$i"
    reported="$(grep -F "Training Complete — $name (run" "$WORK/out" | head -1 | cut -d' ' -f1)"
    [ -n "$reported" ] || continue
    if [ -s "$WORK/ends/$name" ]; then
        awk -v r="$reported" -v e="$(cat "$WORK/ends/$name")" 'BEGIN { printf "%.3f\n", r - e }' >>"$WORK/lat_stamp"
    fi
    endtime="$(squeue -h -t all --name="$name" -o '%e' | head -1)"
    if [ -n "$endtime" ] && [ "$endtime" != N/A ]; then
        awk -v r="$reported" -v e="$(date -d "$endtime" +%s)" 'BEGIN { printf "%.3f\n", r - e }' >>"$WORK/lat_endtime"
    fi
done
pct() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) { print "none"; exit }
    p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1];
    printf "%.2f / %.2f / %.2f s (%d jobs)", p50, p99, v[NR], NR }'; }
p99() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR - 1) * 0.99) + 1]; else print 99 }'; }
echo "End of a job → Training Complete on the console, p50 / p99 / max (target: p99 < 2 s)"
echo "  from the job's last stamp:  $(pct "$WORK/lat_stamp")"
echo "  from Slurm's EndTime:       $(pct "$WORK/lat_endtime")"
verdict="$(awk -v p="$(p99 "$WORK/lat_stamp")" 'BEGIN { print (p < 2.0) ? "met" : "missed" }')"
echo "  p99 < 2 s: $verdict"

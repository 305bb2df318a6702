#!/usr/bin/env bash
# trainwatch's benchmark suite, end to end, in one command:
#
#   bench/run.sh              # every figure (about 17 minutes; needs ~12 GB of free disk)
#   bench/run.sh --quick      # smaller data, fewer injections: a smoke run in ~4 minutes
#   bench/run.sh --criterion  # also run the criterion micro-benchmarks (cargo bench)
#
# Builds in release mode, generates its own data in a temporary folder (removed on exit,
# also on Ctrl-C), drives the real `trainwatch` binary, and prints a table of figures,
# targets and ratios. Raw key=value results are kept in $TW_BENCH_OUT if it is set.
# A figure whose piece cannot be measured here is printed as "not measured: <why>".
# Every figure printed is measured in this run, the references included (the protocol's
# 60 s polling watcher and tail -F | grep run against the same kind of job).
set -euo pipefail

QUICK=0
CRITERION=0
for a in "$@"; do
    case "$a" in
        --quick) QUICK=1 ;;
        --criterion) CRITERION=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "unknown option $a (see --help)" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if [ "$QUICK" = 1 ]; then
    TRIAGE_SIZE=256M; FOLLOW_SIZE=1G; INJECTIONS=40; MANY_SECS=10; IDLE_SECS=20; BURST_LINES=100000
    REF_INJECTIONS=6; REF_SPACING_MS=10000
else
    TRIAGE_SIZE=2G; FOLLOW_SIZE=10G; INJECTIONS=200; MANY_SECS=30; IDLE_SECS=120; BURST_LINES=100000
    REF_INJECTIONS=20; REF_SPACING_MS=15000
fi
# The protocol's reference watcher polls every 60 s: its injections are spread over several
# polls (REF_INJECTIONS x REF_SPACING_MS, then at most one more poll), so it takes minutes.

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

say "building (release): trainwatch, twbench"
cargo build --release --quiet -p trainwatch -p twbench
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
TARGET_DIR=${TARGET_DIR:-$ROOT/target}
TW=$TARGET_DIR/release/trainwatch
TB=$TARGET_DIR/release/twbench

WORK=$(mktemp -d -t trainwatch-bench.XXXXXX)
cleanup() {
    # Jobs are killed by twbench itself; this removes the data (GBs) whatever happened.
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
RES=$WORK/results
: > "$RES"
note() { echo "$1=$2" >> "$RES"; }
get() { sed -n "s/^$1=//p" "$RES" | tail -n 1; }

# --- what can be measured here -------------------------------------------------------------
printf 'Traceback (most recent call last):\n  File "t.py", line 1, in <module>\nKeyError: 1\n' > "$WORK/probe.log"
HAVE_TRIAGE=0
if "$TW" triage "$WORK/probe.log" >/dev/null 2>&1 || [ $? -eq 1 ]; then
    "$TW" triage "$WORK/probe.log" 2>&1 | grep -q -i "not wired" || HAVE_TRIAGE=1
fi
HAVE_RUN=0
mkdir -p "$WORK/probe"
if (cd "$WORK/probe" && timeout 60 "$TW" run --unattended --color never --store "$WORK/probe/s.db" \
        --log "$WORK/probe/p.log" -- true >"$WORK/probe/out" 2>&1); then
    HAVE_RUN=1
fi
rm -rf "$WORK/probe"

RG=$(command -v rg || true)
if [ -z "$RG" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "ripgrep missing: installing it with apt-get (for the throughput comparison)"
    (apt-get install -y -qq ripgrep >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq ripgrep >/dev/null 2>&1; }) || true
    RG=$(command -v rg || true)
fi

PATTERN='Error|Exception|Traceback|Failed|AttributeError|KeyError|ValueError|TypeError|RuntimeError|MemoryError'

# --- 1. throughput ---------------------------------------------------------------------------
say "throughput: generating a $TRIAGE_SIZE training log"
LOG=$WORK/train.log
# It ends with a fatal traceback: live catch-up (below) is timed to its report.
"$TB" gen-log --size "$TRIAGE_SIZE" --out "$LOG" --fatal-at-end
BYTES=$(stat -c %s "$LOG")
note tp_bytes "$BYTES"
cat "$LOG" > /dev/null   # into the page cache: every tool reads from memory
say "throughput: GNU grep -c -E, ripgrep -c, trainwatch triage (best of 3 each)"
"$TB" measure --label grep --repeat 3 --bytes "$BYTES" -- grep -c -E "$PATTERN" "$LOG" >> "$RES"
note grep_matches "$(grep -c -E "$PATTERN" "$LOG" || true)"
if [ -n "$RG" ]; then
    "$TB" measure --label rg --repeat 3 --bytes "$BYTES" -- "$RG" -c "$PATTERN" "$LOG" >> "$RES"
else
    note rg_skip "ripgrep not installed"
fi
if [ "$HAVE_TRIAGE" = 1 ]; then
    "$TB" measure --label triage --repeat 3 --bytes "$BYTES" -- "$TW" triage "$LOG" >> "$RES"
    note triage_incidents "$("$TW" triage --json "$LOG" 2>/dev/null | grep -c '"severity":' || true)"
else
    note triage_skip "trainwatch triage is not wired in this build"
fi
# Live catch-up on the same file: a job prints it at full speed, `trainwatch run` follows it.
if [ "$HAVE_RUN" = 1 ]; then
    say "throughput: live catch-up, a job printing the same log at full speed under trainwatch run (best of 2)"
    "$TB" catchup --trainwatch "$TW" --dir "$WORK/catchup" --log "$LOG" --repeat 2 >> "$RES" || true
    rm -rf "$WORK/catchup"
fi
rm -f "$LOG"

# --- 2. detection latency --------------------------------------------------------------------
if [ "$HAVE_RUN" = 1 ]; then
    say "latency: $INJECTIONS injections into a job writing 1 MB/s (console)"
    "$TB" latency --trainwatch "$TW" --dir "$WORK/latency" --injections "$INJECTIONS" --rate 1M >> "$RES" || true
    rm -rf "$WORK/latency"
fi

# --- 2b. the references, measured on the same job: tail -F | grep, and the protocol's watcher
say "latency: tail -F | grep --line-buffered, $INJECTIONS injections (job writing 1 MB/s)"
"$TB" latency-ref --watcher tail-grep --dir "$WORK/tailgrep" --injections "$INJECTIONS" --spacing-ms 50 \
    --rate 1M --label latency_tailgrep >> "$RES" || true
rm -rf "$WORK/tailgrep"
say "latency: the protocol's reference watcher (polls every 60 s, re-reads the whole log), $REF_INJECTIONS injections over $((REF_INJECTIONS * REF_SPACING_MS / 1000)) s"
"$TB" latency-ref --watcher poll --poll-secs 60 --dir "$WORK/reference" --injections "$REF_INJECTIONS" \
    --spacing-ms "$REF_SPACING_MS" --rate 1M --label latency_reference >> "$RES" || true
rm -rf "$WORK/reference"

HAVE_SERVE=0
if "$TW" serve --config "$WORK/none.toml" 2>&1 | grep -q -i "not in this build"; then :; else HAVE_SERVE=1; fi
if [ "$HAVE_SERVE" = 1 ]; then
    say "latency: $INJECTIONS injections, reports to the Discord emulator (trainwatch serve)"
    "$TB" latency-discord --trainwatch "$TW" --dir "$WORK/discord" --injections "$INJECTIONS" --rate 1M >> "$RES" || true
    rm -rf "$WORK/discord"
fi

# --- 3. memory: one log growing to FOLLOW_SIZE -----------------------------------------------
if [ "$HAVE_RUN" = 1 ]; then
    say "memory: following one log as it grows to $FOLLOW_SIZE"
    "$TB" follow --trainwatch "$TW" --dir "$WORK/follow" --size "$FOLLOW_SIZE" >> "$RES" || true
    rm -rf "$WORK/follow"
    say "memory: 50 jobs writing 50 KB/s each for ${MANY_SECS}s"
    "$TB" many --trainwatch "$TW" --dir "$WORK/many" --jobs 50 --rate 50K --secs "$MANY_SECS" --label many >> "$RES" || true
    rm -rf "$WORK/many"
fi

# --- 4. idle cost ----------------------------------------------------------------------------
if [ "$HAVE_RUN" = 1 ]; then
    say "idle: 20 quiet jobs, CPU time over ${IDLE_SECS}s"
    "$TB" many --trainwatch "$TW" --dir "$WORK/idle" --jobs 20 --rate 0 --secs $((IDLE_SECS + 20)) \
        --cpu-window "$IDLE_SECS" --label idle >> "$RES" || true
    rm -rf "$WORK/idle"
fi

# --- 5. bursts -------------------------------------------------------------------------------
if [ "$HAVE_RUN" = 1 ]; then
    say "burst: $BURST_LINES error lines within a second"
    "$TB" burst-run --trainwatch "$TW" --dir "$WORK/burst" --lines "$BURST_LINES" >> "$RES" || true
    rm -rf "$WORK/burst"
fi

if [ -n "${TW_BENCH_OUT:-}" ]; then cp "$RES" "$TW_BENCH_OUT"; fi

# --- the table -------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
mb() { awk -v k="$1" 'BEGIN { if (k == "") print ""; else printf "%.1f", k / 1024 }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || a == "none") print "?"; else if (a + 0 <= b + 0) print "met"; else print "MISSED" }'; }
row() { printf '| %-44s | %-24s | %-17s | %-38s | %-6s |\n' "$@"; }
NM="not measured"

CORES=$(nproc)
MEM_GB=$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo
echo "trainwatch benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC') — ${CORES} cores (${CPU:-unknown CPU}), ${MEM_GB} GB RAM$( [ "$QUICK" = 1 ] && echo ' — QUICK run: reduced sizes')"
echo
row "Figure" "Measured" "Target" "Reference / ratio" "Target"
row "--------------------------------------------" "----------------------" "----------------" "----------------------------------" "------"

# Throughput
G=$(get grep_mb_s); R=$(get rg_mb_s); T=$(get triage_mb_s)
row "Throughput: GNU grep -c -E (pattern list)" "${G:-$NM} MB/s" "" "$(get grep_matches) matching lines" ""
if [ -n "$R" ]; then row "Throughput: ripgrep -c" "$R MB/s" "" "" ""; else row "Throughput: ripgrep -c" "$NM: $(get rg_skip)" "" "" ""; fi
if [ -n "$T" ]; then
    V1=$(awk -v t="$T" -v g="$G" 'BEGIN { print (t > g) ? "met" : "MISSED" }')
    V2=$(awk -v t="$T" -v r="$R" 'BEGIN { if (r == "") print "?"; else print (t >= r / 2) ? "met" : "MISSED" }')
    row "Throughput: trainwatch triage ($TRIAGE_SIZE)" "$T MB/s" "> grep" "$(ratio "$T" "$G")x grep" "$V1"
    row "  - against ripgrep" "" ">= 0.5 x rg" "$(ratio "$T" "$R")x ripgrep" "$V2"
    row "  - peak RSS of triage" "$(mb "$(get triage_rss_peak_kb)") MB" "" "$(get triage_incidents) incidents classified" ""
else
    row "Throughput: trainwatch triage" "$NM: $(get triage_skip)" "> grep, >= rg/2" "" "?"
fi
C=$(get catchup_mb_s)
if [ -n "$C" ] && [ -n "$T" ]; then
    V3=$(awk -v c="$C" -v t="$T" 'BEGIN { print (c >= t / 2) ? "met" : "MISSED" }')
    row "Live catch-up, same log (trainwatch run)" "$C MB/s" ">= 0.5 x triage" "$(ratio "$C" "$T")x triage, report after $(get catchup_s) s" "$V3"
else
    row "Live catch-up, same log (trainwatch run)" "$NM: $(get catchup_error)" ">= 0.5 x triage" "" "?"
fi

# Latency
if [ "$HAVE_RUN" = 1 ] && [ -n "$(get latency_console_p99_ms)" ]; then
    P50=$(get latency_console_p50_ms); P99=$(get latency_console_p99_ms); MX=$(get latency_console_max_ms)
    RP50=$(get latency_reference_p50_ms)
    if [ -n "$RP50" ] && [ "$RP50" != "NaN" ]; then
        REF50="reference watcher p50 $(awk -v r="$RP50" 'BEGIN{printf "%.1f s", r/1000}'): $(awk -v r="$RP50" -v p="$P50" 'BEGIN{printf "%.0f", r/p}')x faster"
    else
        REF50="reference watcher: $NM"
    fi
    row "Latency to console, p50 (n=$(get latency_console_n))" "$P50 ms" "" "$REF50" ""
    row "Latency to console, p99" "$P99 ms" "<= 20 ms" "" "$(le "$P99" 20)"
    row "Latency to console, max" "$MX ms" "" "missed reports: $(get latency_console_missed)" ""
elif [ "$HAVE_RUN" = 1 ]; then
    row "Latency to console" "$NM: $(get latency_error)" "p99 <= 20 ms" "" "?"
else
    row "Latency to console" "$NM: trainwatch run is not wired in this build" "p99 <= 20 ms" "" "?"
fi
# The references, measured above on the same kind of job.
if [ -n "$(get latency_reference_n)" ] && [ "$(get latency_reference_n)" != 0 ]; then
    row "Reference watcher (60 s poll), p50 / p99 / max (n=$(get latency_reference_n))" \
        "$(awk -v a="$(get latency_reference_p50_ms)" -v b="$(get latency_reference_p99_ms)" -v c="$(get latency_reference_max_ms)" 'BEGIN{printf "%.1f / %.1f / %.1f s", a/1000, b/1000, c/1000}')" \
        "" "missed: $(get latency_reference_missed)" ""
else
    row "Reference watcher (60 s poll)" "$NM: no report paired" "" "" ""
fi
if [ -n "$(get latency_tailgrep_n)" ] && [ "$(get latency_tailgrep_n)" != 0 ]; then
    row "tail -F | grep, p50 / p99 / max (n=$(get latency_tailgrep_n))" \
        "$(get latency_tailgrep_p50_ms) / $(get latency_tailgrep_p99_ms) / $(get latency_tailgrep_max_ms) ms" \
        "" "missed: $(get latency_tailgrep_missed); finds lines, classifies nothing" ""
else
    row "tail -F | grep" "$NM: no report paired" "" "" ""
fi
if [ -n "$(get latency_discord_p99_ms)" ]; then
    D99=$(get latency_discord_p99_ms)
    row "Latency to Discord emulator, p50 (n=$(get latency_discord_n))" "$(get latency_discord_p50_ms) ms" "" "via trainwatch serve, REST POST" ""
    row "Latency to Discord emulator, p99" "$D99 ms" "<= 100 ms" "429s answered: $(get latency_discord_429)" "$(le "$D99" 100)"
    row "Latency to Discord emulator, max" "$(get latency_discord_max_ms) ms" "" "missed reports: $(get latency_discord_missed)" ""
elif [ -n "$(get latency_discord_error)" ]; then
    row "Latency to Discord emulator REST" "$NM: $(get latency_discord_error)" "p99 <= 100 ms" "" "?"
else
    row "Latency to Discord emulator REST" "$NM: no Discord adapter in this build" "p99 <= 100 ms" "" "?"
fi

# Memory
if [ "$HAVE_RUN" = 1 ] && [ -n "$(get follow_rss_peak_kb)" ]; then
    FP=$(mb "$(get follow_rss_peak_kb)")
    FLAT=""
    for g in 1 2 5 10; do v=$(get "follow_rss_at_${g}g_kb"); [ -n "$v" ] && FLAT="$FLAT ${g}G:$(mb "$v")"; done
    row "Peak RSS following a log to $(awk -v b="$(get follow_log_bytes)" 'BEGIN{printf "%.1f GB", b/1e9}')" "$FP MB" "<= 50 MB, flat" "readlines(): ~2× log size" "$(le "$FP" 50)"
    row "  - RSS as the log grew (MB)" "${FLAT# }" "" "" ""
    row "  - final error reported after last write" "$(get follow_final_report_lag_ms) ms" "" "wall $(get follow_wall_s) s for the whole log" ""
    MP=$(mb "$(get many_rss_peak_kb)")
    row "Peak RSS supervising $(get many_jobs_started) jobs (50 KB/s each)" "$MP MB" "<= 50 MB" "" "$(le "$MP" 50)"
else
    row "Peak RSS following a 10 GB log" "$NM: trainwatch run is not wired in this build" "<= 50 MB" "" "?"
    row "Peak RSS supervising 50 jobs" "$NM: trainwatch run is not wired in this build" "<= 50 MB" "" "?"
fi

# Idle
if [ -n "$(get idle_cpu_pct_core)" ]; then
    row "Idle: CPU per hour, $(get idle_jobs_started) quiet jobs" "$(get idle_cpu_s_per_hour) s/h ($(get idle_cpu_pct_core) %)" "< 0.1 % of a core" "over $(get idle_cpu_window_s) s; 0.1 % = 3.6 s/h" "$(le "$(get idle_cpu_pct_core)" 0.1)"
else
    WHY=$(get idle_cpu_error); [ "$HAVE_RUN" = 1 ] || WHY="trainwatch run is not wired in this build"
    row "Idle: CPU per hour, 20 quiet jobs" "$NM: $WHY" "< 0.1 % of a core" "" "?"
fi

# Bursts
if [ -n "$(get burst_error_reports)" ]; then
    BR=$(get burst_error_reports)
    BV=$(awk -v n="$BR" -v m="$(mb "$(get burst_rss_peak_kb)")" 'BEGIN { print (n == 1 && m <= 50) ? "met" : "MISSED" }')
    row "Burst: $(get burst_lines) error lines in $(get burst_write_ms) ms" "$BR ERROR report(s)" "1 report + count" "count shown: $(get burst_occurrences); messages: $(get burst_messages)" "$BV"
    row "  - peak RSS during the burst" "$(mb "$(get burst_rss_peak_kb)") MB" "<= 50 MB" "" "$(le "$(mb "$(get burst_rss_peak_kb)")" 50)"
    row "  - 429s from the emulator" "$NM: the burst runs on the console" "all handled" "" "?"
else
    row "Burst: 100,000 error lines in a second" "$NM: trainwatch run is not wired in this build" "1 report" "" "?"
fi

if [ "$CRITERION" = 1 ]; then
    echo
    say "criterion micro-benchmarks (cargo bench --bench hot_paths)"
    cargo bench --quiet --bench hot_paths 2>&1 | grep -E '^[a-z].*/|time:|thrpt:' || true
fi

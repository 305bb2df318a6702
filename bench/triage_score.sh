#!/usr/bin/env bash
# Score `trainwatch triage` on the real-framework fixture corpus (issue 12), each part on its
# own (tuned, held-out; tuned-2 to tuned-44: blind batches measured once, then tuned on;
# held-out-45 to held-out-47: blind batches, measured only):
# category accuracy, first error line accuracy, false
# alarms on clean runs, and a per-fixture table of expected against got.
#
#   bench/triage_score.sh              # every part of tests/fixtures/real
#   bench/triage_score.sh --release    # measure a release build
#   bench/triage_score.sh MANIFEST...  # other manifests (same schema)
#
# Builds trainwatch and twbench first; the scores are printed, never asserted.
set -euo pipefail

PROFILE=debug
MANIFESTS=()
for a in "$@"; do
    case "$a" in
        --release) PROFILE=release ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) MANIFESTS+=("$a") ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ ${#MANIFESTS[@]} -eq 0 ]; then
    MANIFESTS=(tests/fixtures/real/tuned/manifest.json tests/fixtures/real/held-out/manifest.json
        tests/fixtures/real/tuned-2/manifest.json tests/fixtures/real/tuned-3/manifest.json
        tests/fixtures/real/tuned-4/manifest.json tests/fixtures/real/tuned-5/manifest.json
        tests/fixtures/real/tuned-6/manifest.json tests/fixtures/real/tuned-7/manifest.json
        tests/fixtures/real/tuned-8/manifest.json tests/fixtures/real/tuned-9/manifest.json
        tests/fixtures/real/tuned-10/manifest.json tests/fixtures/real/tuned-11/manifest.json
        tests/fixtures/real/tuned-12/manifest.json tests/fixtures/real/tuned-13/manifest.json
        tests/fixtures/real/tuned-14/manifest.json tests/fixtures/real/tuned-15/manifest.json
        tests/fixtures/real/tuned-16/manifest.json
        tests/fixtures/real/tuned-17/manifest.json tests/fixtures/real/tuned-18/manifest.json
        tests/fixtures/real/tuned-19/manifest.json tests/fixtures/real/tuned-20/manifest.json
        tests/fixtures/real/tuned-21/manifest.json tests/fixtures/real/tuned-22/manifest.json
        tests/fixtures/real/tuned-23/manifest.json tests/fixtures/real/tuned-24/manifest.json
        tests/fixtures/real/tuned-25/manifest.json tests/fixtures/real/tuned-26/manifest.json
        tests/fixtures/real/tuned-27/manifest.json tests/fixtures/real/tuned-28/manifest.json
        tests/fixtures/real/tuned-29/manifest.json
        tests/fixtures/real/tuned-30/manifest.json tests/fixtures/real/tuned-31/manifest.json
        tests/fixtures/real/tuned-32/manifest.json
        tests/fixtures/real/tuned-33/manifest.json tests/fixtures/real/tuned-34/manifest.json
        tests/fixtures/real/tuned-35/manifest.json
        tests/fixtures/real/tuned-36/manifest.json tests/fixtures/real/tuned-37/manifest.json
        tests/fixtures/real/tuned-38/manifest.json
        tests/fixtures/real/tuned-39/manifest.json tests/fixtures/real/tuned-40/manifest.json
        tests/fixtures/real/tuned-41/manifest.json
        tests/fixtures/real/tuned-42/manifest.json tests/fixtures/real/tuned-43/manifest.json
        tests/fixtures/real/tuned-44/manifest.json
        tests/fixtures/real/held-out-45/manifest.json tests/fixtures/real/held-out-46/manifest.json
        tests/fixtures/real/held-out-47/manifest.json)
fi

FLAGS=()
[ "$PROFILE" = release ] && FLAGS=(--release)
cargo build --quiet "${FLAGS[@]}" -p trainwatch -p twbench
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
TARGET_DIR=${TARGET_DIR:-$ROOT/target}

echo "triage score, $(date -u +%Y-%m-%d), trainwatch $(git rev-parse --short HEAD 2>/dev/null || echo '?') ($PROFILE)"
echo
"$TARGET_DIR/$PROFILE/twbench" triage-score --trainwatch "$TARGET_DIR/$PROFILE/trainwatch" "${MANIFESTS[@]}"

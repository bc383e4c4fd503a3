#!/usr/bin/env bash
# Fuzz smoke: runs every cargo-fuzz target for a short while, starting from
# the committed seeds (fuzz/seeds/<target>/), and fails if any target finds a
# crash or breaks one of its invariants. Called by .ci/run.
#
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh          # longer, every target
#   FUZZ_SECONDS=3600 scripts/fuzz-smoke.sh layer   # one target, an hour
#
# New inputs go to fuzz/corpus/<target>/ (ignored by git); a crash is saved
# under fuzz/artifacts/<target>/ and replayed with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-35}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(signature_numberotp signature_numero signature_providers parse layer)
fi

if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# One build for every target, so the timed runs below are all fuzzing.
cargo "+$toolchain" fuzz build

status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "--- fuzz $target for ${seconds}s"
  log="$(mktemp)"
  if cargo "+$toolchain" fuzz run "$target" "$PWD/corpus/$target" "$PWD/seeds/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units' "$log" | tail -2 || true
  else
    status=1
    echo "!!! $target failed; the end of its log:"
    tail -n 60 "$log"
  fi
  rm -f "$log"
done
exit "$status"

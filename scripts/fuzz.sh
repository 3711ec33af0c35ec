#!/usr/bin/env bash
# Coverage-guided fuzzing of the JSON parser and the record-query parser with libFuzzer, each for
# FUZZ_SECONDS (default 60). FUZZ_TARGETS picks which (default "json query"). A release build with
# -sanitize=fuzzer in .build-fuzz (its own scratch folder: the flags differ from every other build).
# The corpus libFuzzer grows and any crash input stay in .build-fuzz (ignored by git); the seeds
# in fuzz/corpus/ are only read. Exits non-zero when a target found something.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-json query}"
scratch=.build-fuzz

# -enable-testing: the checks reach the (internal) query parser through @testable import.
# -use-ld=lld: gold stops with an internal error (dwarf_reader.cc) on this link.
swift build -c release --scratch-path "$scratch" --product switchyard-fuzz \
  -Xswiftc -enable-testing -Xswiftc -sanitize=fuzzer -Xswiftc -DSWITCHYARD_LIBFUZZER -Xswiftc -use-ld=lld
binary="$scratch/release/switchyard-fuzz"

status=0
for target in $targets; do
  corpus="$scratch/corpus/$target"
  crashes="$scratch/crashes/$target"
  mkdir -p "$corpus" "$crashes"
  printf '\n==== fuzzing %s for %ss (corpus %s, crash inputs saved in %s/) ====\n' "$target" "$seconds" "$corpus" "$crashes"
  # Swift's backtracer would take seconds per crash; libFuzzer's own handler saves the input.
  if ! SWIFT_BACKTRACE=enable=no SWITCHYARD_FUZZ_TARGET="$target" "$binary" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -dict="fuzz/$target.dict" -artifact_prefix="$crashes/" "$corpus" "fuzz/corpus/$target"; then
    status=1
    echo "fuzz: $target FAILED; the input is in $crashes/. Replay it with:"
    echo "  SWITCHYARD_FUZZ_TARGET=$target $binary $crashes/<file>"
  fi
done
exit "$status"

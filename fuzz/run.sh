#!/usr/bin/env bash
# Build the libFuzzer harnesses with ASan + UBSan and run them.
#   fuzz/run.sh SECONDS [RUNS]     (defaults: 60 s each, unlimited runs)
# Needs clang and libclang-rt (Debian: clang libclang-rt-14-dev).  Inputs that
# crash are written to fuzz/out/ ; copy each into fuzz/regressions/ with a
# test before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
runs=${2:--1}
out=fuzz/out
mkdir -p "$out/corpus_decode" "$out/corpus_roundtrip"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Icsrc/include -Icsrc"
sources=$(ls csrc/*.c)   # the whole C core, as setup.py builds it
clang $flags fuzz/fuzz_decode.c $sources -lm -o "$out/fuzz_decode"
clang $flags fuzz/fuzz_roundtrip.c $sources -lm -o "$out/fuzz_roundtrip"
python3 fuzz/make_seeds.py "$out/seeds"
cp fuzz/regressions/* "$out/seeds/" 2>/dev/null || true
cp tests/golden/*.pj2k "$out/seeds/"   # every format version, so the legacy decoder is seeded too
for target in decode roundtrip; do
  "$out/fuzz_$target" "$out/corpus_$target" "$out/seeds" -max_total_time="$seconds" \
      -runs="$runs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$out/" 2>&1 | tee "$out/$target.log" | grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb|INFO: (Running|Loaded)|==[0-9]+==ERROR)" || true
  if grep -qE "ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error:|deadly signal" "$out/$target.log"; then
    echo "fuzz_$target found a failure: see $out/$target.log" >&2
    exit 1
  fi
done

#!/bin/sh
# Builds the study harness against the repo's C core into out/.
set -e
cd "$(dirname "$0")"
M=../../csrc
mkdir -p out
SRC="bench.c $(ls $M/*.c)"
gcc -O3 -g -std=c11 -ffp-contract=off -march=x86-64-v2 -I$M/include -I$M -o out/bench $SRC -lm
gcc -O3 -g -std=c11 -ffp-contract=off -march=x86-64-v3 -I$M/include -I$M -o out/bench_avx2 $SRC -lm
# clang build (lanes study: the interleaved decoders depend on register allocation; -gdwarf-4 for valgrind 3.19)
if command -v clang >/dev/null; then
clang -O3 -gdwarf-4 -std=c11 -ffp-contract=off -march=x86-64-v3 -I$M/include -I$M -o out/bench_clang $SRC -lm
fi

#!/bin/sh
# usage (from this folder, after build.sh and prep.py): cg.sh out/bench_avx2 IMAGE CODER
# prints callgrind instructions per coefficient of decode_all (entropy decode only)
B=$1; IMG=$2; C=$3
mkdir -p out/cgout
OUT=out/cgout/$(basename $B).$IMG.$C.out
N=$(valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=$OUT ./$B out/data/$IMG.raw cg $C 2>/dev/null | awk '{print $3}' | sed 's/ncoef=//')
IR=$(grep '^summary:' $OUT | awk '{print $2}')
echo "$IMG $C $B Ir=$IR ncoef=$N Ir/coef=$(echo "scale=2; $IR/$N" | bc)"

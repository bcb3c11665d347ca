#!/bin/sh
# usage: cgb.sh out/bench_avx2 IMAGE CODER -- callgrind with branch simulation over decode_all:
# instructions, conditional branches and (valgrind's simple-predictor) mispredictions per coefficient
B=$1; IMG=$2; C=$3
mkdir -p out/cgout
OUT=out/cgout/$(basename $B).$IMG.$C.bs.out
N=$(valgrind --tool=callgrind --branch-sim=yes --collect-atstart=no --callgrind-out-file=$OUT ./$B out/data/$IMG.raw cg $C 2>/dev/null | awk '{print $3}' | sed 's/ncoef=//')
S=$(grep '^summary:' $OUT)
echo "$S" | awk -v n=$N -v img=$IMG -v c=$C '{printf "%s %s Ir/coef=%.1f Bc/coef=%.2f Bcm/coef=%.2f\n", img, c, $2/n, $3/n, $4/n}'

#!/bin/sh
# Lanes study (results_lanes.txt): sizes and decode wall time, best of ROUNDS
# processes (each itself best of 5 timing loops of REPS decodes).
# usage: ./lanes_run.sh [ROUNDS] > out/lanes_time.txt
cd "$(dirname "$0")"
ROUNDS=${1:-3}
CODERS=${CODERS:-"current w1 sw2 sw4 ss2 ss4 ss2m ss4m L_adapt sl1 sl2 sl4 sl2m sl4m slb1 slb2 slb4 slb2m slb4m"}
for r in $(seq $ROUNDS); do
  for img in camera moon astronaut_g mr2 ct693 camera16; do
    f=$img; q=""; reps=10
    [ $img = camera16 ] && { f=camera; q=16; }
    [ $img = mr2 ] && reps=3
    for b in bench_avx2 bench_clang; do
      for c in $CODERS; do
        echo "$r $img $b $(env ${q:+PJQ=$q} out/$b out/data/$f.raw time $c $reps)"
      done
    done
  done
done

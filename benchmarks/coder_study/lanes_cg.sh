#!/bin/sh
# Lanes study: callgrind instructions / conditional branches / simulated mispredictions per coefficient (decode_all only)
cd "$(dirname "$0")"
for img in camera moon astronaut_g mr2 ct693 camera16; do
  f=$img; q=""
  [ $img = camera16 ] && { f=camera; q=16; }
  for c in current w1 ss2m L_adapt slb1 slb2m slb4m; do echo "$img gcc $(env ${q:+PJQ=$q} ./cgb.sh out/bench_avx2 $f $c)"; done
  for c in sl1 sl2m sl4m; do echo "$img clang $(env ${q:+PJQ=$q} ./cgb.sh out/bench_clang $f $c)"; done
done

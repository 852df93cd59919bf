#!/bin/bash
# The 128-channel zoo around v1 (issue 15): every rate but q3 is the released q3 of its family
# (v1's budget: 16,667 steps, 3.56 Gpixel) + 1,500 steps at its own λ (1,000 at lr 3e-4, then 500 at
# 3e-5), the same for gain–shape Λ24 (leech24gs-n128-v1) and for its controls, scalar-n128-v1 and
# bsq-n128-v1 (whose q3 is bench/training/v1_line.sh's). FAMILIES picks them (default: all three).
# Run from the repository root, after
#   python -m leechcodec.bench.training.relay pack --data ../shared/data/train --out runs/flagship/train.tar --max-side 1024
# Resumable: a finished rate has RUNS/<family>-l<λ>/done. Then export (the registry's command says how).
set -e
RUNS=${RUNS:-runs/zoo128}
B="leechcodec train --data runs/flagship/train.tar --tokens 8 --channels 128 --hyper-channels 128 --lr 3e-4 --seed 0 --max-side 1024 --threads 2 --device cpu --amp bf16 --channels-last on --compile on --fused-adam on --batch 8 --crop 128 --steps 18167 --lr-decay-from 0.9724775692189134 --ckpt-every 500 --ckpt-minutes 5"
# λ -> zoo quality: 0.0003 q0, 0.0007 q1, (0.002 q3 = the released v1 models), 0.005 q4, 0.015 q5, 0.04 q6
for L in 0.005 0.0007 0.015 0.0003 0.04; do
  for Q in ${FAMILIES:-leech24gs scalar bsq}; do
    M=$Q-n128-v1.q3; X="--quantizer $Q"
    [ $Q = leech24gs ] && X="$X --gain-noise"
    D=$RUNS/$Q-l$L
    [ -f $D/done ] && continue
    [ -f $D/checkpoint.pt ] || python -m leechcodec.bench.training.relay from-zoo $M --out $D/checkpoint.pt
    $B $X --lmbda $L --out $D
    touch $D/done
  done
done

#!/bin/bash
# The λ = 0.002 line up to v1's budget (16,667 steps, 3.56 Gpixel), segment for segment as
# leech24gs-n128-v1 was trained (bench/results/training/flagship/README.md), for another quantizer:
# its equal-budget control. scalar-n128-v1 was trained this way (runs/scalar), bsq-n128-v1 too.
#   bench/training/v1_line.sh bsq          # RUNS defaults to runs/<quantizer>
#   TOKENS=16 RUNS=runs/gs16 bench/training/v1_line.sh leech24gs   # another token count (default 8)
# leech24gs gets --gain-noise, as leech24gs-n128-v1 had.
# Run from the repository root, after
#   python -m leechcodec.bench.training.relay pack --data ../shared/data/train --out runs/flagship/train.tar --max-side 1024
# Resumable: rerun it; a finished segment leaves RUNS/<segment>.done, an unfinished one resumes from
# its checkpoint. The result is RUNS/lam002/checkpoint.pt (quality 3); bench/training/zoo_n128.sh
# fine-tunes the other rates from its export.
set -e
Q=${1:?usage: v1_line.sh QUANTIZER}
RUNS=${RUNS:-runs/$Q}
T="leechcodec train --data runs/flagship/train.tar --quantizer $Q --tokens ${TOKENS:-8} --channels 128 --hyper-channels 128 --lr 3e-4 --seed 0 --max-side 1024 --threads 2 --device cpu --amp bf16 --channels-last on --compile on --fused-adam on"
[ "$Q" = leech24gs ] && T="$T --gain-noise"
mkdir -p "$RUNS"
seg() {  # seg MARK DIR FROM -- trainer flags: one segment in RUNS/DIR unless RUNS/MARK.done;
  local mark=$1 dir=$2 from=$3; shift 3   # FROM, if given, is copied into a fresh DIR first
  [ -f "$RUNS/$mark.done" ] && return 0
  if [ -n "$from" ] && [ ! -f "$RUNS/$dir/checkpoint.pt" ]; then
    mkdir -p "$RUNS/$dir" && cp "$RUNS/$from"/{checkpoint.pt,log.jsonl} "$RUNS/$dir/"
  fi
  $T --out "$RUNS/$dir" "$@"
  touch "$RUNS/$mark.done"
}
seg run-1500 run "" --lmbda 0.01 --batch 16 --crop 256 --steps 100000 --stop-at 1500 --ckpt-every 500 --ckpt-minutes 5
seg run-4667 run "" --lmbda 0.01 --batch 8 --crop 128 --steps 100000 --stop-at 4667 --ckpt-every 500 --ckpt-minutes 5
seg lam004 lam004 run --lmbda 0.004 --batch 8 --crop 128 --steps 6167 --lr-decay-from 0.9189233014431653 --ckpt-every 250
seg lam002 lam002 lam004 --lmbda 0.002 --batch 8 --crop 128 --steps 16667 --lr-decay-from 0.8800023999520009 --ckpt-every 500 --ckpt-minutes 5

#!/usr/bin/env bash
# Input-pipeline stall of the default configs with the fastest steps (the ones where the host's
# cost per batch shows), from short runs: bash benchmarks/stall_check.sh OUT_DIR
# Trains seven short runs into OUT_DIR (about 3 min on 2 cores), then prints their stall table
# (python -m benchmarks.input_stall; the first logging window, compilation, is left out).
set -euo pipefail
out=${1:?usage: bash benchmarks/stall_check.sh OUT_DIR}
mkdir -p "$out"
run() {
  local name=$1; shift
  rm -rf "${out:?}/$name"
  python -m launch.train --workdir "$out/$name" "$@" --config.eval_every=100000 \
      --config.checkpoint_every=100000 > "$out/$name.log" 2>&1 || { echo "failed: $out/$name.log"; exit 1; }
}
run mdl --config configs/mdl_weights.py:mdl --config.total_steps=2000 --config.log_every=200
run plain --config configs/mdl_weights.py:plain --config.total_steps=2000 --config.log_every=200
run softmax --config configs/cs231n.py:softmax --config.total_steps=1200 --config.log_every=200
run two_layer --config configs/cs231n.py:two_layer --config.total_steps=1200 --config.log_every=200
run ntm_ff --config configs/ntm.py:copy-ntm_ff --config.total_steps=600 --config.log_every=100
run rn_mlp --config configs/relation_networks.py:mlp --config.total_steps=1200 --config.log_every=200
run hull5 --config configs/pointer_networks.py:hull5 --config.total_steps=600 --config.log_every=100
python -m benchmarks.input_stall "$out"

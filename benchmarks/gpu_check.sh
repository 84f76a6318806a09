#!/bin/bash
# The checks that need one accelerator, most valuable first; each writes JSON into $OUT (or ./gpu_check).
#   bash benchmarks/gpu_check.sh [all|lm|rmc|seq2seq|tune|rmc4x4|soclevr|rmc_paper]
# lm:  bf16 training tokens/s and MFU of the ~300M Transformer LM (fused cuDNN and einsum attention)
#      against plain PyTorch (eager and torch.compile), all in one process;
# rmc: step time of the relational RNN's Nth-farthest training at the paper's batch (1600).
# seq2seq: the encoder-decoder Transformer at the paper's base size in bf16 against plain PyTorch.
# tune: the 300M LM (cuDNN attention) under XLA GPU flags and at batch 32, one process each
#       (XLA reads its flags once per process).
# rmc4x4: trains the RMC on the reduced 4 x 4 Nth-farthest task with the authors' optimiser
#       (batch 1600, Adam 1e-4 constant, no clipping) for RMC4X4_SECONDS (default 270 s), to see
#       whether the 50% plateau of the CPU runs moves with 100x more data; metrics.jsonl to $OUT.
# soclevr: the Relation Network at the paper's size on 75 x 75 Sort-of-CLEVR (configs/relation_networks.py
#       :rn_paper, bf16) and the CNN+MLP baseline (:mlp_paper) side by side on the GPU for
#       SOCLEVR_SECONDS (default 470 s), through launch.reproduce.
# rmc_paper: the first RMC_PAPER_SECONDS (default 240 s) of the paper-scale Nth-farthest run
#       (configs/relational_rnn.py:rmc_paper, 8 x 16, batch 1600, the authors' optimiser),
#       through launch.reproduce.
what=${1:-all}
out=${OUT:-gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# JAX takes at most 60% of the GPU's memory, so PyTorch in the same process has room too.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.6
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$out/device.txt"
python3 -c "import jax, flax, optax, torch; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'torch', torch.__version__, jax.devices())" 2>&1 | tee -a "$out/device.txt"
if [[ $what == all || $what == lm ]]; then
  timeout 400 python3 -m benchmarks.transformer_lm --preset 300m --dtype bfloat16 --steps 10 --warmup 3 \
      --attention cudnn,einsum --out "$out/lm_300m_bf16.json" 2>&1 | tee "$out/lm_300m_bf16.txt"
fi
if [[ $what == all || $what == rmc ]]; then
  timeout 150 python3 -m benchmarks.nth_farthest --batch 1600 --steps 20 \
      --out "$out/nth_farthest.json" 2>&1 | tee "$out/nth_farthest.txt"
fi
if [[ $what == seq2seq ]]; then
  timeout 200 python3 -m benchmarks.seq2seq --preset base --dtype bfloat16 --steps 20 \
      --out "$out/seq2seq_base_bf16.json" 2>&1 | tee "$out/seq2seq_base_bf16.txt"
fi
if [[ $what == tune ]]; then
  lm="python3 -m benchmarks.transformer_lm --preset 300m --dtype bfloat16 --steps 10 --warmup 3 --attention cudnn --torch= --peak_n 4096"
  no_triton="--xla_gpu_enable_triton_gemm=false"
  more="$no_triton --xla_gpu_enable_cudnn_layer_norm=true --xla_gpu_enable_latency_hiding_scheduler=true"
  for run in "default_b16||16" "no_triton_b16|$no_triton|16" "more_b16|$more|16" "default_b32||32"; do
    IFS='|' read -r name flags batch <<< "$run"
    echo "== $name: XLA_FLAGS='$flags' batch $batch" | tee -a "$out/tune.log"
    XLA_FLAGS="$flags" timeout 80 $lm --batch "$batch" --out "$out/tune_$name.json" 2>&1 | tee -a "$out/tune.log"
  done
fi
if [[ $what == rmc4x4 ]]; then
  rm -rf /tmp/rmc4x4
  timeout "${RMC4X4_SECONDS:-270}" python3 -m launch.train --config configs/relational_rnn.py:rmc_4x4 \
      --workdir /tmp/rmc4x4 --config.batch_size=1600 --config.data.eval_batch_size=1600 \
      --config.optimizer.learning_rate=1e-4 --config.optimizer.schedule=constant \
      --config.optimizer.clip_norm=0.0 --config.total_steps=1000000 --config.eval_every=2000 \
      --config.checkpoint_every=1000000 --config.log_every=500 > "$out/rmc4x4.log" 2>&1
  echo "rmc4x4 exit $? (124 = stopped at the time limit, as planned)" >> "$out/rmc4x4.log"
  cp /tmp/rmc4x4/metrics.jsonl "$out/rmc4x4_metrics.jsonl"
fi
reproduce() {  # item runs seconds: train the named pod runs, bring back metrics and sessions
  timeout "$3" python3 -m launch.reproduce --items "$1" --tier pod --only "$2" --jobs 2 \
      --runs /tmp/gpu_runs > "$out/reproduce_$1.log" 2>&1
  echo "launch.reproduce exit $? (124 or 76 = stopped at the time limit, as planned)" >> "$out/reproduce_$1.log"
  # Flat names: the device machine brings back no deeper folders. Copy each into
  # runs/<item>/<run>/ and run `python -m launch.reproduce --collect`.
  for run in ${2//,/ }; do
    for f in metrics.jsonl reproduce.jsonl reproduce.log; do
      cp "/tmp/gpu_runs/$1/$run/$f" "$out/$1__${run}__$f"
    done
  done
}
if [[ $what == rmc_paper ]]; then
  reproduce relational_rnn rmc_paper "${RMC_PAPER_SECONDS:-240}"
fi
if [[ $what == soclevr ]]; then
  # Two processes share the GPU: each JAX client takes at most 45% of its memory.
  export XLA_PYTHON_CLIENT_MEM_FRACTION=0.45
  reproduce relation_networks rn_paper,mlp_paper "${SOCLEVR_SECONDS:-470}"
fi

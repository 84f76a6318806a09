#!/bin/bash
# The checks that need one accelerator, most valuable first; each writes JSON into $OUT (or ./gpu_check).
#   bash benchmarks/gpu_check.sh [all|lm|rmc]
# lm:  bf16 training tokens/s and MFU of the ~300M Transformer LM (fused cuDNN and einsum attention)
#      against plain PyTorch (eager and torch.compile), all in one process;
# rmc: step time of the relational RNN's Nth-farthest training at the paper's batch (1600).
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

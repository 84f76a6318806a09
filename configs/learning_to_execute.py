"""Learning to Execute (Santoro et al. 2018, section 4.2): RMC vs LSTM evaluating generated programs.

Variants (after ':'), <core>_<task> with core rmc | lstm and task addition | control | program:
  rmc_addition   (default) CPU size: print(a+b) of two 5-digit numbers; RMC 4 slots x 2 heads
                 x 32, embedding 32, output MLP 1 x 128; mix curriculum; batch 64, Adam 1e-3
  lstm_addition  the same with one LSTM layer of 256 units
  rmc_control, lstm_control, rmc_program, lstm_program
                 the same models on `loop`/`if` programs and on full programs, length 5,
                 nesting 2 (the authors' Sonnet example's defaults)
  <core>_<task>_paper
                 the authors' Sonnet example's scale: batch 1600, Adam 1e-4 (constant; the
                 example decays it to a floor of 8e-5 by step ~21,000), final MLP 4 x 256;
                 RMC 4 slots x 4 heads x 512 (2048 units: the example's "total memory size"),
                 LSTM 1 layer of 1024 units; 1,000,000 steps

Commands, with their wall time measured 2026-11-26 on the 2-core CPU shared with other jobs
(load average 16-25; two of these runs side by side):
  python -m launch.train --config configs/learning_to_execute.py:rmc_addition \
      --workdir runs/relational_rnn/lte_rmc_addition         # 10,000 steps, 56 min
  python -m launch.train --config configs/learning_to_execute.py:lstm_addition \
      --workdir runs/relational_rnn/lte_lstm_addition        # 10,000 steps, 31 min
  python -m launch.train --config configs/learning_to_execute.py:rmc_program \
      --workdir runs/relational_rnn/lte_rmc_program          # 3,000 steps, 60 min
  python -m launch.train --config configs/learning_to_execute.py:lstm_program \
      --workdir runs/relational_rnn/lte_lstm_program         # 3,000 steps, 39 min

Expected test char_accuracy (the paper's per-character accuracy) after these budgets: addition
RMC 47.1%, LSTM 55.8%; programs RMC 17.8%, LSTM 20.5%. At six times the steps the LSTM adds:
  python -m launch.train --config configs/learning_to_execute.py:lstm_addition \
      --workdir runs/relational_rnn/lte_lstm_addition_long --config.total_steps=60000 \
      --config.eval_every=5000 --config.checkpoint_every=2500   # 72.5 min (2026-11-27)
reaches 99.96% (whole answers 99.75%; the paper's LSTM 99.8%). The paper's
(Table 1): addition RMC 99.9%, LSTM 99.8%; control RMC 99.6%, LSTM 97.4%; full programs RMC 79.0%, LSTM 66.1%, with
far longer training (the _paper variants). See papers/relational_rnn/README.md, "Learning to
Execute".
"""
from configs.common import base_config

VARIANTS = ("rmc_addition", "lstm_addition", "rmc_control", "lstm_control", "rmc_program",
            "lstm_program", "rmc_addition_paper", "lstm_addition_paper", "rmc_control_paper",
            "lstm_control_paper", "rmc_program_paper", "lstm_program_paper")


def get_config(arg=None):
  variant = arg or "rmc_addition"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  core, task = variant.split("_")[:2]
  c = base_config()
  c.task = "papers.relational_rnn.execute_task:LearnToExecuteTask"
  c.seed = 0
  c.total_steps = 10_000 if task == "addition" else 3000  # ~30-40 min each on the loaded CPU
  c.batch_size = 64
  c.log_every = 100
  c.eval_every = 1000 if task == "addition" else 500
  c.checkpoint_every = 1000 if task == "addition" else 500

  c.data.task = task
  c.data.length = 5               # digits of every literal (the Sonnet example's max_length)
  c.data.nesting = 2              # composed operations (the Sonnet example's max_nest)
  c.data.curriculum = "mix"       # baseline | mix | combined (Zaremba & Sutskever, section 5)
  c.data.steps_per_level = 500    # combined: steps per level of the naive order
  c.data.mix_fraction = 0.2       # combined: share of mix examples (the authors' Lua code: 1/5)
  c.data.test_examples = 2000     # at the target level, from core.task.heldout_rng(seed)
  c.data.eval_batch_size = 500

  c.model.core = core
  c.model.mem_slots = 4
  c.model.num_heads = 2
  c.model.head_size = 32
  c.model.key_size = 0            # 0: same as head_size
  c.model.num_blocks = 1
  c.model.attention_mlp_layers = 2
  c.model.gate_style = "unit"
  c.model.hidden_size = 256
  c.model.embed_size = 32
  c.model.mlp_sizes = (128,)
  c.model.unroll = 1

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.clip_norm = 1.0

  if variant.endswith("_paper"):
    c.total_steps = 1_000_000
    c.batch_size = 1600
    c.data.eval_batch_size = 1000
    c.model.num_heads = 4
    c.model.head_size = 512
    c.model.hidden_size = 1024
    c.model.embed_size = 64
    c.model.mlp_sizes = (256, 256, 256, 256)
    c.optimizer.learning_rate = 1e-4  # Sonnet: 1e-4 decaying to a floor of 8e-5 by step ~21k
    c.optimizer.schedule = "constant"
    c.optimizer.clip_norm = 0.0
    c.eval_every = 5000
    c.checkpoint_every = 5000
  return c

"""Neural Turing Machines (Graves, Wayne & Danihelka 2014): the paper's tasks and networks.

Variant `<task>-<net>[-paper]`: task in copy | repeat_copy | associative_recall | priority_sort,
net in ntm_lstm | ntm_ff | lstm (the 3-layer LSTM baseline); the default is copy-ntm_lstm.
Heads, controller sizes and learning rates are the paper's Tables 1-3; RMSProp with momentum 0.9
(centred, decay 0.95, eps 1e-4, as in Graves 2013) and element-wise gradient clipping to
(-10, 10), Section 4.6.

Without `-paper` a run is sized for a 2-core CPU: 4 sequences an update, 3x the table's learning
rate, 4,000 updates (16,000 sequences; the paper's Figure 3 runs to 1,000,000, one at a time):

  python -m launch.train --config configs/ntm.py:copy-ntm_lstm --workdir runs/ntm/copy-ntm_lstm

Expected (measured, see papers/ntm/README.md): held-out cost 0.07 bits per sequence after 4,000
updates, and 0.06 wrong bits (of 960) per sequence of length 120 (eval metrics bits_per_sequence,
bit_errors_per_sequence_len{10,20,30,50,120}). Other tasks (measured on the same CPU, seed 0,
with --config.total_steps=N; see the README):
  repeat_copy-ntm_lstm, N=7000: 1.80 bits (chance ~242; on the chance plateau until ~3,000);
  repeat_copy-lstm, N=250: 273.1 bits (about 1.2 CPU-s an update)
  associative_recall-ntm_lstm, N=30000: 8.47 bits (chance 18); associative_recall-lstm, N=3000: 16.4
  priority_sort-ntm_ff, N=1000: 128.3 bits, chance (16 x 8 bits): far too short a run
Repeat copy and associative recall also report cost beyond the training range (eval
bits_per_sequence_len10_rep20, ..._items12, ...). `-paper` is the paper's schedule: one sequence
an update, the table's learning rate, 1,000,000 sequences.
"""
from configs.common import base_config

VARIANTS = (
    "copy-ntm_lstm", "copy-ntm_ff", "copy-lstm", "repeat_copy-ntm_lstm", "repeat_copy-ntm_ff",
    "repeat_copy-lstm", "associative_recall-ntm_lstm", "associative_recall-ntm_ff",
    "associative_recall-lstm", "priority_sort-ntm_lstm", "priority_sort-ntm_ff",
    "priority_sort-lstm", "copy-ntm_lstm-paper", "copy-ntm_ff-paper", "copy-lstm-paper",
    "repeat_copy-ntm_lstm-paper", "repeat_copy-ntm_ff-paper", "repeat_copy-lstm-paper",
    "associative_recall-ntm_lstm-paper", "associative_recall-ntm_ff-paper",
    "associative_recall-lstm-paper", "priority_sort-ntm_lstm-paper", "priority_sort-ntm_ff-paper",
    "priority_sort-lstm-paper")

# Tables 1-3 of the paper: (heads, controller size, controller layers, learning rate).
NTM_FF = dict(copy=(1, 100, 1, 1e-4), repeat_copy=(1, 100, 1, 1e-4),
              associative_recall=(4, 256, 1, 1e-4), priority_sort=(8, 512, 1, 3e-5))
NTM_LSTM = dict(copy=(1, 100, 1, 1e-4), repeat_copy=(1, 100, 1, 1e-4),
                associative_recall=(1, 100, 1, 1e-4), priority_sort=(5, 100, 2, 3e-5))
# (hidden size of each of the 3 layers, learning rate)
LSTM = dict(copy=(256, 3e-5), repeat_copy=(512, 3e-5), associative_recall=(256, 1e-4),
            priority_sort=(128, 3e-5))
# The paper's parameter counts (Tables 1-3), for the README's comparison.
PAPER_PARAMS = {
    "copy-ntm_ff": 17_162, "copy-ntm_lstm": 67_561, "copy-lstm": 1_352_969,
    "repeat_copy-ntm_ff": 16_712, "repeat_copy-ntm_lstm": 66_111, "repeat_copy-lstm": 5_312_007,
    "associative_recall-ntm_ff": 146_845, "associative_recall-ntm_lstm": 70_330,
    "associative_recall-lstm": 1_344_518, "priority_sort-ntm_ff": 508_305,
    "priority_sort-ntm_lstm": 269_038, "priority_sort-lstm": 384_424,
}


def get_config(arg="copy-ntm_lstm"):
  task, net, *rest = arg.split("-")
  paper = rest == ["paper"]
  if task not in NTM_FF or net not in ("ntm_lstm", "ntm_ff", "lstm") or rest not in ([], ["paper"]):
    raise ValueError(f"variant {arg!r} is not <task>-<net>[-paper] with task in {sorted(NTM_FF)} "
                     "and net in ntm_lstm, ntm_ff, lstm")
  c = base_config()
  c.task = "papers.ntm.task:NTMTask"
  c.seed = 0
  c.peak_flops = 1e11  # MFU is meaningless for these tiny recurrent nets; skip measuring it

  c.data.task = task
  c.data.args = {}
  c.data.eval_sequences = 256
  c.data.eval_batch_size = 64
  # Held-out tests beyond the training distribution (NTMTask.generalisation_batches): copy
  # lengths (Figures 4-5); repeat copy (length, repeats), trained on 1-10 of each (Figure 8);
  # associative recall item counts, trained on 2-6 (Figure 11).
  c.data.generalisation_lengths = (10, 20, 30, 50, 120)
  c.data.generalisation_repeats = ((10, 10), (10, 20), (20, 10))
  c.data.generalisation_items = (6, 8, 10, 12, 15, 20)

  c.model.name = "lstm" if net == "lstm" else "ntm"
  c.model.controller = "ff" if net == "ntm_ff" else "lstm"
  c.model.memory_locations, c.model.memory_width = 128, 20
  c.model.shift_range = 1
  c.model.clip = 20.0  # head parameters are clipped to (-20, 20) before their activations
  if net == "lstm":
    c.model.hidden_size, lr = LSTM[task]
    c.model.num_layers = 3
  else:
    heads, size, layers, lr = (NTM_FF if net == "ntm_ff" else NTM_LSTM)[task]
    c.model.num_heads, c.model.controller_size, c.model.controller_layers = heads, size, layers

  c.optimizer.name = "rmsprop"
  c.optimizer.rmsprop_decay = 0.95
  c.optimizer.momentum = 0.9
  c.optimizer.eps = 1e-4
  c.optimizer.clip_value = 10.0
  c.optimizer.schedule = "constant"

  if paper:
    c.batch_size = 1
    c.optimizer.learning_rate = lr
    c.total_steps = 1_000_000
    c.log_every, c.eval_every, c.checkpoint_every = 1000, 50_000, 50_000
  else:
    c.batch_size = 4
    c.optimizer.learning_rate = 3 * lr
    c.total_steps = 4000
    c.log_every, c.eval_every, c.checkpoint_every = 100, 1000, 1000
  return c

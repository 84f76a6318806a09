"""Order Matters (Vinyals, Bengio, Kudlur 2016): sorting N numbers with Read-Process-Write.

Variants (after ':'), each `<size>[_ptrnet][_random|_fixed][_paper]`:
  sort5       (default) N = 5, read-process-write, P = 5 process steps, 1 glimpse, 128 units,
              batch 128, Adam 1e-3, 10,000 steps (the paper's iteration count)
  sort10      N = 10, P = 5 (P of the paper's best N = 10 column, 57%)
  sort15      N = 15, P = 10 (P of the paper's best N = 15 column, 10%)
  *_ptrnet    the Table 1 baseline: an LSTM reads the numbers in their given order (Ptr-Net)
  *_random    the output-order experiment (sec. 5.1.3): the answer as (index, rank) tuples in
              a fresh random order for every example, instead of increasing order
  *_fixed     the answer in one fixed arbitrary order of the ranks
  *_paper     the paper's setting: P as in its best column, 1 glimpse, 10,000 iterations; the
              paper does not give its sizes or optimiser: 256 units (the Ptr-Net paper's),
              batch 128, Adam 1e-3
Keys: model.process_steps (P), model.glimpses, model.hidden, model.encoder (set | lstm),
model.mask_pointed, data.num_elements (N), data.output_order (sorted | fixed | random).

Commands (2-core CPU shared with other jobs, one run at a time; 6 to 14 minutes each):
  python -m launch.train --config configs/order_matters.py:sort5 --workdir runs/om_sort5 \
      --config.total_steps=2000 --config.eval_every=500
  python -m launch.train --config configs/order_matters.py:sort10 --workdir runs/om_sort10_p1 \
      --config.total_steps=2000 --config.eval_every=500 --config.model.process_steps=1
  python -m launch.reproduce --items order_matters --tier cpu     # every run of claims.py

Expected after 2,000 steps (eval `accuracy`: the share of 4,096 held-out sets sorted exactly,
greedy decoding): N = 5, P = 5: 95.2% (the paper, Table 1: 94%); N = 10, P = 5: 85.4% (57%);
N = 10, P = 0: 0.0% (30%). All measured figures: the generated table of
papers/order_matters/README.md.
"""
from configs.common import base_config

SIZES = {"sort5": 5, "sort10": 10, "sort15": 15}
BEST_P = {5: 5, 10: 5, 15: 10}  # Table 1: best column with one glimpse (94%, 57%, 10%)
# The named combinations (`launch.train --list`); get_config accepts every <size>[_ptrnet][_random|_fixed][_paper].
VARIANTS = ("sort5", "sort10", "sort15", "sort5_ptrnet", "sort10_ptrnet", "sort15_ptrnet",
            "sort5_random", "sort5_fixed", "sort10_random", "sort10_fixed", "sort15_random",
            "sort15_fixed", "sort5_paper", "sort10_paper", "sort15_paper", "sort10_ptrnet_paper")


def get_config(arg=None):
  variant = arg or "sort5"
  words = variant.split("_")
  if words[0] not in SIZES or not set(words[1:]) <= {"ptrnet", "random", "fixed", "paper"} or (
      "random" in words and "fixed" in words):
    raise ValueError(f"unknown variant {variant!r}; use sort5, sort10 or sort15, optionally followed by "
                     f"_ptrnet, _random or _fixed, and _paper")
  n = SIZES[words[0]]
  c = base_config()
  c.task = "papers.order_matters.task:SortingTask"
  c.seed = 0
  c.total_steps = 10_000
  c.batch_size = 128
  c.log_every = 100
  c.eval_every = 2000
  c.checkpoint_every = 2000

  c.data.num_elements = n
  c.data.output_order = "random" if "random" in words else "fixed" if "fixed" in words else "sorted"
  c.data.eval_sets = 4096
  c.data.eval_batch_size = 512

  c.model.encoder = "lstm" if "ptrnet" in words else "set"
  c.model.hidden = 128
  c.model.process_steps = BEST_P[n]
  c.model.glimpses = 1
  c.model.mask_pointed = False  # True: never point twice (makes sorting a per-element score)

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.clip_norm = 5.0

  if "paper" in words:
    c.model.hidden = 256
  return c

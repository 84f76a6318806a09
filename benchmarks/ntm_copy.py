"""NTM copy-task training iteration: the project's NTM vs the same NTM written plainly in PyTorch.

  python -m benchmarks.ntm_copy                    # LSTM controller 100, memory 128 x 20, batch 32, T = 41

Both sides: one read and one write head, shifts -1..1, head parameters clipped to +-20, the
equations of papers/ntm/model.py (content addressing, interpolation, circular shift,
sharpening; write before read), a sequence of 20 random 8-bit vectors, a delimiter and 20
answer steps (T = 41 inputs of 9 channels), sigmoid cross entropy on the answer steps, RMSprop
(decay 0.95, momentum 0.9, eps 1e-4, as configs/ntm.py). One iteration = forward, backward and
update. The PyTorch NTM is batched and loops over time in Python, as a plain implementation does.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks import harness

BITS, LENGTH = 8, 20


def copy_batch(batch: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  seq = rng.integers(0, 2, (batch, LENGTH, BITS)).astype(np.float32)
  steps = 2 * LENGTH + 1
  inputs = np.zeros((batch, steps, BITS + 1), np.float32)
  inputs[:, :LENGTH, :BITS] = seq
  inputs[:, LENGTH, BITS] = 1.0  # the delimiter
  return inputs, seq


def jax_side(batch: int, locations: int, width: int, controller: int, steps: int, warmup: int) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from papers.ntm.model import NTM  # pylint: disable=g-import-not-at-top

  model = NTM(BITS, controller="lstm", controller_size=controller, memory_locations=locations,
              memory_width=width)
  inputs, targets = map(jnp.asarray, copy_batch(batch))
  params = model.init(jax.random.PRNGKey(0), inputs)["params"]
  optimizer = optax.rmsprop(1e-4, decay=0.95, eps=1e-4, momentum=0.9)
  opt_state = optimizer.init(params)

  def loss_fn(params):
    logits, _ = model.apply({"params": params}, inputs)
    return optax.sigmoid_binary_cross_entropy(logits[:, LENGTH + 1:], targets).mean()

  step = harness.stepper(harness.optax_train_step(loss_fn, optimizer), params, opt_state)

  result = harness.time_steps(step, lambda r: r.block_until_ready(), steps, warmup)
  result.update(framework="jax (project)", params=sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params)))
  return result


def torch_side(batch: int, locations: int, width: int, controller: int, steps: int, warmup: int) -> dict:
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  n, m, hidden = locations, width, controller
  write_sizes, read_sizes = [m, 1, 1, 3, 1, m, m], [m, 1, 1, 3, 1]

  class PlainNTM(nn.Module):

    def __init__(self):
      super().__init__()
      self.gates = nn.Linear(BITS + 1 + m + hidden, 4 * hidden)
      self.peep = nn.Parameter(torch.zeros(3, hidden))
      self.write_head = nn.Linear(hidden, sum(write_sizes))
      self.read_head = nn.Linear(hidden, sum(read_sizes))
      self.output = nn.Linear(hidden + m, BITS)

    @staticmethod
    def address(memory, w_prev, key, beta, gate, shift, gamma):
      sim = F.cosine_similarity(memory, key[:, None, :], dim=-1, eps=1e-8)
      w = torch.softmax(F.softplus(beta) * sim, -1)
      g = torch.sigmoid(gate)
      w = g * w + (1 - g) * w_prev
      s = torch.softmax(shift, -1)
      w = sum(s[:, k:k + 1] * torch.roll(w, k - 1, dims=-1) for k in range(3))
      return torch.softmax((1 + F.softplus(gamma)) * torch.log(w + 1e-12), -1)

    def forward(self, inputs):
      b = inputs.shape[0]
      memory = torch.full((b, n, m), 1e-6)
      w_read = torch.zeros(b, n)
      w_read[:, 0] = 1.0
      w_write = w_read.clone()
      reads = torch.einsum("bn,bnm->bm", w_read, memory)
      c = h = torch.zeros(b, hidden)
      outputs = []
      for t in range(inputs.shape[1]):
        i, f, g, o = self.gates(torch.cat([inputs[:, t], reads, h], -1)).chunk(4, -1)
        c = torch.sigmoid(f + 1 + self.peep[1] * c) * c + torch.sigmoid(i + self.peep[0] * c) * torch.tanh(g)
        h = torch.sigmoid(o + self.peep[2] * c) * torch.tanh(c)
        key, beta, gate, shift, gamma, erase, add = self.write_head(h).clamp(-20, 20).split(write_sizes, -1)
        w_write = self.address(memory, w_write, key, beta, gate, shift, gamma)
        memory = memory * (1 - w_write[:, :, None] * torch.sigmoid(erase)[:, None]) + \
            w_write[:, :, None] * torch.tanh(add)[:, None]
        key, beta, gate, shift, gamma = self.read_head(h).clamp(-20, 20).split(read_sizes, -1)
        w_read = self.address(memory, w_read, key, beta, gate, shift, gamma)
        reads = torch.einsum("bn,bnm->bm", w_read, memory)
        outputs.append(self.output(torch.cat([h, reads], -1)))
      return torch.stack(outputs, 1)

  model = PlainNTM()
  optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4, alpha=0.95, eps=1e-4, momentum=0.9)
  inputs, targets = map(torch.tensor, copy_batch(batch))

  step = harness.torch_stepper(
      lambda: F.binary_cross_entropy_with_logits(model(inputs)[:, LENGTH + 1:], targets), optimizer)
  result = harness.time_steps(step, lambda r: None, steps, warmup)
  result.update(framework="PyTorch (plain, eager)", params=sum(p.numel() for p in model.parameters()))
  return result


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--locations", type=int, default=128)
  parser.add_argument("--width", type=int, default=20)
  parser.add_argument("--controller", type=int, default=100)
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave as is)")
  parser.add_argument("--single_thread", action="store_true",
                      help="one compute thread each side (CPU): per-CPU-second ratios hold on a busy machine")
  parser.add_argument("--out", default="")
  args = parser.parse_args(argv)
  if min(args.batch, args.locations, args.width, args.controller, args.steps, args.warmup) < 1:
    parser.error("--batch, --locations, --width, --controller, --steps and --warmup must be >= 1")
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    print("error: PyTorch is not installed; `pip install -e .[bench]`", file=sys.stderr)
    return 2
  if args.single_thread:
    harness.single_thread()
  elif args.threads:
    torch.set_num_threads(args.threads)
  sizes = (args.batch, args.locations, args.width, args.controller)
  rows = [jax_side(*sizes, args.steps, args.warmup), torch_side(*sizes, args.steps, args.warmup)]
  for row in rows:
    row["ms_per_iteration"] = row["step_s"] * 1e3
    row["speedup_of_project"] = row["step_s"] / rows[0]["step_s"]
    row["cpu_speedup_of_project"] = row["step_cpu_s"] / rows[0]["step_cpu_s"]
  print(f"NTM copy, LSTM controller {args.controller}, memory {args.locations} x {args.width}, batch "
        f"{args.batch}, T = {2 * LENGTH + 1}; {harness.machine()}")
  harness.print_table(rows, [("framework", "framework", "{}"), ("params", "parameters", "{:,}"),
                             ("ms_per_iteration", "ms / iteration", "{:.1f}"),
                             ("first_call_s", "first iteration (s)", "{:.1f}"),
                             ("speedup_of_project", "project's speed-up", "{:.1f}x"),
                             ("cpu_speedup_of_project", "per CPU second", "{:.1f}x")])
  harness.write_json(args.out, {"sizes": dict(zip(("batch", "locations", "width", "controller"), sizes)),
                                "machine": harness.machine(), "rows": rows,
                                "ratio": rows[1]["step_s"] / rows[0]["step_s"],
                                "cpu_ratio": rows[1]["step_cpu_s"] / rows[0]["step_cpu_s"]})
  return 0


if __name__ == "__main__":
  sys.exit(main())

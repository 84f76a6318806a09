"""ResNet-20 training throughput: the project's flax ResNet-20 vs a plain PyTorch ResNet-20.

  python -m papers.resnet.benchmark                  # CIFAR shape 32 x 32 x 3, batch 128
  python -m papers.resnet.benchmark --single_thread  # one compute thread each side

Both sides, in the same process: the network of He 2015 section 4.2 (3x3 stem of 16, three
stages of 3 basic blocks of 16/32/64 filters, option-A zero-padding shortcuts, batch norm in
training mode, global average pooling, 10 logits), softmax cross entropy, SGD with momentum
0.9 and weight decay 1e-4. One iteration = forward, backward and update of one batch.
PyTorch is a benchmark-only extra (`pip install torch`).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks import harness


def batch(size: int, shape=(32, 32, 3), seed: int = 0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(size, *shape)).astype(np.float32), rng.integers(0, 10, size).astype(np.int64)


def torch_resnet(n: int = 3, num_classes: int = 10, in_channels: int = 3, shortcuts: bool = True):
  """A plain PyTorch CIFAR ResNet of 6n+2 layers (option A), as in the paper's section 4.2;
  `shortcuts=False` gives the plain net of the same layers."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top

  class Block(nn.Module):

    def __init__(self, cin, cout, stride):
      super().__init__()
      self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(cout)
      self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
      self.bn2 = nn.BatchNorm2d(cout)
      self.stride, self.extra = stride, cout - cin

    def forward(self, x):
      y = F.relu(self.bn1(self.conv1(x)))
      y = self.bn2(self.conv2(y))
      if not shortcuts:
        return F.relu(y)
      s = x[:, :, ::self.stride, ::self.stride]
      if self.extra:
        s = F.pad(s, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
      return F.relu(y + s)

  class Net(nn.Module):

    def __init__(self):
      super().__init__()
      self.stem = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
      self.stem_bn = nn.BatchNorm2d(16)
      blocks, cin = [], 16
      for s, width in enumerate((16, 32, 64)):
        for b in range(n):
          blocks.append(Block(cin, width, 2 if s > 0 and b == 0 else 1))
          cin = width
      self.blocks = nn.Sequential(*blocks)
      self.head = nn.Linear(64, num_classes)

    def forward(self, x):
      x = F.relu(self.stem_bn(self.stem(x)))
      return self.head(self.blocks(x).mean((2, 3)))

  return Net()


def jax_side(size: int, steps: int, warmup: int) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from core.train import strip_boxes  # pylint: disable=g-import-not-at-top
  from papers.resnet import Model  # pylint: disable=g-import-not-at-top
  from papers.resnet.compile_time import train_step_fn  # pylint: disable=g-import-not-at-top

  model = Model("resnet20", num_classes=10)
  images, labels = map(jnp.asarray, batch(size))
  variables = strip_boxes(model.init(jax.random.key(0), images[:1], train=False))
  optimizer = optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(0.1, momentum=0.9))
  state = {"params": variables["params"], "stats": variables["batch_stats"],
           "opt": optimizer.init(variables["params"])}

  train_step = jax.jit(train_step_fn(model, optimizer))

  def step():
    state["params"], state["stats"], state["opt"], loss = train_step(
        state["params"], state["stats"], state["opt"], images, labels)
    return loss

  result = harness.time_steps(step, lambda r: r.block_until_ready(), steps, warmup)
  result.update(framework="jax (project)",
                params=sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state["params"])))
  return result


def torch_side(size: int, steps: int, warmup: int) -> dict:
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  model = torch_resnet().train()
  optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
  images, labels = batch(size)
  images = torch.tensor(images).permute(0, 3, 1, 2).contiguous()  # NCHW, PyTorch's layout
  labels = torch.tensor(labels)

  step = harness.torch_stepper(lambda: torch.nn.functional.cross_entropy(model(images), labels), optimizer)
  result = harness.time_steps(step, lambda r: None, steps, warmup)
  result.update(framework="PyTorch (plain, eager)", params=sum(p.numel() for p in model.parameters()))
  return result


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--single_thread", action="store_true",
                      help="one compute thread each side (CPU): per-CPU-second ratios hold on a busy machine")
  parser.add_argument("--out", default="")
  args = parser.parse_args(argv)
  if min(args.batch, args.steps, args.warmup) < 1:
    parser.error("--batch, --steps and --warmup must be >= 1")
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    print("error: PyTorch is not installed; `pip install torch` (a benchmark-only extra)", file=sys.stderr)
    return 2
  if args.single_thread:
    harness.single_thread()
  rows = [jax_side(args.batch, args.steps, args.warmup), torch_side(args.batch, args.steps, args.warmup)]
  for row in rows:
    row["images_per_s"] = args.batch / row["step_s"]
    row["images_per_cpu_s"] = args.batch / row["step_cpu_s"]
  ratio = rows[0]["images_per_s"] / rows[1]["images_per_s"]
  cpu_ratio = rows[0]["images_per_cpu_s"] / rows[1]["images_per_cpu_s"]
  print(f"ResNet-20 training, 32 x 32 x 3, batch {args.batch}; {harness.machine()}")
  harness.print_table(rows, [("framework", "framework", "{}"), ("params", "parameters", "{:,}"),
                             ("images_per_s", "images / s", "{:.0f}"),
                             ("images_per_cpu_s", "images / CPU s", "{:.0f}"),
                             ("first_call_s", "first iteration (s)", "{:.1f}")])
  print(f"ratio jax / PyTorch: {ratio:.2f}x images/s, {cpu_ratio:.2f}x images per CPU second")
  harness.write_json(args.out, {"batch": args.batch, "machine": harness.machine(), "rows": rows,
                                "ratio": ratio, "cpu_ratio": cpu_ratio})
  return 0


if __name__ == "__main__":
  sys.exit(main())

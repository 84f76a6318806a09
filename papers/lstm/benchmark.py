"""Training throughput of a word-level LSTM LM on papers.lstm.RNN against torch.nn.LSTM.

    pip install torch --index-url https://download.pytorch.org/whl/cpu   # benchmark only
    python -m papers.lstm.benchmark --single_thread [--out results.json]

A CPU benchmark: jax runs on the CPU (unless JAX_PLATFORMS says otherwise), as torch does.

The model is Zaremba et al.'s medium LM without dropout: embedding 650, 2 LSTM layers of
650 units, softmax over 10k words, windows of 35 steps, batch 20, SGD (lr 1, global-norm
clipping at 5), float32, the carry passed from window to window (truncated BPTT). The
frameworks train the same model in the same process, in alternating timed rounds (so all
see the same machine load); the ratio is the median of the rounds' ratios. torch starts
from the JAX model's weights and the first step's losses are checked equal: the two
compute one function. Three JAX rows: the model as it is (the scan's own backward pass,
the softmax cross entropy's own gradient: `LanguageModel(..., labels=...)`), the logits
then optax's cross entropy (before), and plain autodiff of the scan as well (before that).
Then the JAX step alone at windows of 35, 70, 140, 280 steps: time per step should grow
linearly with T and compile time stay flat (the scan compiles one step, whatever T).

glibc is told to keep freed memory (`keep_freed_memory`, the whole process: torch too)
unless --system_malloc: otherwise XLA's per-step working memory is unmapped and page-faulted
back in at every step.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from core import platforms
from papers.lstm import rnn
from papers.lstm.model import LanguageModel


@contextlib.contextmanager
def autodiff_scan():
  """Traces the RNN with jax's own gradient of its scan (the kernel gradient summed in the loop)."""
  def plain(cell_cls, reverse, unroll, dtype, kernel, vectors, x_proj, carry, mask):
    carry, outputs, _ = rnn._scan_forward(  # pylint: disable=protected-access
        cell_cls, reverse, unroll, dtype, kernel, vectors, x_proj, carry, mask)
    return carry, outputs
  fast, rnn.scan_cell = rnn.scan_cell, plain
  try:
    yield
  finally:
    rnn.scan_cell = fast


class JaxRun:
  """One compiled SGD step of the LM and its state: params, optimizer state, carry."""

  def __init__(self, args, length: int, params=None, fused_loss: bool = True):
    self.model = LanguageModel(args.vocab, args.hidden, args.layers, init_scale=0.05,
                               unroll=args.scan_unroll)
    tokens = np.random.default_rng(0).integers(0, args.vocab, (args.batch, length + 1))
    self.x, self.y = jnp.asarray(tokens[:, :-1], jnp.int32), jnp.asarray(tokens[:, 1:], jnp.int32)
    if params is None:
      params = nn.unbox(self.model.init(jax.random.key(0), self.x))["params"]
    tx = optax.chain(optax.clip_by_global_norm(args.clip), optax.sgd(args.lr))
    self.state = (params, tx.init(params),
                  rnn.RNN(args.hidden, "lstm", args.layers).zero_carry(args.batch))
    self.state = jax.tree.map(jnp.array, self.state)  # this run's own buffers: the step donates them

    def loss_fn(params, carry):
      if fused_loss:  # the softmax and its cross entropy as one function with its own gradient
        return self.model.apply({"params": params}, self.x, carry, labels=self.y)
      logits, carry = self.model.apply({"params": params}, self.x, carry)
      return optax.softmax_cross_entropy_with_integer_labels(logits, self.y).mean(), carry

    def step(params, opt_state, carry):
      (loss, carry), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, carry)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state, carry), loss

    start = time.perf_counter()
    self.step = jax.jit(step, donate_argnums=(0, 1, 2)).lower(*self.state).compile()
    self.compile_s = time.perf_counter() - start

  def run(self, steps: int) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of this process, last loss) of `steps` train steps."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
      self.state, loss = self.step(*self.state)
    loss = float(loss)
    return time.perf_counter() - start, time.process_time() - cpu, loss


class TorchRun:
  """torch.nn.LSTM LM holding the same weights (gate order i, f, g, o in both)."""

  def __init__(self, args, params, x, y, compile_model: bool = False):
    import torch  # pylint: disable=g-import-not-at-top

    class TorchLM(torch.nn.Module):

      def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(args.vocab, args.hidden)
        self.lstm = torch.nn.LSTM(args.hidden, args.hidden, args.layers)
        self.softmax = torch.nn.Linear(args.hidden, args.vocab)

      def forward(self, tokens, state):  # tokens [T, B]
        h, state = self.lstm(self.embed(tokens), state)
        return self.softmax(h), state

    model = TorchLM()
    t = lambda a: torch.from_numpy(np.array(a, np.float32))
    with torch.no_grad():
      model.embed.weight.copy_(t(params["embed"]["embedding"]))
      for l in range(args.layers):
        p = params["rnn"][f"layer_{l}"]
        getattr(model.lstm, f"weight_ih_l{l}").copy_(t(p["input_kernel"]).T)
        getattr(model.lstm, f"weight_hh_l{l}").copy_(t(p["cell"]["recurrent_kernel"]).T)
        getattr(model.lstm, f"bias_ih_l{l}").copy_(t(p["bias"]))
        getattr(model.lstm, f"bias_hh_l{l}").zero_()
      model.softmax.weight.copy_(t(params["softmax"]["kernel"]).T)
      model.softmax.bias.copy_(t(params["softmax"]["bias"]))
    self.torch, self.model = torch, (torch.compile(model) if compile_model else model)
    self.parameters = list(model.parameters())
    self.optimizer = torch.optim.SGD(self.parameters, lr=args.lr)
    self.clip = args.clip
    self.x, self.y = (torch.from_numpy(np.asarray(a, np.int64).T.copy()) for a in (x, y))
    self.state = tuple(torch.zeros(args.layers, args.batch, args.hidden) for _ in range(2))

  def run(self, steps: int) -> tuple[float, float, float]:
    torch = self.torch
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
      self.state = tuple(s.detach() for s in self.state)
      logits, self.state = self.model(self.x, self.state)
      loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.y.reshape(-1))
      self.optimizer.zero_grad(set_to_none=True)
      loss.backward()
      torch.nn.utils.clip_grad_norm_(self.parameters, self.clip)
      self.optimizer.step()
    loss = loss.item()
    return time.perf_counter() - start, time.process_time() - cpu, loss


def compare_with_torch(args) -> dict:
  """tokens/s of each framework per round, and the first step's losses."""
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  runs = {"jax, papers.lstm.RNN": JaxRun(args, args.bptt)}
  params = jax.device_get(runs["jax, papers.lstm.RNN"].state[0])
  runs["jax, logits then optax cross entropy"] = JaxRun(args, args.bptt, params, fused_loss=False)
  with autodiff_scan():
    runs["jax, and autodiff of the scan"] = JaxRun(args, args.bptt, params, fused_loss=False)
  first = {name: run.run(1)[-1] for name, run in runs.items()}
  x, y = runs["jax, papers.lstm.RNN"].x, runs["jax, papers.lstm.RNN"].y
  runs["torch.nn.LSTM"] = TorchRun(args, params, x, y)
  first["torch.nn.LSTM"] = runs["torch.nn.LSTM"].run(1)[-1]
  if max(first.values()) - min(first.values()) > 1e-4 * abs(first["torch.nn.LSTM"]):
    raise AssertionError(f"the first step's losses differ: {first}")

  notes = {name: f"compiled in {run.compile_s:.0f} s" for name, run in runs.items() if hasattr(run, "compile_s")}
  if args.torch_compile:
    start = time.perf_counter()
    try:
      compiled = TorchRun(args, params, x, y, compile_model=True)
      compiled.run(2)  # compiles (twice: the zero state, then a carried one)
      runs["torch.compile"] = compiled
      notes["torch.compile"] = f"compiled in {time.perf_counter() - start:.0f} s"
    except Exception as e:  # pylint: disable=broad-except
      notes["torch.compile"] = f"skipped: {type(e).__name__}: {str(e).splitlines()[0][:100]}"
  else:
    notes["torch.compile"] = "skipped (--no_torch_compile)"

  rates = {name: [] for name in runs}      # tokens per second of wall-clock time
  cpu_rates = {name: [] for name in runs}  # tokens per CPU second (all threads of the process)
  tokens = args.steps * args.batch * args.bptt
  for _ in range(args.rounds):
    for name, run in runs.items():
      wall, cpu, _ = run.run(args.steps)
      rates[name].append(tokens / wall)
      cpu_rates[name].append(tokens / cpu)
  return {"first_losses": first, "rates": rates, "cpu_rates": cpu_rates, "notes": notes}


def scaling_with_length(args) -> list[dict]:
  """Compile time and step time of the JAX step at each window length."""
  rows = []
  for length in args.lengths:
    run = JaxRun(args, length)
    run.run(1)
    steps = max(1, args.steps * args.bptt // length)  # about the same tokens per round
    timed = [run.run(steps)[:2] for _ in range(args.rounds)]
    step_s = statistics.median(wall for wall, _ in timed) / steps
    cpu_s = statistics.median(cpu for _, cpu in timed) / steps
    rows.append({"length": length, "compile_s": run.compile_s, "step_ms": 1e3 * step_s,
                 "cpu_ms": 1e3 * cpu_s, "cpu_ms_per_time_step": 1e3 * cpu_s / length})
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m papers.lstm.benchmark",
                                   description=__doc__.split("\n", maxsplit=1)[0])
  parser.add_argument("--vocab", type=int, default=10000)
  parser.add_argument("--hidden", type=int, default=650)
  parser.add_argument("--layers", type=int, default=2)
  parser.add_argument("--batch", type=int, default=20)
  parser.add_argument("--bptt", type=int, default=35, help="time steps per window (truncated BPTT)")
  parser.add_argument("--scan_unroll", type=int, default=1, help="time steps per scan iteration")
  parser.add_argument("--lr", type=float, default=1.0)
  parser.add_argument("--clip", type=float, default=5.0)
  parser.add_argument("--steps", type=int, default=5, help="train steps per timed round")
  parser.add_argument("--rounds", type=int, default=5, help="timed rounds (frameworks alternate)")
  parser.add_argument("--lengths", type=int, nargs="*", default=[35, 70, 140, 280])
  parser.add_argument("--single_thread", action="store_true",
                      help="one thread for each framework (fairer on a machine busy with other jobs)")
  parser.add_argument("--no_torch", dest="torch", action="store_false")
  parser.add_argument("--out", default="", help="also write the figures to this JSON file")
  parser.add_argument("--no_torch_compile", dest="torch_compile", action="store_false")
  parser.add_argument("--system_malloc", action="store_true",
                      help="leave glibc's malloc as it is (freed memory returned to the OS)")
  args = parser.parse_args(argv)
  kept = False if args.system_malloc else platforms.keep_freed_memory()  # before jax's threads allocate
  if "JAX_PLATFORMS" not in os.environ:  # torch runs on the CPU: so does jax (no TPU probe)
    jax.config.update("jax_platforms", "cpu")
  summary = {"args": vars(args), "malloc_keeps_freed_memory": kept, "tokens_per_s": {}, "ratios": {},
             "tokens_per_cpu_s": {}, "cpu_ratios": {}, "lengths": []}
  if args.single_thread:  # read when jax creates its CPU client, i.e. at the first jax.devices()
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                               " intra_op_parallelism_threads=1").strip()

  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs"
        f"{' (one thread each)' if args.single_thread else ''}; LM: vocab "
        f"{args.vocab}, {args.layers} x {args.hidden} LSTM, batch {args.batch}, windows of {args.bptt}, "
        f"SGD, float32; malloc {'keeps freed memory' if kept else 'as the system has it'}", flush=True)
  if args.torch:
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise SystemExit("error: torch is not installed: pip install torch --index-url "
                       "https://download.pytorch.org/whl/cpu (or pass --no_torch)")
    if args.single_thread:
      torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    result = compare_with_torch(args)
    summary["first_losses"] = result["first_losses"]
    summary["rounds"] = {"tokens_per_s": result["rates"], "tokens_per_cpu_s": result["cpu_rates"]}
    summary["compile"] = result["notes"]
    print("first-step losses: " + ", ".join(f"{k} {v:.6f}" for k, v in result["first_losses"].items()))
    torch_rates, torch_cpu = result["rates"]["torch.nn.LSTM"], result["cpu_rates"]["torch.nn.LSTM"]
    print(f"\n| training | tokens/s | / torch.nn.LSTM | tokens per CPU second | / torch.nn.LSTM | compile |")
    print("|---|---|---|---|---|---|")
    for name, rates in result["rates"].items():
      cpu_rates = result["cpu_rates"][name]
      ratio = statistics.median(r / t for r, t in zip(rates, torch_rates))
      cpu_ratio = statistics.median(r / t for r, t in zip(cpu_rates, torch_cpu))
      summary["tokens_per_s"][name], summary["ratios"][name] = statistics.median(rates), ratio
      summary["tokens_per_cpu_s"][name], summary["cpu_ratios"][name] = statistics.median(cpu_rates), cpu_ratio
      print(f"| {name} | {statistics.median(rates):,.0f} | {ratio:.2f}x | {statistics.median(cpu_rates):,.0f} | "
            f"{cpu_ratio:.2f}x | {result['notes'].get(name, '')} |")
    if "torch.compile" not in result["rates"]:
      print(f"| torch.compile | - | - | - | - | {result['notes']['torch.compile']} |")
    print(f"(medians of {args.rounds} rounds of {args.steps} steps each; the ratios are the medians of "
          "the rounds' ratios)")
  print("\n| window T | compile (s) | step (ms) | CPU per step (ms) | CPU per time step (ms) |")
  print("|---|---|---|---|---|", flush=True)
  for row in scaling_with_length(args):
    summary["lengths"].append(row)
    print(f"| {row['length']} | {row['compile_s']:.1f} | {row['step_ms']:.0f} | {row['cpu_ms']:.0f} | "
          f"{row['cpu_ms_per_time_step']:.1f} |", flush=True)
  if "jax, papers.lstm.RNN" in summary["ratios"]:  # the figures the claims read
    summary["ratio"] = summary["ratios"]["jax, papers.lstm.RNN"]
    summary["cpu_ratio"] = summary["cpu_ratios"]["jax, papers.lstm.RNN"]
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      json.dump(summary, f, indent=1)


if __name__ == "__main__":
  main()

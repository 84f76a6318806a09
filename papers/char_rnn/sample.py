"""Sample text from a trained char-rnn workdir.

  python -m papers.char_rnn.sample --workdir runs/char_rnn/shakespeare --temperature 0.8 \\
      [--length 1000] [--prime "ROMEO:"] [--seed 0]

Restores the newest checkpoint of the workdir (with the config the run saved in
DIR/config.json), feeds the prime through the network and then draws one byte at a time from
softmax(logits / temperature), feeding each back in; temperature 0 takes the argmax.
"""
from __future__ import annotations

import argparse
import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np

from papers.char_rnn import data


class Sampler:
  """Jitted generation and state read-out for one CharRNN (params: its own, i.e. params["lm"])."""

  def __init__(self, model):
    self.model = model

  def _step(self, params, carry, token):
    logits, carry = self.model.apply({"params": params}, token.reshape(1, 1), carry)
    return logits[0, 0], carry

  @functools.partial(jax.jit, static_argnums=(0, 4))
  def _generate(self, params, prime, key, length, temperature):
    carry = self.model.zero_carry(1)
    carry = jax.lax.scan(lambda c, t: (self._step(params, c, t)[1], None), carry, prime[:-1])[0]

    def step(state, i):
      carry, token = state
      logits, carry = self._step(params, carry, token)
      drawn = jax.random.categorical(jax.random.fold_in(key, i),
                                     logits / jnp.maximum(temperature, 1e-30))
      token = jnp.where(temperature > 0, drawn, jnp.argmax(logits)).astype(jnp.int32)
      return (carry, token), token

    return jax.lax.scan(step, (carry, prime[-1]), jnp.arange(length))[1]

  def generate(self, params, prime: str, length: int, temperature: float, seed: int = 0) -> str:
    """`prime` followed by `length` sampled bytes, decoded as UTF-8 (bad bytes replaced)."""
    ids = data.encode(prime or "\n")
    out = self._generate(params, jnp.asarray(ids, jnp.int32), jax.random.key(seed), length,
                         jnp.float32(temperature))
    return prime + data.decode(np.asarray(out))

  @functools.partial(jax.jit, static_argnums=(0,))
  def states(self, params, ids):
    """Runs over `ids` [T] one step at a time: (logits [T, vocab], carries stacked over T)."""
    def step(carry, token):
      logits, carry = self._step(params, carry, token)
      return carry, (logits, carry)
    return jax.lax.scan(step, self.model.zero_carry(1), ids)[1]


def load_run(workdir: str):
  """(task, params of the CharRNN) from the newest checkpoint of a training workdir, on one device."""
  from core.config import run_config  # pylint: disable=g-import-not-at-top
  from core.task import ConfigError  # pylint: disable=g-import-not-at-top
  from core.train import restore_latest  # pylint: disable=g-import-not-at-top
  from papers.char_rnn.task import CharRNNTask  # pylint: disable=g-import-not-at-top  # (imports us)
  config = run_config(workdir, f"python -m launch.train --config configs/char_rnn.py --workdir {workdir}")
  trainer, state, step = restore_latest(config, workdir)
  if not isinstance(trainer.task, CharRNNTask):
    raise ConfigError(f"{workdir} holds a run of {config.task!r}, not of a char-rnn")
  return trainer.task, state.params["lm"], step


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m papers.char_rnn.sample",
                                   description=__doc__.split("\n", maxsplit=1)[0])
  parser.add_argument("--workdir", required=True, help="a training workdir of configs/char_rnn.py")
  parser.add_argument("--temperature", type=float, default=0.8, help="0 = argmax (greedy)")
  parser.add_argument("--length", type=int, default=1000, help="bytes to sample after the prime")
  parser.add_argument("--prime", default="\n", help="text the network reads first")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  from core.task import ConfigError  # pylint: disable=g-import-not-at-top
  try:
    if args.temperature < 0 or args.length < 1:
      raise ConfigError(f"--temperature must be >= 0 and --length >= 1, got {args.temperature} and "
                        f"{args.length}")
    task, params, _ = load_run(args.workdir)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(task.sampler.generate(params, args.prime, args.length, args.temperature, args.seed))
  return 0


if __name__ == "__main__":
  sys.exit(main())

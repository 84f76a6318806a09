"""The generated regression task (numpy only, so that claims can compute its baselines).

Inputs x ~ N(0, I_D); the target is a fixed "teacher" that reads `relevant` of the D inputs,
split among `hidden` tanh units (N(0, 1) weights times 2 / sqrt(fan-in), output weights +-1),
standardised to mean 0 and variance 1 over 100,000 reference inputs, plus N(0, noise^2) noise.
The teacher, the training cases and the test cases come from three held-out streams of the
seed (core.task.heldout_rng): fixed data sets, drawn by no training step.
"""
from __future__ import annotations

import math

import numpy as np

from core.task import heldout_rng

REFERENCE_INPUTS = 100_000  # inputs that fix the teacher's standardisation


def make_teacher(rng: np.random.Generator, inputs: int, relevant: int, hidden: int):
  """(input indices [relevant], first-layer weights [hidden, relevant / hidden], output signs)."""
  chosen = rng.permutation(inputs)[:relevant]
  fan_in = relevant // hidden
  u = rng.normal(size=(hidden, fan_in)) / math.sqrt(fan_in) * 2.0
  v = rng.choice([-1.0, 1.0], size=hidden)
  return chosen, u, v


def teacher_signal(teacher, x: np.ndarray) -> np.ndarray:
  chosen, u, v = teacher
  parts = x[:, chosen].reshape(len(x), u.shape[0], u.shape[1])
  return np.tanh(np.einsum("bhk,hk->bh", parts, u)) @ v


def make_data(seed: int, inputs: int, relevant: int, hidden: int, noise: float, train_cases: int,
              test_cases: int):
  """{"train_x", "train_y", "test_x", "test_y"} float32, and the noise-free test signal."""
  rng = heldout_rng(seed, 1)
  teacher = make_teacher(rng, inputs, relevant, hidden)
  # In chunks (the same draws as one call): 10 MB at a time rather than 100 MB.
  chunk = 10_000
  reference = np.concatenate([teacher_signal(teacher, rng.normal(size=(min(chunk, REFERENCE_INPUTS - i), inputs)))
                              for i in range(0, REFERENCE_INPUTS, chunk)])
  shift, scale = reference.mean(), reference.std()
  out = {}
  for split, n, stream in (("train", train_cases, 2), ("test", test_cases, 3)):
    r = heldout_rng(seed, stream)
    x = r.normal(size=(n, inputs))
    signal = (teacher_signal(teacher, x) - shift) / scale
    out[f"{split}_x"] = x.astype(np.float32)
    out[f"{split}_y"] = (signal + noise * r.normal(size=n)).astype(np.float32)
    out[f"{split}_signal"] = signal.astype(np.float32)
  return out, teacher


def noise_floor(noise: float) -> float:
  """The best test error relative to the targets' variance: noise^2 / (1 + noise^2)."""
  return noise ** 2 / (1.0 + noise ** 2)


def no_network_bits(targets: np.ndarray, precision: float) -> float:
  """Bits for the targets with no network: a Gaussian of their own mean and variance."""
  n, var = len(targets), float(np.var(targets))
  return n * (-math.log(precision) + 0.5 * (math.log(2 * math.pi) + 1.0 + math.log(var))) / math.log(2)

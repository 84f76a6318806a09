"""The programs of Zaremba & Sutskever 2014, "Learning to Execute": generator, characters, curriculum.

A program is Python source whose last line prints one integer; the model reads the source
character by character and must write what it prints. Two knobs set the difficulty:
`length`, the number of digits of every integer literal, and `nesting`, how many operations
are composed. Each operation takes the previous one's expression as one of its operands (at
a random position) and fresh literals for the others:

  add_sub    (a+b) or (a-b)
  small_mul  (a*k) or (k*a), k in 1..4*length ("multiplication by a small number")
  assign     v=a on its own line, then (v+b) or (v-b)
  loop       v=a, then for x in range(k):v+=b (or -=), k in 1..4*length; the expression is v
  if         (c if a<b else d) or with >

For example (length 4, nesting 3):

  j=8584
  for x in range(8):j+=920
  b=(1500+j)
  print((b+7567))          -> 25011

Tasks: `addition` is print(a+b) of two `length`-digit numbers; `control` composes `loop` and
`if`; `program` composes all five. Everything here is plain Python and numpy: a program is
a pure function of the numpy generator that draws it.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

OPERATIONS = ("add_sub", "small_mul", "assign", "loop", "if")
TASKS = {"addition": (), "control": ("loop", "if"), "program": OPERATIONS}
CURRICULA = ("baseline", "mix", "combined")
VARIABLES = "abcdefghij"  # one fresh name per operation, as in the authors' code: nesting <= 10
MAX_NESTING = len(VARIABLES)

# Characters. 0 pads; GO follows the program ("now answer"), END closes the answer.
PAD, GO, END = 0, "@", "."
CHARACTERS = "\n +-*()<>=:" + GO + END + "0123456789" + "abcdefghijlmnoprstx"
VOCAB_SIZE = 1 + len(CHARACTERS)
_CODE = {c: i + 1 for i, c in enumerate(CHARACTERS)}


@dataclasses.dataclass(frozen=True)
class Program:
  source: str  # Python source; its last line prints the answer
  target: str  # exactly what it prints, without the newline
  operations: tuple[str, ...] = ()  # the composed operations, innermost first


def encode(text: str) -> list[int]:
  return [_CODE[c] for c in text]


def decode(codes) -> str:
  return "".join(CHARACTERS[int(i) - 1] for i in codes if int(i) != PAD)


# ---- the operations: (rng, length, nested expression or None, variables) -> (lines, expr, value)

def _literal(rng, length: int) -> tuple[str, int]:
  value = int(rng.integers(10 ** (length - 1), 10 ** length))  # exactly `length` digits
  return str(value), value


def _operands(rng, length, nested, count):
  """`count` operands: the nested expression at a random position, literals elsewhere."""
  operands = [_literal(rng, length) for _ in range(count - (nested is not None))]
  if nested is not None:
    operands.insert(int(rng.integers(count)), nested)
  return operands


def _small(rng, length) -> int:
  return int(rng.integers(1, 4 * length + 1))


def _add_sub(rng, length, nested, variables):
  (a, va), (b, vb) = _operands(rng, length, nested, 2)
  if rng.integers(2):
    return [], f"({a}+{b})", va + vb
  return [], f"({a}-{b})", va - vb


def _small_mul(rng, length, nested, variables):
  a, va = nested if nested is not None else _literal(rng, length)
  k = _small(rng, length)
  return [], (f"({a}*{k})" if rng.integers(2) else f"({k}*{a})"), va * k


def _assign(rng, length, nested, variables):
  v = variables.pop()
  (a, va), (b, vb) = _operands(rng, length, nested, 2)
  if rng.integers(2):
    return [f"{v}={a}"], f"({v}+{b})", va + vb
  return [f"{v}={a}"], f"({v}-{b})", va - vb


def _loop(rng, length, nested, variables):
  v = variables.pop()
  (a, va), (b, vb) = _operands(rng, length, nested, 2)
  k = _small(rng, length)
  sign = 1 if rng.integers(2) else -1
  op = "+" if sign > 0 else "-"
  return [f"{v}={a}", f"for x in range({k}):{v}{op}={b}"], v, va + sign * k * vb


def _if(rng, length, nested, variables):
  (a, va), (b, vb), (c, vc), (d, vd) = _operands(rng, length, nested, 4)
  if rng.integers(2):
    return [], f"({c} if {a}<{b} else {d})", vc if va < vb else vd
  return [], f"({c} if {a}>{b} else {d})", vc if va > vb else vd


_OPERATION_FNS: dict[str, Callable] = {"add_sub": _add_sub, "small_mul": _small_mul,
                                       "assign": _assign, "loop": _loop, "if": _if}


def generate(rng: np.random.Generator, task: str, length: int, nesting: int) -> Program:
  """One program of `task` at (length, nesting); `nesting` is ignored by `addition`."""
  if task == "addition":
    (a, va), (b, vb) = _literal(rng, length), _literal(rng, length)
    return Program(f"print({a}+{b})", str(va + vb))
  operations = TASKS[task]
  variables = [VARIABLES[i] for i in rng.permutation(len(VARIABLES))]
  lines, nested, used = [], None, []
  for _ in range(nesting):
    name = operations[int(rng.integers(len(operations)))]
    new_lines, expr, value = _OPERATION_FNS[name](rng, length, nested, variables)
    lines += new_lines
    nested = (expr, value)
    used.append(name)
  return Program("\n".join(lines + [f"print({nested[0]})"]), str(nested[1]), tuple(used))


# ---- bounds: the longest source and answer a (task, length, nesting) can produce

def _digits(n: int) -> int:
  return len(str(n))


def max_source_length(task: str, length: int, nesting: int) -> int:
  """Characters of the longest source: each operation adds its own text around the nested one."""
  if task == "addition":
    return len("print(+)") + 2 * length
  k = _digits(4 * length)
  added = {"add_sub": length + 3,                    # (E+a)
           "small_mul": k + 3,                       # (E*k)
           "assign": length + 7,                     # v=E\n(v+b)
           "loop": length + k + 25,                  # v=E\nfor x in range(k):v+=b\n ... v
           "if": 3 * length + 13}                    # (E if a<b else d)
  per_level = max(added[name] for name in TASKS[task])
  return length + nesting * per_level + len("print()")


def max_answer_length(task: str, length: int, nesting: int) -> int:
  """Characters of the longest answer (a minus sign included) from a bound on |value|."""
  top, k = 10 ** length - 1, 4 * length
  if task == "addition":
    return _digits(2 * top)
  bound = top
  for _ in range(nesting):
    grow = {"add_sub": bound + top, "small_mul": bound * k, "assign": bound + top,
            "loop": max(bound + k * top, top + k * bound), "if": bound}
    bound = max(grow[name] for name in TASKS[task])
  return 1 + _digits(bound)


# ---- curriculum: the (length, nesting) of each example of a batch

def levels(length: int, nesting: int) -> list[tuple[int, int]]:
  """The naive curriculum's order: lengths 1..L at nesting 1, then at nesting 2, ..."""
  return [(l, n) for n in range(1, nesting + 1) for l in range(1, length + 1)]


def curriculum_levels(rng, batch_size: int, strategy: str, length: int, nesting: int,
                      step: int = 0, steps_per_level: int = 1, mix_fraction: float = 0.2):
  """(lengths, nestings) of a batch, each [batch_size]: a pure function of (rng, step).

  baseline: the target level. mix: length and nesting drawn uniformly from 1..target for
  every example. combined: each example w.p. `mix_fraction` from mix, else the current
  level of the naive order, which advances one level every `steps_per_level` steps.
  """
  if strategy == "baseline":
    return np.full(batch_size, length), np.full(batch_size, nesting)
  mix_l = rng.integers(1, length + 1, batch_size)
  mix_n = rng.integers(1, nesting + 1, batch_size)
  if strategy == "mix":
    return mix_l, mix_n
  if strategy != "combined":
    raise ValueError(f"curriculum must be one of {', '.join(CURRICULA)}, got {strategy!r}")
  order = levels(length, nesting)
  cur_l, cur_n = order[min(step // steps_per_level, len(order) - 1)]
  use_mix = rng.random(batch_size) < mix_fraction
  return np.where(use_mix, mix_l, cur_l), np.where(use_mix, mix_n, cur_n)

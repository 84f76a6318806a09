"""Context tree weighting (Willems, Shtarkov & Tjalkens 1995), action-conditional as MC-AIXI-CTW
uses it (Veness et al. 2011, sec. 5).

A depth-D CTW predicts the next bit from the last D bits of the history. Every node of the full
binary context tree of depth D keeps the counts of the bits seen in its context and their
Krichevsky-Trofimov probability P_e; the weighted probability is
  P_w = P_e                                 at depth D,
  P_w = 1/2 P_e + 1/2 P_w(child 0) P_w(child 1)   above,
so the root's P_w is the Bayes mixture over all prunings of the tree (tree models), each with
prior 2^-(its code length). Updating with one bit touches the D+1 nodes on its context path.
Bits added with `update_history` (the agent's own actions) extend the context without being
predicted: the model is of the percepts given the actions.

Plain Python (lists, not numpy: the work is one short path per bit, where numpy's per-call
overhead would dominate); the tree is stored implicitly, node (d, v) at index 2^d - 1 + v.
"""
from __future__ import annotations

import itertools
import math

_LOG_HALF = math.log(0.5)


def _logaddexp(a: float, b: float) -> float:
  if a < b:
    a, b = b, a
  return a + math.log1p(math.exp(b - a))


class CTW:

  def __init__(self, depth: int):
    self.depth = depth
    size = 2 ** (depth + 1) - 1
    self.count0 = [0] * size
    self.count1 = [0] * size
    self.log_pe = [0.0] * size
    self.log_pw = [0.0] * size
    self.history: list[int] = []

  def _path(self) -> list[int]:
    """Node indices from depth 0 to depth D for the current context (missing history is 0)."""
    idx, value = [0], 0
    h = self.history
    for d in range(1, self.depth + 1):
      bit = h[-d] if d <= len(h) else 0
      value = 2 * value + bit
      idx.append((1 << d) - 1 + value)
    return idx

  def _refresh(self, path: list[int]):
    """Recompute P_w along the path, deepest first."""
    pw, pe = self.log_pw, self.log_pe
    pw[path[-1]] = pe[path[-1]]
    for d in range(self.depth - 1, -1, -1):
      i = path[d]
      first_child = 2 * i + 1  # children of node i sit at 2i + 1 and 2i + 2 in this layout
      pw[i] = _LOG_HALF + _logaddexp(pe[i], pw[first_child] + pw[first_child + 1])

  def update(self, bit: int):
    """Learn one bit in the current context, then append it to the history."""
    path = self._path()
    c0, c1, pe = self.count0, self.count1, self.log_pe
    for i in path:
      n0, n1 = c0[i], c1[i]
      pe[i] += math.log(((n1 if bit else n0) + 0.5) / (n0 + n1 + 1))
      if bit:
        c1[i] = n1 + 1
      else:
        c0[i] = n0 + 1
    self._refresh(path)
    self.history.append(bit)

  def revert(self):
    """Undo the last `update`."""
    bit = self.history.pop()
    path = self._path()
    c0, c1, pe = self.count0, self.count1, self.log_pe
    for i in path:
      if bit:
        c1[i] -= 1
      else:
        c0[i] -= 1
      n0, n1 = c0[i], c1[i]
      pe[i] -= math.log(((n1 if bit else n0) + 0.5) / (n0 + n1 + 1))
    self._refresh(path)

  def update_history(self, bits):
    self.history.extend(bits)

  def revert_history(self, n: int):
    del self.history[len(self.history) - n:]

  def log_prob(self) -> float:
    """log P_w(all bits learned so far)."""
    return self.log_pw[0]

  def prob_one(self) -> float:
    """P(next bit = 1 | history)."""
    before = self.log_pw[0]
    self.update(1)
    after = self.log_pw[0]
    self.revert()
    return math.exp(after - before)


# ---- brute force, for the tests --------------------------------------------------------------

def _tree_models(depth: int):
  """All prunings of the depth-`depth` context tree: (leaf contexts, code length in bits)."""
  if depth == 0:
    return [([()], 0)]
  out = [([()], 1)]  # a leaf above the maximum depth costs one bit
  for (left, cl), (right, cr) in itertools.product(_tree_models(depth - 1), repeat=2):
    out.append(([(0,) + c for c in left] + [(1,) + c for c in right], 1 + cl + cr))
  return out


def _kt(bits) -> float:
  p, n = 1.0, [0, 0]
  for b in bits:
    p *= (n[b] + 0.5) / (n[0] + n[1] + 1)
    n[b] += 1
  return p


def brute_force_mixture(bits, depth: int) -> float:
  """sum over tree models T of 2^-code(T) prod over leaves of KT(bits seen in that leaf's context),
  each bit's context being the bits before it, newest first, padded with 0."""
  padded = [0] * depth + list(bits)
  contexts = [tuple(reversed(padded[t:t + depth])) for t in range(len(bits))]
  total = 0.0
  for leaves, code in _tree_models(depth):
    p = 2.0 ** -code
    for leaf in leaves:
      p *= _kt([b for b, c in zip(bits, contexts) if c[:len(leaf)] == leaf])
    total += p
  return total

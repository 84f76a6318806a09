"""MC-AIXI-CTW (Veness, Ng, Hutter, Uther & Silver 2011): an action-conditional CTW model of the
percepts, planned over with rhoUCT (their Algorithms 1-4), acting in a Python `bf.Env`.

Encoding: each action, observation and reward symbol takes ceil(log2(k)) bits, least significant
first. A percept sampled from the model can decode to a symbol that does not exist (3 of 2 bits
for 3 symbols); rewards above the range count as the top reward. Rewards are planned with in
[-1, 1] (symbol s -> (s - mid) / mid).

rhoUCT: a decision node picks an untried action at random, then the one maximising
V(ha) / (m (beta - alpha)) + C sqrt(ln T(h) / T(ha)); a chance node samples a percept from the
model (updating it), a new decision node is followed by a random rollout to the horizon; after
each simulation every model update is reverted. The search tree is rebuilt at every real cycle
(the paper keeps the subtree below the real percept: a speed-up, not a change of the policy's
definition).
"""
from __future__ import annotations

import math
import random

from papers.universal_intelligence import bf
from papers.universal_intelligence.ctw import CTW


def _bits(value: int, n: int) -> list[int]:
  return [(value >> i) & 1 for i in range(n)]


def _width(k: int) -> int:
  return max(1, (k - 1).bit_length())


class _Node:
  __slots__ = ("visits", "value", "children")

  def __init__(self):
    self.visits, self.value, self.children = 0, 0.0, {}


class MCAIXI:

  def __init__(self, machine: bf.Machine, depth: int = 12, simulations: int = 50, lookahead: int = 3,
               explore_c: float = math.sqrt(2.0), seed: int = 0):
    self.m = machine
    self.model = CTW(depth)
    self.simulations, self.lookahead, self.c = simulations, lookahead, explore_c
    self.a_bits, self.o_bits = _width(machine.num_actions), _width(machine.num_obs)
    self.r_bits = _width(machine.symbols)
    self.rng = random.Random(seed)

  # ---- the model ----
  def _percept_bits(self, obs: int, reward_symbol: int) -> list[int]:
    return _bits(obs, self.o_bits) + _bits(reward_symbol, self.r_bits)

  def _reward_value(self, symbol: int) -> float:
    mid = self.m.mid
    return (min(symbol, self.m.symbols - 1) - mid) / max(mid, 1)

  def _sample_percept(self) -> float:
    """Samples a percept from the model, learning it (to be reverted); returns its reward."""
    bits = []
    for _ in range(self.o_bits + self.r_bits):
      bit = int(self.rng.random() < self.model.prob_one())
      self.model.update(bit)
      bits.append(bit)
    symbol = sum(b << i for i, b in enumerate(bits[self.o_bits:]))
    return self._reward_value(symbol)

  # ---- rhoUCT ----
  def _select(self, node: _Node, m: int) -> int:
    untried = [a for a in range(self.m.num_actions) if a not in node.children]
    if untried:
      return self.rng.choice(untried)
    scale = 2.0 * m  # (beta - alpha) over m cycles, rewards in [-1, 1]
    log_t = math.log(node.visits)
    return max(node.children, key=lambda a: node.children[a].value / scale
               + self.c * math.sqrt(log_t / node.children[a].visits))

  def _rollout(self, m: int) -> float:
    total = 0.0
    for _ in range(m):
      self.model.update_history(_bits(self.rng.randrange(self.m.num_actions), self.a_bits))
      total += self._sample_percept()
    return total

  def _simulate(self, node: _Node, m: int) -> float:
    """One simulation from a decision node with m cycles to go; the model's changes are
    reverted by `plan`."""
    if m == 0:
      return 0.0
    if node.visits == 0:
      reward = self._rollout(m)
    else:
      a = self._select(node, m)
      chance = node.children.setdefault(a, _Node())
      self.model.update_history(_bits(a, self.a_bits))
      r = self._sample_percept()
      # decision nodes below a chance node are keyed by the sampled percept bits
      key = tuple(self.model.history[-(self.o_bits + self.r_bits):])
      reward = r + self._simulate(chance.children.setdefault(key, _Node()), m - 1)
      chance.value = (reward + chance.visits * chance.value) / (chance.visits + 1)
      chance.visits += 1
    node.value = (reward + node.visits * node.value) / (node.visits + 1)
    node.visits += 1
    return reward

  def plan(self) -> int:
    root = _Node()
    start = len(self.model.history)
    percept = self.o_bits + self.r_bits
    for _ in range(self.simulations):
      self._simulate(root, self.lookahead)
      # undo: each cycle appended a action bits (history only) then percept bits (learned)
      while len(self.model.history) > start:
        for _ in range(percept):
          self.model.revert()
        self.model.revert_history(self.a_bits)
    if not root.children:  # a single simulation is only a rollout from the root
      return self.rng.randrange(self.m.num_actions)
    return max(root.children, key=lambda a: root.children[a].value)

  # ---- acting ----
  def perceive(self, obs: int, reward_symbol: int):
    for bit in self._percept_bits(obs, reward_symbol):
      self.model.update(bit)

  def act(self) -> int:
    action = self.plan()
    self.model.update_history(_bits(action, self.a_bits))
    return action


def episode(program: str, machine: bf.Machine, horizon: int, sign: float, seed: int,
            agent_seed: int, **agent_kw) -> tuple[list[float], bool]:
  """(rewards seen per cycle, void) of MC-AIXI-CTW on one program, rewards times `sign`."""
  env = bf.Env(program, machine, seed)
  agent = MCAIXI(machine, seed=agent_seed, **agent_kw)
  agent.perceive(machine.mid, machine.mid)  # AIQ's first percept: reward 0, observation mid
  rewards = []
  for _ in range(horizon):
    reward, obs, hit = env.cycle(agent.act())
    if hit:
      return rewards, True
    symbol = 0
    for cell in obs:
      symbol = symbol * machine.symbols + cell
    # the reward the agent sees, as a symbol: negating it mirrors the symbol about mid
    r_symbol = env.out[0] if sign > 0 else 2 * machine.mid - env.out[0]
    agent.perceive(symbol, r_symbol)
    rewards.append(sign * reward)
  return rewards, False

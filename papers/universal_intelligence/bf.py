"""The reference machine: BF programs as environments, as in AIQ (Legg & Veness 2011).

A program is a string over `< > + - , . [ ] % #` with three tapes:
- a work tape of `symbols`-valued cells (circular, `TAPE` cells), all starting at the middle
  symbol `mid`, which is also BF's "zero": `[` skips its loop when the cell holds `mid`;
- an input tape holding the agent's actions, newest first (`,` reads the next one; past the
  end of the kept history it reads `mid`);
- an output tape of 1 reward cell and `obs_cells` observation cells (`.` writes the next one).

One cycle of the environment: the agent's action is pushed onto the input tape, the program
runs from its first instruction until it executes `#`, fills the output tape, or spends
`max_steps` instructions. The reward is 100 (out[0] - mid) / mid, in [-100, 100]; the
observation is out[1:]. The work tape and the output tape keep their contents from cycle to
cycle. `%` writes a random symbol (a hash of (seed, cycle, step), so that the two antithetic
runs of a program see the same random numbers and the JAX and Python interpreters agree).

Non-halting: a cycle that spends the whole budget voids the episode; as in AIQ (which drops
the run and draws another program from the same stratum) the estimator leaves it out.

Sampling (AIQ's `random_program`): symbols are drawn uniformly from the 10 instructions, with
`#` read as `]`; the program ends at the first unmatched `]`, which becomes `#`. A program of
length n thus has probability 10^-n (0.1 per symbol, 0.2 for `]`), i.e. 2^-K with K its length
in bits: the universal prior over this machine's self-delimiting programs.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

INSTRUCTIONS = "<>+-,.[]#%"
OP = {c: i for i, c in enumerate(INSTRUCTIONS)}
TAPE = 128      # work tape cells (AIQ: 100,000; a short circular tape keeps the JAX state small)
HISTORY = 25    # actions kept on the input tape (AIQ's value)


@dataclasses.dataclass(frozen=True)
class Machine:
  symbols: int = 3        # tape symbols; odd keeps rewards balanced (AIQ's default BF(3))
  obs_cells: int = 1
  max_steps: int = 1000   # instructions per cycle (AIQ's value)

  @property
  def mid(self) -> int:
    return (self.symbols - 1) // 2

  @property
  def num_actions(self) -> int:
    return self.symbols

  @property
  def num_obs(self) -> int:
    return self.symbols ** self.obs_cells

  def reward(self, cell):
    half = (self.symbols - 1) / 2
    return 100.0 * (cell - half) / half


# ---- sampling --------------------------------------------------------------------------------

def sample_programs(rng: np.random.Generator, n: int, max_len: int = 48) -> tuple[list[str], float]:
  """n programs drawn from the 10^-length prior, conditioned on length <= max_len.

  Returns the programs and the fraction of draws that were longer (the prior mass left out).
  """
  out, longer, drawn = [], 0, 0
  while len(out) < n:
    m = 2 * (n - len(out)) + 64
    sym = rng.integers(0, len(INSTRUCTIONS), size=(m, max_len), dtype=np.int8)
    sym[sym == OP["#"]] = OP["]"]
    depth = np.cumsum((sym == OP["["]).astype(np.int16) - (sym == OP["]"]), axis=1, dtype=np.int16)
    ended = depth < 0
    has_end = ended.any(axis=1)
    end = np.argmax(ended, axis=1)
    drawn += m
    longer += int((~has_end).sum())
    for row, e in zip(sym[has_end], end[has_end]):
      out.append("".join(INSTRUCTIONS[s] for s in row[:e]) + "#")
  return out[:n], longer / drawn


def length_distribution(max_len: int) -> np.ndarray:
  """Exact P(length = n) for n = 0..max_len under the sampler (a walk on the loop depth)."""
  probs = np.zeros(max_len + 1)
  depth = np.zeros(max_len + 2)
  depth[0] = 1.0                        # P(depth d after the symbols so far, none unmatched)
  for n in range(1, max_len + 1):
    probs[n] = depth[0] * 0.2           # an unmatched `]` (or `#`) ends it at length n
    new = np.zeros_like(depth)
    new[1:] += depth[:-1] * 0.1         # `[`
    new += depth * 0.7                  # the 7 other instructions
    new[:-1] += depth[1:] * 0.2         # a matched `]`
    depth = new
  return probs


def is_passive(program: str) -> bool:
  """A program that never reads an action (or never writes output) ignores the agent: under
  antithetic evaluation every agent scores exactly 0 on it."""
  return "," not in program or "." not in program


def encode(programs: list[str], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(ops, jump) int32 arrays [n, length]: opcodes padded with `#`, and for each bracket the
  index of its partner."""
  length = length or max(len(p) for p in programs)
  ops = np.full((len(programs), length), OP["#"], np.int32)
  jump = np.zeros((len(programs), length), np.int32)
  for i, p in enumerate(programs):
    stack = []
    for j, c in enumerate(p):
      ops[i, j] = OP[c]
      if c == "[":
        stack.append(j)
      elif c == "]":
        k = stack.pop()
        jump[i, j], jump[i, k] = k, j
  return ops, jump


# ---- random numbers shared by both interpreters ----------------------------------------------

def _mix(x):
  """lowbias32 integer hash on uint32 (numpy or jax arrays)."""
  x = x ^ (x >> 16)
  x = x * np.uint32(0x7FEB352D)
  x = x ^ (x >> 15)
  x = x * np.uint32(0x846CA68B)
  return x ^ (x >> 16)


def random_symbol(seed, cycle, step, symbols: int):
  xp = jnp if isinstance(seed, jax.Array) else np
  u = lambda v: xp.asarray(v).astype(xp.uint32)
  with np.errstate(over="ignore"):  # uint32 arithmetic wraps on purpose
    h = _mix(u(seed) ^ _mix(u(cycle) * np.uint32(0x9E3779B9) ^ u(step)))
  return (h % np.uint32(symbols)).astype(xp.int32)


# ---- plain Python interpreter (the reference; MC-AIXI's environment) -------------------------

class Env:
  """One program as an environment; `cycle(action)` -> (reward, obs tuple, hit_limit)."""

  def __init__(self, program: str, machine: Machine = Machine(), seed: int = 0):
    self.program, self.m, self.seed = program, machine, seed
    self.tape = [machine.mid] * TAPE
    self.ptr = 0
    self.inputs = [machine.mid] * HISTORY
    self.out = [machine.mid] * (1 + machine.obs_cells)
    self.cycles = 0

  def cycle(self, action: int):
    self.inputs = [action] + self.inputs[:-1]
    self.steps, self.in_ptr, self.out_ptr, self.end = 0, 0, 0, False
    self._run(0)
    self.cycles += 1
    hit = self.steps >= self.m.max_steps
    return self.m.reward(self.out[0]), tuple(self.out[1:]), hit

  def _run(self, pc: int) -> int:
    """Runs the block starting at pc (recursing into loops) until its `]`, or until the cycle
    ends; returns the index of that `]`."""
    m, prog = self.m, self.program
    while not self.end:
      if self.steps >= m.max_steps or self.out_ptr == len(self.out):
        self.end = True
        break
      c = prog[pc]
      self.steps += 1
      if c == "<":
        self.ptr = (self.ptr - 1) % TAPE
      elif c == ">":
        self.ptr = (self.ptr + 1) % TAPE
      elif c == "+":
        self.tape[self.ptr] = (self.tape[self.ptr] + 1) % m.symbols
      elif c == "-":
        self.tape[self.ptr] = (self.tape[self.ptr] - 1) % m.symbols
      elif c == ".":
        self.out[self.out_ptr] = self.tape[self.ptr]
        self.out_ptr += 1
      elif c == ",":
        if self.in_ptr >= HISTORY - 1:
          self.tape[self.ptr] = m.mid
        else:
          self.tape[self.ptr] = self.inputs[self.in_ptr]
          self.in_ptr += 1
      elif c == "%":
        self.tape[self.ptr] = int(random_symbol(self.seed, self.cycles, self.steps - 1, m.symbols))
      elif c == "[":
        close = pc
        depth = 0
        while True:  # find the partner `]`
          depth += {"[": 1, "]": -1}.get(prog[close], 0)
          if depth == 0:
            break
          close += 1
        while self.tape[self.ptr] != m.mid and not self.end:
          self._run(pc + 1)
        pc = close
      elif c == "]":
        return pc
      elif c == "#":
        self.end = True
      pc += 1
    return pc


# ---- JAX interpreter -------------------------------------------------------------------------

def init_state(machine: Machine):
  """The state of one environment before its first cycle."""
  return {"tape": jnp.full((TAPE,), machine.mid, jnp.int32), "ptr": jnp.int32(0),
          "inputs": jnp.full((HISTORY,), machine.mid, jnp.int32),
          "out": jnp.full((1 + machine.obs_cells,), machine.mid, jnp.int32), "cycle": jnp.int32(0)}


def cycle(machine: Machine, ops, jump, seed, state, action, skip=False):
  """One cycle of one program (vmap it for many): -> (state, reward, obs index, hit_limit).

  `skip` (a void episode) returns at once, so the lanes of a vmapped batch that already broke
  the budget cost nothing.
  """
  m = machine
  n_out = 1 + m.obs_cells
  inputs = jnp.concatenate([jnp.reshape(action, (1,)).astype(jnp.int32), state["inputs"][:-1]])

  def cond(c):
    return ~c["done"]

  def body(c):
    pc, tape, ptr, out = c["pc"], c["tape"], c["ptr"], c["out"]
    op = ops[pc]
    cell = tape[ptr]
    read_ok = c["in_ptr"] < HISTORY - 1
    rand = random_symbol(seed, state["cycle"], c["steps"], m.symbols)
    new_cell = jnp.select(
        [op == OP["+"], op == OP["-"], op == OP[","], op == OP["%"]],
        [(cell + 1) % m.symbols, (cell - 1) % m.symbols,
         jnp.where(read_ok, inputs[jnp.minimum(c["in_ptr"], HISTORY - 1)], m.mid), rand], cell)
    write = op == OP["."]
    out = jnp.where(write, out.at[jnp.minimum(c["out_ptr"], n_out - 1)].set(cell), out)
    # `[` on mid skips past its `]`; `]` on non-mid jumps back to just after its `[`
    jumps = ((op == OP["["]) & (cell == m.mid)) | ((op == OP["]"]) & (cell != m.mid))
    steps = c["steps"] + 1
    out_ptr = c["out_ptr"] + write.astype(jnp.int32)
    return {"pc": jnp.where(jumps, jump[pc] + 1, pc + 1), "tape": tape.at[ptr].set(new_cell),
            "ptr": (ptr + (op == OP[">"]).astype(jnp.int32) - (op == OP["<"]).astype(jnp.int32)) % TAPE,
            "out": out, "out_ptr": out_ptr,
            "in_ptr": c["in_ptr"] + ((op == OP[","]) & read_ok).astype(jnp.int32), "steps": steps,
            "done": (op == OP["#"]) | (out_ptr == n_out) | (steps >= m.max_steps)}

  c = {"pc": jnp.int32(0), "tape": state["tape"], "ptr": state["ptr"], "out": state["out"],
       "out_ptr": jnp.int32(0), "in_ptr": jnp.int32(0), "steps": jnp.int32(0),
       "done": jnp.asarray(skip)}
  c = jax.lax.while_loop(cond, body, c)
  new = {"tape": c["tape"], "ptr": c["ptr"], "inputs": inputs, "out": c["out"],
         "cycle": state["cycle"] + 1}
  obs = jnp.int32(0)
  for cell in c["out"][1:]:  # observation cells as one index, first cell most significant
    obs = obs * m.symbols + cell
  return new, m.reward(c["out"][0].astype(jnp.float32)), obs, c["steps"] >= m.max_steps


def run_actions(machine: Machine, ops, jump, seed, actions):
  """A fixed action sequence through one program: -> (rewards, obs, hit) per cycle (the
  interpreter without an agent; vmap for many programs)."""
  def step(state, action):
    state, r, obs, hit = cycle(machine, ops, jump, seed, state, action)
    return state, (r, obs, hit)
  return jax.lax.scan(step, init_state(machine), actions)[1]

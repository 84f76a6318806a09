"""Reference agents as pure JAX functions, and the episode loop that runs many at once.

An agent is (init, act): `init(key)` -> state; `act(state, obs, reward, key)` -> (state, action),
called once per cycle with the percept the last action produced (the first call gets reward 0
and the observation `mid`, as AIQ's `reset`). Learning happens inside `act`, so a whole episode
is one `lax.scan` and thousands of (program, sign) episodes are one jitted, vmapped call.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from papers.universal_intelligence import bf


@dataclasses.dataclass(frozen=True)
class Random:
  num_actions: int

  def init(self, key):
    del key
    return {}

  def act(self, state, obs, reward, key):
    del obs, reward
    return state, jax.random.randint(key, (), 0, self.num_actions)


@dataclasses.dataclass(frozen=True)
class QLearning:
  """Tabular Q-learning (Watkins) on the last observation as state, epsilon-greedy.

  Rewards are scaled to [-1, 1]; ties between greedy actions are broken at random so a fresh
  table does not always pick action 0.
  """
  num_actions: int
  num_obs: int
  alpha: float = 0.5
  gamma: float = 0.5
  epsilon: float = 0.05
  q_init: float = 0.0

  def init(self, key):
    del key
    return {"q": jnp.full((self.num_obs, self.num_actions), self.q_init, jnp.float32),
            "s": jnp.int32(0), "a": jnp.int32(-1)}

  def act(self, state, obs, reward, key):
    q, s, a = state["q"], state["s"], state["a"]
    target = reward / 100.0 + self.gamma * q[obs].max()
    q = jnp.where(a >= 0, q.at[s, jnp.maximum(a, 0)].add(
        self.alpha * (target - q[s, jnp.maximum(a, 0)])), q)
    k_explore, k_tie, k_rand = jax.random.split(key, 3)
    row = q[obs]
    noise = jax.random.uniform(k_tie, row.shape) * 1e-6
    greedy = jnp.argmax(jnp.where(row >= row.max() - 1e-9, 1.0 + noise, 0.0))
    action = jnp.where(jax.random.uniform(k_explore) < self.epsilon,
                       jax.random.randint(k_rand, (), 0, self.num_actions), greedy)
    return {"q": q, "s": obs, "a": action}, action


def episode(agent, machine: bf.Machine, horizon: int, ops, jump, seed, sign, key):
  """One episode of `horizon` cycles; the agent sees rewards times `sign` (+1 or -1).

  Returns (reward seen at each cycle [horizon], void at each cycle [horizon]): void once any
  cycle so far ran out of budget.
  """
  k_init, k_run = jax.random.split(key)
  carry0 = (agent.init(k_init), bf.init_state(machine), jnp.int32(machine.mid), jnp.float32(0.0),
            jnp.bool_(False))

  def step(carry, k):
    a_state, e_state, obs, reward, void = carry
    a_state, action = agent.act(a_state, obs, reward, k)
    e_state, r, obs, hit = bf.cycle(machine, ops, jump, seed, e_state, action, skip=void)
    void = void | hit
    r = jnp.where(void, 0.0, sign * r)
    return (a_state, e_state, obs, r, void), (r, void)

  _, (rewards, void) = jax.lax.scan(step, carry0, jax.random.split(k_run, horizon))
  return rewards, void


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def run_batch(agent, machine: bf.Machine, horizon: int, ops, jump, seeds, keys):
  """Each program twice, rewards as they are and negated (antithetic), with the same random
  numbers for the program in both runs. ops/jump [n, L], seeds [n], keys [n] -> (rewards [n, 2, horizon],
  void [n, 2, horizon])."""
  signs = jnp.array([1.0, -1.0])
  per_sign = jax.vmap(episode, in_axes=(None, None, None, None, None, None, 0, 0))
  per_prog = jax.vmap(per_sign, in_axes=(None, None, None, 0, 0, 0, None, 0))
  # the agent's own randomness differs between the two runs (as two AIQ runs), the program's not
  return per_prog(agent, machine, horizon, ops, jump, seeds, signs,
                  jax.vmap(lambda k: jax.random.split(k, 2))(keys))

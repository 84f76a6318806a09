"""papers/universal_intelligence: the BF reference machine, the sampler, the estimator, CTW, the
agents and the command line."""
import json
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from papers.universal_intelligence import agents, bf, ctw, estimate, experiment, mcaixi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
M = bf.Machine()


N_RUN, CYCLES = 150, 12  # one shape for every interpreter test: one compilation


@jax.jit
def _run_padded(ops, jump, seeds, actions):
  return jax.vmap(lambda o, j, s, a: bf.run_actions(M, o, j, s, a))(ops, jump, seeds, actions)


def _jax_run(programs, actions, seeds):
  """(rewards, obs, hit) [n, len(actions[0])] from the JAX interpreter."""
  n, k = len(programs), len(actions[0])
  ops, jump = bf.encode(list(programs) + ["#"] * (N_RUN - n), 48)
  acts = np.zeros((N_RUN, CYCLES), np.int32)
  acts[:n, :k] = actions
  s = np.zeros(N_RUN, np.uint32)
  s[:n] = seeds
  return tuple(np.asarray(x)[:n, :k] for x in _run_padded(ops, jump, s, acts))


def _py_run(program, actions, seed):
  env = bf.Env(program, M, seed)
  out = [env.cycle(int(a)) for a in actions]
  return [o[0] for o in out], [o[1][0] for o in out], [o[2] for o in out]


# ---- the interpreter -------------------------------------------------------------------------

HAND = {  # program: (actions, rewards); 3 symbols: cell 0 -> -100, 1 (mid) -> 0, 2 -> 100
    ",.#": ([0, 1, 2, 2], [-100, 0, 100, 100]),
    ",+.#": ([0, 1, 2, 0], [0, 100, -100, 0]),       # the action plus one, mod 3
    "+.#": ([0, 0, 0, 0], [100, -100, 0, 100]),      # the work tape persists: 2, 0, 1, 2
    "+[-.]#": ([0, 0, 0, 0], [0, 0, 0, 0]),          # 2 -> 1 (mid) ends the loop after one `.`
    ",>,<.#": ([2, 0, 1, 1], [100, -100, 0, 0]),      # `,` reads the newest action first
    ".,#": ([2, 2, 0, 0], [0, 100, 100, -100]),       # output before input: the last action
}


def test_hand_written_programs():
  programs = sorted(HAND)
  r, _, hit = _jax_run(programs, [HAND[p][0] for p in programs], [0] * len(programs))
  for i, p in enumerate(programs):
    assert _py_run(p, HAND[p][0], 0)[0] == HAND[p][1], p
    assert r[i].tolist() == HAND[p][1] and not hit[i].any(), p
  r, obs, hit = _jax_run([",..#", "+[]#"], [[2, 0], [0, 0]], [0, 0])
  assert obs[0].tolist() == [2, 0] and r[0].tolist() == [100, -100]  # the second cell is observed
  assert hit[1].all() and _py_run("+[]#", [0], 0)[2] == [True]  # an endless loop spends the budget


def test_jax_interpreter_matches_python_reference_on_sampled_programs():
  rng = np.random.default_rng(3)
  programs, _ = bf.sample_programs(rng, 400)
  programs = [p for p in programs if len(p) > 3][:N_RUN]  # with `%`, loops, nesting
  actions = rng.integers(0, 3, size=(len(programs), CYCLES))
  seeds = rng.integers(0, 2**32, size=len(programs), dtype=np.uint32)
  r, obs, hit = _jax_run(programs, actions, seeds)
  for i, p in enumerate(programs):
    pr, po, ph = _py_run(p, actions[i], int(seeds[i]))
    assert r[i].tolist() == pr and obs[i].tolist() == po and hit[i].tolist() == ph, p


# ---- the prior ------------------------------------------------------------------------------

def test_sampler_draws_programs_with_probability_ten_to_minus_length():
  programs, cut = bf.sample_programs(np.random.default_rng(0), 30000, max_len=48)
  n = len(programs)
  exact = bf.length_distribution(48)
  assert abs(cut - (1 - exact.sum())) < 0.01
  lengths = np.bincount([len(p) for p in programs], minlength=49)
  for k in range(1, 11):
    p = exact[k] / exact.sum()
    assert abs(lengths[k] / n - p) < 4 * math.sqrt(p * (1 - p) / n), k
  # one program: 0.1 per symbol, 0.2 for the `#` that ends it (`#` or `]`, unmatched)
  for program, p in ((",.#", 0.1 * 0.1 * 0.2), ("#", 0.2)):
    p /= exact.sum()
    assert abs(programs.count(program) / n - p) < 4 * math.sqrt(p / n), program


# ---- estimation ----------------------------------------------------------------------------

def _pool_and_weights(n=20000):
  pool, _ = bf.sample_programs(np.random.default_rng(1), n)
  return pool, estimate.strata_weights(pool)


BATCH, HORIZON = 300, 30  # the shape of every agent run here and in the CLI test: one compilation


def _agent_run(agent, programs, key=0):
  """(y, valid, rewards) of `programs` padded to BATCH, each run with rewards as they are and negated."""
  n = len(programs)
  ops, jump = bf.encode(list(programs) + ["#"] * (BATCH - n), 48)
  keys = jax.random.split(jax.random.key(key), BATCH)
  r, v = agents.run_batch(agent, M, HORIZON, ops, jump, np.arange(BATCH, dtype=np.uint32), keys)
  y, ok = estimate.antithetic(np.asarray(r), np.asarray(v), HORIZON)
  return y[:n], ok[:n], np.asarray(r)[:n]


def test_random_agent_scores_zero_under_antithetic_sampling():
  pool, weights = _pool_and_weights()
  programs = [pool[i] for i in estimate.allocate(pool, weights, BATCH - 8)]
  y, ok, _ = _agent_run(agents.Random(3), programs)
  res = estimate.stratified(y, np.array([estimate.stratum_of(p) for p in programs]), ok, weights)
  assert res["ci_low"] <= 0 <= res["ci_high"] and abs(res["estimate"]) < 1.5, res
  assert res["programs"] > 200


def test_stratified_estimator_weights_strata():
  weights = np.array([0.5, 0.25, 0.25])
  y = np.array([10.0, 10.0, -2.0, -2.0])
  res = estimate.stratified(y, np.array([1, 1, 2, 2]), np.ones(4, bool), weights)
  assert res["estimate"] == pytest.approx(0.25 * 10 - 0.25 * 2)
  assert res["ci_low"] == res["ci_high"] == res["estimate"]  # no variance within strata


# ---- CTW ---------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 2, 3])
def test_ctw_equals_brute_force_mixture_over_tree_models(depth):
  bits = [1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0]
  model = ctw.CTW(depth)
  for b in bits:
    model.update(b)
  assert math.exp(model.log_prob()) == pytest.approx(ctw.brute_force_mixture(bits, depth), rel=1e-10)


def test_ctw_predicts_reverts_and_conditions_on_actions():
  model = ctw.CTW(2)
  for b in [1, 0, 1]:
    model.update(b)
  before, p1 = model.log_prob(), model.prob_one()
  model.update(0)
  model.revert()
  assert model.log_prob() == before and model.prob_one() == p1
  assert model.prob_one() + math.exp(_logp_after(model, 0) - before) == pytest.approx(1.0)
  model.update_history([1, 1])  # actions: context only, no probability spent on them
  assert model.log_prob() == before


def _logp_after(model, bit):
  model.update(bit)
  out = model.log_prob()
  model.revert()
  return out


# ---- agents ------------------------------------------------------------------------------

def test_q_learning_beats_random_on_bandit_like_programs():
  bandits = [",.#", ",+.#", ",-.#", ",.,.#"]  # best action 2, 1, 0, 2 (the last: obs = last action)
  passive = ["%.#", "+.>%.#"]
  late = {}
  for name, agent in (("random", agents.Random(3)), ("q", agents.QLearning(3, 3))):
    y, ok, r = _agent_run(agent, bandits + passive, key=1)
    assert ok.all()
    late[name] = r[:len(bandits), 0, 10:].mean(-1)  # rewards as they are, after 10 cycles
    # a passive program scores exactly 0 for any agent (same program randomness in both runs)
    assert np.all(y[len(bandits):] == 0)
  assert np.all(late["q"] > 60) and np.all(np.abs(late["random"]) < 40), late


def test_mc_aixi_ctw_learns_a_bandit_program():
  rewards, void = mcaixi.episode(",.#", M, 30, 1.0, seed=0, agent_seed=0, simulations=20, lookahead=1,
                                 depth=6)
  assert not void and np.mean(rewards[10:]) > 60


# ---- the command -------------------------------------------------------------------------

def test_cli_smoke(tmp_path, capsys):
  code = experiment.main(["--out", str(tmp_path), "--samples", "40", "--horizon", str(HORIZON),
                          "--curve", "4", "--batch", str(BATCH), "--aixi_samples", "4",
                          "--aixi_simulations", "4", "--aixi_depth", "6", "--pool", "4000",
                          "--agents", "random,q_learning,mc_aixi_ctw"])
  assert code == 0
  res = json.loads((tmp_path / "results.json").read_text())
  for name in ("random", "q_learning", "mc_aixi_ctw"):
    a = res["agents"][name]
    assert a["ci_low"] <= a["estimate"] <= a["ci_high"] and set(a["by_horizon"]) == {"4", str(HORIZON)}
  assert {"q_minus_random_ci_low", "mcaixi_minus_q_ci_low", "random_ci_contains_zero"} <= set(res)
  assert (tmp_path / "aiq.png").stat().st_size > 0
  assert "ETA" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--samples", "0"], "--samples must be >= 1"),
    (["--agents", "random,aixi"], "--agents takes"),
    (["--curve", "5,x"], "--curve takes"),
    (["--horizon", "10", "--curve", "20"], "--curve lengths must be in 1..--horizon"),
])
def test_bad_arguments_give_one_line(argv, message, tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    experiment.main(["--out", str(tmp_path), *argv])
  err = capsys.readouterr().err.strip().splitlines()
  assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_bad_argument_from_the_shell():
  res = subprocess.run([sys.executable, "-m", "papers.universal_intelligence.experiment", "--out", "x",
                        "--samples", "many"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, JAX_PLATFORMS="cpu"))
  lines = res.stderr.strip().splitlines()
  assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr

"""Estimate the universal intelligence of the reference agents on the BF reference machine.

  python -m papers.universal_intelligence.experiment --out DIR [--samples 2000] [--horizon 100]
      [--aixi_samples 60] [--aixi_simulations 50] [--aixi_depth 12] [--aixi_lookahead 3]

Writes DIR/results.json (per agent: estimate, ci_low, ci_high, programs, at the full episode
length and at shorter ones; paired differences between agents; the settings) and DIR/aiq.png
(the estimates with their 95% CIs, and the estimate against episode length). The random and
Q-learning agents run every sampled program in one jitted, vmapped call per batch; MC-AIXI-CTW
runs in Python on a subset of the same programs (`--aixi_samples`, 0 to skip it), so that the
differences between agents are paired on common programs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from papers.universal_intelligence import bf, estimate


class _Parser(argparse.ArgumentParser):
  def error(self, message):  # one line, no usage block
    sys.stderr.write(f"error: {message}\n")
    sys.exit(2)


# The Q-learning settings evaluated; "q_learning" is the one the claims read (fixed beforehand).
Q_SETTINGS = {"q_learning": dict(alpha=0.5, gamma=0.5, epsilon=0.05),
              "q_learning_a0.1_g0.9": dict(alpha=0.1, gamma=0.9, epsilon=0.05),
              "q_learning_e0.2": dict(alpha=0.5, gamma=0.5, epsilon=0.2)}
AGENTS = ("random", *Q_SETTINGS, "mc_aixi_ctw")


def parse_args(argv):
  p = _Parser(prog="python -m papers.universal_intelligence.experiment",
              description=__doc__.split("\n", maxsplit=1)[0])
  p.add_argument("--out", required=True, help="directory for results.json and aiq.png")
  p.add_argument("--samples", type=int, default=2000, help="active programs for the JAX agents")
  p.add_argument("--horizon", type=int, default=100, help="cycles per episode")
  p.add_argument("--curve", default="10,20,50", help="shorter episode lengths also reported")
  p.add_argument("--aixi_samples", type=int, default=60, help="programs for MC-AIXI-CTW (0: skip)")
  p.add_argument("--aixi_simulations", type=int, default=50, help="rhoUCT simulations per cycle")
  p.add_argument("--aixi_depth", type=int, default=12, help="CTW context depth in bits")
  p.add_argument("--aixi_lookahead", type=int, default=3, help="rhoUCT planning horizon in cycles")
  p.add_argument("--agents", default="all", help="comma-separated subset of " + ",".join(AGENTS))
  p.add_argument("--pool", type=int, default=200_000, help="prior sample for the strata weights")
  p.add_argument("--max_len", type=int, default=48, help="longest program (the prior is cut there)")
  p.add_argument("--max_steps", type=int, default=1000, help="instructions per cycle")
  p.add_argument("--batch", type=int, default=500, help="programs per jitted call")
  p.add_argument("--seed", type=int, default=0)
  args = p.parse_args(argv)
  for name in ("samples", "horizon", "pool", "max_steps", "batch", "aixi_simulations",
               "aixi_depth", "aixi_lookahead"):
    if getattr(args, name) < 1:
      p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
  if args.aixi_samples < 0:
    p.error(f"--aixi_samples must be >= 0, got {args.aixi_samples}")
  if args.max_len < 3:
    p.error(f"--max_len must be >= 3 (the shortest active program is ',.#'), got {args.max_len}")
  if args.aixi_depth > 20:
    p.error(f"--aixi_depth must be <= 20 (the context tree is stored in full), got {args.aixi_depth}")
  try:
    curve = sorted({int(h) for h in args.curve.split(",") if h.strip()})
  except ValueError:
    p.error(f"--curve takes comma-separated episode lengths, got {args.curve!r}")
  if any(h < 1 or h > args.horizon for h in curve):
    p.error(f"--curve lengths must be in 1..--horizon ({args.horizon}), got {args.curve!r}")
  args.curve = sorted(set(curve) | {args.horizon})
  names = AGENTS if args.agents == "all" else tuple(a.strip() for a in args.agents.split(",") if a.strip())
  unknown = sorted(set(names) - set(AGENTS))
  if unknown or not names:
    p.error(f"--agents takes a comma-separated subset of {','.join(AGENTS)}, got {args.agents!r}")
  args.agents = [a for a in AGENTS if a in names]
  if args.aixi_samples == 0 and "mc_aixi_ctw" in args.agents:
    args.agents.remove("mc_aixi_ctw")
  return args


def _eta(done: int, total: int, started: float) -> str:
  elapsed = time.time() - started
  left = elapsed / done * (total - done) if done else float("nan")
  return f"{done}/{total} | {elapsed:.0f}s elapsed | ETA {left:.0f}s"


def run_jax_agent(name, agent, machine, programs, seeds, args) -> tuple[np.ndarray, np.ndarray]:
  import jax  # pylint: disable=g-import-not-at-top
  from papers.universal_intelligence import agents  # pylint: disable=g-import-not-at-top
  n, b = len(programs), args.batch
  padded = -(-n // b) * b  # every call has the shape [batch, max_len]: one compilation
  ops, jump = bf.encode(list(programs) + ["#"] * (padded - n), args.max_len)
  seeds = np.concatenate([seeds, np.zeros(padded - n, np.uint32)])
  keys = jax.random.split(jax.random.fold_in(jax.random.key(args.seed), len(name)), padded)
  rewards, void, started = [], [], time.time()
  for i in range(0, padded, b):
    sl = slice(i, i + b)
    r, v = agents.run_batch(agent, machine, args.horizon, ops[sl], jump[sl], seeds[sl], keys[sl])
    rewards.append(np.asarray(r))
    void.append(np.asarray(v))
    print(f"[{name}] programs {_eta(min(i + b, n), n, started)}", flush=True)
  return np.concatenate(rewards)[:n], np.concatenate(void)[:n]


def run_mcaixi(machine, programs, seeds, args) -> tuple[np.ndarray, np.ndarray]:
  from papers.universal_intelligence import mcaixi  # pylint: disable=g-import-not-at-top
  rewards = np.zeros((len(programs), 2, args.horizon), np.float32)
  void = np.zeros((len(programs), 2, args.horizon), bool)
  started = time.time()
  for i, (program, seed) in enumerate(zip(programs, seeds)):
    for j, sign in enumerate((1.0, -1.0)):
      r, hit = mcaixi.episode(program, machine, args.horizon, sign, int(seed), args.seed * 7919 + 2 * i + j,
                              depth=args.aixi_depth, simulations=args.aixi_simulations,
                              lookahead=args.aixi_lookahead)
      rewards[i, j, :len(r)] = r
      void[i, j, len(r):] = hit
    print(f"[mc_aixi_ctw] programs {_eta(i + 1, len(programs), started)}", flush=True)
  return rewards, void


def summarize(runs: dict, strata: dict, weights, horizons) -> dict:
  """Per agent and horizon: the stratified estimate; plus y and validity at the full horizon."""
  out = {}
  for name, (programs, rewards, void) in runs.items():
    s = strata[name]
    out[name] = {"by_horizon": {}}
    for h in horizons:
      y, valid = estimate.antithetic(rewards, void, h)
      out[name]["by_horizon"][str(h)] = estimate.stratified(y, s, valid, weights)
    out[name].update(out[name]["by_horizon"][str(horizons[-1])])
  return out


def paired(runs, strata, weights, a: str, b: str, horizon: int) -> dict:
  """Estimate of Upsilon(a) - Upsilon(b) on the programs both ran (b's are a superset of a's)."""
  pa, ra, va = runs[a]
  pb, rb, vb = runs[b]
  row_of = {int(p): i for i, p in enumerate(pb)}
  take = np.array([row_of[int(p)] for p in pa])
  ya, oka = estimate.antithetic(ra, va, horizon)
  yb, okb = estimate.antithetic(rb[take], vb[take], horizon)
  return estimate.stratified(ya - yb, strata[a], oka & okb, weights)


def plot(summary: dict, horizons, path: str):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
  names = list(summary)
  est = np.array([summary[n]["estimate"] for n in names])
  err = np.array([[summary[n]["estimate"] - summary[n]["ci_low"] for n in names],
                  [summary[n]["ci_high"] - summary[n]["estimate"] for n in names]])
  ax1.errorbar(range(len(names)), est, yerr=err, fmt="o", capsize=4)
  ax1.axhline(0, color="0.6", lw=0.8)
  ax1.set_xticks(range(len(names)), [n.replace("_", " ") for n in names], rotation=20, ha="right")
  ax1.set_ylabel("estimated Upsilon (mean reward per cycle, [-100, 100])")
  ax1.set_title(f"episodes of {horizons[-1]} cycles, 95% CI")
  for n in names:
    hs = [h for h in horizons if str(h) in summary[n]["by_horizon"]]
    e = [summary[n]["by_horizon"][str(h)] for h in hs]
    ax2.plot(hs, [x["estimate"] for x in e], "o-", label=n.replace("_", " "))
    ax2.fill_between(hs, [x["ci_low"] for x in e], [x["ci_high"] for x in e], alpha=0.15)
  ax2.set_xscale("log")
  ax2.set_xlabel("episode length (cycles)")
  ax2.axhline(0, color="0.6", lw=0.8)
  ax2.legend(fontsize=8)
  ax2.set_title("estimate against episode length")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  os.makedirs(args.out, exist_ok=True)
  from papers.universal_intelligence import agents  # pylint: disable=g-import-not-at-top
  machine = bf.Machine(max_steps=args.max_steps)
  rng = np.random.default_rng(args.seed)
  pool, cut = bf.sample_programs(rng, args.pool, args.max_len)
  weights = estimate.strata_weights(pool)
  try:
    programs = [pool[i] for i in estimate.allocate(pool, weights, args.samples)]
    # MC-AIXI's programs: a stratified subset of the others', so that differences are paired
    aixi_index = (np.array(estimate.allocate(programs, weights, args.aixi_samples))
                  if "mc_aixi_ctw" in args.agents else np.zeros(0, int))
  except ValueError as e:
    sys.stderr.write(f"error: {e}\n")
    return 2
  seeds = rng.integers(0, 2**32, size=len(programs), dtype=np.uint32)
  print(f"prior cut at {args.max_len} symbols loses {cut:.4f} of its mass; strata weights "
        f"{np.round(weights, 4).tolist()} (passive first); {len(programs)} active programs", flush=True)

  jax_agents = {"random": agents.Random(machine.num_actions)}
  for name, kw in Q_SETTINGS.items():
    jax_agents[name] = agents.QLearning(machine.num_actions, machine.num_obs, **kw)
  runs = {}
  for name, agent in jax_agents.items():
    if name in args.agents:
      runs[name] = (np.arange(len(programs)), *run_jax_agent(name, agent, machine, programs, seeds, args))
  if len(aixi_index):
    runs["mc_aixi_ctw"] = (aixi_index, *run_mcaixi(
        machine, [programs[i] for i in aixi_index], seeds[aixi_index], args))
  # runs: agent -> (indices into `programs`, rewards [n, 2, horizon], void [n, 2, horizon])
  strata = {name: np.array([estimate.stratum_of(programs[i]) for i in r[0]]) for name, r in runs.items()}

  summary = summarize(runs, strata, weights, args.curve)
  diffs = {f"{a}-{b}": paired(runs, strata, weights, a, b, args.horizon)
           for a, b in (("q_learning", "random"), ("mc_aixi_ctw", "q_learning"), ("mc_aixi_ctw", "random"))
           if a in runs and b in runs}
  result = {
      "settings": {k: v for k, v in vars(args).items() if k != "out"},
      "machine": {"symbols": machine.symbols, "obs_cells": machine.obs_cells, "tape": bf.TAPE,
                  "history": bf.HISTORY, "max_steps": machine.max_steps},
      "prior_mass_cut": cut, "strata_edges": list(estimate.EDGES), "strata_weights": weights.tolist(),
      "q_settings": Q_SETTINGS, "agents": summary, "differences": diffs,
  }
  # what the claims read: each "above 0" means the ordering holds at the 95% level
  if "random" in summary:
    result["random_ci_contains_zero"] = float(summary["random"]["ci_low"] <= 0 <= summary["random"]["ci_high"])
  for key, name in (("q_minus_random_ci_low", "q_learning-random"),
                    ("mcaixi_minus_q_ci_low", "mc_aixi_ctw-q_learning"),
                    ("mcaixi_minus_random_ci_low", "mc_aixi_ctw-random")):
    if name in diffs:
      result[key] = diffs[name]["ci_low"]
  with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1)
  plot(summary, args.curve, os.path.join(args.out, "aiq.png"))
  for name, s in summary.items():
    print(f"{name:>22}: {s['estimate']:7.2f}  95% CI [{s['ci_low']:7.2f}, {s['ci_high']:7.2f}]  "
          f"({s['programs']} programs, {s['programs_void']} void)")
  for name, d in diffs.items():
    print(f"{name:>30}: {d['estimate']:7.2f}  95% CI [{d['ci_low']:7.2f}, {d['ci_high']:7.2f}]")
  print(f"wrote {os.path.join(args.out, 'results.json')} and aiq.png")
  return 0


if __name__ == "__main__":
  sys.exit(main())

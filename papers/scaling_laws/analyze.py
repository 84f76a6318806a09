"""Fits and plots for a finished sweep (results.jsonl written by launch.sweep).

  python -m papers.scaling_laws.analyze --sweep_dir runs/scaling_laws --out papers/scaling_laws

Writes SWEEP_DIR/fits.json, OUT/fig1_scaling.png (Kaplan et al. fig. 1: loss against
compute, tokens and parameters) and OUT/fig4_model_data.png (fig. 4: L(N, D) and learning
curves), and prints the numbers the README quotes. Losses are validation nats per character.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from papers.scaling_laws import fit

PF_DAY = 1e15 * 86400
KAPLAN = {"alpha_N": 0.076, "alpha_D": 0.095, "alpha_C": 0.050}


def load_runs(sweep_dir: str) -> list[dict]:
  """Finished runs, smallest first, each with its eval curve as arrays."""
  runs = []
  with open(os.path.join(sweep_dir, "results.jsonl")) as f:
    for line in f:
      r = json.loads(line)
      if r["status"] != "finished":
        continue
      curve = [c for c in r["curve"] if c["split"] == "eval" and c["step"] > 0]
      r["step"] = np.array([c["step"] for c in curve], np.float64)
      r["D_curve"] = np.array([c["D"] for c in curve], np.float64)
      r["C_curve"] = np.array([c["C"] for c in curve], np.float64)
      r["L_curve"] = np.array([c["loss"] for c in curve], np.float64)
      r["L"] = float(r["final_eval"]["loss"])
      runs.append(r)
  return sorted(runs, key=lambda r: r["N"])


def analyze(runs: list[dict], holdout: int = 2, min_step_fraction: float = 0.25):
  """Returns (laws: name -> fit.Fit, summary: JSON-able numbers)."""
  n = np.array([r["N"] for r in runs], np.float64)
  loss = np.array([r["L"] for r in runs])
  laws = {"L(N)": fit.fit_power_law(n, loss, "N"),
          "L(N) with floor": fit.fit_power_law(n, loss, "N", floor=True)}

  # L(N, D) and L(D) from the learning curves, past the initial transient.
  late = [r["step"] >= min_step_fraction * r["total_steps"] for r in runs]
  for r, m in zip(runs, late):
    r["late"] = m
  nn_ = np.concatenate([np.full(m.sum(), r["N"]) for r, m in zip(runs, late)])
  dd = np.concatenate([r["D_curve"][m] for r, m in zip(runs, late)])
  ll = np.concatenate([r["L_curve"][m] for r, m in zip(runs, late)])
  laws["L(N, D)"] = fit.fit_loss_nd(nn_, dd, ll)
  big = runs[-1]
  laws["L(D) largest model"] = fit.fit_power_law(big["D_curve"][big["late"]],
                                                 big["L_curve"][big["late"]], "D")

  # Compute-efficient frontier, over the span from the smallest run's end to the largest's.
  frontier = fit.compute_frontier([(r["C_curve"], r["L_curve"]) for r in runs])
  span = (frontier.compute >= runs[0]["C"]) & (frontier.compute <= runs[-1]["C"])
  laws["L(C_min)"] = fit.fit_power_law(frontier.compute[span], frontier.loss[span], "C")

  summary = {"runs": [{"run": r["run"], "N": r["N"], "D": r["D"], "C": r["C"], "loss": r["L"]}
                      for r in runs]}
  summary.update({k: v.summary() for k, v in laws.items()})
  summary["L(N)"]["bootstrap"] = fit.bootstrap(lambda a, b: fit.fit_power_law(a, b, "N"), n, loss)
  n_opt = n[frontier.run[span]]
  if len(np.unique(n_opt)) > 2:
    summary["N_opt(C) exponent"] = float(np.polyfit(np.log(frontier.compute[span]),
                                                    np.log(n_opt), 1)[0])
  summary["frontier"] = {"C": frontier.compute.tolist(), "loss": frontier.loss.tolist(),
                         "run": [runs[i]["run"] for i in frontier.run], "fit_span": span.tolist()}
  # The law predicts: fit on the smaller models only, predict the final loss of the largest.
  small = runs[:-holdout]
  nd_small = fit.fit_loss_nd(
      np.concatenate([np.full(r["late"].sum(), r["N"]) for r in small]),
      np.concatenate([r["D_curve"][r["late"]] for r in small]),
      np.concatenate([r["L_curve"][r["late"]] for r in small]))
  laws["prediction L(N, D)"] = nd_small
  n_big = n[-holdout:]
  d_big = np.array([r["D_curve"][-1] for r in runs[-holdout:]])
  predicted = nd_small.predict(n_big, d_big)
  summary["prediction L(N, D)"] = {
      "fit_on": [r["run"] for r in small], "alpha_N": nd_small["alpha_N"],
      "alpha_N_stderr": nd_small.stderr("alpha_N"), "alpha_D": nd_small["alpha_D"],
      "alpha_D_stderr": nd_small.stderr("alpha_D"), "N": n_big.tolist(), "D": d_big.tolist(),
      "actual": loss[-holdout:].tolist(), "predicted": predicted.tolist(),
      "predicted_log_stderr": nd_small.predict_log_stderr(n_big, d_big).tolist(),
      "relative_error": ((predicted - loss[-holdout:]) / loss[-holdout:]).tolist()}
  for floor in (False, True):
    pred = fit.holdout_prediction(n, loss, holdout, "N", floor=floor)
    key = "prediction" + (" with floor" if floor else "")
    laws[key] = pred["fit"]
    summary[key] = {
        "fit_on": [r["run"] for r in runs[:-holdout]],
        "alpha_N": pred["fit"]["alpha_N"], "alpha_N_stderr": pred["fit"].stderr("alpha_N"),
        "N": pred["N"].tolist(), "actual": pred["actual"].tolist(),
        "predicted": pred["predicted"].tolist(),
        "predicted_log_stderr": pred["predicted_log_stderr"].tolist(),
        "relative_error": pred["relative_error"].tolist()}
  return laws, summary


def _label(law, var: str, unit: float = 1.0) -> str:
  floor = f"{law['L_inf']:.2f}+" if "L_inf" in law.names else ""
  log10_xc = law[f"log10_{var}_c"] - np.log10(unit)
  return f"${floor}({var}/10^{{{log10_xc:.1f}}})^{{-{law[f'alpha_{var}']:.3f}}}$"


def _tidy(ax):
  """Plain-number labels on a log loss axis that spans less than a decade."""
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top
  ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%.1f"))
  ax.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%.1f"))
  ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def plot(runs: list[dict], laws: dict, summary: dict, out_dir: str) -> list[str]:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from matplotlib import cm, colors  # pylint: disable=g-import-not-at-top

  os.makedirs(out_dir, exist_ok=True)
  n = np.array([r["N"] for r in runs], np.float64)
  loss = np.array([r["L"] for r in runs])
  norm, cmap = colors.LogNorm(n.min(), n.max()), cm.viridis
  paths = []

  # Figure 1: loss against compute (every learning curve + the frontier), tokens, parameters.
  fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
  ax = axes[0]
  for r in runs:
    ax.plot(r["C_curve"] / PF_DAY, r["L_curve"], color=cmap(norm(r["N"])), lw=1, alpha=0.8)
  fr = summary["frontier"]
  c_span = np.array(fr["C"])[np.array(fr["fit_span"])]
  ax.plot(c_span / PF_DAY, laws["L(C_min)"].predict(c_span), "--", color="tab:orange", lw=2,
          label=_label(laws["L(C_min)"], "C", PF_DAY) + " (C in PF-days)")
  ax.set(xscale="log", yscale="log", xlabel="Compute (PF-days, non-embedding, 6ND)",
         ylabel="Validation loss (nats/char)")
  ax.legend(fontsize=8)
  fig.colorbar(cm.ScalarMappable(norm, cmap), ax=ax, label="Parameters (non-embedding)")

  ax = axes[1]
  big = runs[-1]
  ax.plot(big["D_curve"], big["L_curve"], "o", color="tab:blue", ms=3, label=big["run"])
  d_late = big["D_curve"][big["late"]]
  ax.plot(d_late, laws["L(D) largest model"].predict(d_late), "--", color="tab:orange", lw=2,
          label=_label(laws["L(D) largest model"], "D"))
  ax.set(xscale="log", xlabel="Dataset size (characters seen, largest model)")
  ax.legend(fontsize=8)

  ax = axes[2]
  grid = np.geomspace(n.min() / 2, n.max() * 2, 50)
  ax.plot(n, loss, "o", color="tab:blue", label="final validation loss")
  ax.plot(grid, laws["L(N)"].predict(grid), "--", color="tab:orange", lw=2,
          label=_label(laws["L(N)"], "N"))
  ax.plot(grid, laws["L(N) with floor"].predict(grid), ":", color="tab:red", lw=2,
          label=_label(laws["L(N) with floor"], "N"))
  d_final = runs[-1]["D_curve"][-1]
  ax.plot(grid, laws["L(N, D)"].predict(grid, np.full_like(grid, d_final)), "-", color="tab:green",
          lw=1, label=f"$L(N, D)$ fit at D = {d_final / 1e6:.2f} M")
  pred = summary["prediction"]
  ax.plot(pred["N"], pred["predicted"], "kx", ms=9,
          label=f"$L(N)$ of the {len(pred['fit_on'])} smaller models, extrapolated")
  pred = summary["prediction L(N, D)"]
  ax.plot(pred["N"], pred["predicted"], "+", color="tab:green", ms=12, mew=2,
          label=f"$L(N, D)$ of the {len(pred['fit_on'])} smaller models, extrapolated")
  ax.set(xscale="log", xlabel="Parameters (non-embedding)")
  ax.legend(fontsize=8)
  for ax in axes:
    _tidy(ax)
  fig.tight_layout()
  paths.append(os.path.join(out_dir, "fig1_scaling.png"))
  fig.savefig(paths[-1], dpi=80)
  plt.close(fig)

  # Figure 4: L(N, D) at several D (left), learning curves with the same fit (right).
  nd = laws["L(N, D)"]
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  ax = axes[0]
  steps = [int(s) for s in big["step"][big["late"]]]
  chosen = steps[::max(1, len(steps) // 5)]
  if steps[-1] not in chosen:
    chosen.append(steps[-1])
  dnorm = colors.LogNorm(min(chosen), max(chosen) * 1.2)
  for s in chosen:
    x, y = np.array([(r["N"], r["L_curve"][r["step"] == s][0]) for r in runs
                     if s in r["step"]]).T
    color = cm.plasma(dnorm(s))
    d = s * big["tokens_per_step"]
    ax.plot(x, y, "o", color=color, ms=4, label=f"D = {d / 1e6:.2f} M chars")
    ax.plot(grid, nd.predict(grid, np.full_like(grid, d)), "-", color=color, lw=1)
  ax.set(xscale="log", yscale="log", xlabel="Parameters (non-embedding)",
         ylabel="Validation loss (nats/char)",
         title=f"$L(N,D)$ fit: $\\alpha_N$={nd['alpha_N']:.3f}, $\\alpha_D$={nd['alpha_D']:.3f}")
  ax.legend(fontsize=7)
  ax = axes[1]
  for r in runs:
    color = cmap(norm(r["N"]))
    ax.plot(r["D_curve"], r["L_curve"], "o", color=color, ms=2)
    d = r["D_curve"][r["late"]]
    ax.plot(d, nd.predict(np.full_like(d, r["N"]), d), "-", color=color, lw=1)
  ax.set(xscale="log", yscale="log", xlabel="Characters seen (D)",
         title="learning curves (dots), $L(N,D)$ fit (lines)")
  fig.colorbar(cm.ScalarMappable(norm, cmap), ax=ax, label="Parameters (non-embedding)")
  for ax in axes:
    _tidy(ax)
  fig.tight_layout()
  paths.append(os.path.join(out_dir, "fig4_model_data.png"))
  fig.savefig(paths[-1], dpi=80)
  plt.close(fig)
  return paths


def report(fits: dict) -> str:
  lines = ["| run | N (non-emb.) | final val loss (nats/char) |", "|---|---|---|"]
  lines += [f"| {r['run']} | {r['N']:,} | {r['loss']:.4f} |" for r in fits["runs"]]
  lines.append("")
  for key, var in (("L(N)", "N"), ("L(N) with floor", "N"), ("L(D) largest model", "D"),
                   ("L(C_min)", "C")):
    f = fits[key]
    a = f"alpha_{var}"
    extra = f", L_inf = {f['L_inf']:.3f} ± {f['L_inf_stderr']:.3f}" if "L_inf" in f else ""
    lines.append(f"- {key}: {a} = {f[a]:.4f} ± {f[a + '_stderr']:.4f}, "
                 f"log10 {var}_c = {f[f'log10_{var}_c']:.2f} ± {f[f'log10_{var}_c_stderr']:.2f}"
                 f"{extra} (rms log residual {f['rms_log_residual']:.4f}, {f['num_points']} points)")
  boot = fits["L(N)"]["bootstrap"]["alpha_N"]
  lines.append(f"- L(N) bootstrap: std {boot[0]:.4f}, 95% interval [{boot[1]:.4f}, {boot[2]:.4f}]")
  f = fits["L(N, D)"]
  lines.append(f"- L(N, D): alpha_N = {f['alpha_N']:.4f} ± {f['alpha_N_stderr']:.4f}, alpha_D = "
               f"{f['alpha_D']:.4f} ± {f['alpha_D_stderr']:.4f} (rms log residual "
               f"{f['rms_log_residual']:.4f}, {f['num_points']} points)")
  if "N_opt(C) exponent" in fits:
    lines.append(f"- N_opt(C) ~ C^{fits['N_opt(C) exponent']:.2f} along the frontier")
  for key in ("prediction", "prediction with floor", "prediction L(N, D)"):
    p = fits[key]
    for nn_, act, pr, se, err in zip(p["N"], p["actual"], p["predicted"],
                                     p["predicted_log_stderr"], p["relative_error"]):
      lines.append(f"- {key}: N = {int(nn_):,}: predicted {pr:.4f} (±{100 * se:.1f}%), "
                   f"actual {act:.4f}, error {100 * err:+.2f}%")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m papers.scaling_laws.analyze")
  parser.add_argument("--sweep_dir", required=True)
  parser.add_argument("--out", default=None, help="where the PNGs go (default: the sweep dir)")
  parser.add_argument("--holdout", type=int, default=2)
  args = parser.parse_args(argv)
  runs = load_runs(args.sweep_dir)
  if len(runs) < args.holdout + 3:
    raise SystemExit(f"error: {len(runs)} finished runs in {args.sweep_dir}; need at least "
                     f"{args.holdout + 3} (run the sweep first)")
  laws, summary = analyze(runs, args.holdout)
  with open(os.path.join(args.sweep_dir, "fits.json"), "w") as f:
    json.dump(summary, f, indent=1)
  paths = plot(runs, laws, summary, args.out or args.sweep_dir)
  print(report(summary))
  print("plots: " + ", ".join(paths))


if __name__ == "__main__":
  main()

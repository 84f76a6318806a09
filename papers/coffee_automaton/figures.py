"""The experiment's figures (matplotlib, Agg): curves over time, scaling with N, the border artefact."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from papers.coffee_automaton import measures  # pylint: disable=wrong-import-position

DPI = 80


def _save(fig, out_dir: str, name: str) -> str:
  path = os.path.join(out_dir, name)
  fig.savefig(path, dpi=DPI, bbox_inches="tight")
  plt.close(fig)
  return path


def curves(result: dict, out_dir: str) -> str:
  """Entropy and complexity against t / N^2, one line per N, both models."""
  fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
  for n, by_model in sorted(result["series"].items(), key=lambda kv: int(kv[0])):
    n = int(n)
    for model, style in (("interacting", "-"), ("noninteracting", ":")):
      s = by_model[model]
      t = np.array(s["t"]) / n**2
      label = f"N={n}" if model == "interacting" else None
      line = axes[0].plot(t, s["entropy"], style, label=label)[0]
      color = line.get_color()
      axes[1].plot(t, s["complexity"], style, color=color, label=label)
      axes[2].plot(t, s["complexity_naive"], style, color=color, label=label)
  titles = ("entropy: gzip(fine-grained), bytes", "apparent complexity, adjusted, bytes",
            "apparent complexity, naive 3 buckets, bytes")
  for ax, title in zip(axes, titles):
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("t / N^2 (sweeps)")
    ax.set_yscale("log")
  axes[0].legend(fontsize=8, title="solid: interacting\ndotted: non-interacting", title_fontsize=7)
  return _save(fig, out_dir, "entropy_complexity.png")


def scaling(result: dict, out_dir: str) -> str:
  """Rise of the complexity (peak - initial) and time of its peak against N."""
  sizes = sorted(result["sizes"], key=int)
  ns = np.array([int(n) for n in sizes])
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
  for model, color in (("interacting", "C0"), ("noninteracting", "C3")):
    for key, style, name in (("complexity", "o-", "adjusted"), ("complexity_naive", "s:", "naive")):
      rise = [result["sizes"][n][model][f"{key}_rise"] for n in sizes]
      peak_t = [result["sizes"][n][model][f"{key}_peak_time"] for n in sizes]
      axes[0].plot(ns, np.maximum(rise, 1), style, color=color, label=f"{model}, {name}")
      axes[1].plot(ns, np.maximum(peak_t, 1), style, color=color, label=f"{model}, {name}")
  fmt = lambda v: "n/a" if v is None else f"{v:.2f}"
  axes[0].set_title(f"peak - initial complexity, bytes\n(interacting slope: adjusted "
                    f"{fmt(result['peak_exponent'])}, naive {fmt(result['naive_peak_exponent'])})",
                    fontsize=9)
  axes[1].set_title(f"time of the peak, sweeps\n(interacting, adjusted: slope "
                    f"{fmt(result['peak_time_exponent'])})", fontsize=9)
  for ax in axes:
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("N")
  axes[0].legend(fontsize=7)
  return _save(fig, out_dir, "scaling.png")


def border_artefact(result: dict, snapshots: dict, out_dir: str) -> str:
  """At the largest N: the naive and the adjusted complexity of both models, and the two
  coarse-grainings of the non-interacting state where its naive complexity peaks."""
  n = max(snapshots)
  by_model = result["series"][str(n)]
  g = result["sizes"][str(n)]["noninteracting"]["grain"]
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), gridspec_kw={"width_ratios": [1.6, 1, 1]})
  for model, color in (("interacting", "C0"), ("noninteracting", "C3")):
    s = by_model[model]
    t = np.array(s["t"]) / n**2
    axes[0].plot(t, s["complexity_naive"], ":", color=color, label=f"{model}, naive")
    axes[0].plot(t, s["complexity"], "-", color=color, label=f"{model}, adjusted")
  axes[0].set_xlabel("t / N^2")
  axes[0].set_title(f"apparent complexity (bytes), N={n}", fontsize=10)
  axes[0].legend(fontsize=8)
  peak = int(np.argmax(by_model["noninteracting"]["complexity_naive"]))
  state = snapshots[n]["noninteracting"][peak]
  naive = measures.coarse_grained(state, g, adjusted=False)
  adjusted = measures.coarse_grained(state, g, adjusted=True)
  axes[1].imshow(naive / (measures.NAIVE_BUCKETS - 1), cmap="copper", vmin=0, vmax=1)
  axes[1].set_title(f"non-interacting, t={by_model['noninteracting']['t'][peak]}: naive, "
                    f"{measures.compressed_size(naive)} B", fontsize=9)
  axes[2].imshow(adjusted / (measures.ADJUSTED_BUCKETS - 1), cmap="copper", vmin=0, vmax=1)
  axes[2].set_title(f"adjusted, {measures.compressed_size(adjusted)} B", fontsize=9)
  for ax in axes[1:]:
    ax.set_xticks([])
    ax.set_yticks([])
  return _save(fig, out_dir, "border_artefact.png")


def snapshots_figure(result: dict, snapshots: dict, out_dir: str) -> str:
  """The interacting model at the largest N: start, peak of complexity, end; fine and coarse."""
  n = max(snapshots)
  s = result["series"][str(n)]["interacting"]
  g = result["sizes"][str(n)]["interacting"]["grain"]
  picks = [0, int(np.argmax(s["complexity"])), len(s["t"]) - 1]
  fig, axes = plt.subplots(2, 3, figsize=(8, 5.6))
  for col, i in enumerate(picks):
    state = snapshots[n]["interacting"][i]
    coarse = measures.coarse_grained(state, g, adjusted=True)
    axes[0, col].imshow(state, cmap="copper", vmin=0, vmax=1, interpolation="nearest")
    axes[0, col].set_title(f"t={s['t'][i]}: entropy {s['entropy'][i]} B", fontsize=9)
    axes[1, col].imshow(coarse / (measures.ADJUSTED_BUCKETS - 1), cmap="copper", vmin=0, vmax=1)
    axes[1, col].set_title(f"coarse-grained: complexity {s['complexity'][i]} B", fontsize=9)
  for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle(f"interacting model, N={n}, g={g}", fontsize=10)
  return _save(fig, out_dir, "snapshots.png")


def write_all(result: dict, snapshots: dict, out_dir: str) -> list[str]:
  return [curves(result, out_dir), scaling(result, out_dir),
          border_artefact(result, snapshots, out_dir), snapshots_figure(result, snapshots, out_dir)]

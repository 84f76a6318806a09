"""BLEU of finished translation runs side by side, and BLEU by source length (figure 2).

  python -m papers.bahdanau.compare --runs runs/bahdanau/rnnencdec runs/bahdanau/rnnsearch \
      [runs/transformer/<name> ...] [--out papers/bahdanau]

Each run is a launch.train workdir whose eval records hold `bleu` and `bleu_len_<a>_<b>`
(core.translation_data.bleu_by_length), as the Bahdanau and Transformer translation tasks
write them. Reads metrics.jsonl and config.json only; prints a markdown table and writes
`bleu_table.md` and `bleu_by_length.png` to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

BUCKET = re.compile(r"bleu_len_(\d+)_(\d+|inf)$")


def last_eval(workdir: str) -> dict:
  """The last eval record of the run that has a BLEU score."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: is {workdir} a training workdir?")
  found = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      record = json.loads(line)
      if record.get("split") == "eval" and "bleu" in record:
        found = record
  if not found:
    raise ValueError(f"{path} has no eval record with a BLEU score yet")
  return found


def label(workdir: str) -> str:
  """'RNNsearch' / 'RNNencdec' / 'Transformer', else the config's task class, + the dir."""
  name = os.path.basename(os.path.normpath(workdir))
  try:
    with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
      config = json.load(f)
  except (OSError, ValueError):
    return name
  task = config.get("task", "")
  if task.startswith("papers.bahdanau."):
    kind = "RNNsearch" if config.get("model", {}).get("attention", True) else "RNNencdec"
  elif task.startswith("papers.transformer."):
    kind = "Transformer"
  else:
    kind = task.split(":")[-1] or name
  return f"{kind} ({name})"


def buckets(record: dict) -> list[tuple[int, float, str, float]]:
  """[(low, high, name, bleu)] sorted by length; high is inf for the last bucket."""
  out = []
  for key, value in record.items():
    m = BUCKET.match(key)
    if m:
      out.append((int(m.group(1)), float(m.group(2)), key, value))
  return sorted(out)


def table(runs: dict[str, dict]) -> str:
  names = sorted({b[2] for r in runs.values() for b in buckets(r)},
                 key=lambda k: int(BUCKET.match(k).group(1)))
  heads = ["run", "step", "BLEU (beam)", "BLEU (greedy)"] + [
      "words " + n[len("bleu_len_"):].replace("_inf", "+").replace("_", "-") for n in names]
  lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
  for run, record in runs.items():
    cells = [run, str(record["step"]), f"{record['bleu']:.2f}",
             f"{record['bleu_greedy']:.2f}" if "bleu_greedy" in record else ""]
    cells += [f"{record[n]:.2f}" if n in record else "" for n in names]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def plot(runs: dict[str, dict], path: str):
  fig, ax = plt.subplots(figsize=(6.5, 4))
  for run, record in runs.items():
    points = buckets(record)
    middles = [(low + (high if high != float("inf") else low + 10)) / 2 for low, high, _, _ in points]
    ax.plot(middles, [p[3] for p in points], "o-", label=run)
  ax.set_xlabel("source length (words), bucket middle")
  ax.set_ylabel("BLEU (beam search)")
  ax.set_title("BLEU by source length (cf. Bahdanau et al. 2015, figure 2)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m papers.bahdanau.compare",
                                   description=__doc__.split("\n", maxsplit=1)[0])
  parser.add_argument("--runs", nargs="+", required=True, help="training workdirs")
  parser.add_argument("--out", default=".", help="folder for bleu_table.md and bleu_by_length.png")
  args = parser.parse_args(argv)
  try:
    runs = {label(w): last_eval(w) for w in args.runs}
  except (OSError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  text = table(runs)
  print(text)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "bleu_table.md"), "w", encoding="utf-8") as f:
    f.write(text + "\n")
  plot(runs, os.path.join(args.out, "bleu_by_length.png"))
  print(f"wrote {os.path.join(args.out, 'bleu_table.md')} and "
        f"{os.path.join(args.out, 'bleu_by_length.png')}")
  return 0


if __name__ == "__main__":
  sys.exit(main())

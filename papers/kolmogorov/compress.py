"""Compress and decompress files with a trained character LM and an arithmetic coder.

  python -m papers.kolmogorov.compress FILE --workdir CHECKPOINT_DIR [-o FILE.lmz]
  python -m papers.kolmogorov.compress -d FILE.lmz --workdir CHECKPOINT_DIR [-o FILE]

CHECKPOINT_DIR is a training workdir of configs/transformer_lm.py (its newest checkpoint is
used). Any bytes can be compressed: characters outside the model's alphabet are escaped (see
papers/kolmogorov/codec.py). The file records a fingerprint of the model; decoding needs
the same checkpoint (and, since the model's float32 probabilities must be reproduced bit for
bit, the same kind of CPU and the same jax/XLA versions; the decoder checks a CRC-32, so a
mismatch is reported, never written out as a wrong file). `-o -` writes to standard output.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m papers.kolmogorov.compress",
                                   description=__doc__.split("\n", maxsplit=1)[0])
  parser.add_argument("file", help="the file to compress (or, with -d, the .lmz file)")
  parser.add_argument("--workdir", required=True, help="a training workdir of configs/transformer_lm.py")
  parser.add_argument("-d", "--decompress", action="store_true")
  parser.add_argument("-o", "--output", help="default: FILE.lmz, or FILE without .lmz (-d)")
  parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
  args = parser.parse_args(argv)
  from core.task import ConfigError  # pylint: disable=g-import-not-at-top
  from papers.kolmogorov import codec, lm  # pylint: disable=g-import-not-at-top
  output = args.output
  if output is None:
    if not args.decompress:
      output = args.file + ".lmz"
    elif args.file.endswith(".lmz"):
      output = args.file[:-len(".lmz")]
    else:
      output = args.file + ".out"
  try:
    if output != "-" and os.path.exists(output) and not args.force:
      raise ConfigError(f"{output} exists; use -f to overwrite it or -o to choose another name")
    with open(args.file, "rb") as f:
      data = f.read()
    if args.decompress:
      codec.read_header(data)  # not an .lmz file: say so before loading the model
    model = lm.load(args.workdir)
    started = time.perf_counter()
    result = codec.decompress(data, model) if args.decompress else codec.compress(data, model)
    seconds = time.perf_counter() - started
  except (ConfigError, codec.FormatError, OSError) as e:
    print(f"error: {args.file}: {' '.join(str(e).split())}", file=sys.stderr)
    return 2
  if output == "-":
    sys.stdout.buffer.write(result)
  else:
    with open(output, "wb") as f:
      f.write(result)
  original = len(result if args.decompress else data)
  packed = len(data if args.decompress else result)
  rate = f"{8 * packed / original:.3f} bits/byte, " if original else ""
  print(f"{args.file}: {original:,} bytes <-> {packed:,} bytes ({rate}{original / max(seconds, 1e-9):,.0f} "
        f"bytes/s) -> {output}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())

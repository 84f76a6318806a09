"""Train a config: python -m launch.train --config configs/<name>.py[:variant] --workdir DIR [--config.key=value ...]

Re-running the same command on the same workdir resumes from its latest checkpoint.
Multi-process runs (pods, clusters, the local runner) pass --coordinator, --num_processes
and --process_id, or set them through the environment (see core/distributed.py).
"""
from __future__ import annotations

import argparse
import sys

USAGE = "python -m launch.train --config configs/<name>.py[:variant] --workdir DIR [--config.key=value ...]"


def parse_args(argv):
  parser = argparse.ArgumentParser(prog="python -m launch.train", usage=USAGE)
  parser.add_argument("--config", required=True, help="config file, optionally with :variant")
  parser.add_argument("--workdir", required=True, help="output and checkpoint directory (resumes)")
  parser.add_argument("--coordinator", default=None, help="host:port of process 0 (multi-process)")
  parser.add_argument("--num_processes", type=int, default=None)
  parser.add_argument("--process_id", type=int, default=None)
  return parser.parse_known_args(argv)


def main(argv=None) -> int:
  args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
  # Imports after parsing so that `--help` and flag errors are instant.
  # pylint: disable=g-import-not-at-top
  from core.config import load_config
  from core.task import ConfigError, DataMissingError
  try:
    config = load_config(args.config, overrides)  # light imports only: config errors are instant
    from core import distributed
    from core.train import TrainingDiverged, train
    distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    try:
      train(config, args.workdir)
    except TrainingDiverged as e:
      print(f"error: {e}", file=sys.stderr)
      return 3
  except (ConfigError, DataMissingError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())

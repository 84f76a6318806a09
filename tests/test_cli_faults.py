"""First-hour faults at the command line: bad numbers, bad workdirs, libtpu noise, --list, a fuzzer.

Each one ends in one line (`error: ...`, exit status 2) or a run; never in a traceback.
"""
import collections
import os
import random
import re
import subprocess
import sys
import time
import traceback

import jax
import pytest

from core import config as config_lib
from core import platforms
from core import validate
from core.task import ConfigError, DataMissingError
from launch import train as launch_train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join("tests", "toy_task.py")


def launch(*args, env=None, drop=()):
  full_env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  full_env.update(env or {})
  for name in drop:
    full_env.pop(name, None)
  return subprocess.run([sys.executable, "-m", "launch.train", *args], cwd=ROOT, env=full_env,
                        capture_output=True, text=True, timeout=600)


def one_line_error(result):
  """The stderr of a run refused at the command line: exactly one line, `error: ...`."""
  lines = result.stderr.strip().splitlines()
  assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
  return lines[0]


# ---- 1. numbers checked with the config, before anything is built ----------------------------

@pytest.mark.parametrize("override, message", [
    ("total_steps=-5", "config.total_steps must be >= 1, got -5"),
    ("total_steps=0", "config.total_steps must be >= 1, got 0"),
    ("total_steps=2147483648", "config.total_steps must be <= 2147483647, got 2147483648"),
    ("batch_size=0", "config.batch_size must be >= 1, got 0"),
    ("log_every=0", "config.log_every must be >= 1, got 0"),
    ("eval_every=-1", "config.eval_every must be >= 1, got -1"),
    ("checkpoint_every=0", "config.checkpoint_every must be >= 1, got 0"),
    ("keep_checkpoints=0", "config.keep_checkpoints must be >= 1, got 0"),
    ("optimizer.learning_rate=0", "config.optimizer.learning_rate must be > 0.0, got 0.0"),
    ("optimizer.learning_rate=-0.1", "config.optimizer.learning_rate must be > 0.0, got -0.1"),
    ("optimizer.learning_rate=nan", "config.optimizer.learning_rate is NaN"),
    ("optimizer.learning_rate=inf", "config.optimizer.learning_rate must be a finite number, got inf"),
    ("optimizer.warmup_steps=-1", "config.optimizer.warmup_steps must be >= 0, got -1"),
    ("optimizer.decay_steps=-10", "config.optimizer.decay_steps must be >= 0, got -10"),
    ("optimizer.grad_accum_steps=0", "config.optimizer.grad_accum_steps must be >= 1, got 0"),
    ("optimizer.grad_accum_steps=3", "config.batch_size 16 is not divisible by config.optimizer.grad_accum_steps 3"),
    ("optimizer.clip_norm=-1", "config.optimizer.clip_norm must be >= 0.0, got -1.0"),
    ("optimizer.clip_value=-0.5", "config.optimizer.clip_value must be >= 0.0, got -0.5"),
    ("optimizer.b2=1.5", "config.optimizer.b2 must be <= 1.0, got 1.5"),
    ("optimizer.name=adamm", "config.optimizer.name must be one of adam, adamw, sgd, momentum, rmsprop, adadelta, got 'adamm'"),
    ("mesh.data=0", "config.mesh.data must be >= 1 (or -1), got 0"),
    ("mesh.fsdp=-2", "config.mesh.fsdp must be >= 1 (or -1), got -2"),
    ("mesh.tensor=-1", "config.mesh: only one axis may be -1 (the rest of the devices), got ['data', 'tensor']"),
    ("seed=-1", "config.seed must be >= 0, got -1"),
    ("seed=4294967296", "config.seed must be <= 4294967295, got 4294967296"),
    ("peak_flops=-1", "config.peak_flops must be >= 0.0, got -1.0"),
    ("pipeline.microbatches=0", "config.pipeline.microbatches must be >= 1, got 0"),
    ("sharding.rules=(('batch', 'nodes'),)", "config.sharding.rules: 'batch' -> 'nodes' is not a mesh axis"),
    ("sharding.rules=(('batch',),)", "config.sharding.rules must be a tuple of (logical_name, mesh_axes) pairs"),
    ("data.dim=-3", "config.data.dim must be >= 0 (a size or count: its default is 4), got -3"),
    ("data.dim=4294967296", "config.data.dim must be <= 2147483647 in size (an int32), got 4294967296"),
])
def test_numeric_values_are_checked_when_the_config_loads(override, message):
  with pytest.raises(ConfigError) as e:
    config_lib.load_config(TOY, [f"--config.{override}"])
  assert str(e.value).startswith(message), str(e.value)
  assert "\n" not in str(e.value)


def test_sentinels_and_derived_values_stay_valid():
  # -1 on one mesh axis, a data field whose default is negative, a rate left to derive().
  config_lib.load_config(TOY, ["--config.mesh.data=1", "--config.mesh.fsdp=-1", "--config.data.nan_at_step=-1"])
  config = config_lib.load_config("configs/scaling_laws.py:tiny", ["--config.optimizer.learning_rate=None"])
  assert config.optimizer.learning_rate > 0
  with pytest.raises(ConfigError, match="learning_rate must be > 0"):
    config_lib.load_config("configs/scaling_laws.py:tiny", ["--config.lr_scale=-1.0"])


@pytest.mark.parametrize("steps", ["-5", "0"])
def test_bad_total_steps_exits_2_and_creates_nothing(tmp_path, steps):
  workdir = tmp_path / "run"
  result = launch("--config", TOY, "--workdir", str(workdir), f"--config.total_steps={steps}")
  assert one_line_error(result) == f"error: config.total_steps must be >= 1, got {steps}"
  assert not workdir.exists()


def test_compile_and_sweep_refuse_the_same_values(monkeypatch, capsys):
  from launch import sweep  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match="config.total_steps must be >= 1, got 0"):
    sweep.load_points("configs/scaling_laws.py:tiny", ["--config.total_steps=0"])
  from core import hardware  # pylint: disable=g-import-not-at-top
  from launch import compile as launch_compile  # pylint: disable=g-import-not-at-top
  if not hardware.libtpu_installed():
    pytest.skip("launch.compile needs libtpu (pip install -e '.[aot]')")
  # launch.compile sets these with setdefault; monkeypatch puts the environment back afterwards.
  for name, value in [("TPU_ACCELERATOR_TYPE", "v5litepod-1"), ("TPU_WORKER_HOSTNAMES", "localhost"),
                      ("TPU_SKIP_MDS_QUERY", "1"), ("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")]:
    monkeypatch.setenv(name, value)
  code = launch_compile.main(["--config", TOY, "--topology", "v5e-1", "--config.batch_size=0"])
  assert code == 2
  assert "error: config.batch_size must be >= 1, got 0" in capsys.readouterr().err


# ---- 2. workdirs that cannot be used ------------------------------------------------------------

def test_workdir_that_is_a_file(tmp_path):
  path = tmp_path / "notes.txt"
  path.write_text("keep me")
  result = launch("--config", TOY, "--workdir", str(path), "--config.total_steps=2")
  assert one_line_error(result) == f"error: --workdir {path} is a file, not a directory; pick another path"
  assert path.read_text() == "keep me"
  result = launch("--config", TOY, "--workdir", str(path / "run"), "--config.total_steps=2")
  assert "is a file, not a directory" in one_line_error(result)
  assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_workdir_that_cannot_be_created():
  # /proc refuses new folders even to root, so this holds for every user.
  result = launch("--config", TOY, "--workdir", "/proc/launch_train_test/run", "--config.total_steps=2")
  assert "cannot be created: no new folder can be made in /proc" in one_line_error(result)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_workdir_without_permission(tmp_path):
  locked = tmp_path / "locked"
  locked.mkdir()
  locked.chmod(0o500)
  try:
    result = launch("--config", TOY, "--workdir", str(locked / "run"), "--config.total_steps=2")
    assert "cannot be created" in one_line_error(result)
    result = launch("--config", TOY, "--workdir", str(locked), "--config.total_steps=2")
    assert "is not writable" in one_line_error(result)
    assert not os.listdir(locked)
  finally:
    locked.chmod(0o700)


def test_check_workdir_leaves_nothing_behind(tmp_path):
  assert launch_train.check_workdir(str(tmp_path / "a" / "b")) is None
  assert launch_train.check_workdir(str(tmp_path)) is None
  assert launch_train.check_workdir("gs://bucket/run") is None  # object stores: their client checks
  os.symlink(tmp_path / "missing", tmp_path / "dangling")
  assert "broken symbolic link" in launch_train.check_workdir(str(tmp_path / "dangling"))
  assert sorted(os.listdir(tmp_path)) == ["dangling"]


# ---- 3. no libtpu noise on a machine without a TPU ----------------------------------------------

def _env_without_platform_choice():
  env = {k: v for k, v in os.environ.items()
         if k != "JAX_PLATFORMS" and not k.startswith(("TPU_", "CLOUD_TPU")) and k != "ALLOW_MULTIPLE_LIBTPU_LOAD"}
  return env


def test_no_tpu_warnings_without_jax_platforms(tmp_path):
  env = _env_without_platform_choice()
  if platforms.tpu_present(env):
    pytest.skip("this machine has a TPU: jax should start it")
  result = subprocess.run(
      [sys.executable, "-m", "launch.train", "--config", TOY, "--workdir", str(tmp_path / "run"),
       "--config.total_steps=2"],
      cwd=ROOT, env={**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"},
      capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  noise = [line for line in result.stderr.splitlines() if re.search(r"tpu|worker hostname", line, re.I)]
  assert not noise, "\n".join(noise)
  assert "step 2/2" in result.stdout


def test_platform_rule(tmp_path, monkeypatch):
  def root(*paths):
    r = tmp_path / str(len(list(tmp_path.iterdir())))
    for p in paths:
      (r / p).parent.mkdir(parents=True, exist_ok=True)
      (r / p).write_text("0x1ae0" if p.endswith("vendor") else "")
    r.mkdir(exist_ok=True)
    return str(r)

  monkeypatch.setattr(platforms, "_jax_plugins", lambda: set())
  assert platforms.choose_platforms({}, root()) == ("cpu", "")
  assert platforms.choose_platforms({"JAX_PLATFORMS": ""}, root()) == (None, "")       # the user's
  assert platforms.choose_platforms({"TPU_ACCELERATOR_TYPE": "v5e-8"}, root()) == (None, "")
  assert platforms.choose_platforms({}, root("dev/accel0")) == (None, "")              # TPU v4 / v5p
  assert platforms.choose_platforms({}, root("dev/vfio/0")) == (None, "")              # TPU v5e / v6e
  assert platforms.choose_platforms({}, root("dev/vfio/vfio")) == ("cpu", "")          # VFIO, no TPU
  assert platforms.choose_platforms({}, root("sys/bus/pci/devices/0000:00:04.0/vendor")) == (None, "")
  value, note = platforms.choose_platforms({}, root("dev/nvidia0"))
  assert value == "cpu" and "CUDA plugin is not installed" in note
  monkeypatch.setattr(platforms, "_jax_plugins", lambda: {"xla_cuda12"})
  assert platforms.choose_platforms({}, root("dev/nvidia0")) == ("cuda,cpu", "")
  # GPU XLA flags: added once each; a flag the user set keeps the user's value.
  flags = platforms.with_gpu_xla_flags("--xla_gpu_enable_triton_gemm=true --xla_dump_to=/tmp/x")
  assert flags.split() == ["--xla_gpu_enable_triton_gemm=true", "--xla_dump_to=/tmp/x",
                           "--xla_gpu_enable_cudnn_layer_norm=true",
                           "--xla_gpu_enable_latency_hiding_scheduler=true"]
  assert platforms.with_gpu_xla_flags(flags) == flags
  env = {"JAX_PLATFORMS": "tpu"}
  assert platforms.set_default_platforms(env) == (None, "") and env == {"JAX_PLATFORMS": "tpu"}
  env = {}
  platforms.set_default_platforms(env)
  assert ("JAX_PLATFORMS" in env) != platforms.tpu_present(env)


# ---- 4. --list ------------------------------------------------------------------------------------

def config_files():
  directory = os.path.join(ROOT, "configs")
  return sorted(os.path.join("configs", n) for n in os.listdir(directory)
                if n.endswith(".py") and n not in ("__init__.py", "common.py"))


def test_list_prints_every_config_and_its_variants_without_jax():
  result = subprocess.run([sys.executable, "-m", "launch.train", "--list"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert not result.stderr
  text = " ".join(result.stdout.split())
  for path in config_files():
    info = launch_train.describe_config(os.path.join(ROOT, path))
    assert f"{path} {' '.join(info['summary'].split())}" in text
    assert info["variants"], f"{path} declares no VARIANTS"
    assert "variants: " + ", ".join(info["variants"]) in text
  probe = ("import sys; from launch import train; train.main(['--list']); "
           "print('JAX LOADED' if 'jax' in sys.modules else 'NO JAX')")
  result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.stdout.strip().endswith("NO JAX"), result.stdout[-500:] + result.stderr[-2000:]


@pytest.mark.parametrize("path", config_files())
def test_every_declared_variant_loads(path):
  info = launch_train.describe_config(os.path.join(ROOT, path))
  for variant in info["variants"]:
    config = config_lib.load_config(f"{path}:{variant}")  # validated, too
    assert config.task
  with pytest.raises(ConfigError):
    config_lib.load_config(f"{path}:no_such_variant")


# ---- 5. the fuzzer ------------------------------------------------------------------------------

FUZZ_SPECS = (TOY, "configs/transformer.py", "configs/ntm.py")
ANY_VALUES = ("-5", "0", "-1", "1", "2", "3", "7", "16", "1000000000000", "1e30", "-1e-3", "0.5", "1.5",
              "nan", "-nan", "inf", "-inf", "abc", "", "True", "false", "(1, 2)", "()", "[1]", "None",
              "{}", "{[]: 1}", "'x'", "((", "2**31", "9" * 5000, "(('batch', 'data'),)",
              "(('batch', 'nope'),)", "('x',)", "float32", "bfloat16", "adam", "noam", "1,2", "-0",
              "4294967296", "1e-300", "lambda: 0", "__import__('os')")
NUMERIC_VALUES = ("-5", "0", "-1", "1", "2", "3", "4", "8", "16", "64", "256", "1000000000000", "0.0",
                  "0.5", "1.0", "2.5", "-0.5", "nan", "inf", "1e-9", "True", "False")
# Tracebacks the fuzzer finds in paper code (not core's or launch's): (config, key) -> what the
# task or model raises. Reported to the papers' owners; counted, not hidden.
KNOWN_PAPER_FAULTS = {}  # (config, key) pairs whose paper code still raises a traceback: none


TYPED_VALUES = {
    int: ("0", "1", "2", "3", "4", "8", "16", "32", "-1", "256", "2147483648"),
    float: ("0.0", "1e-4", "0.1", "0.5", "1.0", "2.0", "-0.5", "1e30", "nan", "inf"),
    str: ("float32", "bfloat16", "adam", "sgd", "cosine", "noam", "lstm", "ff", "copy", "bogus", ""),
    bool: ("true", "false", "1", "0", "maybe"),
    tuple: ("()", "(1,)", "(10, 20)", "(('batch', 'data'),)", "(('batch', ('data', 'fsdp')),)"),
}


def _keys(node, prefix=""):
  """{leaf key: its value's type}, [group keys]."""
  leaves, groups = {}, []
  for k in node.keys():
    v = node[k]
    if hasattr(v, "keys") and callable(v.keys):
      groups.append(prefix + k)
      sub_leaves, sub_groups = _keys(v, f"{prefix}{k}.")
      leaves.update(sub_leaves)
      groups += sub_groups
    else:
      leaves[prefix + k] = type(v)
  return leaves, groups


def _misspell(rng, key):
  i = rng.randrange(len(key))
  return rng.choice([key[:i] + key[i + 1:], key[:i] + key[i] + key[i:], key[:i] + "x" + key[i + 1:],
                     key.upper(), key.replace(".", "_")])


def fuzz_case(rng, leaves, groups):
  """1-3 overrides: existing keys (mostly with a value of their type), typos, keys nested under
  a value, group names, malformed keys; values of any type, negative, zero, huge, NaN, ..."""
  flags = []
  names = sorted(leaves)
  for _ in range(rng.choice((1, 1, 1, 2, 3))):
    r = rng.random()
    typed = None
    if r < 0.7:
      key = rng.choice(names)                                           # an existing key
      typed = TYPED_VALUES.get(leaves[key])
    elif r < 0.8:
      key = _misspell(rng, rng.choice(names))                           # a typo
    elif r < 0.87:
      key = rng.choice(names) + "." + rng.choice(("x", "value", "a.b"))  # nested under a value
    elif r < 0.95:
      key = rng.choice(groups)                                          # a group name
    else:
      key = rng.choice(("", ".", "model..d_model", "mesh.data ", "model.nope.x"))
    r = rng.random()
    value = rng.choice(typed if typed and r < 0.6 else ANY_VALUES if r < 0.8 else NUMERIC_VALUES)
    r = rng.random()
    if r < 0.03:
      flags.append(f"--config.{key}")                                 # no '='
    elif r < 0.05:
      flags.append(f"--confg.{key}={value}")                          # not a --config flag
    else:
      flags.append(f"--config.{key}={value}")
  return flags


def _in_paper_code(error):
  return any(f"{os.sep}papers{os.sep}" in frame.filename for frame in traceback.extract_tb(error.__traceback__))


def try_case(spec, flags, devices):
  """('error', message) | ('valid', trainer) | ('known', text) | ('traceback', text)."""
  try:
    from core.train import Trainer  # pylint: disable=g-import-not-at-top
    config = config_lib.load_config(spec, flags)
    return "valid", Trainer(config, devices=devices)
  except (ConfigError, DataMissingError) as e:
    return "error", str(e)
  except Exception as e:  # pylint: disable=broad-except
    text = f"{spec} {flags}: {type(e).__name__}: {' '.join(str(e).split())[:300]}"
    keys = {f.partition("=")[0][len("--config."):] for f in flags}
    if _in_paper_code(e) and any((spec, k) in KNOWN_PAPER_FAULTS for k in keys):
      return "known", text
    return "traceback", text


def test_config_fuzzer(tmp_path):
  rng = random.Random(20261126)
  keys = {spec: _keys(config_lib.load_config(spec)) for spec in FUZZ_SPECS}
  counts = collections.Counter()
  tracebacks, multiline, known, runnable, refused = [], [], [], [], []
  slowest = (0.0, "")
  for _ in range(200):
    spec = rng.choice(FUZZ_SPECS)
    flags = fuzz_case(rng, *keys[spec])
    start = time.monotonic()
    outcome, detail = try_case(spec, flags, jax.devices()[:rng.choice((1, 2, 8))])
    slowest = max(slowest, (time.monotonic() - start, f"{spec} {flags}"))
    counts[outcome] += 1
    if outcome == "error":
      if not detail or "\n" in detail:
        multiline.append(f"{spec} {flags}: {detail!r}")
      else:
        refused.append((spec, flags))
    elif outcome == "valid":
      params = sum(x.size for x in jax.tree.leaves(detail.abstract_state().params))
      rows = sum(s.size for s in detail.batch_shape.values())
      if params < 2e5 and rows < 2e5 and spec == TOY:  # small enough to run for real
        runnable.append((spec, flags))
    elif outcome == "known":
      known.append(detail)
    else:
      tracebacks.append(detail)

  # A handful through the command line, 2 steps each: the same verdict, one line or a run.
  picks = rng.sample(runnable, min(3, len(runnable))) + rng.sample(refused, min(3, len(refused)))
  for i, (spec, flags) in enumerate(picks):
    with_steps = [*flags, "--config.total_steps=2"]
    outcome, _ = try_case(spec, with_steps, jax.devices()[:1])
    workdir = tmp_path / ("refused" if outcome == "error" else f"run{i}")
    result = launch("--config", spec, "--workdir", str(workdir), *with_steps)
    counts["cli_runs"] += 1
    if "Traceback" in result.stderr:
      tracebacks.append(f"launch.train {spec} {with_steps}: {result.stderr[-1500:]}")
    elif result.returncode == 2:
      assert one_line_error(result)
      counts["cli_one_line_errors"] += 1
    else:
      assert result.returncode in (0, 3), result.stderr[-2000:]  # 3: diverged, one line too
      counts["cli_runs_ok"] += 1

  print(f"\nconfig fuzzer: {sum(counts[k] for k in ('error', 'valid', 'known', 'traceback'))} cases: "
        f"{counts['error']} one-line errors, {counts['valid']} valid constructions, "
        f"{counts['traceback']} tracebacks, {counts['known']} known paper-code faults "
        f"({len(multiline)} multi-line messages); {counts['cli_runs']} through python -m launch.train: "
        f"{counts['cli_one_line_errors']} one-line errors, {counts['cli_runs_ok']} runs")
  print(f"  slowest case: {slowest[0]:.1f} s, {slowest[1]}")
  for line in known:
    print("  known paper-code fault:", line)
  assert not tracebacks, "\n".join(tracebacks)
  assert not multiline, "\n".join(multiline)
  assert not (tmp_path / "refused").exists()  # refused runs create nothing

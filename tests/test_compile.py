"""Ahead-of-time compilation for TPU slices on a CPU machine (launch.compile, core.hardware).

Needs libtpu (`pip install -e ".[aot]"`); skipped without it. References: slice shapes from
Google's TPU pages, FLOP and byte counts from numpy formulas, parameter counts from the config.
"""
import os

os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")  # pytest-xdist workers load libtpu at once

import math  # pylint: disable=g-import-not-at-top
import subprocess
import sys

import pytest

pytest.importorskip("libtpu", reason='compiling for TPU needs libtpu: pip install -e ".[aot]"')

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from core import hardware
from core import sharding
from core.config import load_config
from launch import compile as aot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("name, shape", [
    # cloud.google.com/tpu/docs/v4, v5p, v5e, v6e: accelerator type -> slice topology.
    ("v4-8", (2, 2, 1)), ("v4-128", (4, 4, 4)), ("v4-256", (4, 4, 8)),
    ("v5p-8", (2, 2, 1)), ("v5p-64", (2, 4, 4)), ("v5p-256", (4, 4, 8)), ("v5p-1024", (8, 8, 8)),
    ("v5e-8", (2, 4)), ("v5e-32", (4, 8)), ("v5litepod-256", (16, 16)), ("v6e-64", (8, 8)),
    ("v5p:16x16x24", (16, 16, 24)),
])
def test_slice_shapes_follow_the_tpu_docs(name, shape):
  assert hardware.parse_topology(name).shape == shape


def test_gpus_compile_on_a_tpu_stand_in_with_as_many_chips():
  topology = hardware.parse_topology("h100-64")
  assert topology.chip.name == "h100" and topology.libtpu_name == "v5p:4x4x4"
  assert len(hardware.compile_only_devices(topology)) == 64


@pytest.mark.parametrize("bad", ["v5p-100", "v5p-7", "v9-8", "v5e:4x4x4", "tpu", "h100:4x4"])
def test_bad_topology_names_are_refused(bad):
  with pytest.raises(ValueError):
    hardware.parse_topology(bad)


@pytest.mark.parametrize("name, slices, kind", [
    ("v4-16", 1, "TPU v4"), ("v5p-128", 1, "TPU v5"), ("v5e-16", 2, "TPU v5 lite"), ("v6e-8", 1, "TPU v6 lite")])
def test_compile_only_devices_one_per_chip(name, slices, kind):
  topology = hardware.parse_topology(name, slices)
  devices = hardware.compile_only_devices(topology)
  assert len(devices) == topology.chips_per_slice * slices
  assert {d.device_kind for d in devices} == {kind}
  assert {getattr(d, "slice_index", 0) for d in devices} == set(range(slices))


def _mesh(name, shape, axes, slices=1):
  devices = hardware.compile_only_devices(hardware.parse_topology(name, slices))
  return Mesh(mesh_utils.create_device_mesh(shape, devices), axes)


def _compile(fn, *args, **jit_kwargs):
  return jax.jit(fn, **jit_kwargs).lower(*args).compile()


def test_flops_of_a_scan_count_every_iteration():
  """XLA's cost_analysis counts a while body once; step_cost multiplies by the trip count."""
  mesh = _mesh("v5p-8", (4,), ("data",))
  layers, batch, width = 6, 512, 1024

  def forward(w, x):
    y, _ = jax.lax.scan(lambda h, wl: (jnp.tanh(h @ wl), None), x, w)
    return y

  w = jax.ShapeDtypeStruct((layers, width, width), jnp.bfloat16, sharding=NamedSharding(mesh, P()))
  x = jax.ShapeDtypeStruct((batch, width), jnp.bfloat16, sharding=NamedSharding(mesh, P("data")))
  compiled = _compile(forward, w, x)
  expected = 2 * batch * width * width * layers / 4      # per device: the batch is split 4 ways
  assert hardware.step_cost(compiled.as_text(), 4).flops == expected
  assert compiled.cost_analysis()["flops"] < expected / 2   # why step_cost exists
  assert hardware.jaxpr_flops(forward, w, x) == expected * 4


def test_flops_and_traffic_of_an_unrolled_gradient():
  """Unrolled MLP gradient: dW and dx per layer, except dx of the first layer (not needed)."""
  mesh = _mesh("v5p-8", (2, 2), ("data", "fsdp"))
  layers, batch, width = 3, 512, 1024

  def loss(w, x):
    h = x
    for i in range(layers):
      h = jnp.tanh(h @ w[i].astype(h.dtype))
    return jnp.mean(h.astype(jnp.float32) ** 2)

  w_sharding = NamedSharding(mesh, P(None, "fsdp", None))
  w = jax.ShapeDtypeStruct((layers, width, width), jnp.float32, sharding=w_sharding)
  x = jax.ShapeDtypeStruct((batch, width), jnp.bfloat16, sharding=NamedSharding(mesh, P(("data", "fsdp"))))
  compiled = _compile(jax.grad(loss), w, x, out_shardings=w_sharding)
  cost = hardware.step_cost(compiled.as_text(), 4)
  assert cost.flops == 2 * batch * width * width * (3 * layers - 1) / 4
  # XLA also counts elementwise FLOPs (tanh', squares), a small extra here.
  assert cost.flops <= compiled.cost_analysis()["flops"] <= 1.02 * cost.flops
  # fsdp all-gathers each weight (bf16) forward and backward, and reduce-scatters its gradient.
  weight = width * width
  assert cost.network_bytes >= 2 * (1 / 2) * weight * 2 * layers
  assert cost.hbm_bytes >= layers * weight * 4 / 2             # reads its half of the f32 weights


def test_flops_of_batched_einsums_and_their_gradients():
  """XLA writes these as convolutions over padded or dilated windows; only real taps count."""
  mesh = _mesh("v5p-8", (4,), ("data",))
  b, l, e, h, d = 16, 10, 128, 4, 32

  def loss(w, x):
    q = jnp.einsum("ble,ehd->blhd", x, w)                 # a head projection
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, q)          # attention scores
    return jnp.sum(scores ** 2)

  w = jax.ShapeDtypeStruct((e, h, d), jnp.float32, sharding=NamedSharding(mesh, P()))
  x = jax.ShapeDtypeStruct((b, l, e), jnp.float32, sharding=NamedSharding(mesh, P("data")))
  compiled = _compile(jax.grad(loss), w, x, out_shardings=NamedSharding(mesh, P()))
  projection, scores = 2 * b * l * e * h * d, 2 * b * h * l * l * d
  # Forward both; backward: d(scores)/dq twice-used (2 matmuls) and dW of the projection.
  expected = (projection + scores + 2 * scores + projection) / 4
  assert hardware.step_cost(compiled.as_text(), 4).flops == expected
  assert hardware.jaxpr_flops(jax.grad(loss), w, x) == expected * 4


def test_jaxpr_flops_of_a_shard_map_count_every_shard():
  mesh = jax.make_mesh((4,), ("stage",), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.devices("cpu")[:4])
  per_shard = jax.shard_map(lambda a, b: a @ b, mesh=mesh, in_specs=(P("stage"), P()), out_specs=P("stage"))
  a, b = jax.ShapeDtypeStruct((64, 32), jnp.float32), jax.ShapeDtypeStruct((32, 16), jnp.float32)
  assert hardware.jaxpr_flops(per_shard, a, b) == 2 * 64 * 32 * 16


def test_elementwise_traffic_is_one_read_and_one_write():
  mesh = _mesh("v5e-8", (8,), ("data",))
  n = 8 * 2**20
  x = jax.ShapeDtypeStruct((n,), jnp.float32, sharding=NamedSharding(mesh, P("data")))
  compiled = _compile(lambda v: v * 2 + 1, x)
  cost = hardware.step_cost(compiled.as_text(), 8)
  assert cost.hbm_bytes == 2 * 4 * n / 8
  assert cost.flops == 0 and cost.network_bytes == 0


def test_collective_bytes_all_gather_and_all_reduce():
  mesh = _mesh("v5p-16", (8,), ("data",))
  rows, cols = 8 * 256, 512
  x = jax.ShapeDtypeStruct((rows, cols), jnp.float32, sharding=NamedSharding(mesh, P("data")))
  gathered = _compile(lambda v: v + 1, x, out_shardings=NamedSharding(mesh, P()))
  # Ring all-gather: each device sends its shard to the 7 others' ring: 7/8 of the whole.
  sent = hardware.step_cost(gathered.as_text(), 8).network_bytes
  assert sent == pytest.approx(7 / 8 * rows * cols * 4, rel=0.01)
  summed = _compile(lambda v: jnp.sum(v, axis=0), x, out_shardings=NamedSharding(mesh, P()))
  # Ring all-reduce of the [cols] partial sums: reduce-scatter + all-gather, 2 x 7/8 of it.
  sent = hardware.step_cost(summed.as_text(), 8).network_bytes
  assert sent == pytest.approx(2 * 7 / 8 * cols * 4, rel=0.01)


def test_roofline_picks_the_slowest_resource():
  chip = hardware.CHIPS["v5p"]
  roof = hardware.roofline(chip, flops=459e12, hbm_bytes=2765e9 / 2, network_bytes=1200e9 / 4)
  assert (roof.compute_s, roof.memory_s, roof.network_s) == pytest.approx((1.0, 0.5, 0.25))
  assert roof.step_s == pytest.approx(1.0) and roof.bound == "compute"
  assert roof.utilisation(459e12 / 2, chip) == pytest.approx(0.5)


def transformer_params(d, d_ff, vocab, enc, dec):
  """Pre-norm encoder-decoder with shared embeddings (papers/transformer/model.py)."""
  attention = 4 * d * d + 4 * d        # q, k, v, out kernels and biases
  ffn = 2 * d * d_ff + d_ff + d
  norm = 2 * d
  return (enc * (attention + ffn + 2 * norm) + dec * (2 * attention + ffn + 3 * norm)
          + vocab * d + 2 * norm)


# Dropout's random bits double the TPU compile time and change no memory figure checked here.
BIG_LAYERS = ["--config.model.num_encoder_layers=1", "--config.model.num_decoder_layers=1",
              "--config.model.dropout=0.0"]


def test_transformer_big_on_v5p_64_chips():
  """The paper's big widths (d_model 1024, d_ff 4096, 16 heads; 1+1 of its 6+6 layers, to keep
  the test short; the full depth is in the README) compile for a 64-chip v5p slice with
  data, fsdp and tensor meshes. Parameters + Adam's two moments (f32) per device shrink as
  fsdp x tensor grows; the compiled arguments are at least that, and more where a shard's minor
  dimension (head_dim 64) is padded to the TPU's 128-lane tiles."""
  topology = hardware.parse_topology("v5p-128")
  arguments = []
  for mesh in (dict(data=64), dict(data=4, fsdp=16), dict(data=2, fsdp=8, tensor=4)):
    overrides = BIG_LAYERS + [f"--config.mesh.{k}={v}" for k, v in {"data": 1, **mesh}.items()]
    config = load_config("configs/transformer.py:big", overrides)
    report = aot.compile_for(config, topology, "big")
    m = config.model
    vocab = -(-config.data.vocab_size // m.vocab_multiple) * m.vocab_multiple  # padded to 128
    params = transformer_params(m.d_model, m.d_ff, vocab, 1, 1)
    assert report.num_params == params
    state = 3 * 4 * params / (mesh.get("fsdp", 1) * mesh.get("tensor", 1))
    # A few biases stay replicated (not divisible or not sharded): within 3%.
    assert report.state_bytes == pytest.approx(state, rel=0.03), mesh
    assert state <= report.argument_bytes <= 2.5 * state, mesh
    assert report.total_bytes < hardware.CHIPS["v5p"].hbm_bytes
    assert report.cost.flops > 0 and report.roofline.step_s > 0
    arguments.append(report.argument_bytes)
  assert arguments[0] == pytest.approx(3 * 4 * params, rel=0.01)   # data parallel: all replicated
  assert arguments[0] > 8 * arguments[1] and arguments[1] > arguments[2]


def test_too_large_for_hbm_fails_with_the_reason(tmp_path):
  """A model whose state cannot fit one v5e chip: exit status 4 and one line naming the excess."""
  command = [sys.executable, "-m", "launch.compile", "--config", "configs/transformer.py",
             "--topology", "v5e-1", "--config.model.d_model=4096", "--config.model.d_ff=65536",
             "--config.model.num_heads=32", "--config.mesh.data=1"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert result.returncode == aot.EXIT_DOES_NOT_FIT, result.stderr[-2000:]
  error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert len(error) == 1 and "Traceback" not in result.stderr
  assert "does not fit v5e:1x1" in error[0] and "GiB over" in error[0] and "mesh.fsdp" in error[0]


def test_model_flops_of_the_lm_match_the_formula():
  """3 x forward matmul FLOPs, from the jaxpr of the real loss, against the per-token formula:
  the one MFU numerator of training (progress line) and of launch.compile."""
  from core.train import Trainer  # pylint: disable=g-import-not-at-top
  config = load_config("configs/transformer_lm.py:tiny")
  flops = Trainer(config, devices=jax.devices()[:1]).model_flops() / 3
  b, t = config.batch_size, config.data.seq_len
  m = config.model
  d, layers = m.d_model, m.num_layers
  # Per token and layer: q, k, v, out projections (4 d^2), feed-forward (2 d d_ff), scores and
  # weighted values (2 x t d); then the tied output projection (d x vocab). x2 for multiply-add.
  per_token = 2 * (layers * (4 * d * d + 2 * d * m.d_ff + 2 * t * d) + d * m.vocab_size)
  assert flops == b * t * per_token


def test_two_slices_split_the_data_axis():
  config = load_config("configs/transformer.py", ["--config.mesh.fsdp=4"])
  topology = hardware.parse_topology("v5e-16", num_slices=2)
  mesh = sharding.make_mesh(config.mesh, hardware.compile_only_devices(topology), topology.num_slices)
  assert dict(mesh.shape) == dict(data=8, fsdp=4, tensor=1, stage=1)
  slices = [[d.slice_index for d in row.flat] for row in mesh.devices]   # one row per data index
  assert all(len(set(row)) == 1 for row in slices)                        # fsdp stays in a slice
  assert [row[0] for row in slices] == [0] * 4 + [1] * 4
  report = aot.compile_for(config, topology, "copy")
  assert report.cost.network_bytes > 0 and report.total_bytes < hardware.CHIPS["v5e"].hbm_bytes


def test_real_data_config_compiles_without_its_data(monkeypatch, tmp_path):
  """batch_spec() gives the shapes: the gpt config compiles on a machine without Shakespeare
  (one of its twelve layers, windows of 128 and no dropout, to keep the compile short: 6x
  faster; the README has the full command)."""
  monkeypatch.setenv("READING_LIST_DATA", str(tmp_path / "empty"))
  config = load_config("configs/transformer_lm.py:gpt", ["--config.model.num_layers=1",
                                                        "--config.data.seq_len=128",
                                                        "--config.model.dropout=0.0"])
  report = aot.compile_for(config, hardware.parse_topology("v5p-64"), "gpt")
  assert report.num_params > 0 and report.total_bytes < hardware.CHIPS["v5p"].hbm_bytes
  assert report.model_flops > 0


def test_peak_flops_datasheet_for_known_chips_measured_on_cpu():
  class Device:  # what jax reports for a GPU / TPU device
    def __init__(self, kind):
      self.device_kind = kind
  assert hardware.peak_flops(Device("NVIDIA H100 80GB HBM3")) == (989e12, "h100 bf16 datasheet peak")
  assert hardware.peak_flops(Device("TPU v5 lite"))[0] == 197e12
  assert hardware.peak_flops(Device("TPU v5"))[0] == 459e12
  assert hardware.peak_flops(Device("cpu"), configured=5e9) == (5e9, "config.peak_flops")
  measured, source = hardware.peak_flops(jax.devices("cpu")[0])
  assert source == "measured f32 matmul peak" and measured > 1e8

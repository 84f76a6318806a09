"""core.pipeline: the GPipe schedule against a plain loop of the same layers."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

from configs.common import base_config  # noqa: E402
from core import pipeline as pl  # noqa: E402

NUM_LAYERS, WIDTH = 8, 8


class Block(nn.Module):
  """Pre-LN residual MLP block with logical axes, like a Transformer layer's."""
  width: int = WIDTH

  @nn.compact
  def __call__(self, x, scale):
    part = nn.with_logical_partitioning
    h = nn.LayerNorm()(x)
    h = nn.Dense(2 * self.width,
                 kernel_init=part(nn.initializers.lecun_normal(), ("embed", "mlp")))(h)
    h = nn.with_logical_constraint(nn.gelu(h), ("batch", "length", "mlp"))
    h = nn.Dense(self.width,
                 kernel_init=part(nn.initializers.lecun_normal(), ("mlp", "embed")))(h)
    return x + scale * h


def make(num_stages, microbatches, remat=True, **kw):
  return pl.Pipeline(Block, dict(width=WIDTH), num_layers=NUM_LAYERS,
                     num_stages=num_stages, microbatches=microbatches, remat=remat, **kw)


def inputs(batch=16):
  x = jax.random.normal(jax.random.key(1), (batch, 3, WIDTH))
  target = jax.random.normal(jax.random.key(2), (batch, 3, WIDTH))
  return x, target, jnp.float32(0.7)


def init(module, *args):
  return jax.jit(lambda: nn.unbox(module.init(jax.random.key(0), *args)))()


def pipelined_loss(module):
  def loss(params, x, target, scale):
    y = module.apply(params, x, scale)
    return jnp.mean((y - target) ** 2), y
  return loss


@jax.jit
def _reference(layer_params, x, target, scale):
  def loss(layer_params, x):
    y = pl.apply_layers(Block(), layer_params, x, scale)
    return jnp.mean((y - target) ** 2), y
  return jax.value_and_grad(loss, (0, 1), has_aux=True)(layer_params, x)


def reference(params, x, target, scale):
  """Loss, output and grads (as stacked params, and input) of the plain layer loop."""
  layers = pl.stages_to_layers(params["params"]["stages"])
  k = jax.tree.leaves(params)[0].shape[0]
  (loss, y), (g_layers, g_x) = _reference(layers, x, target, scale)
  return loss, y, pl.layers_to_stages(g_layers, k), g_x


def assert_close(a, b, tol=2e-5):
  jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=tol, atol=tol), a, b)


def test_bubble_fraction_matches_schedule():
  for k, m in [(1, 1), (2, 1), (2, 4), (4, 1), (4, 8), (4, 32), (8, 3)]:
    busy = pl.scheduled_stage_ticks(k, m)
    assert busy.shape == (m + k - 1, k)
    assert 1 - busy.mean() == pytest.approx(pl.bubble_fraction(k, m))
    # stage s works on micro-batch j exactly at tick j + s, each once.
    for s in range(k):
      np.testing.assert_array_equal(np.flatnonzero(busy[:, s]), np.arange(m) + s)


def test_params_stage_stacked_with_logical_axes():
  x, _, scale = inputs()
  boxed = jax.jit(make(4, 2).init)(jax.random.key(0), x, scale)["params"]["stages"]
  kernel = boxed["Dense_0"]["kernel"]
  assert kernel.value.shape == (4, NUM_LAYERS // 4, WIDTH, 2 * WIDTH)
  assert kernel.names == ("stage", "layers", "embed", "mlp")
  assert boxed["LayerNorm_0"]["scale"].names == ("stage", "layers", None)


def test_init_does_not_depend_on_stage_count():
  x, _, scale = inputs()
  per_k = [pl.stages_to_layers(init(make(k, 1), x, scale)["params"]["stages"])
           for k in (1, 2, 4)]
  for other in per_k[1:]:
    assert_close(per_k[0], other, tol=0)
  # and the layers differ from each other (distinct keys)
  assert not np.allclose(per_k[0][0]["Dense_0"]["kernel"], per_k[0][1]["Dense_0"]["kernel"])


@pytest.mark.parametrize("remat", [True, False])
@pytest.mark.parametrize("microbatches", [1, 4, 8])
@pytest.mark.parametrize("num_stages", [2, 4])
def test_unsharded_equals_layer_loop(num_stages, microbatches, remat):
  x, target, scale = inputs()
  module = make(num_stages, microbatches, remat)
  params = init(module, x, scale)
  (loss, y), (g_params, g_x) = jax.jit(
      jax.value_and_grad(pipelined_loss(module), (0, 1), has_aux=True))(
          params, x, target, scale)
  ref_loss, ref_y, ref_g, ref_gx = reference(params, x, target, scale)
  assert_close(y, ref_y)
  assert_close(loss, ref_loss)
  assert_close(g_params["params"]["stages"], ref_g)
  assert_close(g_x, ref_gx)


def sharded_step(module, x, target, scale, mesh_shape=(2, 1, 1, 4)):
  """Loss, grads and compiled HLO text on a data x stage mesh with the base rules."""
  rules = tuple(base_config().sharding.rules)
  mesh = jax.make_mesh(mesh_shape, ("data", "fsdp", "tensor", "stage"),
                       axis_types=(jax.sharding.AxisType.Auto,) * 4)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    init_fn = lambda: module.init(jax.random.key(0), x, scale)
    shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(jax.eval_shape(init_fn)),
                                            mesh, rules)
    params = jax.jit(lambda: nn.unbox(init_fn()), out_shardings=shardings)()
    batch = NamedSharding(mesh, P(("data", "fsdp")))
    step = jax.jit(jax.value_and_grad(pipelined_loss(module), has_aux=True),
                   in_shardings=(shardings, batch, batch, None),
                   out_shardings=((None, batch), shardings))
    compiled = step.lower(params, x, target, scale).compile()
    (loss, y), grads = compiled(params, jax.device_put(x, batch), jax.device_put(target, batch),
                           scale)
  return params, (loss, y), grads, compiled.as_text()


@pytest.mark.parametrize("remat", [True, False])
def test_data2_stage4_mesh_equals_layer_loop(remat):
  x, target, scale = inputs()
  params, (loss, y), grads, hlo = sharded_step(make(4, 8, remat), x, target, scale)
  stages = grads["params"]["stages"]
  assert stages["Dense_0"]["kernel"].sharding.spec[0] == "stage"
  # each device holds one stage's weights; activations move by collective-permute
  assert stages["Dense_0"]["kernel"].addressable_shards[0].data.shape[0] == 1
  assert "collective-permute" in hlo
  assert "all-gather" not in hlo  # no stage's weights are gathered onto another
  ref_loss, ref_y, ref_g, _ = reference(jax.device_get(params), x, target, scale)
  assert_close(loss, ref_loss)
  assert_close(jax.device_get(y), ref_y)
  assert_close(jax.device_get(stages), ref_g)


@pytest.mark.parametrize("sharded", [False, True])
def test_nan_in_bubbles_reaches_neither_outputs_nor_gradients(sharded):
  x, target, scale = inputs()
  module = make(4, 4, bubble_fill=float("nan"))
  params = init(module, x, scale)
  if sharded:
    _, (loss, y), grads, _ = sharded_step(module, x, target, scale)
    y, grads = jax.device_get((y, grads))
  else:
    (loss, y), grads = jax.jit(jax.value_and_grad(pipelined_loss(module), has_aux=True))(
        params, x, target, scale)
  assert np.isfinite(y).all() and np.isfinite(loss)
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  ref_loss, ref_y, ref_g, _ = reference(params, x, target, scale)
  assert_close(y, ref_y)
  assert_close(grads["params"]["stages"], ref_g)


def test_nan_bubble_check_catches_an_off_by_one_schedule(monkeypatch):
  """The NaN test can fail: a mask that lets one bubble tick through leaks NaN."""
  def leaky(tick, num_stages, microbatches):
    microbatch = tick - jnp.arange(num_stages)
    return (microbatch >= 0) & (microbatch <= microbatches)

  monkeypatch.setattr(pl, "valid_mask", leaky)
  x, target, scale = inputs()
  module = make(4, 4, bubble_fill=float("nan"))
  params = init(module, x, scale)
  grads = jax.jit(jax.grad(pipelined_loss(module), has_aux=True))(params, x, target, scale)[0]
  assert not all(np.isfinite(g).all() for g in jax.tree.leaves(grads))


def test_dropout_rng_is_per_layer_and_microbatch():
  class Noisy(nn.Module):
    @nn.compact
    def __call__(self, x):
      return nn.Dropout(0.5, deterministic=False)(x)

  module = pl.Pipeline(Noisy, {}, num_layers=2, num_stages=2, microbatches=2)
  x = jnp.ones((4, 64))
  params = init(module, x)
  apply = jax.jit(lambda key: module.apply(params, x, rngs={"dropout": key}))
  y, again = apply(jax.random.key(1)), apply(jax.random.key(1))
  np.testing.assert_array_equal(y, again)
  # micro-batch 0 holds rows 0, 2; micro-batch 1 rows 1, 3: different masks
  assert not np.array_equal(y[0] != 0, y[1] != 0)
  kept = float(np.mean(y != 0))
  assert 0.15 < kept < 0.35  # two layers at keep 0.5


def test_indivisible_batch_uses_fewer_microbatches_and_layers_must_divide():
  x, target, scale = inputs(batch=6)
  module = make(2, 4)  # gcd(6, 4) = 2 micro-batches of 3
  params = init(module, x, scale)
  y = jax.jit(lambda p: module.apply(p, x, scale))(params)
  assert_close(y, reference(params, x, target, scale)[1])
  with pytest.raises(ValueError, match="num_stages"):
    pl.Pipeline(Block, {}, num_layers=6, num_stages=4).init(jax.random.key(0), x, scale)


def test_transformer_lm_trains_pipelined_through_launch_train(tmp_path, shakespeare_or_skip):
  """The LM with mesh data=4 x stage=2, M=4 equals its own unpipelined layer loop, then trains."""
  import dataclasses
  import json

  from core.config import load_config
  from core.train import Trainer, train
  from papers.transformer import model as lm

  shakespeare_or_skip()
  flags = ["--config.mesh.data=4", "--config.mesh.stage=2", "--config.pipeline.microbatches=4",
           "--config.total_steps=30", "--config.log_every=10", "--config.eval_every=30",
           "--config.checkpoint_every=30", "--config.data.eval_batches=1"]
  config = load_config("configs/transformer_lm.py:tiny", flags)
  trainer = Trainer(config)
  with trainer.context():
    state = trainer.init_state()
    trainer.task.check_data()
    batch = trainer.global_batch(0)
    loss = jax.jit(lambda v, b: trainer.task.loss(v, b, None, train=False)[0])(state.variables(), batch)
  params = jax.device_get(state.params)
  assert params["layers"]["stages"]["block"]
  # the same weights in the LM's own unpipelined loop of layers (layer_0, layer_1, ...)
  flat = {k: v for k, v in params.items() if k != "layers"}
  for i, p in enumerate(pl.stages_to_layers(params["layers"]["stages"])):
    flat[f"layer_{i}"] = p
  plain = lm.TransformerLM(dataclasses.replace(trainer.task.cfg, num_stages=1))
  host = jax.device_get(batch)
  logits = plain.apply({"params": flat}, host["inputs"])
  nll = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), host["targets"][..., None], -1))
  np.testing.assert_allclose(float(loss), float(nll), rtol=1e-5)

  train(config, str(tmp_path))
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  train_losses = [r["loss"] for r in rows if r["split"] == "train"]
  assert len(train_losses) == 3 and train_losses[-1] < train_losses[0] - 0.3
  assert any(r["split"] == "eval" for r in rows)

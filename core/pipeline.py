"""GPipe pipeline parallelism (Huang et al. 2019) for a stack of identical layers.

`Pipeline` applies `num_layers` copies of one layer in sequence. The layers are
split into K = `num_stages` stages of L/K layers; their parameters are stacked
with leading logical axes ('stage', 'layers'), so that mapping logical 'stage'
to a mesh axis places stage s on the s-th device group. The batch is split into
M = `microbatches` micro-batches that flow through the stages on the GPipe
schedule; with no mesh (or 'stage' unmapped) the same code runs on one device.

The schedule, written for one step (T = M + K - 1 ticks):

    xs = split(x, M) ++ [fill] * (K - 1)      # [T, B/M, ...]: input per tick
    state = [fill] * K                        # state[s]: what stage s holds
    for t in range(T):                        # fill: t < K-1; drain: t >= M
      state = roll(state, 1)                  # s-1 -> s; a collective-permute
      state[0] = xs[t]                        #   when 'stage' is sharded
      valid[s] = 0 <= t - s < M               # false in the bubble
      inputs = where(valid, state, 0)         # bubble values never enter a layer
      state = stages(params, inputs)          # all K stages at once: shard_map over
                                              #   'stage' (one per device), else vmap
      state = where(valid, state, fill)
      if t >= K - 1: out[t - K + 1] = state[K - 1]
    return concat(out)

Every tick computes all K stages, so a step costs (M + K - 1) / M times the
unpipelined FLOPs and a fraction (K - 1) / (M + K - 1) of the stage-ticks are
bubble. With `remat`, each tick's stage computation is wrapped in
`jax.checkpoint`: the backward pass keeps only the stage inputs of each tick
and recomputes the rest, so activation memory no longer grows with the number
of layers per stage times the number of ticks. `fill` (`bubble_fill`) is 0 in
use; tests set it to NaN to prove that bubble values reach neither the outputs
nor the gradients (as praxis does).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

STAGE, LAYERS = "stage", "layers"
_FREE = jax.sharding.PartitionSpec.UNCONSTRAINED


def bubble_fraction(num_stages: int, microbatches: int) -> float:
  """GPipe's idle fraction of stage-ticks: (K - 1) / (M + K - 1)."""
  return (num_stages - 1) / (microbatches + num_stages - 1)


def valid_mask(tick, num_stages: int, microbatches: int):
  """[K] bool: which stages hold a real micro-batch (not bubble) at `tick`."""
  microbatch = tick - jnp.arange(num_stages)
  return (microbatch >= 0) & (microbatch < microbatches)


def _stage_mesh_axis():
  """The mesh axis logical 'stage' maps to under the current rules and mesh, or None."""
  rules = nn.get_logical_axis_rules()
  if not rules:
    return None
  axis = nn.logical_to_mesh_axes((STAGE,), rules)[0]
  if axis is None:
    return None
  names = set(jax.sharding.get_abstract_mesh().axis_names)  # set by jax.set_mesh
  wanted = axis if isinstance(axis, tuple) else (axis,)
  return axis if set(wanted) <= names else None


def _constrain(x, leading: Sequence[Any]):
  """Logical sharding constraint on the leading dims; the rest left to GSPMD."""
  names = tuple(leading) + (_FREE,) * (x.ndim - len(leading))
  return nn.with_logical_constraint(x, names)


def _add_stage_axes(leaf):
  """Prefixes ('stage', 'layers') to a stacked parameter's logical names."""
  if isinstance(leaf, nn.LogicallyPartitioned):
    return leaf.replace(names=(STAGE, LAYERS) + tuple(leaf.names))
  if isinstance(leaf, nn.Partitioned):
    raise ValueError("Pipeline layers must name logical axes "
                     "(nn.with_logical_partitioning), not mesh axes.")
  return nn.LogicallyPartitioned(leaf, (STAGE, LAYERS) + (None,) * (leaf.ndim - 2))


class Pipeline(nn.Module):
  """`num_layers` layers `layer_cls(**layer_kwargs)(x, *args) -> x`, GPipe-scheduled.

  x is [batch, ...]; a batch that `microbatches` does not divide runs with
  gcd(batch, microbatches) micro-batches. `args` are shared by
  all layers and micro-batches (masks, flags). Layers may use the 'dropout' rng
  (folded with the layer and micro-batch index) but no mutable collections.
  Parameters: {'stages': tree with leaves [K, L/K, ...]}; `stages_to_layers`
  and `layers_to_stages` convert to and from a list of per-layer trees.
  """
  layer_cls: Any
  layer_kwargs: Any
  num_layers: int
  num_stages: int = 1
  microbatches: int = 1
  remat: bool = True
  bubble_fill: float = 0.0
  unroll: bool = False  # unrolled loops let XLA cost analysis count every tick

  def _layer(self):
    return self.layer_cls(**dict(self.layer_kwargs), parent=None)

  def _init_stages(self, rng, x_mb, args):
    k, per_stage = self.num_stages, self.num_layers // self.num_stages
    keys = jax.random.split(rng, self.num_layers)  # layer i gets key i, whatever K
    keys = keys.reshape((k, per_stage) + keys.shape[1:])
    layer = self._layer()

    def init_one(key):
      with nn.logical_axis_rules(()):  # the stacked tree is constrained below
        return layer.init({"params": key, "dropout": key}, x_mb, *args).get("params", {})

    stacked = jax.vmap(jax.vmap(init_one))(keys)
    return jax.tree.map(_add_stage_axes, stacked,
                        is_leaf=lambda l: isinstance(l, nn.meta.AxisMetadata))

  @nn.compact
  def __call__(self, x, *args):
    k = self.num_stages
    if self.num_layers % k:
      raise ValueError(f"num_layers={self.num_layers} is not divisible by num_stages={k}")
    # A batch M does not divide (e.g. sampling one sequence) runs with fewer micro-batches.
    m = math.gcd(x.shape[0], self.microbatches)
    mb = x.shape[0] // m
    params = self.param("stages", self._init_stages, x[:mb], args)
    if self.is_initializing():  # layers keep x's shape; skip the schedule's cost
      return x
    key = self.make_rng("dropout") if self.has_rng("dropout") else None
    return gpipe(self._layer(), params, x, args, num_stages=k, microbatches=m,
                 layers_per_stage=self.num_layers // k, remat=self.remat,
                 bubble_fill=self.bubble_fill, dropout_key=key, unroll=self.unroll)


def gpipe(layer, params, x, args=(), *, num_stages, microbatches, layers_per_stage,
          remat=True, bubble_fill=0.0, dropout_key=None, unroll=False):
  """The GPipe schedule (module docstring) as a pure function of stacked params."""
  k, m, per_stage = num_stages, microbatches, layers_per_stage
  mb = x.shape[0] // m
  ticks = m + k - 1
  stage_axis = _stage_mesh_axis()

  # Micro-batch j takes rows j, j+M, j+2M, ...: a data-sharded batch stays
  # evenly sharded in every micro-batch (no resharding).
  xs = x.reshape((mb, m) + x.shape[1:]).swapaxes(0, 1)
  xs = _constrain(xs, (None, "batch"))
  pad = jnp.full((k - 1,) + xs.shape[1:], bubble_fill, xs.dtype)
  xs = jnp.concatenate([xs, pad], axis=0)
  layer_ids = jnp.arange(k * per_stage).reshape(k, per_stage)

  def run_layer(x, layer_params, layer_id, microbatch, args, key):
    rngs = None
    if key is not None:
      rngs = {"dropout": jax.random.fold_in(jax.random.fold_in(key, layer_id), microbatch)}
    return layer.apply({"params": layer_params}, x, *args, rngs=rngs)

  def run_stage(stage_params, x, ids, microbatch, args, key):
    def body(x, p_id):
      return run_layer(x, *p_id, microbatch, args, key), None
    return jax.lax.scan(body, x, (stage_params, ids), unroll=unroll)[0]

  def run_local(params, inputs, ids, microbatch, args, key):
    """The stages one device holds (all K without a mesh): [K_local, ...]."""
    if inputs.shape[0] == 1:  # no vmap: a vmapped conv becomes a grouped conv
      first = lambda a: a[0]
      out = run_stage(jax.tree.map(first, params), inputs[0], ids[0], microbatch[0], args, key)
      return out[None]
    return jax.vmap(run_stage, in_axes=(0, 0, 0, 0, None, None))(
        params, inputs, ids, microbatch, args, key)

  def run_stages(params, inputs, microbatch):
    if stage_axis is None:
      return run_local(params, inputs, layer_ids, microbatch, args, dropout_key)
    # Each device runs its own stage(s); 'stage' is manual, the other mesh axes stay automatic.
    leaves, treedef = jax.tree.flatten(args)
    is_array = [isinstance(leaf, (jax.Array, np.ndarray)) for leaf in leaves]

    def local(params, inputs, ids, microbatch, key, arrays):
      arrays = iter(arrays)
      full = [next(arrays) if a else leaf for leaf, a in zip(leaves, is_array)]
      return run_local(params, inputs, ids, microbatch, jax.tree.unflatten(treedef, full), key)

    spec = jax.sharding.PartitionSpec(stage_axis)
    names = set(stage_axis) if isinstance(stage_axis, tuple) else {stage_axis}
    return jax.shard_map(
        local, in_specs=(spec, spec, spec, spec, jax.sharding.PartitionSpec(),
                         jax.sharding.PartitionSpec()),
        out_specs=spec, axis_names=names)(
            params, inputs, layer_ids, microbatch, dropout_key,
            [leaf for leaf, a in zip(leaves, is_array) if a])

  if remat:
    run_stages = jax.checkpoint(run_stages)

  def tick(state, t_x):
    t, x_t = t_x
    expand = lambda v: v.reshape((k,) + (1,) * (state.ndim - 1))
    first = expand(jnp.arange(k) == 0)
    state = jnp.where(first, x_t[None], jnp.roll(state, 1, axis=0))
    valid = expand(valid_mask(t, k, m))
    inputs = _constrain(jnp.where(valid, state, jnp.zeros_like(state)), (STAGE, "batch"))
    out = run_stages(params, inputs, t - jnp.arange(k))
    state = _constrain(jnp.where(valid, out, bubble_fill), (STAGE, "batch"))
    return state, state[k - 1]

  state = jnp.full((k,) + xs.shape[1:], bubble_fill, xs.dtype)
  state = _constrain(state, (STAGE, "batch"))
  _, last = jax.lax.scan(tick, state, (jnp.arange(ticks), xs), unroll=unroll)
  out = last[k - 1:]
  return out.swapaxes(0, 1).reshape((x.shape[0],) + out.shape[2:])


def stages_to_layers(stage_params) -> list:
  """Stacked {'leaf': [K, L/K, ...]} -> list of L per-layer trees, in layer order."""
  leaves, treedef = jax.tree.flatten(stage_params)
  k, per_stage = leaves[0].shape[:2]
  return [jax.tree.unflatten(treedef, [leaf[s, j] for leaf in leaves])
          for s in range(k) for j in range(per_stage)]


def layers_to_stages(layer_params: Sequence[Any], num_stages: int):
  """Inverse of `stages_to_layers`: stack L per-layer trees into [K, L/K, ...]."""
  per_stage = len(layer_params) // num_stages
  return jax.tree.map(
      lambda *ls: jnp.stack(ls).reshape((num_stages, per_stage) + ls[0].shape),
      *layer_params)


def apply_layers(layer, layer_params: Sequence[Any], x, *args):
  """The unpipelined reference: a plain Python loop over the layers."""
  for p in layer_params:
    x = layer.apply({"params": p}, x, *args)
  return x


def scheduled_stage_ticks(num_stages: int, microbatches: int) -> np.ndarray:
  """[T, K] bool table of the schedule (True = stage busy), for docs and benchmarks."""
  ticks = np.arange(microbatches + num_stages - 1)
  return np.stack([np.asarray(valid_mask(t, num_stages, microbatches)) for t in ticks])


__all__ = ["Pipeline", "gpipe", "bubble_fraction", "valid_mask", "stages_to_layers",
           "layers_to_stages", "apply_layers", "scheduled_stage_ticks"]

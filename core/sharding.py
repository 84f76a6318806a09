"""Meshes from config and the logical-axis -> mesh-axis mapping.

Models name logical axes only ('batch', 'embed', 'heads', ...); `config.sharding.rules`
maps them to the mesh axes `data`, `fsdp`, `tensor`, `stage`. Changing the
parallelism of a run is a config change, never a model change.
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from core.task import ConfigError
from core.validate import MESH_AXES



def mesh_shape(mesh_config, num_devices: int) -> dict[str, int]:
  """Resolves the one -1 entry to 'the remaining devices'; checks the product."""
  shape = {axis: int(mesh_config.get(axis, 1)) for axis in MESH_AXES}
  unknown = set(mesh_config.keys()) - set(MESH_AXES)
  if unknown:
    raise ConfigError(f"config.mesh has unknown axes {sorted(unknown)}; allowed: {MESH_AXES}")
  free = [a for a, n in shape.items() if n == -1]
  if len(free) > 1:
    raise ConfigError(f"config.mesh: only one axis may be -1, got {free}")
  if any(n == 0 or n < -1 for n in shape.values()):
    raise ConfigError(f"config.mesh: sizes must be positive or -1, got {shape}")
  fixed = math.prod(n for n in shape.values() if n != -1)
  if free:
    if num_devices % fixed:
      raise ConfigError(
          f"config.mesh {shape} does not fit {num_devices} devices: the fixed axes multiply to {fixed}, "
          f"which does not divide {num_devices}")
    shape[free[0]] = num_devices // fixed
  elif fixed != num_devices:
    raise ConfigError(
        f"config.mesh {shape} does not fit {num_devices} devices: it needs {fixed}; "
        f"set one axis to -1 or change the sizes")
  return shape


def make_mesh(mesh_config, devices: Sequence[jax.Device] | None = None, num_slices: int = 1) -> Mesh:
  """The config's mesh over `devices` (default: all), in the hardware's device order.

  With several slices (TPU multislice, joined over the data-centre network), the slices
  split the `data` axis (else `fsdp`), so only gradient reductions cross between slices.
  Training and ahead-of-time compiles (launch.compile) both build their mesh here.
  """
  from jax.experimental import mesh_utils  # pylint: disable=g-import-not-at-top
  devices = list(devices if devices is not None else jax.devices())
  shape = mesh_shape(mesh_config, len(devices))
  sizes = [shape[a] for a in MESH_AXES]
  auto = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)
  if num_slices > 1:
    across = next((a for a in ("data", "fsdp") if shape[a] % num_slices == 0), None)
    if across is None:
      raise ConfigError(f"with {num_slices} slices, mesh.data or mesh.fsdp must be a multiple "
                        f"of {num_slices}; the mesh is {shape}")
    dcn = [num_slices if a == across else 1 for a in MESH_AXES]
    ici = [n // d for n, d in zip(sizes, dcn)]
    grid = mesh_utils.create_hybrid_device_mesh(ici, dcn, devices=devices)
  elif devices == list(jax.devices()):
    return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=auto)
  else:
    try:  # mesh axes along the torus's physical axes, else splitting them
      grid = mesh_utils.create_device_mesh(sizes, devices=devices)
    except (ValueError, NotImplementedError, AssertionError):
      try:
        grid = mesh_utils.create_device_mesh(sizes, devices=devices, allow_split_physical_axes=True)
      except Exception:  # pylint: disable=broad-except
        grid = np.asarray(devices).reshape(sizes)
  return Mesh(grid, MESH_AXES, axis_types=auto)


def gradient_hazard(mesh: Mesh, rules) -> str | None:
  """A warning for a mesh and batch layout whose gradients XLA's SPMD partitioner gets wrong.

  With data, fsdp and tensor all above 1, kernels over fsdp x tensor and the batch over
  ("data", "fsdp"), several of the papers' configs compute a different first-step gradient
  than on one device, with the same loss (jax 0.10.2; tests/test_xla_sharding_bug.py: the
  compiled backward pass exchanges two batch shards; cf. openxla/xla#40034). The default
  rules shard the batch over ("fsdp", "data"), which every config computes right
  (`python -m launch.check_sharding`); this flags rules that put data first again.
  """
  shape = dict(mesh.shape)
  spec = batch_spec(rules, 1)[0]
  axes = [a for a in (spec if isinstance(spec, tuple) else (spec,)) if shape.get(a, 1) > 1]
  if all(shape.get(axis, 1) > 1 for axis in ("data", "fsdp", "tensor")) and axes[:2] == ["data", "fsdp"]:
    return (f"warning: mesh {shape} with the batch over ('data', 'fsdp') and kernels over tensor: "
            f"XLA's partitioner has computed wrong gradients for this layout; shard the batch over "
            f"('fsdp', 'data') in config.sharding.rules (the default), or check this config with "
            f"`python -m launch.check_sharding --configs <config> --mesh data=...,fsdp=...,tensor=...`")
  return None


def logical_rules(config) -> tuple[tuple[str, object], ...]:
  rules = []
  for rule in config.sharding.rules:
    logical, mesh_axes = rule
    axes = mesh_axes if isinstance(mesh_axes, (tuple, list)) else (mesh_axes,)
    for a in axes:
      if a is not None and a not in MESH_AXES:
        raise ConfigError(f"config.sharding.rules: {logical!r} -> unknown mesh axis {a!r}")
    rules.append((logical, tuple(mesh_axes) if isinstance(mesh_axes, list) else mesh_axes))
  return tuple(rules)


def _used_logical_names(abstract_boxed_tree) -> set[str]:
  names = set()
  for spec in jax.tree.leaves(nn.get_partition_spec(abstract_boxed_tree),
                              is_leaf=lambda x: isinstance(x, P)):
    for axes in spec:
      names.update(a for a in (axes if isinstance(axes, tuple) else (axes,)) if isinstance(a, str))
  return names


def check_logical_names(abstract_boxed_tree, rules, trace=None) -> None:
  """Every logical axis name of the parameters (and of the activation constraints met while
  `trace()` runs) must have a rule: an unknown name would silently replicate."""
  from flax.linen import spmd  # pylint: disable=g-import-not-at-top
  names = _used_logical_names(abstract_boxed_tree)
  if trace is not None:
    original = spmd._logical_to_mesh_axes  # pylint: disable=protected-access

    def recording(array_dim_names, rules=None):
      names.update(n for n in (array_dim_names or ()) if isinstance(n, str))
      return original(array_dim_names, rules)
    spmd._logical_to_mesh_axes = recording  # pylint: disable=protected-access
    try:
      with nn.logical_axis_rules(rules):
        trace()
    finally:
      spmd._logical_to_mesh_axes = original  # pylint: disable=protected-access
  known = {logical for logical, _ in rules}
  unknown = sorted(names - known)
  if unknown:
    raise ConfigError(
        f"logical axis names {unknown} have no rule in config.sharding.rules (rules for: "
        f"{', '.join(sorted(known))}); add a rule such as (\"{unknown[0]}\", None) to replicate it")


def batch_spec(rules, ndim: int) -> P:
  """Leading (batch) dim sharded as the 'batch' logical axis; the rest replicated."""
  return nn.logical_to_mesh_axes(("batch",) + (None,) * (ndim - 1), rules)


def batch_shardings(batch, mesh: Mesh, rules):
  return jax.tree.map(lambda x: NamedSharding(mesh, batch_spec(rules, np.ndim(x))), batch)


def process_batch_rows(sharding: jax.sharding.Sharding, num_rows: int) -> np.ndarray:
  """The rows of a global batch that this process's devices hold, in the order
  `jax.make_array_from_process_local_data` places a process's local rows (ascending).

  With the batch over ("fsdp", "data") and `data` across processes, a process's rows are
  not one contiguous block: reading exactly these keeps the global batch in order."""
  shards = sharding.addressable_devices_indices_map((num_rows,)).values()
  spans = sorted({(index[0].start or 0, num_rows if index[0].stop is None else index[0].stop)
                  for index in shards})
  return np.concatenate([np.arange(start, stop) for start, stop in spans])


def batch_axis_size(mesh: Mesh, rules) -> int:
  spec = batch_spec(rules, 1)[0]
  axes = spec if isinstance(spec, tuple) else (spec,)
  return math.prod(mesh.shape[a] for a in axes if a is not None)


def state_shardings(abstract_boxed_state, mesh: Mesh, rules):
  """NamedShardings for a (boxed) abstract train state, from its logical axes."""
  specs = nn.get_partition_spec(abstract_boxed_state)
  return nn.logical_to_mesh_sharding(specs, mesh, rules)


def check_divisible(abstract_params, shardings) -> None:
  """A clear error, before any compile, for a parameter its mesh axes do not divide."""
  flat = jax.tree_util.tree_flatten_with_path(abstract_params)[0]
  for (path, x), sharding in zip(flat, jax.tree.leaves(shardings)):
    for dim, axes in zip(x.shape, sharding.spec):
      names = axes if isinstance(axes, tuple) else (axes,)
      ways = math.prod(sharding.mesh.shape[a] for a in names if a is not None)
      if dim % ways:
        raise ConfigError(
            f"parameter {jax.tree_util.keystr(path)} of shape {tuple(x.shape)} cannot be split over mesh axes "
            f"{names} ({ways} ways): change the model size or config.sharding.rules / config.mesh")

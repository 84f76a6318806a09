"""Accelerator specs, TPU slice names, and a roofline step-time estimate.

`CHIPS` holds each chip's published peak dense bf16 FLOP/s, HBM capacity and
bandwidth, and interconnect bandwidth (ICI for TPUs, NVLink for GPUs), with the
page each number comes from. `parse_topology("v5p-256")` turns a Cloud TPU
accelerator type into the libtpu topology that `jax.experimental.topologies`
compiles for; `roofline()` turns per-device FLOPs and bytes into a step time.
"""
from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

GiB = 2**30


@dataclasses.dataclass(frozen=True)
class Chip:
  name: str
  kind: str                 # "tpu" | "gpu"
  peak_flops: float         # dense bf16 FLOP/s per chip
  hbm_bytes: float          # HBM capacity per chip
  hbm_bandwidth: float      # bytes/s per chip
  ici_bandwidth: float      # bytes/s per chip, all links, both directions
  device_kind: str = ""     # jax Device.device_kind of a compile-only device
  cores_in_name: bool = False  # "v5p-256" counts TensorCores (2 per chip), "v5e-256" chips
  torus_dims: int = 2       # 3 for v4/v5p slices (AxBxC), 2 for v5e/v6e (AxB)


CHIPS = {
    # cloud.google.com/tpu/docs/v4: 275 TFLOP/s bf16, 32 GiB HBM2 at 1200 GB/s. ICI: six links
    # per chip of 45 GB/s each way (jax-ml.github.io/scaling-book, "How to think about TPUs").
    "v4": Chip("v4", "tpu", 275e12, 32 * GiB, 1200e9, 6 * 2 * 45e9, "TPU v4", True, 3),
    # cloud.google.com/tpu/docs/v5e: 197 TFLOP/s bf16, 16 GB HBM2 at 819 GB/s,
    # inter-chip interconnect 1600 Gbps (= 200 GB/s). HBM sizes are GiB: XLA's compile-only
    # v5e reports 15.75 GiB usable of 16.
    "v5e": Chip("v5e", "tpu", 197e12, 16 * GiB, 819e9, 1600e9 / 8, "TPU v5 lite", False, 2),
    # cloud.google.com/tpu/docs/v5p: 459 TFLOP/s bf16, 95 GiB HBM2e at 2765 GB/s,
    # bidirectional ICI 1200 GB/s per chip.
    "v5p": Chip("v5p", "tpu", 459e12, 95 * GiB, 2765e9, 1200e9, "TPU v5", True, 3),
    # cloud.google.com/tpu/docs/v6e: 918 TFLOP/s bf16, 32 GB HBM at 1640 GB/s,
    # bidirectional ICI 800 GB/s per chip.
    "v6e": Chip("v6e", "tpu", 918e12, 32 * GiB, 1640e9, 800e9, "TPU v6 lite", False, 2),
    # NVIDIA A100 datasheet (SXM 80GB): 312 TFLOP/s dense bf16, 2039 GB/s HBM2e, NVLink 600 GB/s.
    "a100": Chip("a100", "gpu", 312e12, 80e9, 2039e9, 600e9),
    # NVIDIA H100 datasheet (SXM): 989 TFLOP/s dense bf16 (1979 with sparsity), 80 GB HBM3 at
    # 3.35 TB/s, NVLink 900 GB/s.
    "h100": Chip("h100", "gpu", 989e12, 80e9, 3350e9, 900e9),
    # NVIDIA H200 datasheet (SXM): same compute as H100, 141 GB HBM3e at 4.8 TB/s, NVLink 900 GB/s.
    "h200": Chip("h200", "gpu", 989e12, 141e9, 4800e9, 900e9),
}
_ALIASES = {"v5litepod": "v5e", "v4p": "v4", "v6": "v6e"}


@dataclasses.dataclass(frozen=True)
class Topology:
  """A TPU slice (or several identical slices joined over the data-centre network)."""
  chip: Chip
  shape: tuple[int, ...]    # chips along each torus dimension of one slice
  num_slices: int = 1
  # GPUs: XLA cannot compile for a GPU it cannot see, so a TPU slice with as many chips stands
  # in; parameter/optimizer memory, FLOPs and collective bytes depend on the mesh, not the chip.
  stand_in: str | None = None

  @property
  def compile_chip(self) -> Chip:
    return CHIPS[self.stand_in] if self.stand_in else self.chip

  @property
  def chips_per_slice(self) -> int:
    return math.prod(self.shape)

  @property
  def num_devices(self) -> int:
    return self.chips_per_slice * self.num_slices

  @property
  def libtpu_name(self) -> str:
    return f"{self.compile_chip.name}:{'x'.join(map(str, self.shape))}"

  @property
  def accelerator_type(self) -> str:
    """Cloud TPU's name for one slice, e.g. v5p-128, v5litepod-256."""
    chip = self.compile_chip
    count = self.chips_per_slice * (2 if chip.cores_in_name else 1)
    return f"{'v5litepod' if chip.name == 'v5e' else chip.name}-{count}"

  @property
  def chips_per_host_bounds(self) -> tuple[int, int, int]:
    # Multi-host slices have 4 chips (2x2) per host; a lone v5e/v6e host can hold 8 (2x4).
    if self.chips_per_slice < 4:
      return tuple(self.shape) + (1,) * (3 - len(self.shape))
    if self.compile_chip.torus_dims == 2 and self.chips_per_slice == 8:
      return (2, 4, 1)
    return (2, 2, 1)

  def __str__(self):
    slices = f"{self.num_slices} x " if self.num_slices > 1 else ""
    chips = "chip" if self.num_devices == 1 else "chips"
    if self.stand_in:
      return f"{self.num_devices} x {self.chip.name} (compiled for {self.libtpu_name} as a stand-in)"
    return f"{slices}{self.libtpu_name} ({self.num_devices} {chips})"


def slice_shape(num_chips: int, dims: int) -> tuple[int, ...]:
  """The usual slice shape for a power-of-two chip count: 64 -> 4x4x4, 128 -> 4x4x8, 32 -> 4x8."""
  if num_chips < 1 or num_chips & (num_chips - 1):
    raise ValueError(f"{num_chips} chips is not a power of two; name the shape, e.g. v5p:16x16x24")
  shape = [1] * dims
  for _ in range(int(math.log2(num_chips))):
    i = max(j for j in range(dims) if shape[j] == min(shape))  # double the last smallest side
    shape[i] *= 2
  return tuple(sorted(shape, key=lambda n: (n == 1, n)))  # 4 chips of v5p: 2x2x1


def parse_topology(name: str, num_slices: int = 1) -> Topology:
  """'v5p-256' (accelerator type), 'v5e-64', 'v5p:4x4x8' (explicit shape), 'h100-64' -> Topology."""
  m = re.fullmatch(r"([a-z0-9]+?)(?:-(\d+)|:(\d+(?:x\d+)*))", name.strip().lower())
  if not m:
    raise ValueError(f"topology {name!r}: use an accelerator type like v5p-256 or a shape like v5p:4x4x8")
  gen = _ALIASES.get(m.group(1), m.group(1))
  chip = CHIPS.get(gen)
  if chip is None:
    raise ValueError(f"topology {name!r}: unknown chip {m.group(1)!r} (known: {', '.join(CHIPS)})")
  if num_slices < 1:
    raise ValueError(f"num_slices must be >= 1, got {num_slices}")
  if chip.kind == "gpu":
    if not m.group(2):
      raise ValueError(f"topology {name!r}: name GPUs by count, e.g. h100-64")
    return Topology(chip, slice_shape(int(m.group(2)), 3), num_slices, stand_in="v5p")
  if m.group(3):
    shape = tuple(int(s) for s in m.group(3).split("x"))
    if len(shape) != chip.torus_dims:
      raise ValueError(f"topology {name!r}: {gen} slices have {chip.torus_dims} dimensions")
  else:
    count = int(m.group(2))
    if chip.cores_in_name and count % 2:
      raise ValueError(f"topology {name!r}: {gen}-N counts TensorCores (2 per chip), N must be even")
    shape = slice_shape(count // 2 if chip.cores_in_name else count, chip.torus_dims)
  return Topology(chip, shape, num_slices)


def libtpu_installed() -> bool:
  import importlib.util  # pylint: disable=g-import-not-at-top
  return importlib.util.find_spec("libtpu") is not None


def compile_only_devices(topology: Topology):
  """Devices of `topology` that XLA can compile for on a machine without TPUs (needs libtpu)."""
  # pylint: disable=g-import-not-at-top
  from jax.experimental import topologies
  desc = topologies.get_topology_desc(
      platform="tpu", topology_name=topology.libtpu_name,
      # megacore: one device per chip, both TensorCores of a v4/v5p chip driven as one.
      chip_config_name="megacore" if topology.compile_chip.cores_in_name else "default",
      chips_per_host_bounds=topology.chips_per_host_bounds, num_slices=topology.num_slices)
  return list(desc.devices)


@dataclasses.dataclass(frozen=True)
class Roofline:
  compute_s: float
  memory_s: float
  network_s: float

  @property
  def step_s(self) -> float:
    """Lower bound: the slowest of the three, assuming the other two overlap with it."""
    return max(self.compute_s, self.memory_s, self.network_s)

  @property
  def bound(self) -> str:
    times = {"compute": self.compute_s, "HBM": self.memory_s, "interconnect": self.network_s}
    return max(times, key=times.get)

  def utilisation(self, flops_per_device: float, chip: Chip) -> float:
    """Fraction of peak FLOP/s that `flops_per_device` per step reaches at the estimated step time."""
    return flops_per_device / (self.step_s * chip.peak_flops) if self.step_s else 0.0


def roofline(chip: Chip, flops: float, hbm_bytes: float, network_bytes: float) -> Roofline:
  """Per-device FLOPs, HBM bytes and collective bytes of one step -> time at the chip's peaks."""
  return Roofline(flops / chip.peak_flops, hbm_bytes / chip.hbm_bandwidth,
                  network_bytes / chip.ici_bandwidth)


# ---- per-device costs of a compiled step, read from its optimised HLO -------------------------
# XLA's cost_analysis() counts a while loop's body once, whatever its trip count, so a step
# whose layers run in lax.scan (pipelines, scanned stacks, gradient accumulation) reads as a
# fraction of its real cost. Here each computation's cost is multiplied by the trip count of
# the loops it sits in (the constant bound of the loop condition `i < N`).

_BYTES = {"pred": 1, "s4": 0.5, "u4": 0.5, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2,
          "bf16": 2, "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8,
          "c128": 16}
_ARRAY = re.compile(r"([a-z]+[0-9a-z]*)\[([0-9,]*)\]")
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$")
_HEADER = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute",
                "ragged-all-to-all")
_FREE = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "after-all",
         "partition-id", "replica-id", "copy-start", "copy-done", "opt-barrier", "while",
         "conditional", "call", "async-start", "async-done", "async-update"}


@dataclasses.dataclass
class StepCost:
  """Per-device costs of one execution of a compiled program."""
  flops: float = 0.0            # dot + convolution FLOPs
  hbm_bytes: float = 0.0        # operands + results of every top-level (unfused) op
  network_bytes: float = 0.0    # bytes each device sends in collectives
  unknown_loops: int = 0        # while loops whose trip count could not be read (counted once)

  def add(self, other: "StepCost", times: float = 1.0, with_bytes: bool = True):
    self.flops += times * other.flops
    if with_bytes:
      self.hbm_bytes += times * other.hbm_bytes
      self.network_bytes += times * other.network_bytes
    self.unknown_loops += other.unknown_loops


def _split_top(text: str, sep: str = ",") -> list[str]:
  """Splits at `sep` outside brackets."""
  parts, depth, start = [], 0, 0
  for i, ch in enumerate(text):
    if ch in "([{":
      depth += 1
    elif ch in ")]}":
      depth -= 1
    elif ch == sep and depth == 0:
      parts.append(text[start:i])
      start = i + 1
  parts.append(text[start:])
  return [p.strip() for p in parts if p.strip()]


def _closing(text: str, open_at: int) -> int:
  depth = 0
  for i in range(open_at, len(text)):
    depth += text[i] in "([{"
    depth -= text[i] in ")]}"
    if depth == 0:
      return i
  return len(text) - 1


def _arrays(shape: str) -> list[tuple[str, list[int]]]:
  return [(t, [int(d) for d in dims.split(",") if d]) for t, dims in _ARRAY.findall(shape)]


def shape_bytes(shape: str) -> float:
  return sum(_BYTES.get(t, 0) * math.prod(dims) for t, dims in _arrays(shape))


@dataclasses.dataclass
class _Instr:
  name: str
  shape: str
  opcode: str
  operands: list[str]
  attrs: str


def _parse_instr(line: str) -> _Instr | None:
  m = _INSTR.match(line)
  if not m:
    return None
  name, rest = m.groups()
  if rest.startswith("("):                      # tuple shape
    end = _closing(rest, 0)
    shape, rest = rest[:end + 1], rest[end + 1:].lstrip()
  else:
    shape, _, rest = rest.partition(" ")
  op = re.match(r"([\w\-]+)\(", rest)
  if not op:
    return None
  end = _closing(rest, op.end() - 1)
  operands = [o.split()[-1].lstrip("%") for o in _split_top(rest[op.end():end])]
  return _Instr(name, shape, op.group(1), operands, rest[end + 1:])


def _computations(hlo: str) -> tuple[dict[str, list[_Instr]], str]:
  comps, entry, current = {}, None, None
  for line in hlo.splitlines():
    header = _HEADER.match(line)
    if header and "=" not in line.split("(")[0]:
      current = header.group(2)
      comps[current] = []
      entry = current if header.group(1) else entry
    elif line.strip() == "}":
      current = None
    elif current is not None:
      instr = _parse_instr(line)
      if instr:
        comps[current].append(instr)
  return comps, entry


def _group_size(attrs: str, num_devices: int) -> int:
  m = re.search(r"replica_groups=\{\{([^}]*)\}", attrs)
  if m:
    return len(m.group(1).split(","))
  m = re.search(r"replica_groups=\[(\d+),(\d+)\]<=", attrs)        # iota form [groups,size]<=[...]
  if m:
    return int(m.group(2))
  m = re.search(r"replica_groups=mesh\[([^\]]*)\]\s*\{([^}]*)\}", attrs)  # mesh['a'=4,'b'=2] {'b'}
  if m:
    sizes = dict((k, int(v)) for k, v in re.findall(r"'([^']+)'=(\d+)", m.group(1)))
    return math.prod(sizes.get(a, 1) for a in re.findall(r"'([^']+)'", m.group(2))) or num_devices
  m = re.search(r"source_target_pairs=", attrs)
  return 2 if m else num_devices


def _network_bytes(ins: _Instr, shapes: dict[str, str], num_devices: int) -> float:
  """Bytes one device sends in a collective (ring algorithms)."""
  op = ins.opcode.removesuffix("-start")
  in_bytes = sum(shape_bytes(shapes.get(o, "")) for o in ins.operands)
  n = _group_size(ins.attrs, num_devices)
  share = (n - 1) / n if n > 1 else 0.0
  if op == "all-reduce":
    return 2 * share * in_bytes                 # reduce-scatter + all-gather
  if op == "all-gather":
    return share * in_bytes * n                 # the result is n times the operand
  if op == "collective-permute":
    return in_bytes
  return share * in_bytes                       # reduce-scatter, all-to-all


def _matmul_flops(ins: _Instr, shapes: dict[str, str]) -> float:
  out = _arrays(ins.shape)
  if not out or len(ins.operands) < 2:
    return 0.0
  out_elems = math.prod(out[0][1])
  if ins.opcode == "dot":
    lhs = _arrays(shapes.get(ins.operands[0], ""))
    m = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", ins.attrs)
    if not lhs or not m:
      return 0.0
    contracted = math.prod(lhs[0][1][int(d)] for d in m.group(1).split(",") if d)
    return 2.0 * out_elems * contracted
  # Convolution: each output sums (kernel input features) x (window taps that land on real
  # input, not on padding or dilation holes). XLA writes batched matmuls and weight gradients
  # as convolutions whose windows mostly cover holes or padding, so count the real taps.
  rhs = _arrays(shapes.get(ins.operands[1], ""))
  lhs = _arrays(shapes.get(ins.operands[0], ""))
  labels = re.search(r"dim_labels=(\w+)_(\w+)->(\w+)", ins.attrs)
  if not rhs or not lhs or not labels or "i" not in labels.group(2):
    return 0.0
  lhs_labels, rhs_labels, out_labels = labels.groups()
  in_features = rhs[0][1][rhs_labels.index("i")]
  window = re.search(r"window=\{([^}]*)\}", ins.attrs)
  window = window.group(1) if window else ""
  spatial = sorted(c for c in out_labels if c.isdigit())
  size = _window_field(window, "size") or [1] * len(spatial)
  ones = [1] * len(size)
  stride = _window_field(window, "stride") or ones
  lhs_dilate = _window_field(window, "lhs_dilate") or ones
  rhs_dilate = _window_field(window, "rhs_dilate") or ones
  pads = re.search(r"(?:^|\s)pad=([\d_x-]+)", window)
  pad_low = [int(p.split("_")[0]) for p in pads.group(1).split("x")] if pads else [0] * len(size)
  per_output = in_features
  for d, dim in enumerate(spatial):
    n_in, n_out = lhs[0][1][lhs_labels.index(dim)], out[0][1][out_labels.index(dim)]
    per_output *= _real_taps(n_in, n_out, size[d], stride[d], pad_low[d], lhs_dilate[d], rhs_dilate[d]) / n_out
  return 2.0 * out_elems * per_output


def _real_taps(n_in, n_out, window, stride, pad_low, lhs_dilate, rhs_dilate) -> int:
  """Sum over output positions of window taps that read a real (not padded, not hole) input."""
  q = np.arange(n_out)[:, None] * stride + np.arange(window)[None, :] * rhs_dilate - pad_low
  return int(np.sum((q >= 0) & (q % lhs_dilate == 0) & (q // lhs_dilate < n_in)))


def _window_field(window: str, key: str) -> list[int]:
  m = re.search(rf"(?:^|\s){key}=([\dx]+)", window)
  return [int(v) for v in m.group(1).split("x")] if m else []


def _trip_count(cond: list[_Instr], attrs: str) -> int | None:
  m = re.search(r'"known_trip_count":\{"n":"(\d+)"', attrs)
  if m:
    return int(m.group(1))
  constants = {ins.name: ins for ins in cond if ins.opcode == "constant"}
  for ins in cond:
    if ins.opcode == "compare" and "direction=LT" in ins.attrs:
      for o in ins.operands[1:]:
        if o in constants:
          return int(_constant_value(constants[o]))
  return None


def _constant_value(ins: _Instr) -> float:
  return float(ins.operands[0]) if ins.operands else 0.0


def _traffic(ins: _Instr, shapes: dict[str, str], comps: dict[str, list[_Instr]]) -> float:
  """HBM bytes an unfused op reads and writes. A dynamic-update-slice updates its buffer in
  place and a dynamic-slice reads only the slice: count those, not the whole buffer (a loop
  carrying a [layers, ...] buffer would otherwise move all of it every iteration)."""
  operand_bytes = [shape_bytes(shapes.get(o, "")) for o in ins.operands]
  root = ins.opcode
  if ins.opcode == "fusion":
    called = re.search(r"calls=%?([\w.\-]+)", ins.attrs)
    body = comps.get(called.group(1), []) if called else []
    by_name = {i.name: i for i in body}
    node = body[-1] if body else None
    while node is not None and node.opcode == "bitcast" and node.operands:  # see through bitcasts
      node = by_name.get(node.operands[0])
    root = node.opcode if node is not None else root
  if root == "dynamic-update-slice":
    return 2 * sum(b for o, b in zip(ins.operands, operand_bytes) if shapes.get(o) != ins.shape)
  if root == "dynamic-slice":
    return 2 * shape_bytes(ins.shape)
  return shape_bytes(ins.shape) + sum(operand_bytes)


def step_cost(hlo_text: str, num_devices: int) -> StepCost:
  """Per-device FLOPs, HBM bytes and collective bytes of a compiled (SPMD-partitioned) module."""
  comps, entry = _computations(hlo_text)
  memo: dict[str, StepCost] = {}

  def cost_of(name: str) -> StepCost:
    if name in memo:
      return memo[name]
    memo[name] = StepCost()                        # guards against cycles
    total = StepCost()
    instrs = comps.get(name, [])
    shapes = {i.name: i.shape for i in instrs}
    for ins in instrs:
      op = ins.opcode
      called = re.findall(r"(calls|to_apply|body|condition|branch_computations)="
                          r"(\{[^}]*\}|%?[\w.\-]+)", ins.attrs)
      targets = {k: re.findall(r"%?([\w.\-]+)", v) for k, v in called}
      if op in ("dot", "convolution"):
        total.flops += _matmul_flops(ins, shapes)
      if op.removesuffix("-start") in _COLLECTIVES:
        total.network_bytes += _network_bytes(ins, shapes, num_devices)
      elif op not in _FREE and not op.endswith("-done"):
        total.hbm_bytes += _traffic(ins, shapes, comps)
      if op == "fusion":                           # inside a fusion: FLOPs only, no HBM traffic
        for c in targets.get("calls", []):
          total.add(cost_of(c), with_bytes=False)
      elif op == "while":
        body, cond = targets.get("body", [None])[0], targets.get("condition", [None])[0]
        trips = _trip_count(comps.get(cond, []), ins.attrs)
        total.add(cost_of(body), trips or 1)
        total.unknown_loops += trips is None
      elif op == "conditional":
        branches = [cost_of(c) for c in targets.get("branch_computations", [])]
        if branches:
          total.add(max(branches, key=lambda c: c.flops))
      elif op in ("call", "async-start"):
        for c in targets.get("calls", []) + targets.get("to_apply", []):
          total.add(cost_of(c))
    memo[name] = total
    return total

  return cost_of(entry) if entry else StepCost()


# ---- model FLOPs from the program itself, independent of the compiler ------------------------

def jaxpr_flops(fn, *args) -> float:
  """Matmul/convolution FLOPs of one call of `fn(*args)` (args may be ShapeDtypeStructs).

  Counted on the jaxpr, before any compiler pass: scans count `length` times, a cond its
  costliest branch, a shard_map body once per device along its manual axes, a while loop once. Model FLOPs of a training step are 3x those of the
  forward pass (the backward pass does two matmuls per forward matmul), without
  rematerialisation, which is how MFU is usually defined.
  """
  import jax  # pylint: disable=g-import-not-at-top
  return _jaxpr_flops(jax.make_jaxpr(fn)(*args).jaxpr)


def _jaxpr_flops(jaxpr) -> float:
  from jax.extend import core as jax_core  # pylint: disable=g-import-not-at-top
  total = 0.0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "dot_general":
      (lhs_contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      total += 2.0 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lhs_contract)
    elif name == "conv_general_dilated":
      rhs = eqn.invars[1].aval.shape
      out_features = rhs[eqn.params["dimension_numbers"].rhs_spec[0]]
      total += 2.0 * math.prod(eqn.outvars[0].aval.shape) * math.prod(rhs) / out_features
    subs = []
    for value in eqn.params.values():
      for v in value if isinstance(value, (tuple, list)) else (value,):
        if isinstance(v, jax_core.ClosedJaxpr):
          subs.append(v.jaxpr)
        elif isinstance(v, jax_core.Jaxpr):
          subs.append(v)
    if not subs:
      continue
    sub_flops = [_jaxpr_flops(s) for s in subs]
    if name == "scan":
      total += eqn.params["length"] * sum(sub_flops)
    elif name == "shard_map":  # the body sees one shard: every device along the manual axes runs it
      mesh, manual = eqn.params["mesh"], eqn.params.get("newly_manual_axes", ())
      total += math.prod(mesh.shape[a] for a in manual) * sum(sub_flops)
    elif name == "cond":
      total += max(sub_flops)
    else:
      total += sum(sub_flops)
  return total


# ---- the peak that MFU divides by ----------------------------------------------------------

_GPU_NAMES = {"a100": "A100", "h100": "H100", "h200": "H200"}


def chip_of(device) -> Chip | None:
  """The CHIPS entry of a jax device (from its device_kind), or None (e.g. a CPU)."""
  kind = getattr(device, "device_kind", "")
  for chip in CHIPS.values():
    if chip.kind == "tpu" and kind == chip.device_kind:
      return chip
    if chip.kind == "gpu" and _GPU_NAMES[chip.name] in kind.upper():
      return chip
  return None


def measured_matmul_flops(n: int = 1024, repeats: int = 5) -> float:
  """FLOP/s of a float32 n x n matmul on the first device, best of `repeats`."""
  import time  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  x = jax.numpy.ones((n, n), jax.numpy.float32)
  f = jax.jit(lambda a: a @ a)
  f(x).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    f(x).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * n ** 3 / best


def peak_flops(device, configured: float = 0.0) -> tuple[float, str]:
  """(peak FLOP/s of one device, where the figure comes from), the denominator of MFU.

  `configured` (config.peak_flops) wins; else the datasheet's dense bf16 peak of a known
  TPU or GPU; else (CPUs, unknown chips) a float32 matmul measured now.
  """
  if configured > 0:
    return configured, "config.peak_flops"
  chip = chip_of(device)
  if chip is not None:
    return chip.peak_flops, f"{chip.name} bf16 datasheet peak"
  return measured_matmul_flops(), "measured f32 matmul peak"

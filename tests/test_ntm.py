"""NTM: addressing and a whole forward pass against plain-numpy references, the task generators
against properties derived by hand, finite gradients at the numerically hard points, parameter
counts against hand formulas, and training and evaluation sharded over 8 devices against one
device and the host."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.config import load_config
from core.data import local_batch
from core.task import ConfigError, step_rng
from core.train import Trainer
from papers.ntm import model as ntm
from papers.ntm import task as ntm_task

CONFIG = "configs/ntm.py"


# ---------------------------------------------------------------- numpy references
def np_softmax(z):
  z = z - z.max()
  return np.exp(z) / np.exp(z).sum()


def np_address(memory, w_prev, key, beta, gate, shift, gamma):
  """Eqs. 5-9 written out with explicit loops over locations."""
  n = memory.shape[0]
  cos = np.array([key @ memory[i] / (np.linalg.norm(key) * np.linalg.norm(memory[i]))
                  for i in range(n)])
  w_c = np_softmax(beta * cos)
  w_g = gate * w_c + (1 - gate) * w_prev
  radius = (len(shift) - 1) // 2
  s = np.zeros(n)  # the shift weighting indexed by offset mod N
  for k in range(-radius, radius + 1):
    s[k % n] += shift[k + radius]
  w_t = np.array([sum(w_g[j] * s[(i - j) % n] for j in range(n)) for i in range(n)])  # Eq. 8
  w = w_t**gamma
  return w / w.sum()


def np_write(memory, w, erase, add):
  out = memory.copy()
  for i in range(memory.shape[0]):
    out[i] = memory[i] * (1 - w[i] * erase) + w[i] * add
  return out


def sigmoid(z):
  return 1 / (1 + np.exp(-z))


def softplus(z):
  return np.log1p(np.exp(z))


def np_ntm_ff(params, x, memory_locations, memory_width, clip=20.0):
  """A one-head NTM with a feed-forward controller, from the equations, for one sequence."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), nn.meta.unbox(params))["cell"]
  m = memory_width
  memory = np.full((memory_locations, m), 1e-6)
  w_read = np.eye(memory_locations)[0]
  w_write = w_read.copy()
  r = w_read @ memory
  outputs = []

  def head(h, name, write):
    z = np.clip(h @ p[name]["kernel"] + p[name]["bias"], -clip, clip)
    key, beta, gate, shift, gamma = z[:m], z[m], z[m + 1], z[m + 2:m + 5], z[m + 5]
    out = dict(key=key, beta=softplus(beta), gate=sigmoid(gate), shift=np_softmax(shift),
               gamma=1 + softplus(gamma))
    if write:
      out.update(erase=sigmoid(z[m + 6:2 * m + 6]), add=np.tanh(z[2 * m + 6:3 * m + 6]))
    return out

  for x_t in x:
    h = sigmoid(np.concatenate([x_t, r]) @ p["controller"]["kernel"] + p["controller"]["bias"])
    wp = head(h, "write_heads", True)
    w_write = np_address(memory, w_write, wp["key"], wp["beta"], wp["gate"], wp["shift"], wp["gamma"])
    memory = np_write(memory, w_write, wp["erase"], wp["add"])
    rp = head(h, "read_heads", False)
    w_read = np_address(memory, w_read, rp["key"], rp["beta"], rp["gate"], rp["shift"], rp["gamma"])
    r = w_read @ memory
    outputs.append(np.concatenate([h, r]) @ p["output"]["kernel"] + p["output"]["bias"])
  return np.stack(outputs)


# ---------------------------------------------------------------- addressing
@pytest.mark.parametrize("radius", [1, 2])
def test_addressing_matches_numpy(radius):
  rng = np.random.default_rng(0)
  n, m = 12, 5
  memory = rng.normal(size=(n, m))
  w_prev = np_softmax(rng.normal(size=n))
  key = rng.normal(size=m)
  shift = np_softmax(rng.normal(size=2 * radius + 1))
  for beta, gate, gamma in [(0.5, 0.3, 1.0), (7.0, 0.9, 3.5), (2.0, 0.0, 1.7)]:
    got = ntm.address(*(jnp.asarray(a, jnp.float32) for a in
                        (memory, w_prev, key, beta, gate, shift, gamma)))
    want = np_address(memory, w_prev, key, beta, gate, shift, gamma)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(float(jnp.sum(got)), 1.0, rtol=1e-6)


def test_shift_moves_a_one_hot_weighting_circularly():
  w = jnp.zeros(6).at[5].set(1.0)
  np.testing.assert_allclose(ntm.circular_shift(w, jnp.array([0.0, 0.0, 1.0])), np.eye(6)[0])
  np.testing.assert_allclose(ntm.circular_shift(w, jnp.array([1.0, 0.0, 0.0])), np.eye(6)[4])


def test_read_and_write_match_numpy():
  rng = np.random.default_rng(1)
  memory, w = rng.normal(size=(7, 4)), np_softmax(rng.normal(size=7))
  erase, add = sigmoid(rng.normal(size=4)), rng.normal(size=4)
  np.testing.assert_allclose(ntm.write(memory, w, erase, add), np_write(memory, w, erase, add), rtol=1e-6)
  np.testing.assert_allclose(ntm.read(memory, w), sum(w[i] * memory[i] for i in range(7)), rtol=1e-6)
  # A full erase at a one-hot location zeroes exactly that row (Section 3.2).
  wiped = np.asarray(ntm.write(memory, np.eye(7)[3], np.ones(4), np.zeros(4)))
  np.testing.assert_array_equal(wiped[3], 0.0)
  np.testing.assert_allclose(np.delete(wiped, 3, 0), np.delete(memory, 3, 0), rtol=1e-6)


def test_ntm_forward_matches_numpy():
  model = ntm.NTM(output_size=3, controller="ff", controller_size=10, memory_locations=9,
                  memory_width=4)
  x = np.random.default_rng(2).integers(0, 2, size=(2, 6, 5)).astype(np.float32)
  params = model.init(jax.random.key(3), jnp.asarray(x))["params"]
  params = jax.tree.map(lambda a: a * 3.0, nn.meta.unbox(params))  # leave the linear regime
  logits, trace = jax.jit(model.apply)({"params": params}, jnp.asarray(x))
  for b in range(2):
    np.testing.assert_allclose(logits[b], np_ntm_ff({"cell": params["cell"]}, x[b], 9, 4),
                               rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(trace["read_weights"].sum(-1), 1.0, rtol=1e-5)


def test_gradients_finite_at_hard_points():
  """Zero memory, zero keys, weightings with exact zeros and saturated controller outputs."""
  w = jnp.zeros(8).at[0].set(1.0)
  zeros = jnp.zeros((8, 4))
  def f(key, beta, gate, shift_logits, gamma, memory):
    return jnp.sum(ntm.address(memory, w, key, beta, gate, jax.nn.softmax(shift_logits), gamma) ** 2)
  for key, memory, gamma in [(jnp.zeros(4), zeros, 30.0), (jnp.ones(4), zeros, 1.0),
                             (jnp.zeros(4), jnp.ones((8, 4)), 50.0)]:
    grads = jax.grad(f, argnums=tuple(range(6)))(key, 5.0, 0.0, jnp.array([0.0, 30.0, 0.0]), gamma, memory)
    assert all(np.isfinite(np.asarray(g)).all() for g in grads)

  model = ntm.NTM(output_size=8, controller="lstm", controller_size=16, memory_locations=16,
                  memory_width=6, memory_init=0.0)
  x = jnp.asarray(ntm_task.copy_batch(np.random.default_rng(0), 2, 5, 5)["inputs"])
  params = jax.tree.map(lambda a: a * 50.0, nn.meta.unbox(model.init(jax.random.key(0), x)["params"]))
  grads = jax.grad(lambda p: jnp.sum(model.apply({"params": p}, x)[0]))(params)
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


# ---------------------------------------------------------------- tasks
def test_copy_batch_layout():
  batch = ntm_task.copy_batch(np.random.default_rng(0), 64)
  assert batch["inputs"].shape == (64, 41, 9) and batch["targets"].shape == (64, 41, 8)
  lengths = []
  for x, y, mask in zip(batch["inputs"], batch["targets"], batch["mask"]):
    (delim,) = np.flatnonzero(x[:, 8])
    n = int(delim)
    lengths.append(n)
    assert 1 <= n <= 20 and mask.sum() == n
    np.testing.assert_array_equal(np.flatnonzero(mask), np.arange(n + 1, 2 * n + 1))
    np.testing.assert_array_equal(y[n + 1:2 * n + 1], x[:n, :8])
    assert not x[n + 1:].any() and not x[:n, 8].any()
  assert min(lengths) <= 3 and max(lengths) >= 18  # lengths span 1..20


def _check_repeat_copy(x, y, mask):
  """Reads the length and repeat count off the inputs; checks the target against them."""
  (n,) = np.flatnonzero(x[:, 8])
  r = int(round(x[n, 9] * ntm_task.REPEAT_STD + ntm_task.REPEAT_MEAN))
  assert abs(x[n, 9] * ntm_task.REPEAT_STD + ntm_task.REPEAT_MEAN - r) < 1e-5
  assert mask.sum() == n * r + 1
  for k in range(r):
    np.testing.assert_array_equal(y[n + 1 + k * n:n + 1 + (k + 1) * n, :8], x[:n, :8])
  (end,) = np.flatnonzero(y[:, 8])
  assert end == n + 1 + n * r and mask[end] == 1 and mask[end + 1:].sum() == 0
  assert not x[n + 1:].any() and not x[:n, 8:].any()
  return n, r


def test_repeat_copy_batch_layout():
  batch = ntm_task.repeat_copy_batch(np.random.default_rng(1), 64)
  repeats = []
  for x, y, mask in zip(batch["inputs"], batch["targets"], batch["mask"]):
    n, r = _check_repeat_copy(x, y, mask)
    repeats.append(r)
    assert 1 <= n <= 10 and 1 <= r <= 10
  values = (np.arange(1, 11) - ntm_task.REPEAT_MEAN) / ntm_task.REPEAT_STD
  np.testing.assert_allclose([values.mean(), values.var()], [0.0, 1.0], atol=1e-12)
  assert min(repeats) <= 2 and max(repeats) >= 9


def _check_associative_recall(x, y, mask):
  """Finds the query among the items by brute force; the target must be the next item."""
  starts = np.flatnonzero(x[:, 6])
  items = [x[s + 1:s + 4, :6] for s in starts]
  q0, q1 = np.flatnonzero(x[:, 7])
  assert q1 - q0 == 4 and q0 == starts[-1] + 4
  query = x[q0 + 1:q1, :6]
  index = next(i for i, item in enumerate(items) if np.array_equal(item, query))
  assert index < len(items) - 1
  out = np.flatnonzero(mask)
  np.testing.assert_array_equal(out, np.arange(q1 + 1, q1 + 4))
  np.testing.assert_array_equal(y[out], items[index + 1])
  return len(items), index


def test_associative_recall_target_is_the_item_after_the_query():
  batch = ntm_task.associative_recall_batch(np.random.default_rng(2), 64)
  queried = []
  for x, y, mask in zip(batch["inputs"], batch["targets"], batch["mask"]):
    count, index = _check_associative_recall(x, y, mask)
    assert 2 <= count <= 6
    queried.append(index)
  assert set(queried) == set(range(5))  # every item but the last is queried


@pytest.mark.parametrize("task,args", [("repeat_copy", {"generalisation_repeats": ((3, 12), (12, 2))}),
                                       ("associative_recall", {"generalisation_items": (3, 9)}),
                                       ("priority_sort", {})])
def test_generalisation_batches_have_the_asked_sizes(task, args):
  """Repeat copy at (length, repeats) and associative recall at item counts beyond training:
  every sequence has exactly the asked size and a correct target."""
  c = load_config(f"{CONFIG}:{task}-ntm_lstm")
  c.data.update(args)
  c.data.eval_batch_size = 8
  batches = ntm_task.NTMTask(c).generalisation_batches()
  if task == "repeat_copy":
    assert list(batches) == ["len3_rep12", "len12_rep2"]
    for (n, r), batch in zip(args["generalisation_repeats"], batches.values()):
      for x, y, mask in zip(batch["inputs"], batch["targets"], batch["mask"]):
        assert _check_repeat_copy(x, y, mask) == (n, r)
  elif task == "associative_recall":
    assert list(batches) == ["items3", "items9"]
    for n, batch in zip(args["generalisation_items"], batches.values()):
      for x, y, mask in zip(batch["inputs"], batch["targets"], batch["mask"]):
        assert _check_associative_recall(x, y, mask)[0] == n
  else:
    assert batches == {}


def test_priority_sort_targets_are_top_16_by_priority():
  batch = ntm_task.priority_sort_batch(np.random.default_rng(3), 16)
  for x, y, mask in zip(batch["inputs"], batch["targets"], batch["mask"]):
    priority = x[:20, 8]
    assert (np.abs(priority) <= 1).all() and x[20, 9] == 1 and mask.sum() == 16
    ranked = sorted(range(20), key=lambda i: -priority[i])[:16]
    np.testing.assert_array_equal(y[21:37], x[ranked, :8])


def test_sequence_bits():
  rng = np.random.default_rng(4)
  logits, targets = rng.normal(size=(3, 5, 4)), rng.integers(0, 2, size=(3, 5, 4)).astype(float)
  mask = (rng.random((3, 5)) < 0.6).astype(float)
  bits, wrong = ntm_task.sequence_bits(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask))
  p = sigmoid(logits)
  ce = -(targets * np.log2(p) + (1 - targets) * np.log2(1 - p))
  np.testing.assert_allclose(bits, (ce * mask[..., None]).sum((1, 2)), rtol=1e-5)
  np.testing.assert_array_equal(wrong, (((p > 0.5) != targets) * mask[..., None]).sum((1, 2)))
  # A network that outputs 1/2 everywhere pays exactly one bit per scored bit.
  half, _ = ntm_task.sequence_bits(jnp.zeros((3, 5, 4)), jnp.asarray(targets), jnp.asarray(mask))
  np.testing.assert_allclose(half, 4 * mask.sum(1), rtol=1e-6)


def test_train_batch_is_deterministic_and_shards_the_global_batch():
  c = load_config(f"{CONFIG}:copy-ntm_ff", ["--config.batch_size=8"])
  task = ntm_task.NTMTask(c)
  full = task.train_batch(7)
  again = ntm_task.NTMTask(c).train_batch(7)
  jax.tree.map(np.testing.assert_array_equal, full, again)
  assert not np.array_equal(task.train_batch(8)["inputs"], full["inputs"])
  # The stream is the generator's, seeded by (seed, step) only.
  jax.tree.map(np.testing.assert_array_equal, full, ntm_task.copy_batch(step_rng(c.seed, 7), 8))
  shards = [local_batch(task, 7, 8, i, 4) for i in range(4)]
  for key in full:
    np.testing.assert_array_equal(np.concatenate([s[key] for s in shards]), full[key])


@pytest.mark.parametrize("variant", ["copy-ntm_ff", "repeat_copy-lstm", "associative_recall-ntm_ff",
                                     "priority_sort-ntm_lstm"])
def test_batch_spec_matches_the_generated_batches(variant):
  task = ntm_task.NTMTask(load_config(f"{CONFIG}:{variant}", ["--config.batch_size=3"]))
  spec = task.batch_spec()
  batch = task.train_batch(0)
  assert set(spec) == set(batch) == {"inputs", "targets", "mask"}
  for key, x in batch.items():
    assert (x.shape, x.dtype) == (spec[key].shape, spec[key].dtype), key


def test_held_out_data_is_fixed_and_sized():
  c = _tiny_config()
  task = ntm_task.NTMTask(c)
  evals = task.eval_batches()
  assert len(evals) == 2 and all(b["inputs"].shape == (8, 11, 9) for b in evals)
  jax.tree.map(np.testing.assert_array_equal, list(evals), list(ntm_task.NTMTask(c).eval_batches()))
  assert not np.array_equal(evals[0]["inputs"], evals[1]["inputs"])
  for length in (5, 10):  # every generalisation sequence has exactly `length` vectors to copy
    batch = task.generalisation_batch(length)
    np.testing.assert_array_equal(batch["mask"].sum(1), length)
  c.data.eval_batch_size = 5
  with pytest.raises(ConfigError):
    ntm_task.NTMTask(c)


def test_bfloat16_is_a_config_error():
  with pytest.raises(ConfigError, match="float32"):
    ntm_task.NTMTask(load_config(f"{CONFIG}:copy-ntm_lstm", ["--config.dtype=bfloat16"]))


# ---------------------------------------------------------------- sizes
def _num_params(variant):
  task = ntm_task.NTMTask(load_config(f"{CONFIG}:{variant}"))
  shapes = jax.eval_shape(task.init, jax.random.key(0))
  assert set(shapes) == {"params"}
  return sum(math.prod(x.shape) for x in jax.tree.leaves(nn.meta.unbox(shapes["params"])))


def test_parameter_counts_match_the_architecture():
  """Copy task: 9 inputs (8 bits + delimiter), 8 outputs, one read and one write head."""
  x, r, h, out = 9, 20, 100, 8
  heads = (h * 26 + 26) + (h * 66 + 66)        # read: key 20, beta, g, 3 shifts, gamma; write: + erase, add
  output = (h + r) * out + out
  assert _num_params("copy-ntm_ff") == (x + r) * h + h + heads + output == 13_260
  lstm_controller = 4 * h * (x + r + h) + 4 * h + 3 * h  # peepholes
  assert _num_params("copy-ntm_lstm") == lstm_controller + heads + output
  k = 256                                       # 3 x 256 with skip connections and peepholes
  lstm = (4 * k * (x + k) + 4 * k + 3 * k) + 2 * (4 * k * (x + 2 * k) + 4 * k + 3 * k) + 3 * k * out + out
  assert _num_params("copy-lstm") == lstm == 1_349_896


@pytest.mark.parametrize("variant", ["repeat_copy-ntm_ff", "associative_recall-ntm_ff",
                                     "priority_sort-ntm_lstm", "priority_sort-lstm"])
def test_every_task_variant_builds(variant):
  from configs.ntm import PAPER_PARAMS
  n = _num_params(variant)
  assert 0.75 * PAPER_PARAMS[variant] < n < 1.25 * PAPER_PARAMS[variant]


# ---------------------------------------------------------------- trainer
def _tiny_config(variant="copy-ntm_lstm"):
  c = load_config(f"{CONFIG}:{variant}", [
      "--config.batch_size=8", "--config.model.controller_size=16",
      "--config.model.memory_locations=16", "--config.model.memory_width=6"])
  c.unlock()
  c.data.args = {"max_len": 5}
  c.data.eval_sequences, c.data.eval_batch_size = 16, 8
  c.data.generalisation_lengths = (5, 10)
  return c


MESH_2X2X2 = dict(data=2, fsdp=2, tensor=2, stage=1)


@pytest.mark.parametrize("variant", ["copy-ntm_lstm", "copy-ntm_ff", "copy-lstm", "repeat_copy-ntm_lstm",
                                     "associative_recall-ntm_ff", "priority_sort-ntm_lstm"])
def test_paper_sizes_divide_over_a_data_fsdp_tensor_mesh(variant):
  """Parameters whose size the task fixes (29 or 129 controller inputs, 9 outputs) are not
  sharded, so the trainer accepts every variant on data=2 x fsdp=2 x tensor=2."""
  c = load_config(f"{CONFIG}:{variant}")
  c.mesh.update(MESH_2X2X2)
  Trainer(c, devices=jax.devices())


def test_sharded_training_equals_one_device():
  """8 fake devices (data=2 x fsdp=2 x tensor=2: batch split 4 ways, hidden units 2 ways) give
  the losses and parameters of one device; the sharded evaluation gives the held-out cost
  computed on the host, sequence by sequence."""
  def run(devices, mesh):
    c = _tiny_config()
    c.mesh.update(mesh)
    trainer = Trainer(c, devices=devices)
    state, history = trainer.run_steps(trainer.init_state(), range(3))
    assert all(np.isfinite(m["grad_norm"]) for m in history)
    return [float(m["loss"]) for m in history], state, trainer

  one_losses, one_state, _ = run(jax.devices()[:1], dict(data=1, fsdp=1, tensor=1, stage=1))
  many_losses, many_state, trainer = run(jax.devices(), MESH_2X2X2)
  np.testing.assert_allclose(many_losses, one_losses, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               jax.device_get(many_state.params), jax.device_get(one_state.params))
  assert one_losses[0] > 0

  variables = jax.device_get(many_state.variables())
  metrics = trainer.evaluate(many_state, 3)
  lengths = {f"{k}_len{n}" for k in ("bits_per_sequence", "bit_errors_per_sequence") for n in (5, 10)}
  assert set(metrics) == {"loss", "bits_per_sequence", "bit_errors_per_sequence"} | lengths
  task = trainer.task
  bits, wrong = [], []
  for batch in task.eval_batches():
    logits, _ = task.forward(variables, batch["inputs"])
    b, w = ntm_task.sequence_bits(logits, batch["targets"], batch["mask"])
    bits.append(b)
    wrong.append(w)
  np.testing.assert_allclose(metrics["bits_per_sequence"], np.mean(np.concatenate(bits)), rtol=1e-4)
  np.testing.assert_allclose(metrics["loss"], metrics["bits_per_sequence"], rtol=1e-6)
  np.testing.assert_allclose(metrics["bit_errors_per_sequence"], np.mean(np.concatenate(wrong)),
                             rtol=1e-5)
  batch = task.generalisation_batch(10)
  logits, _ = task.forward(variables, batch["inputs"])
  b, w = ntm_task.sequence_bits(logits, batch["targets"], batch["mask"])
  np.testing.assert_allclose(metrics["bits_per_sequence_len10"], np.mean(b), rtol=1e-4)
  np.testing.assert_allclose(metrics["bit_errors_per_sequence_len10"], np.mean(w), rtol=1e-5)

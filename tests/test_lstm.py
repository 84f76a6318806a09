"""LSTM family: every cell against numpy, the scan driver against loops, masks, the long-lag tasks."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import chex  # pylint: disable=g-import-not-at-top
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import lstm as lstm_config
from core.data import local_batch
from core.task import ConfigError
from papers.lstm.cells import CELL_CLASSES
from papers.lstm.rnn import CELLS, RNN
from papers.lstm.task import (COPY_LENGTH, AddingTask, CopyTask, adding_batch, copy_baseline,
                              copy_batch)


# ---------------------------------------------------------------- numpy references

def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def np_step(cell, p, carry, x):
  """One step of `cell` written from its equations; p holds input_kernel, bias and cell/*."""
  hsize = p["cell"]["recurrent_kernel"].shape[0]
  gate = lambda pre, k: pre[:, k * hsize:(k + 1) * hsize]  # the k-th gate block
  xw = x @ p["input_kernel"] + p["bias"]
  h = carry if cell in ("rnn", "gru") else carry[1]
  hw = h @ p["cell"]["recurrent_kernel"]
  if cell == "rnn":
    h = np.tanh(xw + hw)
    return h, h
  if cell == "gru":
    r = _sigmoid(gate(xw, 0) + gate(hw, 0))
    z = _sigmoid(gate(xw, 1) + gate(hw, 1))
    n = np.tanh(gate(xw, 2) + r * (gate(hw, 2) + p["cell"]["recurrent_bias_n"]))
    h = (1 - z) * n + z * h
    return h, h
  c = carry[0]
  pre = xw + hw
  if cell == "lstm":
    i, f, g, o = (gate(pre, k) for k in range(4))
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
  elif cell == "peephole":
    peep = p["cell"]
    i = _sigmoid(gate(pre, 0) + peep["peephole_i"] * c)
    f = _sigmoid(gate(pre, 1) + peep["peephole_f"] * c)
    c = f * c + i * np.tanh(gate(pre, 2))
    h = _sigmoid(gate(pre, 3) + peep["peephole_o"] * c) * np.tanh(c)
  elif cell == "cifg":
    f = _sigmoid(gate(pre, 0))
    c = f * c + (1 - f) * np.tanh(gate(pre, 1))
    h = _sigmoid(gate(pre, 2)) * np.tanh(c)
  return (c, h), h


def np_rnn(cell, params, x, carry, lengths=None):
  """Stacked layers stepped by a Python loop; sequence b stops after lengths[b] steps."""
  batch, steps, _ = x.shape
  lengths = np.full(batch, steps) if lengths is None else lengths
  final = []
  for layer, state in enumerate(carry):
    p = params[f"layer_{layer}"]
    out = np.zeros((batch, steps, p["cell"]["recurrent_kernel"].shape[0]))
    ends = []
    for b in range(batch):
      s = jax.tree.map(lambda a, b=b: a[b:b + 1], state)
      for t in range(lengths[b]):
        s, h = np_step(cell, p, s, x[b:b + 1, t])
        out[b, t] = h[0]
      ends.append(s)
    final.append(jax.tree.map(lambda *rows: np.concatenate(rows), *ends))
    x = out
  return x, tuple(final)


def _params64(variables):
  return jax.tree.map(lambda a: np.asarray(a, np.float64), nn.unbox(variables)["params"])


def _random_carry(cell, batch, hidden, rng):
  zero = CELL_CLASSES[cell].zero_carry(batch, hidden)
  return jax.tree.map(lambda z: rng.normal(size=z.shape).astype(np.float32), zero)


# ---------------------------------------------------------------- cells and driver

@pytest.mark.parametrize("cell", CELLS)
def test_two_layer_rnn_matches_numpy_equations(cell):
  """Every cell, two layers, 6 steps, from a nonzero carry; parameters all nonzero (init_scale)."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 6, 5)).astype(np.float32)
  carry = tuple(_random_carry(cell, 3, 4, rng) for _ in range(2))
  model = RNN(4, cell, num_layers=2, init_scale=0.5)
  variables = model.init(jax.random.key(1), x)
  outputs, new_carry = model.apply(variables, x, carry)
  want, want_carry = np_rnn(cell, _params64(variables), x.astype(np.float64),
                            jax.tree.map(lambda a: a.astype(np.float64), carry))
  np.testing.assert_allclose(np.asarray(outputs), want, rtol=1e-5, atol=1e-5)
  chex.assert_trees_all_close(new_carry, want_carry, rtol=1e-5, atol=1e-5)


def _flax_cell_params(cell, p, hidden):
  """Our fused parameters laid out as Flax's per-gate Dense layers."""
  block = lambda a, k: a[..., k * hidden:(k + 1) * hidden]
  wx, b, wh = p["input_kernel"], p["bias"], p["cell"]["recurrent_kernel"]
  if cell == "rnn":
    return {"i": {"kernel": wx, "bias": b}, "h": {"kernel": wh}}
  if cell == "lstm":
    out = {}
    for k, g in enumerate("ifgo"):
      out[f"i{g}"] = {"kernel": block(wx, k)}
      out[f"h{g}"] = {"kernel": block(wh, k), "bias": block(b, k)}
    return out
  return {"ir": {"kernel": block(wx, 0), "bias": block(b, 0)}, "hr": {"kernel": block(wh, 0)},
          "iz": {"kernel": block(wx, 1), "bias": block(b, 1)}, "hz": {"kernel": block(wh, 1)},
          "in": {"kernel": block(wx, 2), "bias": block(b, 2)},
          "hn": {"kernel": block(wh, 2), "bias": p["cell"]["recurrent_bias_n"]}}


@pytest.mark.parametrize("cell,flax_cell", [("rnn", nn.SimpleCell), ("lstm", nn.LSTMCell),
                                            ("gru", nn.GRUCell)])
def test_cells_equal_flax_cells(cell, flax_cell):
  """rnn, lstm and gru are the equations of nn.SimpleCell, nn.LSTMCell and nn.GRUCell."""
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 3, 5)).astype(np.float32)
  carry = _random_carry(cell, 2, 4, rng)
  model = RNN(4, cell, init_scale=0.5)
  variables = model.init(jax.random.key(0), x)
  outputs, _ = model.apply(variables, x, (carry,))
  theirs = {"params": _flax_cell_params(cell, nn.unbox(variables)["params"]["layer_0"], 4)}
  state = carry
  for t in range(3):
    state, out = flax_cell(4).apply(theirs, state, x[:, t])
    np.testing.assert_allclose(np.asarray(outputs[:, t]), np.asarray(out), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_scan_equals_a_python_loop_over_the_cell_and_carry_resumes(cell):
  rng = np.random.default_rng(2)
  x = rng.normal(size=(2, 7, 3)).astype(np.float32)
  model = RNN(5, cell)
  variables = model.init(jax.random.key(0), x)
  p = nn.unbox(variables)["params"]["layer_0"]
  step = CELL_CLASSES[cell](5)
  state, outs = model.zero_carry(2)[0], []
  for t in range(7):
    state, out = step.apply({"params": p["cell"]}, state, x[:, t] @ p["input_kernel"] + p["bias"])
    outs.append(out)
  outputs, carry = model.apply(variables, x)
  np.testing.assert_allclose(np.asarray(outputs), np.stack(outs, 1), rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(carry[0], state, rtol=1e-5, atol=1e-6)
  # Two windows, the second from the first's carry: the same as one pass (truncated BPTT streams).
  first, mid = model.apply(variables, x[:, :4])
  second, end = model.apply(variables, x[:, 4:], mid)
  np.testing.assert_allclose(np.concatenate([first, second], 1), outputs, rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(end, carry, rtol=1e-5, atol=1e-6)


LENGTHS = np.array([6, 3, 1])


def _padded(rng, features=3):
  x = rng.normal(size=(3, 6, features)).astype(np.float32)
  return x, np.arange(6)[None] < LENGTHS[:, None]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_is_inert(cell):
  """Padded steps output zeros, keep the carry, and their values change no gradient (even NaN)."""
  rng = np.random.default_rng(3)
  x, mask = _padded(rng)
  model = RNN(4, cell, num_layers=2)
  variables = model.init(jax.random.key(0), x)
  outputs, carry = model.apply(variables, x, mask=mask)
  assert np.all(np.asarray(outputs)[~mask] == 0)
  want, want_carry = np_rnn(cell, _params64(variables), x.astype(np.float64),
                            jax.tree.map(lambda a: np.zeros(a.shape), model.zero_carry(3)), LENGTHS)
  np.testing.assert_allclose(np.asarray(outputs), want, rtol=1e-5, atol=1e-5)
  chex.assert_trees_all_close(carry, want_carry, rtol=1e-5, atol=1e-5)

  @jax.jit
  def grads(inputs):
    def loss(v):
      out, c = model.apply(v, inputs, mask=mask)
      return jnp.sum(out ** 2) + sum(jnp.sum(a) for a in jax.tree.leaves(c))
    return jax.grad(loss)(variables)

  other = np.where(mask[..., None], x, np.nan).astype(np.float32)
  chex.assert_tree_all_finite(grads(other))
  chex.assert_trees_all_close(grads(other), grads(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_bidirectional_backward_half_is_the_reversed_real_sequence(cell):
  """The backward direction of a padded batch = a forward RNN over each reversed real prefix."""
  rng = np.random.default_rng(4)
  x, mask = _padded(rng)
  model = RNN(4, cell, bidirectional=True)
  variables = model.init(jax.random.key(0), x)
  outputs, carry = model.apply(variables, x, mask=mask)
  assert outputs.shape == (3, 6, 8) and len(carry) == 2
  params = nn.unbox(variables)["params"]
  forward_only = RNN(4, cell)
  fwd, fwd_carry = forward_only.apply({"params": {"layer_0": params["layer_0"]}}, x, mask=mask)
  np.testing.assert_allclose(np.asarray(outputs[..., :4]), np.asarray(fwd), rtol=1e-6, atol=1e-6)
  chex.assert_trees_all_close(carry[0], fwd_carry[0], rtol=1e-6, atol=1e-6)
  backward = {"params": {"layer_0": params["layer_0_backward"]}}
  for b, n in enumerate(LENGTHS):
    rev, rev_carry = forward_only.apply(backward, x[b:b + 1, :n][:, ::-1])
    np.testing.assert_allclose(np.asarray(outputs[b, :n, 4:]), np.asarray(rev[0, ::-1]),
                               rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(outputs[b, n:]) == 0)
    chex.assert_trees_all_close(jax.tree.map(lambda a, b=b: a[b:b + 1], carry[1]), rev_carry[0],
                                rtol=1e-5, atol=1e-6)


def _loop_over_cell(cell, p, x, mask, reverse=False):
  """Autodiff's reference: the cell module stepped by a Python loop, padded rows held."""
  carry = CELL_CLASSES[cell].zero_carry(x.shape[0], 4)
  x_proj = x @ p["input_kernel"] + p["bias"]
  outputs = [None] * x.shape[1]
  for t in (reversed(range(x.shape[1])) if reverse else range(x.shape[1])):
    new, out = CELL_CLASSES[cell](4).apply({"params": p["cell"]}, carry, x_proj[:, t])
    keep = mask[:, t, None]
    carry = jax.tree.map(lambda a, b, keep=keep: jnp.where(keep, a, b), new, carry)
    outputs[t] = jnp.where(keep, out, 0.0)
  return jnp.stack(outputs, 1), carry


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_equal_autodiff_through_a_loop(cell):
  """The scan's own backward pass (kernel gradient after the loop) = autodiff of a step loop."""
  rng = np.random.default_rng(6)
  x, mask = _padded(rng, features=5)
  weights = rng.normal(size=(3, 6, 8)).astype(np.float32)
  model = RNN(4, cell, bidirectional=True, init_scale=0.5)
  variables = nn.unbox(model.init(jax.random.key(0), x))

  def loss(outputs, carry):
    return jnp.sum(outputs * weights) + sum(jnp.sum(a ** 2) for a in jax.tree.leaves(carry))

  def ours(v, x):
    return loss(*model.apply(v, x, mask=mask))

  def reference(v, x):
    p = v["params"]
    forward, forward_carry = _loop_over_cell(cell, p["layer_0"], x, mask)
    backward, backward_carry = _loop_over_cell(cell, p["layer_0_backward"], x, mask, reverse=True)
    return loss(jnp.concatenate([forward, backward], -1), (forward_carry, backward_carry))

  np.testing.assert_allclose(ours(variables, x), reference(variables, x), rtol=1e-6)
  chex.assert_trees_all_close(jax.grad(ours, argnums=(0, 1))(variables, x),
                              jax.grad(reference, argnums=(0, 1))(variables, x), rtol=1e-5, atol=1e-6)


def test_dropout_only_in_training_and_on_the_outputs():
  x = np.random.default_rng(5).normal(size=(4, 5, 3)).astype(np.float32)
  plain, dropped = RNN(16, num_layers=2), RNN(16, num_layers=2, dropout=0.5)
  variables = plain.init(jax.random.key(0), x)
  chex.assert_trees_all_equal(dropped.apply(variables, x), plain.apply(variables, x))  # eval
  out, _ = dropped.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)})
  again, _ = dropped.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)})
  assert not np.allclose(out, again)
  zeros = np.mean(np.asarray(out) == 0)  # the last layer's output is dropped: ~half are zero
  assert 0.35 < zeros < 0.65, zeros


@pytest.mark.parametrize("cell", ["peephole", "gru"])
def test_bfloat16_compute_tracks_float32(cell):
  """dtype=bfloat16: the matmuls in bfloat16; parameters, carry and gradients stay float32."""
  x = np.random.default_rng(7).normal(size=(4, 12, 3)).astype(np.float32)
  variables = nn.unbox(RNN(16, cell, num_layers=2).init(jax.random.key(0), x))
  results = {}
  for dtype in (jnp.float32, jnp.bfloat16):
    model = RNN(16, cell, num_layers=2, dtype=dtype)
    (outputs, carry), grads = jax.jit(lambda v, m=model: (
        m.apply(v, x), jax.grad(lambda v: jnp.sum(m.apply(v, x)[0] ** 2))(v)))(variables)
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves((carry, grads)))
    results[dtype] = outputs, grads
  np.testing.assert_allclose(results[jnp.bfloat16][0], results[jnp.float32][0], atol=3e-2)
  assert not np.array_equal(results[jnp.bfloat16][0], results[jnp.float32][0])  # bfloat16 was used
  chex.assert_tree_all_finite(results[jnp.bfloat16][1])


def test_init_scale_and_default_init():
  x = np.zeros((1, 2, 3), np.float32)
  for cell in CELLS:
    params = nn.unbox(RNN(8, cell, init_scale=0.1).init(jax.random.key(0), x))["params"]
    for leaf in jax.tree.leaves(params):
      assert np.all(np.abs(leaf) <= 0.1) and np.std(leaf) > 0.02  # U(-0.1, 0.1), biases too
  params = nn.unbox(RNN(8, "lstm").init(jax.random.key(0), x))["params"]["layer_0"]
  np.testing.assert_array_equal(params["bias"], np.repeat([0.0, 1.0, 0.0, 0.0], 8))  # forget: 1
  gate = np.asarray(params["cell"]["recurrent_kernel"][:, 8:16])
  np.testing.assert_allclose(gate @ gate.T, np.eye(8), atol=1e-5)  # orthogonal per gate
  assert len(RNN(8, "gru", num_layers=3, bidirectional=True).zero_carry(2)) == 6  # unbound


def test_bad_cell_is_an_error():
  with pytest.raises(ValueError, match="cell must be one of"):
    RNN(4, "tree").init(jax.random.key(0), np.zeros((1, 2, 3), np.float32))


# ---------------------------------------------------------------- the tasks' data

def test_adding_problem_data():
  inputs, targets = adding_batch(np.random.default_rng(0), 4000, 50)
  assert inputs.shape == (4000, 50, 2) and inputs.dtype == np.float32
  for example, target in zip(inputs[:200], targets[:200]):
    marked = [t for t in range(50) if example[t, 1] == 1.0]
    assert len(marked) == 2 and marked[0] < 25 <= marked[1]
    assert np.isclose(target, example[marked[0], 0] + example[marked[1], 0])
  assert set(np.unique(inputs[..., 1])) == {0.0, 1.0}
  assert 0 <= inputs[..., 0].min() and inputs[..., 0].max() < 1
  # The constant answer 1 costs Var(U + U) = 1/6: the baseline of the results table.
  assert abs(np.mean((targets - 1.0) ** 2) - 1 / 6) < 0.01


def test_copy_memory_data_and_baseline():
  inputs, targets = copy_batch(np.random.default_rng(0), 2000, lag=30)
  assert inputs.shape == targets.shape == (2000, 50)
  np.testing.assert_array_equal(targets[:, -COPY_LENGTH:], inputs[:, :COPY_LENGTH])
  assert np.all(targets[:, :-COPY_LENGTH] == 0) and np.all(inputs[:, COPY_LENGTH:39] == 0)
  assert np.all(inputs[:, 39] == 9) and np.all(inputs[:, 40:] == 0)  # delimiter, then blanks
  counts = np.bincount(inputs[:, :COPY_LENGTH].ravel(), minlength=9)
  assert counts[0] == 0 and np.all(np.abs(counts[1:] / counts[1:].sum() - 1 / 8) < 0.01)
  # The memoryless predictor: blank where the target is always blank, symbol frequencies elsewhere.
  freq = np.stack([np.bincount(targets[:, t], minlength=10) / 2000 for t in range(50)])
  cross_entropy = -np.mean(np.log(freq[np.arange(50), targets]))
  assert abs(cross_entropy - copy_baseline(30)) < 0.005
  assert np.isclose(copy_baseline(30), 10 * np.log(8) / 50)


def _tiny_config(variant="adding_lstm", lag=8):
  c = lstm_config.get_config(variant)
  c.data.lag = lag
  c.batch_size = 16
  c.model.hidden_size = 8
  c.data.test_examples = 64
  c.data.eval_batch_size = 32
  return c


@pytest.mark.parametrize("variant", ["adding_gru", "copy_lstm"])
def test_train_batch_is_a_pure_function_of_seed_and_step(variant):
  task = (AddingTask if variant.startswith("adding") else CopyTask)(_tiny_config(variant))
  a, b, other = task.train_batch(3), task.train_batch(3), task.train_batch(4)
  chex.assert_trees_all_equal(a, b)
  assert not np.array_equal(a["inputs"], other["inputs"])
  shards = [local_batch(task, 3, 16, s, 4) for s in range(4)]
  for key in a:
    np.testing.assert_array_equal(np.concatenate([s[key] for s in shards]), a[key])
  spec = task.batch_spec()
  assert {k: (v.shape, v.dtype) for k, v in spec.items()} == {k: (v.shape, v.dtype) for k, v in a.items()}
  evals = task.eval_batches()
  assert len(evals) == 2
  chex.assert_trees_all_equal(evals, type(task)(_tiny_config(variant)).eval_batches())
  assert not np.array_equal(evals[0]["inputs"][:16], task.train_batch(0)["inputs"])


def test_config_errors():
  with pytest.raises(ValueError, match="unknown variant"):
    lstm_config.get_config("adding_tree")
  assert len(lstm_config.VARIANTS) == 10 and lstm_config.get_config().model.cell == "lstm"
  for variant, key, value, match in [
      ("adding_lstm", "model.cell", "tree", "cell must be one of"),
      ("adding_lstm", "data.lag", 1, "must be >= 2"),
      ("copy_gru", "data.lag", 0, "must be >= 1"),
      ("copy_gru", "data.num_symbols", 1, "num_symbols"),
      ("adding_rnn", "model.hidden_size", 0, "hidden_size"),
      ("adding_rnn", "model.init_scale", -0.1, "init_scale"),
      ("adding_cifg", "data.eval_batch_size", 30, "multiple"),
      ("adding_cifg", "dtype", "float16", "dtype")]:
    c = _tiny_config(variant)
    section, name = key.split(".") if "." in key else (None, key)
    (c[section] if section else c)[name] = value
    with pytest.raises(ConfigError, match=match):
      (AddingTask if variant.startswith("adding") else CopyTask)(c)


# ---------------------------------------------------------------- training

def test_lstm_learns_a_short_adding_problem():
  """T=10: 300 Adam steps take the held-out MSE from the 1/6 baseline to well under it."""
  c = _tiny_config("adding_lstm", lag=10)
  c.batch_size, c.model.hidden_size = 64, 16
  task = AddingTask(c)
  params = nn.unbox(task.init(jax.random.key(0)))
  optimizer = optax.adam(1e-2)

  @jax.jit
  def step(params, opt_state, batch):
    grads = jax.grad(lambda p: task.loss(p, batch, None, train=True)[0])(params)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state

  evaluate = jax.jit(lambda p, b: task.loss(p, b, None, train=False)[1]["mse"])
  test = {k: v for k, v in task.test_set.items()}
  before = float(evaluate(params, test))
  opt_state = optimizer.init(params)
  for s in range(300):
    params, opt_state = step(params, opt_state, task.train_batch(s))
  after = float(evaluate(params, test))
  assert before > 0.1 and after < 0.03, (before, after)


@pytest.mark.parametrize("variant", ["adding_peephole", "copy_gru"])
def test_sharded_training_equals_one_device(variant):
  """Two Adam steps and the evaluation on 8 fake devices (data=4 x tensor=2) equal one device."""
  from core.train import Trainer  # pylint: disable=g-import-not-at-top
  c = _tiny_config(variant)

  def run(mesh, devices):
    cfg = c.copy_and_resolve_references()
    cfg.mesh.update(mesh)
    trainer = Trainer(cfg, devices=devices)
    state, history = trainer.run_steps(trainer.init_state(), range(2))
    return [float(m["loss"]) for m in history], jax.device_get(state.params), trainer.evaluate(state, 2)

  one = run(dict(data=1, fsdp=1, tensor=1, stage=1), jax.devices()[:1])
  many = run(dict(data=4, fsdp=1, tensor=2, stage=1), jax.devices())
  np.testing.assert_allclose(many[0], one[0], rtol=1e-5)
  chex.assert_trees_all_close(many[1], one[1], rtol=1e-4, atol=1e-6)
  assert set(one[2]) >= ({"loss", "mse", "solved"} if variant.startswith("adding") else {"loss", "accuracy"})
  for name in one[2]:
    np.testing.assert_allclose(many[2][name], one[2][name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_softmax_cross_entropy_and_its_gradient_match_numpy():
  """The LM's fused loss: the mean cross entropy, and (softmax - onehot) / N through the readout."""
  from papers.lstm.model import LanguageModel, softmax_cross_entropy  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  h, kernel, bias = (rng.standard_normal(s).astype(np.float32) for s in ((6, 4), (4, 9), (9,)))
  labels = rng.integers(0, 9, 6)
  logits = h.astype(np.float64) @ kernel + bias
  p = np.exp(logits - logits.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  loss = -np.log(p[np.arange(6), labels]).mean()
  d_logits = (p - np.eye(9)[labels]) / 6
  value, grads = jax.value_and_grad(softmax_cross_entropy, argnums=(0, 1, 2))(h, kernel, bias, labels)
  np.testing.assert_allclose(value, loss, rtol=1e-6)
  for got, want in zip(grads, (d_logits @ kernel.T, h.T @ d_logits, d_logits.sum(0))):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  # In the model: the same loss and gradients as the logits and optax's cross entropy.
  model = LanguageModel(vocab_size=9, hidden_size=4)
  tokens, targets = jnp.asarray(rng.integers(0, 9, (2, 3))), jnp.asarray(rng.integers(0, 9, (2, 3)))
  params = nn.unbox(model.init(jax.random.key(0), tokens, labels=targets))["params"]
  def plain(params):
    logits, _ = model.apply({"params": params}, tokens)
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
  fused = lambda params: model.apply({"params": params}, tokens, labels=targets)[0]
  chex.assert_trees_all_close(jax.value_and_grad(fused)(params), jax.value_and_grad(plain)(params),
                              rtol=1e-5, atol=1e-7)


def test_language_model_equals_torch_nn_lstm():
  """The benchmark's two models compute one function: a JAX SGD step and torch's, same weights."""
  pytest.importorskip("torch")
  import argparse  # pylint: disable=g-import-not-at-top
  from papers.lstm import benchmark  # pylint: disable=g-import-not-at-top
  args = argparse.Namespace(vocab=50, hidden=8, layers=2, batch=3, scan_unroll=1, lr=0.5, clip=5.0)
  ours = benchmark.JaxRun(args, length=6)
  theirs = benchmark.TorchRun(args, jax.device_get(ours.state[0]), ours.x, ours.y)
  losses = [(ours.run(1)[-1], theirs.run(1)[-1]) for _ in range(3)]  # carried from window to window
  np.testing.assert_allclose(*losses[0], rtol=1e-6)
  np.testing.assert_allclose(*zip(*losses[1:]), rtol=1e-4)  # after SGD steps: float rounding differs
  assert abs(losses[2][0] - losses[0][0]) > 1e-2  # ... by far less than the steps change the loss

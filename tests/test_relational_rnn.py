"""Relational RNN: Nth-farthest labels, attention and the RMC/LSTM steps against numpy."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import flax.linen as nn  # pylint: disable=g-import-not-at-top
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import relational_rnn as rrnn_config
from core.data import local_batch
from core.task import ConfigError
from papers.relational_rnn import model as rrnn
from papers.relational_rnn.task import NthFarthestTask, nth_farthest_batch


# ---------------------------------------------------------------- the task's data

def _brute_force_answer(example, num_objects, num_features):
  """Decodes one 40-dim-per-step sequence and answers its question by sorting in Python."""
  vectors = example[:, :num_features]
  labels = example[:, num_features:num_features + num_objects].argmax(1)
  n = example[0, num_features + num_objects:num_features + 2 * num_objects].argmax()
  m = example[0, num_features + 2 * num_objects:].argmax()
  ref = vectors[list(labels).index(m)]
  by_distance = sorted(range(num_objects),
                       key=lambda i: -sum((a - b) ** 2 for a, b in zip(vectors[i], ref)))
  return labels[by_distance[n]]


def test_labels_match_brute_force():
  inputs, targets, n = nth_farthest_batch(np.random.default_rng(0), 300)
  assert inputs.shape == (300, 8, 40) and inputs.dtype == np.float32
  for example, target, nn_ in zip(inputs, targets, n):
    assert target == _brute_force_answer(example.astype(np.float64), 8, 16)
    ids = example[:, 16:24]
    assert sorted(ids.argmax(1)) == list(range(8)) and ids.sum() == 8  # a permutation
    assert np.all(example[:, 24:] == example[0, 24:])                  # question on every step
    assert example[0, 24 + nn_] == 1
  assert np.all(np.abs(inputs[..., :16]) <= 1)
  # labels are shuffled: the answer is not tied to a time position
  assert 0.05 < np.mean(targets == inputs[..., 16:24].argmax(-1)[:, 0]) < 0.25


def test_nth_is_reference_itself_when_n_is_last():
  inputs, targets, n = nth_farthest_batch(np.random.default_rng(1), 400)
  last = n == 7
  assert last.any()
  np.testing.assert_array_equal(targets[last], inputs[last, 0, 32:].argmax(-1))


def _tiny_config(core="rmc"):
  c = rrnn_config.get_config(core)
  c.batch_size = 16
  c.data.test_examples = 64
  c.data.eval_batch_size = 32
  c.model.mem_slots, c.model.num_heads, c.model.head_size = 2, 2, 8
  c.model.hidden_size = 16
  c.model.mlp_sizes = (32,)
  c.model.unroll = 1  # compiles faster
  return c


def test_train_batch_is_a_pure_function_of_seed_and_step():
  task = NthFarthestTask(_tiny_config())
  a, b, other = task.train_batch(5), task.train_batch(5), task.train_batch(6)
  np.testing.assert_array_equal(a["inputs"], b["inputs"])
  assert not np.array_equal(a["inputs"], other["inputs"])
  shards = [local_batch(task, 5, 16, s, 4) for s in range(4)]
  for key in a:
    np.testing.assert_array_equal(np.concatenate([s[key] for s in shards]), a[key])
  spec = task.batch_spec()
  assert {k: (v.shape, v.dtype) for k, v in spec.items()} == {k: (v.shape, v.dtype) for k, v in a.items()}
  evals = task.eval_batches()
  assert len(evals) == 2 and evals[0]["inputs"].shape == (32, 8, 40)
  # The test set is fixed (the held-out stream of the seed) and disjoint from step 0's stream.
  again = NthFarthestTask(_tiny_config()).eval_batches()
  jax.tree.map(np.testing.assert_array_equal, evals, again)
  assert not np.array_equal(evals[0]["inputs"][:16], task.train_batch(0)["inputs"])


def test_config_errors():
  with pytest.raises(ValueError):
    rrnn_config.get_config("gru")
  c = _tiny_config()
  c.model.core = "gru"
  with pytest.raises(ConfigError):
    NthFarthestTask(c)
  c = _tiny_config()
  c.data.eval_batch_size = 50
  with pytest.raises(ConfigError):
    NthFarthestTask(c)
  c = _tiny_config()
  c.dtype = "float16"
  with pytest.raises(ConfigError):
    NthFarthestTask(c)


@pytest.mark.parametrize("core,gate_style", [("rmc", "unit"), ("rmc", ""), ("lstm", "unit")])
def test_bfloat16_compute_runs_and_tracks_float32(core, gate_style):
  """--config.dtype=bfloat16: matmuls in bfloat16, parameters, state and logits in float32."""
  losses = {}
  for dtype in ("float32", "bfloat16"):
    c = _tiny_config(core)
    c.model.gate_style, c.dtype = gate_style, dtype
    task = NthFarthestTask(c)
    variables = nn.unbox(task.init(jax.random.key(0)))
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables))
    loss, metrics, updates = jax.jit(
        lambda v, b, t=task: t.loss(v, b, None, train=True))(variables, task.train_batch(0))
    assert updates == {} and loss.dtype == jnp.float32 and set(metrics) == {"accuracy"}
    losses[dtype] = float(loss)
  assert np.isfinite(losses["bfloat16"])
  np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=2e-2)


# ---------------------------------------------------------------- numpy references

def _np_softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _np_layer_norm(x, p, eps=1e-6):
  mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def _np_dense(x, p):
  return x @ p["kernel"] + p.get("bias", 0.0)


def _np_sigmoid(x):
  return 1 / (1 + np.exp(-x))


def _np_mhdpa(x, p, heads, key_size, head_size):
  """Per example, per head: softmax(q_h k_h^T / sqrt(d)) v_h, heads concatenated."""
  qkv = _np_layer_norm(_np_dense(x, p["qkv"]), p["qkv_norm"])
  per = 2 * key_size + head_size
  out = np.zeros(x.shape[:-1] + (heads * head_size,))
  for b in range(x.shape[0]):
    for h in range(heads):
      block = qkv[b, :, h * per:(h + 1) * per]
      q, k, v = block[:, :key_size], block[:, key_size:2 * key_size], block[:, 2 * key_size:]
      out[b, :, h * head_size:(h + 1) * head_size] = (
          _np_softmax(q @ k.T / np.sqrt(key_size)) @ v)
  return out


def _params64(variables):
  return jax.tree.map(lambda a: np.asarray(a, np.float64), nn.unbox(variables)["params"])


def test_dot_product_attention_matches_numpy():
  rng = np.random.default_rng(0)
  q, k, v = (rng.normal(size=(2, 3, 5, 4)) for _ in range(3))
  got = rrnn.dot_product_attention(*(jnp.asarray(a, jnp.float32) for a in (q, k, v)))
  want = np.einsum("bhqk,bhkd->bhqd", _np_softmax(np.einsum("bhqd,bhkd->bhqk", q, k) / 2.0), v)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


def test_multi_head_attention_matches_numpy():
  x = np.random.default_rng(1).normal(size=(3, 5, 12)).astype(np.float32)
  mha = rrnn.MultiHeadAttention(num_heads=3, key_size=2, head_size=4)
  variables = mha.init(jax.random.key(0), x)
  want = _np_mhdpa(x.astype(np.float64), _params64(variables), 3, 2, 4)
  np.testing.assert_allclose(np.asarray(mha.apply(variables, x)), want, rtol=1e-4, atol=1e-5)


def _np_rmc_step(p, memory, x, heads, key_size, head_size, mlp_layers, gated, fb=1.0, ib=0.0):
  """The paper's RMC step: attend over [M; x], residual + LN, MLP + residual + LN, gates."""
  xp = _np_dense(x, p["input_proj"])
  rows = np.concatenate([memory, xp[:, None]], axis=1)
  att = _np_mhdpa(rows, p["attention_0"], heads, key_size, head_size)
  rows = _np_layer_norm(rows + att, p["attention_norm_0"])
  h = rows
  for l in range(mlp_layers):
    h = _np_dense(h, p[f"mlp_0_{l}"])
    h = np.maximum(h, 0) if l < mlp_layers - 1 else h
  proposal = _np_layer_norm(rows + h, p["mlp_norm_0"])[:, :memory.shape[1]]
  if not gated:
    return proposal
  g = _np_dense(np.tanh(memory), p["gate_memory"]) + _np_dense(xp, p["gate_input"])[:, None]
  half = g.shape[-1] // 2
  i, f = g[..., :half], g[..., half:]
  return _np_sigmoid(i + ib) * np.tanh(proposal) + _np_sigmoid(f + fb) * memory


@pytest.mark.parametrize("gate_style", ["unit", "memory", None])
def test_rmc_step_matches_numpy(gate_style):
  rng = np.random.default_rng(2)
  core = rrnn.RelationalMemoryCore(mem_slots=3, head_size=4, num_heads=2, key_size=3,
                                   attention_mlp_layers=3, gate_style=gate_style)
  memory = rng.normal(size=(2, 3, 8)).astype(np.float32)
  x = rng.normal(size=(2, 5)).astype(np.float32)
  variables = core.init(jax.random.key(1), memory, x)
  new_memory, out = core.apply(variables, memory, x)
  want = _np_rmc_step(_params64(variables), memory.astype(np.float64), x.astype(np.float64),
                      2, 3, 4, 3, gate_style is not None)
  np.testing.assert_allclose(np.asarray(new_memory), want, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(np.asarray(out), want.reshape(2, -1), rtol=1e-4, atol=1e-5)


def test_rmc_initial_memory_is_padded_identity():
  mem = rrnn.RelationalMemoryCore(mem_slots=3, head_size=2, num_heads=2).initial_memory(2)
  np.testing.assert_array_equal(np.asarray(mem[1]), np.eye(3, 4))
  mem = rrnn.RelationalMemoryCore(mem_slots=5, head_size=1, num_heads=2).initial_memory(1)
  np.testing.assert_array_equal(np.asarray(mem[0]), np.eye(5, 2))


def test_lstm_step_matches_numpy():
  rng = np.random.default_rng(3)
  cell = rrnn.LSTMCore(hidden_size=6)
  c, h = (rng.normal(size=(2, 6)).astype(np.float32) for _ in range(2))
  x = rng.normal(size=(2, 4)).astype(np.float32)
  variables = cell.init(jax.random.key(0), (c, h), x)
  (c1, h1), out = cell.apply(variables, (c, h), x)
  p = _params64(variables)
  gates = _np_dense(x, p["input"]) + h @ p["recurrent"]["kernel"]
  i, g, f, o = np.split(gates, 4, axis=-1)
  want_c = _np_sigmoid(f + 1.0) * c + _np_sigmoid(i) * np.tanh(g)
  want_h = _np_sigmoid(o) * np.tanh(want_c)
  np.testing.assert_allclose(np.asarray(c1), want_c, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(h1), want_h, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(out), want_h, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("core", ["rmc", "lstm"])
def test_sequence_classifier_equals_a_python_loop_over_the_core(core):
  """The scanned model = the core stepped by hand over time with the same parameters."""
  kwargs = dict(mem_slots=2, head_size=4, num_heads=2) if core == "rmc" else dict(hidden_size=8)
  model = rrnn.SequenceClassifier(num_classes=8, core=core, core_kwargs=kwargs, mlp_sizes=(16,))
  x = np.random.default_rng(4).normal(size=(3, 8, 40)).astype(np.float32)
  variables = model.init(jax.random.key(0), x)
  params = nn.unbox(variables)["params"]
  cell = (rrnn.RelationalMemoryCore if core == "rmc" else rrnn.LSTMCore)(**kwargs)
  state = cell.initial_memory(3)
  for t in range(8):
    state, out = cell.apply({"params": params["core"]}, state, x[:, t])
  h = jax.nn.relu(out @ params["head_0"]["kernel"] + params["head_0"]["bias"])
  want = h @ params["logits"]["kernel"] + params["logits"]["bias"]
  np.testing.assert_allclose(np.asarray(model.apply(variables, x)), np.asarray(want),
                             rtol=1e-4, atol=1e-5)


def test_params_carry_logical_axes():
  task = NthFarthestTask(_tiny_config())
  variables = jax.eval_shape(task.init, jax.random.key(0))
  assert set(variables) == {"params"}
  boxed = variables["params"]
  qkv = nn.get_partition_spec(boxed)["core"]["attention_0"]["qkv"]["kernel"]
  assert tuple(qkv) == ("embed", "heads")
  leaves = jax.tree.leaves(boxed, is_leaf=lambda x: isinstance(x, nn.Partitioned))
  assert leaves and all(isinstance(x, nn.Partitioned) for x in leaves)


# ---------------------------------------------------------------- through the trainer

@pytest.mark.parametrize("core,mesh,check_eval", [
    ("rmc", dict(data=4, fsdp=1, tensor=2, stage=1), True),
    ("lstm", dict(data=8, fsdp=1, tensor=1, stage=1), False),
    # All three axes at once: exact since the batch is laid out over (fsdp, data); over
    # (data, fsdp) XLA got the input_proj kernel's gradient wrong (tests/test_xla_sharding_bug.py).
    ("rmc", dict(data=2, fsdp=2, tensor=2, stage=1), False),
])
def test_sharded_training_equals_one_device(core, mesh, check_eval):
  """Two SGD steps on 8 fake devices give the losses and parameters of one device."""
  from core.train import Trainer  # pylint: disable=g-import-not-at-top
  c = _tiny_config(core)
  # Not Adam: the layer-norm bias of the keys gets an exactly-zero gradient (q.b is the
  # same for every key, softmax ignores it), and Adam would blow its rounding noise up to lr.
  c.optimizer.name, c.optimizer.learning_rate, c.optimizer.clip_norm = "sgd", 0.1, 0.0

  def run(mesh_shape, devices):
    cfg = c.copy_and_resolve_references()
    cfg.mesh.update(mesh_shape)
    trainer = Trainer(cfg, devices=devices)
    state, history = trainer.run_steps(trainer.init_state(), range(2))
    losses = [float(m["loss"]) for m in history]
    evaluated = trainer.evaluate(state, 2) if check_eval else None
    return losses, jax.device_get(state.params), evaluated, trainer.task

  one_losses, one_params, one_eval, task = run(dict(data=1, fsdp=1, tensor=1, stage=1),
                                               jax.devices()[:1])
  many_losses, many_params, many_eval, _ = run(mesh, jax.devices())
  np.testing.assert_allclose(many_losses, one_losses, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               many_params, one_params)
  if many_eval is not None:  # the held-out evaluation, also sharded
    k = c.data.num_objects
    names = {"loss", "accuracy", "accuracy_nontrivial"} | {f"accuracy_n{i}" for i in range(1, k + 1)}
    assert set(many_eval) == set(one_eval) == names
    for name in names:
      np.testing.assert_allclose(many_eval[name], one_eval[name], atol=1e-5, err_msg=name)
    # Against the test set scored on the host, example by example.
    test = task.test_set
    logits = np.asarray(task.model.apply({"params": one_params}, test["inputs"]))
    correct = logits.argmax(-1) == test["targets"]
    want = {f"accuracy_n{i + 1}": correct[test["n"] == i].mean() for i in range(k)}
    want["accuracy"] = correct.mean()
    want["accuracy_nontrivial"] = correct[test["n"] != k - 1].mean()
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    want["loss"] = -log_probs[np.arange(len(logits)), test["targets"]].mean()
    for name, value in want.items():
      np.testing.assert_allclose(one_eval[name], value, rtol=1e-5, atol=1e-6, err_msg=name)

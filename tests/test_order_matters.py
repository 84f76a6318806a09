"""Read-Process-Write (Order Matters): invariance, formulas against numpy, data, and 8 devices = 1."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.order_matters import get_config
from core.task import ConfigError, step_rng
from core.train import strip_boxes
from papers.order_matters import model as om
from papers.order_matters.task import SortingTask, answer_is_right, fixed_rank_order, sorting_examples


def sigmoid(x):
  return 1 / (1 + np.exp(-x))


def np_dense(p, x):
  return x @ np.asarray(p["kernel"]) + (np.asarray(p["bias"]) if "bias" in p else 0)


def np_lstm(p, carry, x):
  c, h = carry
  i, f, g, o = np.split(np_dense(p["gates"], np.concatenate([x, h], -1)), 4, -1)
  c = sigmoid(f + 1.0) * c + sigmoid(i) * np.tanh(g)
  return c, sigmoid(o) * np.tanh(c)


def np_attention_logits(p, memories, query):
  """e_i = v . tanh(W_k m_i + W_q q + b), a loop over the elements."""
  return np.stack([np.tanh(memories[:, i] @ np.asarray(p["key"]["kernel"]) + np_dense(p["query"], query))
                   @ np.asarray(p["v"]) for i in range(memories.shape[1])], axis=1)


def np_softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def unboxed_init(net, *args):
  return strip_boxes(jax.jit(net.init)(jax.random.key(0), *args))


def jitted(net):
  """(teacher-forced apply, greedy decode), each compiled once for all calls of a test."""
  return jax.jit(net.apply), jax.jit(lambda v, x: net.apply(v, x, method=om.SetPointerNet.greedy))


def test_attention_and_readout_match_numpy():
  rng = np.random.default_rng(0)
  memories = rng.normal(size=(3, 6, 8)).astype(np.float32)
  query = rng.normal(size=(3, 8)).astype(np.float32)
  mask = rng.random((3, 6)) > 0.3
  mask[:, 0] = True
  attention = om.Attention(hidden=8)
  params = strip_boxes(attention.init(jax.random.key(0), jnp.zeros((3, 6, 8)), jnp.zeros((3, 8)),
                                      method=lambda a, m, q: a(a.keys(m), q)))
  keys = attention.apply(params, memories, method=lambda a, m: a.keys(m))
  logits = np.asarray(attention.apply(params, keys, query, mask))
  expected = np_attention_logits(params["params"], memories, query)
  np.testing.assert_allclose(logits[mask], expected[mask], rtol=1e-5, atol=1e-5)
  assert np.all(logits[~mask] == om.NEG_INF)
  readout = om.attend(jnp.asarray(logits), jnp.asarray(memories))
  weights = np_softmax(np.where(mask, expected, -np.inf))
  np.testing.assert_allclose(readout, np.einsum("bn,bnh->bh", weights, memories), rtol=1e-5, atol=1e-5)


def test_read_and_process_blocks_match_numpy():
  """The read MLP and P = 3 steps of eqs. (3)-(7), then the write block's initial state."""
  net = om.SetPointerNet(hidden=8, process_steps=3, glimpses=1)
  x = np.random.default_rng(1).random((2, 5)).astype(np.float32)
  variables = unboxed_init(net, jnp.zeros((2, 5)), jnp.zeros((2, 5), jnp.int32))
  embeddings, memories, (c_out, h_out) = jax.jit(lambda v, x: net.apply(v, x, method=om.SetPointerNet.encode))(
      variables, jnp.asarray(x))
  p = variables["params"]
  m = np_dense(p["read_out"], np.maximum(np_dense(p["read_in"], x[..., None]), 0))
  np.testing.assert_allclose(embeddings, m, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(memories, m, rtol=1e-5, atol=1e-5)
  carry = (np.zeros((2, 8)), np.zeros((2, 8)))
  q_star = np.zeros((2, 16))
  for _ in range(3):
    carry = np_lstm(p["process_lstm"], carry, q_star)                                    # (3)
    a = np_softmax(np_attention_logits(p["process_attention"], m, carry[1]))             # (4), (5)
    q_star = np.concatenate([carry[1], np.einsum("bn,bnh->bh", a, m)], -1)               # (6), (7)
  np.testing.assert_allclose(c_out, carry[0], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(h_out, np_dense(p["write_init"], q_star), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("num_ranks", [0, 6])
def test_read_process_write_is_invariant_to_the_order_of_the_input_set(num_ranks):
  """Permuting the input permutes the pointers (and their logits) the same way, nothing else."""
  net = om.SetPointerNet(hidden=16, process_steps=2, glimpses=1, num_ranks=num_ranks)
  rng = np.random.default_rng(2)
  x = rng.random((4, 6)).astype(np.float32)
  perm = rng.permutation(6)
  examples = sorting_examples(rng, 4, 6, "random" if num_ranks else "sorted")
  x, pointers, ranks = examples["inputs"], examples["pointers"], examples["ranks"]
  variables = unboxed_init(net, jnp.asarray(x), jnp.asarray(pointers), jnp.asarray(ranks))
  inverse = np.argsort(perm)  # element perm[j] of x is element j of x[:, perm]
  apply, greedy_fn = jitted(net)
  logits, rank_logits = apply(variables, x, pointers, ranks)
  logits_p, rank_logits_p = apply(variables, x[:, perm], inverse[pointers], ranks)
  np.testing.assert_allclose(np.asarray(logits_p), np.asarray(logits)[..., perm], rtol=1e-5, atol=1e-5)
  if num_ranks:
    np.testing.assert_allclose(rank_logits_p, rank_logits, rtol=1e-5, atol=1e-5)
  greedy, greedy_ranks = greedy_fn(variables, x)
  greedy_p, greedy_ranks_p = greedy_fn(variables, x[:, perm])
  np.testing.assert_array_equal(perm[np.asarray(greedy_p)], greedy)
  np.testing.assert_array_equal(greedy_ranks_p, greedy_ranks)


def test_the_lstm_encoder_baseline_depends_on_the_input_order():
  net = om.SetPointerNet(hidden=16, process_steps=0, glimpses=1, encoder="lstm")
  rng = np.random.default_rng(3)
  x = rng.random((4, 6)).astype(np.float32)
  pointers = np.argsort(x, axis=1)
  perm = rng.permutation(6)
  variables = unboxed_init(net, jnp.asarray(x), jnp.asarray(pointers))
  apply, _ = jitted(net)
  logits, _ = apply(variables, x, pointers)
  logits_p, _ = apply(variables, x[:, perm], np.argsort(perm)[pointers])
  assert np.abs(np.asarray(logits_p) - np.asarray(logits)[..., perm]).max() > 1e-3


def test_masking_forbids_pointing_twice():
  net = om.SetPointerNet(hidden=8, process_steps=1, mask_pointed=True)
  x = np.random.default_rng(4).random((8, 7)).astype(np.float32)
  variables = unboxed_init(net, jnp.asarray(x), jnp.zeros((8, 7), jnp.int32))
  pointers, _ = jitted(net)[1](variables, x)
  np.testing.assert_array_equal(np.sort(pointers, axis=1), np.tile(np.arange(7), (8, 1)))


def test_targets_match_python_sorting_for_every_output_order():
  for order in ("sorted", "fixed", "random"):
    batch = sorting_examples(np.random.default_rng(5), 20, 7, order)
    for x, pointers, ranks, shuffle in zip(batch["inputs"], batch["pointers"], batch["ranks"], batch["shuffle"]):
      by_value = sorted(range(7), key=lambda i: x[i])
      assert sorted(shuffle) == list(range(7)) and sorted(ranks) == list(range(7))
      assert [by_value[r] for r in ranks] == list(pointers)
      if order == "sorted":
        assert list(pointers) == by_value
      if order == "fixed":
        assert list(ranks) == list(fixed_rank_order(7))
  assert not np.array_equal(fixed_rank_order(5), np.arange(5))
  ranks = sorting_examples(np.random.default_rng(6), 200, 5, "random")["ranks"]
  assert len({tuple(r) for r in ranks}) > 50  # a fresh order per example


def test_answer_check_matches_a_python_check():
  rng = np.random.default_rng(7)
  x = rng.random((300, 5)).astype(np.float32)
  pointers = np.where(rng.random((300, 1)) < 0.5, np.argsort(x, 1), rng.integers(0, 5, (300, 5)))
  ranks = np.where(rng.random((300, 1)) < 0.7, np.arange(5), rng.integers(0, 5, (300, 5)))
  got = np.asarray(answer_is_right(jnp.asarray(x), jnp.asarray(pointers), jnp.asarray(ranks)))
  expected = [sorted(p) == list(range(5)) and all(sorted(row).index(row[i]) == r for i, r in zip(p, rk))
              for row, p, rk in zip(x.tolist(), pointers.tolist(), ranks.tolist())]
  np.testing.assert_array_equal(got, expected)
  assert 20 < got.sum() < 280


def tiny_config(variant="sort5"):
  config = get_config(variant)
  config.data.num_elements = 3
  config.batch_size = 16
  config.model.hidden = 8
  config.model.process_steps = 1
  config.data.eval_sets = 32
  config.data.eval_batch_size = 16
  # Plain SGD: parameters then differ exactly as much as the gradients do.
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 0.1
  config.optimizer.clip_norm = 0.0
  return config


def test_batches_are_a_pure_function_of_seed_and_step_and_match_batch_spec():
  task = SortingTask(tiny_config())
  batch = task.train_batch(3)
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {
      k: (s.shape, s.dtype) for k, s in task.batch_spec().items()}
  np.testing.assert_array_equal(batch["inputs"], task.train_batch(3)["inputs"])
  np.testing.assert_array_equal(batch["inputs"], sorting_examples(step_rng(0, 3), 16, 3, "sorted")["inputs"])
  assert not np.array_equal(batch["inputs"], task.train_batch(4)["inputs"])
  held_out = np.concatenate([b["inputs"] for b in task.eval_batches()])
  assert held_out.shape == (32, 3) and not np.isin(held_out, batch["inputs"]).any()


def test_bad_config_values_are_one_line_errors():
  for key, value in (("model.encoder", "gru"), ("data.output_order", "any"), ("data.eval_batch_size", 5)):
    config = tiny_config()
    section, name = key.split(".")
    config[section][name] = value
    with pytest.raises(ConfigError, match=name):
      SortingTask(config)
  for variant in ("sort5", "sort10_ptrnet", "sort15_random_paper", "sort5_fixed"):
    get_config(variant)
  with pytest.raises(ValueError, match="unknown variant"):
    get_config("sort7")


def test_data_parallel_training_on_8_devices_equals_one_device():
  from core.train import Trainer  # pylint: disable=g-import-not-at-top
  assert jax.device_count() >= 8
  results = []
  for devices in (jax.devices()[:1], jax.devices()[:8]):
    trainer = Trainer(tiny_config("sort5_random"), devices=devices)
    assert trainer.mesh.shape["data"] == len(devices)
    state = trainer.init_state()
    initial = jax.device_get(state.params)
    state, history = trainer.run_steps(state, range(3))
    results.append((initial, jax.device_get(state.params), float(history[-1]["loss"]),
                    trainer.evaluate(state, 3)))
  (p0, p1, loss_1, eval_1), (_, p8, loss_8, eval_8) = results
  assert loss_1 == pytest.approx(loss_8, rel=1e-5)
  # Compare what training changed, leaf by leaf (float reassociation across shards leaves
  # ~1e-6 relative differences; a dropped shard or per-shard statistics would not).
  moved = 0.0
  for a, b, start in zip(jax.tree.leaves(p1), jax.tree.leaves(p8), jax.tree.leaves(p0)):
    moved += float(np.linalg.norm(a - start))
    assert np.linalg.norm((a - start) - (b - start)) <= 1e-3 * np.linalg.norm(a - start) + 1e-7
  assert moved > 1e-3
  assert set(eval_1) == set(eval_8) >= {"accuracy", "order_agreement", "loss"}
  for name, value in eval_1.items():
    assert eval_8[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name

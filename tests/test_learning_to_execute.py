"""Learning to Execute: programs against the Python interpreter, curriculum, task, model, sharding."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import contextlib  # pylint: disable=g-import-not-at-top
import io
import re

import flax.linen as nn
import jax
import numpy as np
import pytest

from configs import learning_to_execute as lte_config
from core.config import load_config
from core.data import local_batch
from core.task import ConfigError
from papers.relational_rnn import learning_to_execute as lte
from papers.relational_rnn import model as rrnn
from papers.relational_rnn.execute_task import LearnToExecuteTask


def _run(source: str) -> str:
  """What the Python interpreter prints for `source`, without the final newline."""
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    exec(source, {})  # pylint: disable=exec-used
  text = out.getvalue()
  assert text.endswith("\n") and text.count("\n") == 1, text
  return text[:-1]


# ---------------------------------------------------------------- the programs

def test_every_program_prints_its_target():
  """3,600 programs over tasks, lengths 1..6 and nestings 1..4, executed by Python."""
  rng = np.random.default_rng(0)
  used = {task: set() for task in lte.TASKS}
  for task in lte.TASKS:
    for length in range(1, 7):
      for nesting in range(1, 5):
        for _ in range(50):
          program = lte.generate(rng, task, length, nesting)
          assert _run(program.source) == program.target, program
          assert len(program.source) <= lte.max_source_length(task, length, nesting)
          assert len(program.target) <= lte.max_answer_length(task, length, nesting)
          assert set(program.source + program.target) <= set(lte.CHARACTERS)
          assert program.source.splitlines()[-1].startswith("print(")
          # Every number is a `length`-digit literal or a small factor / loop count (<= 4 length).
          for number in re.findall(r"\d+", program.source):
            assert len(number) == length or (number[0] != "0" and int(number) <= 4 * length), number
          assert len(program.operations) == (0 if task == "addition" else nesting)
          used[task].update(program.operations)
          # The marks of each operation in the text, where no other operation makes them.
          assert ("for x in range(" in program.source) == ("loop" in program.operations)
          assert (" if " in program.source) == ("if" in program.operations)
          assert ("*" in program.source) == ("small_mul" in program.operations)
  assert used == {"addition": set(), "control": {"loop", "if"}, "program": set(lte.OPERATIONS)}


def test_addition_is_two_numbers_of_length_digits():
  rng = np.random.default_rng(1)
  for length in (1, 3, 9):
    for _ in range(200):
      program = lte.generate(rng, "addition", length, nesting=3)
      a, b = re.fullmatch(r"print\((\d+)\+(\d+)\)", program.source).groups()
      assert len(a) == len(b) == length and int(program.target) == int(a) + int(b)
    assert len(program.source) == lte.max_source_length("addition", length, 1)


def test_answer_bound_is_reached_by_the_largest_values():
  # The largest sum of two 3-digit numbers has 4 digits; every bound leaves room for a sign.
  assert lte.max_answer_length("addition", 3, 1) == len(str(999 + 999))
  assert lte.max_answer_length("program", 2, 1) == 1 + len(str(99 + 8 * 99))  # v=99; 8 x (v+=99)


def test_encode_decode_round_trip():
  text = "a=12\nfor x in range(3):a-=(4 if 5<6 else 7)\nprint((a*2))@-8."
  assert lte.decode(lte.encode(text)) == text
  assert lte.PAD not in lte.encode(text) and lte.VOCAB_SIZE == len(lte.CHARACTERS) + 1 <= 128


# ---------------------------------------------------------------- curriculum

def test_mix_draws_every_level_uniformly_and_baseline_the_target():
  lengths, nestings = lte.curriculum_levels(np.random.default_rng(2), 30_000, "mix", 5, 3)
  counts = np.zeros((5, 3))
  np.add.at(counts, (lengths - 1, nestings - 1), 1)
  np.testing.assert_allclose(counts / 30_000, 1 / 15, atol=0.006)  # 5 sigma of a binomial
  lengths, nestings = lte.curriculum_levels(np.random.default_rng(2), 100, "baseline", 5, 3)
  assert set(lengths) == {5} and set(nestings) == {3}


@pytest.mark.parametrize("step,level", [(0, (1, 1)), (99, (1, 1)), (100, (2, 1)), (399, (4, 1)),
                                        (400, (1, 2)), (700, (4, 2)), (10_000, (4, 2))])
def test_combined_is_the_naive_level_plus_a_fifth_of_mix(step, level):
  lengths, nestings = lte.curriculum_levels(np.random.default_rng(step), 20_000, "combined", 4, 2,
                                            step=step, steps_per_level=100, mix_fraction=0.2)
  at_level = np.mean((lengths == level[0]) & (nestings == level[1]))
  assert abs(at_level - (0.8 + 0.2 / 8)) < 0.012
  assert lengths.min() == 1 and lengths.max() == 4 and nestings.max() == 2  # the mix part


# ---------------------------------------------------------------- the task

def _tiny_config(variant="rmc_addition", **data):
  c = lte_config.get_config(variant)
  c.batch_size = 16
  c.data.length, c.data.nesting = 2, 2
  c.data.test_examples, c.data.eval_batch_size = 64, 32
  c.data.update(data)
  c.model.mem_slots, c.model.num_heads, c.model.head_size = 2, 2, 8
  c.model.hidden_size, c.model.embed_size, c.model.mlp_sizes = 16, 8, (16,)
  return c


@pytest.mark.parametrize("task", ["addition", "program"])
def test_batches_decode_to_programs_that_python_agrees_with(task):
  """Each row: left padding, the source, go, the answer, end; Python prints that answer."""
  t = LearnToExecuteTask(_tiny_config(task=task, length=3))
  batch = t.train_batch(7)
  s = t.source_length
  lengths = set()
  for inputs, targets in zip(batch["inputs"], batch["targets"]):
    source = lte.decode(inputs[:s])
    assert np.all(inputs[:s - len(source)] == lte.PAD) and np.all(inputs[s - len(source):s] != lte.PAD)
    assert lte.decode(inputs[s:s + 1]) == lte.GO
    answer = lte.decode(targets)
    assert answer.endswith(lte.END) and answer.count(lte.END) == 1
    assert _run(source) == answer[:-1]
    # teacher forcing: the inputs after go are the answer (the longest one's end is only a target)
    fed = lte.decode(inputs[s + 1:])
    assert fed in (answer, answer[:-1]) and len(inputs) - s - 1 == len(targets) - 1
    lengths.add(max(len(n) for n in re.findall(r"\d+", source)))
  assert lengths == {1, 2, 3}  # the mix curriculum reaches every length


def test_train_batch_is_a_pure_function_of_seed_and_step():
  task = LearnToExecuteTask(_tiny_config())
  a, b, other = task.train_batch(5), task.train_batch(5), task.train_batch(6)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  assert not np.array_equal(a["inputs"], other["inputs"])
  c = _tiny_config()
  c.seed = 1
  assert not np.array_equal(LearnToExecuteTask(c).train_batch(5)["inputs"], a["inputs"])
  shards = [local_batch(task, 5, 16, s, 4) for s in range(4)]
  for key in a:
    np.testing.assert_array_equal(np.concatenate([s[key] for s in shards]), a[key])
  spec = task.batch_spec()
  assert {k: (v.shape, v.dtype) for k, v in spec.items()} == {k: (v.shape, v.dtype) for k, v in a.items()}
  # The test set: fixed, at the target level, from the held-out stream.
  evals = task.eval_batches()
  assert len(evals) == 2 and evals[0]["inputs"].shape == (32, task.sequence_length)
  jax.tree.map(np.testing.assert_array_equal, evals, LearnToExecuteTask(_tiny_config()).eval_batches())
  for inputs in evals[0]["inputs"]:
    assert [len(n) for n in re.findall(r"\d+", lte.decode(inputs[:task.source_length]))] == [2, 2]


@pytest.mark.parametrize("override,words", [
    (dict(task="sort"), "data.task"), (dict(curriculum="naive"), "data.curriculum"),
    (dict(length=0), "data.length"), (dict(nesting=11), "data.nesting"),
    (dict(steps_per_level=0), "steps_per_level"), (dict(mix_fraction=1.5), "mix_fraction"),
    (dict(eval_batch_size=30), "eval_batch_size")])
def test_config_errors(override, words):
  with pytest.raises(ConfigError, match=words):
    LearnToExecuteTask(_tiny_config(**override))


def test_model_config_errors_and_variants():
  for key, value in (("core", "gru"), ("embed_size", 0), ("mlp_sizes", (16, 0))):
    c = _tiny_config()
    c.model[key] = value
    with pytest.raises(ConfigError):
      LearnToExecuteTask(c)
  with pytest.raises(ConfigError, match="unknown variant"):
    load_config("configs/learning_to_execute.py:rmc_sorting")
  paper = load_config("configs/learning_to_execute.py:rmc_program_paper")
  assert (paper.batch_size, paper.data.task, paper.model.mlp_sizes) == (1600, "program", (256,) * 4)


# ---------------------------------------------------------------- the model

@pytest.mark.parametrize("core", ["rmc", "lstm"])
def test_seq2seq_equals_the_core_stepped_by_hand_and_ignores_left_padding(core):
  kwargs = dict(mem_slots=2, head_size=4, num_heads=2) if core == "rmc" else dict(hidden_size=8)
  model = rrnn.CharSeq2Seq(vocab_size=24, core=core, core_kwargs=kwargs, embed_size=6, mlp_sizes=(8,))
  tokens = np.random.default_rng(3).integers(1, 24, (3, 7)).astype(np.int32)
  padded = np.concatenate([np.zeros((3, 4), np.int32), tokens], axis=1)
  variables = model.init(jax.random.key(0), padded)
  params = nn.unbox(variables)["params"]
  cell = (rrnn.RelationalMemoryCore if core == "rmc" else rrnn.LSTMCore)(**kwargs)
  step = jax.jit(lambda state, x: cell.apply({"params": params["core"]["cell"]}, state, x))
  state, want = cell.initial_memory(3), []
  for t in range(7):
    state, out = step(state, params["embed"]["embedding"][tokens[:, t]])
    h = jax.nn.relu(out @ params["head_0"]["kernel"] + params["head_0"]["bias"])
    want.append(h @ params["logits"]["kernel"] + params["logits"]["bias"])
  got = model.apply(variables, padded)
  np.testing.assert_allclose(np.asarray(got[:, 4:]), np.stack(want, 1), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(np.asarray(got[:, 4:]), np.asarray(model.apply(variables, tokens)),
                             rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- through the trainer

def test_a_tiny_model_learns_addition_in_a_few_dozen_steps():
  from core.train import Trainer  # pylint: disable=g-import-not-at-top
  c = _tiny_config(length=2)
  c.optimizer.learning_rate, c.optimizer.schedule = 1e-2, "constant"
  trainer = Trainer(c, devices=jax.devices()[:1])
  _, history = trainer.run_steps(trainer.init_state(), range(40))
  losses = [float(m["loss"]) for m in history]
  assert np.mean(losses[:3]) > 3.0  # about ln(128) at the start
  assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses


@pytest.mark.parametrize("variant,mesh", [
    ("rmc_program", dict(data=4, fsdp=1, tensor=2, stage=1)),
    ("lstm_addition", dict(data=8, fsdp=1, tensor=1, stage=1)),
])
def test_sharded_training_equals_one_device(variant, mesh):
  """Two SGD steps and the test metrics on 8 fake devices equal one device's, and the host's."""
  from core.train import Trainer  # pylint: disable=g-import-not-at-top
  c = _tiny_config(variant, nesting=1)  # short sequences: float32 rounding grows with their length
  c.optimizer.name, c.optimizer.learning_rate, c.optimizer.clip_norm = "sgd", 0.05, 0.0

  def run(mesh_shape, devices):
    cfg = c.copy_and_resolve_references()
    cfg.mesh.update(mesh_shape)
    trainer = Trainer(cfg, devices=devices)
    state, history = trainer.run_steps(trainer.init_state(), range(2))
    return ([float(m["loss"]) for m in history], jax.device_get(state.params),
            trainer.evaluate(state, 2), trainer.task)

  one_losses, one_params, one_eval, task = run(dict(data=1, fsdp=1, tensor=1, stage=1),
                                               jax.devices()[:1])
  many_losses, many_params, many_eval, _ = run(mesh, jax.devices())
  np.testing.assert_allclose(many_losses, one_losses, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               many_params, one_params)
  assert set(one_eval) == set(many_eval) == {"loss", "char_accuracy", "answer_accuracy"}
  for name in one_eval:
    np.testing.assert_allclose(many_eval[name], one_eval[name], atol=1e-5, err_msg=name)
  # The metrics recomputed on the host, answer by answer, from the model's predicted characters.
  test, s = task.test_set, task.source_length
  logits = np.asarray(task.model.apply({"params": one_params}, test["inputs"]))[:, s:]
  chars = solved = total = nll = scored = 0
  for row_logits, target in zip(logits, test["targets"]):
    n = int(np.sum(target != lte.PAD))               # the answer's characters, then END
    assert lte.decode(target[n - 1:n]) == lte.END
    hits = row_logits[:n].argmax(-1) == target[:n]
    chars, total, solved = chars + hits[:-1].sum(), total + n - 1, solved + hits.all()
    z = row_logits[:n] - row_logits[:n].max(-1, keepdims=True)
    nll -= (z - np.log(np.exp(z).sum(-1, keepdims=True)))[np.arange(n), target[:n]].sum()
    scored += n
  np.testing.assert_allclose(one_eval["char_accuracy"], chars / total, rtol=1e-6)
  np.testing.assert_allclose(one_eval["answer_accuracy"], solved / len(logits), rtol=1e-6)
  np.testing.assert_allclose(one_eval["loss"], nll / scored, rtol=1e-5)

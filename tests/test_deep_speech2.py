"""Deep Speech 2: masked sequence-wise batch norm, CTC loss and decoders against brute force,
SortaGrad and length buckets, the spectrogram against scipy, 8 devices against one."""
import itertools
import math

import chex
import jax
import numpy as np
import optax
import pytest
from scipy import signal

from configs.deep_speech2 import get_config
from core.train import Trainer
from papers.deep_speech2 import data as speech
from papers.deep_speech2.decode import SPACE, CharNGram, greedy, prefix_beam_search
from papers.deep_speech2.model import DeepSpeech2
from papers.deep_speech2.task import SpeechTask, bucket_of, sortagrad_batches


def tiny_model():
  return DeepSpeech2(conv_channels=(4,), conv_kernels=((3, 5),), conv_strides=((2, 2),),
                     rnn_layers=1, rnn_features=8, vocab=speech.VOCAB)


def test_padding_a_batch_changes_neither_outputs_nor_batch_statistics():
  """Sequence-wise BN (section 3.2) masks padding: padding a batch further changes neither its
  outputs nor its batch statistics (means and variances over batch and valid time steps)."""
  rng = np.random.default_rng(0)
  lengths = np.array([17, 29, 40, 11])
  padded = np.zeros((4, 64, speech.NUM_BINS), np.float32)
  for i, n in enumerate(lengths):
    padded[i, :n] = rng.normal(size=(n, speech.NUM_BINS))
  model = tiny_model()
  variables = model.init(jax.random.key(0), padded[:1, :8], lengths[:1])

  @jax.jit
  def train_apply(x):
    return model.apply(variables, x, lengths, train=True, mutable=["batch_stats"])

  (out, out_len), state = train_apply(padded[:, :40])     # padded to the longest, 40
  (out2, _), state2 = train_apply(padded)                  # padded to 64
  chex.assert_trees_all_close(state, state2, atol=1e-5)
  assert not np.allclose(state["batch_stats"]["rnn0"]["bn"]["mean"], 0.0)
  for i, n in enumerate(np.asarray(out_len)):
    np.testing.assert_allclose(out[i, :n], out2[i, :n], atol=1e-4)


def ctc_forward_numpy(log_probs, labels, blank=0):
  """-log p(labels | x) by the CTC forward recursion (Graves et al. 2006), in probabilities."""
  probs = np.exp(log_probs)
  ext = [blank]
  for k in labels:
    ext += [k, blank]
  alpha = np.zeros(len(ext))
  alpha[0], alpha[1] = probs[0, blank], probs[0, ext[1]]
  for t in range(1, len(probs)):
    new = np.zeros_like(alpha)
    for s, k in enumerate(ext):
      total = alpha[s] + (alpha[s - 1] if s >= 1 else 0)
      if s >= 2 and k != blank and ext[s - 2] != k:
        total += alpha[s - 2]
      new[s] = total * probs[t, k]
    alpha = new
  return -math.log(alpha[-1] + alpha[-2])


def test_ctc_loss_with_padding_equals_a_numpy_forward_recursion():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(2, 9, 5))
  log_probs = jax.nn.log_softmax(logits)
  labels = [[1, 1, 3], [2, 4, 4, 2]]      # repeats need a blank between them
  lengths = [7, 9]
  label_array = np.zeros((2, 6), np.int32)
  for i, l in enumerate(labels):
    label_array[i, :len(l)] = l
  logit_pad = (np.arange(9)[None] >= np.array(lengths)[:, None]).astype(np.float32)
  label_pad = (np.arange(6)[None] >= np.array([3, 4])[:, None]).astype(np.float32)
  ours = jax.jit(optax.ctc_loss)(log_probs, logit_pad, label_array, label_pad)
  want = [ctc_forward_numpy(np.asarray(log_probs[i, :lengths[i]]), labels[i]) for i in range(2)]
  np.testing.assert_allclose(ours, want, rtol=1e-5)


def collapse(path, blank=0):
  out = [k for i, k in enumerate(path) if k != blank and (i == 0 or k != path[i - 1])]
  return tuple(out)


def test_greedy_decoding_equals_collapsing_the_best_path():
  log_probs = np.log(np.random.default_rng(2).dirichlet(np.ones(6) * 0.3, size=30))
  best = log_probs.argmax(-1)
  assert greedy(log_probs) == list(collapse(list(best)))
  assert greedy(np.log(np.eye(4)[[1, 1, 0, 1, 2, 2, 0, 0, 3]] * 0.97 + 0.01)) == [1, 1, 2, 3]


def test_prefix_beam_search_equals_brute_force_over_all_alignments():
  """With a beam wide enough to keep every prefix, each transcription's score is the sum over
  all of its alignments (brute force over the 3^5 paths), plus alpha log p_lm + beta words."""
  rng = np.random.default_rng(3)
  vocab = [0, speech.ALPHABET.index("a") + 1, SPACE]
  frames = np.log(rng.dirichlet(np.ones(3), size=5))
  log_probs = np.full((5, speech.VOCAB), -1e9)
  log_probs[:, vocab] = frames
  lm = CharNGram(["a a aa", "aa a", "a"], order=3)
  alpha, beta = 0.7, 0.4
  mass = {}
  for path in itertools.product(range(3), repeat=5):
    y = collapse([vocab[k] for k in path])
    mass[y] = mass.get(y, 0.0) + math.exp(sum(frames[t, k] for t, k in enumerate(path)))

  def score(y):
    text = speech.decode_labels(y)
    words = len(text.split())
    return math.log(mass[y]) + alpha * lm.sentence_log_prob(text) + beta * words

  ranked = prefix_beam_search(log_probs, beam=100, lm=lm, alpha=alpha, beta=beta, prune=-1e6)
  assert {y for y, _ in ranked} == set(mass)
  for y, q in ranked:
    assert q == pytest.approx(score(y), abs=1e-9)
  assert ranked[0][0] == max(mass, key=score)


def test_char_ngram_probabilities_sum_to_one():
  lm = CharNGram(["the cat", "that hat", "it's"], order=4)
  for history in ("", "th", "the c", "zz"):
    assert sum(lm.prob(history, c) for c in lm.symbols) == pytest.approx(1.0)


def test_sortagrad_first_epoch_is_sorted_then_shuffled_within_buckets():
  lengths = np.random.default_rng(4).integers(50, 400, size=100)
  buckets = (100, 200, 400)
  first = sortagrad_batches(lengths, buckets, 8, seed=0, epoch=0)
  assert len(first) == 12
  flat = np.concatenate(first)
  assert np.all(np.diff(lengths[flat]) >= 0) and len(set(flat)) == 96
  second = sortagrad_batches(lengths, buckets, 8, seed=0, epoch=1)
  assert all(len(set(bucket_of(lengths[b], buckets))) == 1 for b in second)   # one bucket each
  assert not np.all(np.diff(lengths[np.concatenate(second)]) >= 0)
  again = sortagrad_batches(lengths, buckets, 8, seed=0, epoch=1)
  assert all(np.array_equal(a, b) for a, b in zip(second, again))            # pure in (seed, epoch)
  assert not all(np.array_equal(a, b) for a, b in zip(second, sortagrad_batches(lengths, buckets, 8, 0, 2)))


def test_log_spectrogram_equals_scipy_stft():
  x = np.random.default_rng(5).normal(size=16_000).astype(np.float32)
  ours = speech.log_spectrogram(x)
  _, _, z = signal.stft(x, window=np.hamming(320), nperseg=320, noverlap=160, boundary=None,
                        padded=False, scaling="spectrum")
  power = np.abs(z.T * np.hamming(320).sum()) ** 2     # undo scipy's window-sum scaling
  logp = np.log(power + 1e-10)
  want = (logp - logp.mean(0)) / (logp.std(0) + 1e-5)
  assert ours.shape == (99, 161)
  np.testing.assert_allclose(ours, want, atol=2e-3)


def fake_task_data(task, n=48, seed=6):
  """Spectrogram-like random utterances in place of synthesised speech (no espeak-ng)."""
  rng = np.random.default_rng(seed)
  words = ["the", "lord", "said", "king", "and", "thou"]
  def split(count):
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 4))) for _ in range(count)]
    feats = [rng.normal(size=(rng.integers(2 * len(t) + 8, 120), speech.NUM_BINS)).astype(np.float32)
             for t in texts]
    return {"features": feats, "texts": texts}
  task.train_data, task.test_data = split(n), split(16)


def tiny_config(**overrides):
  c = get_config()
  c.model.rnn_features = 8
  c.model.conv_channels = (4,)
  c.data.buckets = (80, 120)
  c.total_steps = 3
  for key, value in overrides.items():
    group, name = key.split(".")
    c[group][name] = value
  return c


def test_the_step_compiles_once_for_all_buckets_and_eval_once_per_bucket():
  """Bucketing bounds compilation: the train step sees one shape (the longest bucket) and
  branches over the buckets inside; eval batches come in at most one shape per bucket."""
  task = SpeechTask(tiny_config())
  fake_task_data(task)
  train_shapes = {task.train_batch(s)["features"].shape for s in range(30)}
  assert train_shapes == {(8, 120, speech.NUM_BINS)}
  used = {int(task.train_batch(s)["bucket"][0]) for s in range(30)}
  assert used == {0, 1}
  eval_shapes = {b["features"].shape[1] for b in task.eval_batches()}
  assert eval_shapes <= set(task.buckets)
  variables = task.init(jax.random.key(0))
  fn = jax.jit(lambda v, b: task.loss(v, b, jax.random.key(0), train=False)[0])
  for bucket in (0, 1):   # one batch of each bucket: the same executable
    step = next(s for s in range(30) if task.train_batch(s)["bucket"][0] == bucket)
    assert np.isfinite(fn(variables, task.train_batch(step)))
  assert fn._cache_size() == 1


def test_data_parallel_training_on_8_devices_equals_one_device():
  results = []
  for devices in (jax.devices()[:1], jax.devices()[:8]):
    trainer = Trainer(tiny_config(**{"data.buckets": (120,)}), devices=devices)
    fake_task_data(trainer.task)
    state = trainer.init_state(jax.random.key(0))
    state, history = trainer.run_steps(state, range(2))
    results.append((jax.device_get(state.params), jax.device_get(state.model_state),
                    [h["loss"] for h in history]))
  chex.assert_trees_all_close(results[0], results[1], rtol=2e-4, atol=2e-5)

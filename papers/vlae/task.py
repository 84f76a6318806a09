"""VLAE on dynamically binarized images: train on the negative ELBO, score the test NLL.

Training batch k: positions [kB, (k+1)B) of a stream that visits the training images in a new
seeded order every epoch, each image binarized by a generator keyed by (seed, k, image index)
(papers/vlae/data.py), so batch k is a pure function of (seed, k). The loss is the negative
ELBO in nats per image, E_q[-log p(x|z)] + E_q[log q(z|x) - log p(z)], one z ~ q(z|x) per image;
with `free_bits` > 0 the KL term is replaced by max(free_bits, batch-mean KL) (Kingma et al.
2016's free bits, over the whole code as one group) so that the code is used from the start.

Evaluation (sums over the test split, binarized once): for each test image, K =
`data.importance_samples` draws z_k ~ q(z|x), and
  nll      = -log (1/K sum_k p(x, z_k) / q(z_k|x))   (importance-sampled, Burda et al. 2016)
  neg_elbo = -(1/K) sum_k log p(x, z_k) / q(z_k|x)
  kl       = (1/K) sum_k log q(z_k|x) - log p(z_k)    (nats the code spends per image)
  recon    = -(1/K) sum_k log p(x|z_k)
all in nats per image; kl_bits = kl / ln 2. The draws are keyed by the batch's first test index,
so an evaluation does not depend on the step or on how many devices run it.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from core import data as data_lib
from core.task import ConfigError, Task, ratio, spec
from core.validate import check_choice
from papers.vlae import data as vlae_data
from papers.vlae import model as vlae_model

EVAL_SEED = 7


def build_model(config, dtype=jnp.float32) -> vlae_model.VLAE:
  m = config.model
  check_choice(config, "model.prior", ("af", "gaussian"))
  return vlae_model.VLAE(latent_dim=m.latent_dim, prior=m.prior,
                         encoder_channels=tuple(m.encoder_channels), encoder_hidden=m.encoder_hidden,
                         decoder_channels=m.decoder_channels, first_kernel=m.first_kernel,
                         kernel=m.kernel, decoder_layers=m.decoder_layers,
                         flow_layers=m.flow_layers, flow_hidden=tuple(m.flow_hidden), dtype=dtype)


class VLAETask(Task):

  def __init__(self, config):
    super().__init__(config)
    d = config.data
    check_choice(config, "data.name", tuple(vlae_data.NAMES))
    if d.eval_batch_size % 8:
      raise ConfigError(f"data.eval_batch_size {d.eval_batch_size} must be a multiple of 8 rows "
                        f"(so an eval batch splits over up to 8 devices)")
    if d.importance_samples < 1:
      raise ConfigError(f"data.importance_samples must be >= 1, got {d.importance_samples}")
    if config.model.first_kernel % 2 == 0 or config.model.kernel % 2 == 0:
      raise ConfigError("model.first_kernel and model.kernel must be odd (a centred mask)")
    self.model = build_model(config, self.dtype)

  @functools.cached_property
  def _train(self):
    d = self.config.data
    train = vlae_data.load_split(d.name, "train")
    if d.train_examples:
      if d.train_examples > len(train["labels"]):
        raise ConfigError(f"data.train_examples {d.train_examples} exceeds the "
                          f"{len(train['labels'])} training images of {d.name}")
      train = {k: v[:d.train_examples] for k, v in train.items()}
    return train

  @functools.cached_property
  def _test_images(self):
    return vlae_data.binarized_test_images(self.config.data.name, self.config.data.test_examples)

  def check_data(self):
    self._train  # pylint: disable=pointless-statement  # raises DataMissingError

  # ---- model ----------------------------------------------------------------
  def init(self, rng):
    x = jnp.zeros((1, 28, 28, 1), jnp.float32)
    return self.model.init(rng, x, jax.random.key(0))

  def _terms(self, variables, images, rng):
    x = jnp.asarray(images, jnp.float32)
    return self.model.apply(variables, x, rng)

  def loss(self, variables, batch, rng, *, train):
    if rng is None:
      rng = jax.random.key(EVAL_SEED)
    log_px, log_q, log_pz = self._terms(variables, batch["images"], rng)
    recon = -log_px.mean()
    kl = (log_q - log_pz).mean()
    free_bits = float(self.config.get("free_bits", 0.0))
    kl_term = jnp.maximum(kl, free_bits) if (train and free_bits > 0) else kl
    metrics = {"neg_elbo": recon + kl, "recon": recon, "kl": kl, "kl_bits": kl / math.log(2)}
    return recon + kl_term, metrics, {}

  def eval_metrics(self, variables, batch):
    rng = jax.random.fold_in(jax.random.key(EVAL_SEED), batch["index"][0])
    x = jnp.asarray(batch["images"], jnp.float32)
    log_px_x, terms = vlae_model.importance_sampled_log_likelihood(
        lambda key: self.model.apply(variables, x, key), rng, self.config.data.importance_samples)
    log_px, log_q, log_pz = terms  # each (K, rows)
    w = batch["weight"]
    rows = w.sum()
    per_row = {
        "nll": -log_px_x,
        "neg_elbo": -(log_px + log_pz - log_q).mean(0),
        "kl": (log_q - log_pz).mean(0),
        "recon": -log_px.mean(0),
    }
    out = {name: ratio((v * w).sum(), rows) for name, v in per_row.items()}
    out["loss"] = out["neg_elbo"]
    out["kl_bits"] = ratio((per_row["kl"] * w).sum() / math.log(2), rows)
    return out

  # ---- data -----------------------------------------------------------------
  def batch_spec(self):
    return {"images": spec((self.config.batch_size, 28, 28, 1), np.uint8)}

  def train_indices(self, step: int) -> np.ndarray:
    """Training-image indices of step's batch: positions [kB, (k+1)B) of the epoch stream."""
    return data_lib.epoch_batch_indices(len(self._train["labels"]), self.config.batch_size, step,
                                        self.config.seed)

  def train_batch(self, step):
    indices = self.train_indices(step)
    images = vlae_data.binarize(self._train["images"][indices], self.config.seed, step, indices)
    return {"images": images}

  def eval_batches(self):
    """The binarized test images in batches of eval_batch_size; padding rows have weight 0."""
    images = self._test_images
    size = self.config.data.eval_batch_size
    for start in range(0, len(images), size):
      chunk = images[start:start + size]
      pad = size - len(chunk)
      yield {"images": np.pad(chunk, ((0, pad), (0, 0), (0, 0), (0, 0))),
             "index": np.arange(start, start + size, dtype=np.int32),
             "weight": np.pad(np.ones(len(chunk), np.float32), (0, pad))}

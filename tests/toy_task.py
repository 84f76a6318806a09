"""Small tasks for trainer tests: a least-squares fit (exact, able to inject a NaN at a chosen
step) and a conv net with batch norm and dropout (model state, train/eval modes)."""
import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import optax

from configs.common import base_config
from core.task import Task, spec, step_rng


class LinearRegression(Task):

  def __init__(self, config):
    super().__init__(config)
    self.model = nn.Dense(1, kernel_init=nn.with_logical_partitioning(nn.initializers.normal(),
                                                                      ("embed", "mlp")))

  def init(self, rng):
    return self.model.init(rng, jnp.zeros((1, self.config.data.dim)))

  def batch_spec(self):
    b, d = self.config.batch_size, self.config.data.dim
    return {"x": spec((b, d), np.float32), "y": spec((b,), np.float32)}

  def loss(self, variables, batch, rng, *, train):
    pred, state = self.apply(variables, batch["x"], train=train, rng=rng)
    loss = jnp.mean((pred[:, 0] - batch["y"]) ** 2)
    return loss, {"mse": loss}, state

  def train_batch(self, step):
    rng = step_rng(self.config.seed, step)
    x = rng.normal(size=(self.config.batch_size, self.config.data.dim)).astype(np.float32)
    y = (x @ np.arange(1, self.config.data.dim + 1) + 0.5).astype(np.float32)
    if step == self.config.data.nan_at_step:
      y[0] = np.nan
    return {"x": x, "y": y}


def get_config(arg=None):
  c = base_config()
  c.task = "tests.toy_task:LinearRegression"
  c.total_steps = 20
  c.batch_size = 16
  c.log_every = 1
  c.eval_every = 1000
  c.checkpoint_every = 5
  c.peak_flops = 1e9
  c.data.dim = 4
  c.data.nan_at_step = -1
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.05
  return c


class ConvNet(nn.Module):
  """conv -> batch norm -> relu -> dropout -> dense: every kind of train/eval difference."""
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, *, train: bool):
    # No bias before batch norm: its gradient is exactly zero, and Adam would amplify rounding noise.
    x = nn.Conv(8, (3, 3), use_bias=False, kernel_init=nn.with_logical_partitioning(
        nn.initializers.lecun_normal(), (None, None, None, "mlp")))(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    x = nn.relu(x).mean(axis=(1, 2))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(3, kernel_init=nn.with_logical_partitioning(
        nn.initializers.lecun_normal(), ("mlp", "vocab")))(x)


class BatchNormClassifier(Task):
  """Three classes of 8x8 images told apart by their mean brightness."""
  model_state = ("batch_stats",)

  def __init__(self, config):
    super().__init__(config)
    self.model = ConvNet(dropout=config.model.dropout)

  def init(self, rng):
    return self.model.init(rng, jnp.zeros((1, 8, 8, 1)), train=False)

  def batch_spec(self):
    b = self.config.batch_size
    return {"images": spec((b, 8, 8, 1), np.float32), "labels": spec((b,), np.int32)}

  def _examples(self, rng, n):
    labels = rng.integers(0, 3, n).astype(np.int32)
    images = rng.normal(size=(n, 8, 8, 1)) + 2.0 * labels[:, None, None, None]
    return {"images": images.astype(np.float32), "labels": labels}

  def loss(self, variables, batch, rng, *, train):
    logits, state = self.apply(variables, batch["images"], train=train, rng=rng)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"]).mean()
    return loss, {"accuracy": (logits.argmax(-1) == batch["labels"]).mean()}, state

  def train_batch(self, step):
    return self._examples(step_rng(self.config.seed, step), self.config.batch_size)

  def eval_batches(self):
    from core.task import heldout_rng  # pylint: disable=g-import-not-at-top
    return [self._examples(heldout_rng(self.config.seed, i), self.config.batch_size) for i in range(2)]


def get_batchnorm_config(dropout: float = 0.0):
  c = get_config()
  c.task = "tests.toy_task:BatchNormClassifier"
  c.model.dropout = dropout
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-2
  return c

"""A least-squares task for trainer tests: small, exact, and able to inject a NaN at a chosen step."""
import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from configs.common import base_config
from core.task import Task, shard_rows, step_rng


class LinearRegression(Task):

  def init_params(self, rng):
    dense = nn.Dense(1, kernel_init=nn.with_logical_partitioning(nn.initializers.normal(), ("embed", "mlp")))
    self.model = dense
    return dense.init(rng, jnp.zeros((1, self.config.data.dim)))["params"]

  def loss(self, params, batch, rng):
    pred = nn.Dense(1).apply({"params": params}, batch["x"])[:, 0]
    loss = jnp.mean((pred - batch["y"]) ** 2)
    return loss, {"mse": loss}

  def train_batch(self, step, shard=0, num_shards=1):
    rng = step_rng(self.config.seed, step)
    x = rng.normal(size=(self.config.batch_size, self.config.data.dim)).astype(np.float32)
    y = (x @ np.arange(1, self.config.data.dim + 1) + 0.5).astype(np.float32)
    if step == self.config.data.nan_at_step:
      y[0] = np.nan
    return shard_rows({"x": x, "y": y}, shard, num_shards)


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

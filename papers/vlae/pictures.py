"""Samples and reconstructions of a trained VLAE (the paper's Figure 1 and 2 kind of picture).

  python -m papers.vlae.pictures --config configs/vlae.py:fashion_af \\
      --workdir runs/vlae/fashion_af --out papers/vlae/fashion_af.png

Reads the workdir's newest checkpoint and draws, as black-on-white binary images:
  row 1      8 test images (binarized as in evaluation);
  rows 2-3   two decoder samples each, given z ~ q(z|x) of the image above: what the code
             keeps (global shape, class) is shared with the image, what the decoder adds
             (local stroke and texture detail) is drawn afresh;
  row 4      8 samples from the prior: z = f^-1(eps), then the decoder.
Decoder sampling is ancestral: one PixelCNN pass per pixel, in raster order.
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from core.config import load_config
from core.train import restore_latest
from papers.vlae.task import VLAETask

COLUMNS = 8


def sample_images(model, variables, z, rng, shape=(28, 28)):
  """x ~ p(x|z), one pixel at a time (the logits of pixel i depend on pixels before i only)."""
  height, width = shape
  x = jnp.zeros((z.shape[0], height, width, 1), jnp.float32)
  uniforms = jax.random.uniform(rng, x.shape)

  def body(i, x):
    r, c = i // width, i % width
    logits = model.apply(variables, x, z, method=model.decode_logits)
    pixel = (uniforms[:, r, c, 0] < jax.nn.sigmoid(logits[:, r, c, 0])).astype(jnp.float32)
    return x.at[:, r, c, 0].set(pixel)

  return jax.lax.fori_loop(0, height * width, body, x)


def draw(task: VLAETask, variables, seed: int = 0) -> np.ndarray:
  """(4 rows, 8 columns) of images as one array (4, 8, 28, 28)."""
  model = task.model
  images = jnp.asarray(task._test_images[:COLUMNS], jnp.float32)  # pylint: disable=protected-access
  k_q, k_prior, k_pix = jax.random.split(jax.random.key(seed), 3)

  @jax.jit
  def run(variables):
    mean, log_std = model.apply(variables, images, method=model.encode)
    z_post = jnp.concatenate([mean + jnp.exp(log_std) * jax.random.normal(k, mean.shape)
                              for k in jax.random.split(k_q, 2)])
    eps = jax.random.normal(k_prior, (COLUMNS, mean.shape[-1]))
    z_prior = model.apply(variables, eps, method=model.prior_sample)
    return sample_images(model, variables, jnp.concatenate([z_post, z_prior]), k_pix)

  samples = np.asarray(run(variables))[..., 0].reshape(3, COLUMNS, 28, 28)
  return np.concatenate([np.asarray(images)[None, ..., 0], samples])


def save(grid: np.ndarray, path: str, title: str):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  labels = ("test image", "sample | z(x)", "sample | z(x)", "prior sample")
  fig, axes = plt.subplots(4, COLUMNS, figsize=(COLUMNS * 0.9, 4 * 0.95))
  for r in range(4):
    for c in range(COLUMNS):
      ax = axes[r, c]
      ax.imshow(1 - grid[r, c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if c == 0:
        ax.set_ylabel(labels[r], fontsize=6)
  fig.suptitle(title, fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True, help="configs/vlae.py:<variant>")
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--out", required=True, help="PNG path")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  config = load_config(args.config)
  trainer, state, step = restore_latest(config, args.workdir)
  with trainer.context():
    grid = draw(trainer.task, jax.device_get(state.variables()), args.seed)
  save(grid, args.out, f"{args.config.split(':')[-1]} after {step} steps: test images, decoder "
                       f"samples given their code, prior samples")
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()

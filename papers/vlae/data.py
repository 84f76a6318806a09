"""Binary image data for the VLAE: pixel probabilities in memory, binarized when read.

- "fashion_mnist": Fashion-MNIST through core.image_data (Debian's dataset-fashion-mnist);
- "digits": OpenCV's handwritten digits (digits.png of Debian's opencv-doc): 5,000 images of
  20x20, 500 per class, zero-padded to 28x28; every fifth image (index % 5 == 4) is the
  test split, so 4,000 train and 1,000 test images, 100 of each class;
- "binarized_mnist": the statically binarized MNIST of Larochelle & Murray (2011), the
  paper's Table 1 set, through `tfds.data_source` (needs internet once).

Images stay uint8 in memory (0/255 for binarized_mnist); `binarize(images, seed, step, indices)`
draws image `indices[i]` of training step `step` as Bernoulli(pixel / 255) from a generator keyed
by (seed, step, index) (dynamic binarization, as
Salakhutdinov & Murray 2008), so a resumed run sees the same bits; the test split is binarized
once, with `TEST_BINARIZATION_SEED`.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from core import image_data
from core.task import ConfigError, DataMissingError

NAMES = ("fashion_mnist", "digits", "binarized_mnist")
OPENCV_DOC_INSTALL = "sudo apt-get install -y opencv-doc"
TEST_BINARIZATION_SEED = 20170101  # one fixed draw of the test images
IMAGE_SIZE = 28


def digits_png_path() -> str:
  """Where Debian's opencv-doc puts digits.png ($OPENCV_DIGITS_PNG overrides it)."""
  return os.environ.get("OPENCV_DIGITS_PNG", "/usr/share/doc/opencv-doc/examples/data/digits.png")


def read_digits() -> dict[str, np.ndarray]:
  """All 5,000 digits: images uint8 (5000, 20, 20), labels int32 (5000,), class by class."""
  path = digits_png_path()
  if not os.path.exists(path):
    raise DataMissingError(f"OpenCV digits not found ({path} is missing); install them with "
                           f"`{OPENCV_DOC_INSTALL}` (or set OPENCV_DIGITS_PNG to digits.png)")
  from PIL import Image  # pylint: disable=g-import-not-at-top  # (matplotlib's dependency)
  img = np.asarray(Image.open(path).convert("L"))
  if img.shape != (1000, 2000):
    raise DataMissingError(f"{path} is {img.shape}, not the 1000x2000 sheet of OpenCV's digits")
  # 50 rows of 100 digits each; rows 5k..5k+4 hold the digit k.
  images = img.reshape(50, 20, 100, 20).transpose(0, 2, 1, 3).reshape(5000, 20, 20)
  return {"images": images, "labels": np.repeat(np.arange(10), 500).astype(np.int32)}


def _digits_split(split: str) -> dict[str, np.ndarray]:
  d = read_digits()
  test = np.arange(5000) % 5 == 4
  keep = test if split == "test" else ~test
  pad = (IMAGE_SIZE - 20) // 2
  images = np.pad(d["images"][keep], ((0, 0), (pad, pad), (pad, pad)))
  return {"images": images[..., None], "labels": d["labels"][keep]}


def _binarized_mnist_split(split: str) -> dict[str, np.ndarray]:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    source = tfds.data_source("binarized_mnist", split=split)
  except Exception as e:  # pylint: disable=broad-except  # offline: download or GCS failed
    raise DataMissingError(
        f"binarized_mnist could not be loaded through tensorflow-datasets ({type(e).__name__}); it "
        f"needs internet once (`python -c \"import tensorflow_datasets as tfds; "
        f"tfds.data_source('binarized_mnist')\"`), or use data.name='fashion_mnist' offline") from None
  images = np.stack([source[i]["image"] for i in range(len(source))]).astype(np.uint8)
  return {"images": images * 255, "labels": np.zeros(len(images), np.int32)}


@functools.lru_cache(maxsize=4)
def load_split(name: str, split: str) -> dict[str, np.ndarray]:
  """{"images": uint8 (N, 28, 28, 1), "labels": int32 (N,)} of a split."""
  if name == "fashion_mnist":
    # The idx files that core.image_data's array_record set is written from: the same arrays,
    # read 4x faster than through the array_record set.
    d = image_data.fashion_mnist_idx(split)
  elif name == "digits":
    d = _digits_split(split)
  elif name == "binarized_mnist":
    d = _binarized_mnist_split(split)
  else:
    raise ConfigError(f"data.name must be one of {', '.join(NAMES)}, got {name!r}")
  return {"images": np.ascontiguousarray(d["images"]), "labels": d["labels"]}


def binarize(images: np.ndarray, seed: int, step: int, indices) -> np.ndarray:
  """Bernoulli(images[i] / 255) as uint8 0/1, image i drawn from a generator keyed by
  (seed, step, indices[i])."""
  out = np.empty(images.shape, np.uint8)
  for i, index in enumerate(indices):
    u = np.random.default_rng([seed, step, int(index)]).random(images.shape[1:], np.float32)
    out[i] = u * 255 < images[i]
  return out


def binarized_test_images(name: str, count: int = 0) -> np.ndarray:
  """The first `count` (0 = all) test images binarized once (uint8 0/1), the same on every run
  and machine: image i is keyed by (TEST_BINARIZATION_SEED, 0, i)."""
  images = load_split(name, "test")["images"]
  count = count or len(images)
  return binarize(images[:count], TEST_BINARIZATION_SEED, 0, np.arange(count))

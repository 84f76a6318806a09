"""Image classification data: Fashion-MNIST offline, CIFAR-10/100 through TFDS, and augmentation.

One function, `load_images(name, split)`, returns the whole split in memory as
{"images": uint8 (N, H, W, C), "labels": int32 (N,)}:

- "fashion_mnist": the idx files of Debian's `dataset-fashion-mnist` package (real data, no
  internet), written once into a TFDS array_record data set under core.datasets.data_root()
  (`python -m core.datasets fashion_mnist`, or on first use) and read back with grain;
- "cifar10", "cifar100": `tfds.data_source(name)` (needs internet or a prepared TFDS_DATA_DIR).

The small sets live in memory: a random-access read of one array_record example at a time is
far slower than a training step. `augment` is the CIFAR augmentation of He et al. 2015 (4-pixel
zero padding, a random crop back to size, a random horizontal flip), keyed by (seed, step, index)
so a resumed run draws the same crops.
"""
from __future__ import annotations

import functools
import gzip
import os

import numpy as np

from core.task import ConfigError, DataMissingError

FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_INSTALL = f"sudo apt-get install -y {FASHION_MNIST_PACKAGE}"
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")
TFDS_NAMES = ("cifar10", "cifar100")
NAMES = ("fashion_mnist",) + TFDS_NAMES
NUM_CLASSES = {"fashion_mnist": 10, "cifar10": 10, "cifar100": 100}
IMAGE_SHAPE = {"fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3), "cifar100": (32, 32, 3)}
# Per-channel mean and standard deviation of the training images (pixel values / 255), for the
# papers' mean subtraction: constants, so that a model traces without reading the data.
CHANNEL_STATS = {
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def fashion_mnist_idx_dir() -> str:
  """Where the Debian package puts the idx files ($FASHION_MNIST_DIR overrides it)."""
  return os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def read_idx(path: str) -> np.ndarray:
  """An idx(.gz) file: two zero bytes, a type byte (0x08 = uint8), the number of dims, then
  each dim as a big-endian uint32, then the data."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    raw = f.read()
  if raw[:2] != b"\0\0" or raw[2] != 0x08:
    raise ValueError(f"{path} is not a uint8 idx file (header {raw[:4]!r})")
  ndim = raw[3]
  dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
  return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist_idx(split: str) -> dict[str, np.ndarray]:
  """The split parsed from the idx files: images (N, 28, 28, 1) uint8, labels (N,) int32."""
  if split not in FASHION_MNIST_FILES:
    raise ConfigError(f"Fashion-MNIST has splits {list(FASHION_MNIST_FILES)}, not {split!r}")
  paths = [os.path.join(fashion_mnist_idx_dir(), f) for f in FASHION_MNIST_FILES[split]]
  missing = [p for p in paths if not os.path.exists(p)]
  if missing:
    raise DataMissingError(f"Fashion-MNIST not found ({missing[0]} is missing); install it with "
                           f"`{FASHION_MNIST_INSTALL}` (or set FASHION_MNIST_DIR to its idx files)")
  images, labels = (read_idx(p) for p in paths)
  return {"images": images[..., None], "labels": labels.astype(np.int32)}


@functools.cache
def _fashion_mnist_builder_class():
  """A TFDS builder that writes the idx files as array_record (Tensor features: no TensorFlow);
  defined once, as TFDS registers every builder class by name."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  class FashionMnistIdx(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
          "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
          "label": tfds.features.ClassLabel(names=FASHION_MNIST_CLASSES),
          # TFDS shuffles examples on write; the idx position restores the file order.
          "index": tfds.features.Scalar(dtype=np.int64),
      }), supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {split: self._generate_examples(split) for split in FASHION_MNIST_FILES}

    def _generate_examples(self, split):
      arrays = fashion_mnist_idx(split)
      for i, (image, label) in enumerate(zip(arrays["images"], arrays["labels"])):
        yield i, {"image": image, "label": int(label), "index": i}

  return FashionMnistIdx


def prepare_fashion_mnist(data_dir: str | None = None):
  """Writes Fashion-MNIST once as a TFDS array_record data set (~8 s); returns its builder."""
  from core.datasets import data_root  # pylint: disable=g-import-not-at-top
  builder = _fashion_mnist_builder_class()(data_dir=data_dir or os.path.join(data_root(), "tfds"),
                                           file_format="array_record")
  if not builder.is_prepared():
    fashion_mnist_idx("train")  # DataMissingError with the install command before TFDS starts
    builder.download_and_prepare()
  return builder


def read_source(source, batch: int = 10_000) -> dict[str, np.ndarray]:
  """A TFDS data source's {"image", "label"} read into memory with a grain pipeline (in the
  order of its "index" feature where it has one)."""
  import grain  # pylint: disable=g-import-not-at-top

  def read(k):  # one __getitems__ call a chunk: 30x faster than record by record
    keys = list(range(k * batch, min((k + 1) * batch, len(source))))
    try:
      examples = source.__getitems__(keys)
    except TypeError:  # tfds.testing.mock_data's sources take no batch of keys
      examples = [source[i] for i in keys]
    return {key: np.stack([e[key] for e in examples]) for key in examples[0]}

  parts = list(grain.MapDataset.range(-(-len(source) // batch)).map(read))
  images = np.concatenate([p["image"] for p in parts]).astype(np.uint8)
  labels = np.concatenate([p["label"] for p in parts]).astype(np.int32)
  if "index" in parts[0]:
    order = np.argsort(np.concatenate([p["index"] for p in parts]), kind="stable")
    images, labels = images[order], labels[order]
  return {"images": images, "labels": labels}


def load_images(name: str, split: str, data_dir: str | None = None) -> dict[str, np.ndarray]:
  """The whole split of `name` in memory: images uint8 (N, H, W, C), labels int32 (N,)."""
  if name == "fashion_mnist":
    source = prepare_fashion_mnist(data_dir).as_data_source(split=split)
  elif name in TFDS_NAMES:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    try:
      source = tfds.data_source(name, split=split, data_dir=data_dir)
    except Exception as e:  # pylint: disable=broad-except  # offline: download or GCS failed
      raise DataMissingError(
          f"{name} could not be loaded through tensorflow-datasets ({type(e).__name__}); it needs "
          f"internet once (`python -c \"import tensorflow_datasets as tfds; "
          f"tfds.data_source('{name}')\"`), or use data.name='fashion_mnist' offline") from None
  else:
    raise ConfigError(f"unknown image data set {name!r}; use one of {', '.join(NAMES)}")
  return read_source(source)


def pad_crop_flip(image: np.ndarray, dy: int, dx: int, flip: bool, pad: int) -> np.ndarray:
  """`image` zero-padded by `pad` pixels, cropped back to size at offset (dy, dx), maybe mirrored."""
  h, w = image.shape[:2]
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  out = padded[dy:dy + h, dx:dx + w]
  return out[:, ::-1] if flip else out


def augment(images: np.ndarray, seed: int, step: int, indices: np.ndarray, pad: int = 4) -> np.ndarray:
  """He et al. 2015 (section 4.2) augmentation; example `indices[i]` at `step` draws its crop
  offset and flip from its own generator keyed by (seed, step, index)."""
  out = np.empty_like(images)
  for i, index in enumerate(indices):
    rng = np.random.default_rng([seed, step, int(index)])
    dy, dx = rng.integers(0, 2 * pad + 1, size=2)
    out[i] = pad_crop_flip(images[i], int(dy), int(dx), bool(rng.integers(2)), pad)
  return out

"""core.image_data: idx parsing, the TFDS/array_record round trip, the CIFAR path, augmentation."""
import gzip
import os
import struct

import numpy as np
import pytest

from core import image_data
from core.task import DataMissingError


def numpy_idx_reader(path):
  """An independent idx reader: struct for the header, numpy for the body."""
  with gzip.open(path, "rb") as f:
    zero, dtype, ndim = struct.unpack(">HBB", f.read(4))
    assert zero == 0 and dtype == 0x08
    dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
    return np.frombuffer(f.read(), np.uint8).reshape(dims)


def write_idx(path, array):
  with gzip.open(path, "wb") as f:
    f.write(struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape))
    f.write(np.ascontiguousarray(array, np.uint8).tobytes())


@pytest.fixture
def small_fashion_mnist(tmp_path, monkeypatch):
  """A 40 + 16 image idx set in the Debian package's file layout, as FASHION_MNIST_DIR."""
  rng = np.random.default_rng(0)
  arrays = {"train": (rng.integers(0, 256, (40, 28, 28)), rng.integers(0, 10, 40)),
            "test": (rng.integers(0, 256, (16, 28, 28)), rng.integers(0, 10, 16))}
  for split, (images, labels) in arrays.items():
    image_file, label_file = image_data.FASHION_MNIST_FILES[split]
    write_idx(str(tmp_path / image_file), images)
    write_idx(str(tmp_path / label_file), labels)
  monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))
  return arrays


def test_the_installed_idx_files_parse_as_a_plain_numpy_reader_reads_them():
  try:
    parsed = {split: image_data.fashion_mnist_idx(split) for split in ("train", "test")}
  except DataMissingError as e:
    pytest.skip(str(e))
  for split, n in (("train", 60_000), ("test", 10_000)):
    image_file, label_file = (os.path.join(image_data.fashion_mnist_idx_dir(), f)
                              for f in image_data.FASHION_MNIST_FILES[split])
    images, labels = numpy_idx_reader(image_file), numpy_idx_reader(label_file)
    assert parsed[split]["images"].shape == (n, 28, 28, 1) and parsed[split]["images"].dtype == np.uint8
    np.testing.assert_array_equal(parsed[split]["images"][..., 0], images)
    np.testing.assert_array_equal(parsed[split]["labels"], labels)
    # Fashion-MNIST is balanced: 6,000 / 1,000 images of each of the 10 classes.
    np.testing.assert_array_equal(np.bincount(labels), np.full(10, n // 10))
  pixels = numpy_idx_reader(os.path.join(image_data.fashion_mnist_idx_dir(),
                                         image_data.FASHION_MNIST_FILES["train"][0])) / 255.0
  np.testing.assert_allclose(image_data.CHANNEL_STATS["fashion_mnist"], ([pixels.mean()], [pixels.std()]),
                             atol=1e-4)


def test_fashion_mnist_round_trips_through_tfds_array_record_in_file_order(small_fashion_mnist, tmp_path):
  for split, (images, labels) in small_fashion_mnist.items():
    loaded = image_data.load_images("fashion_mnist", split, data_dir=str(tmp_path / "tfds"))
    assert loaded["images"].shape == (len(labels), 28, 28, 1) and loaded["images"].dtype == np.uint8
    np.testing.assert_array_equal(loaded["images"][..., 0], images)
    np.testing.assert_array_equal(loaded["labels"], labels)
  assert os.listdir(tmp_path / "tfds" / "fashion_mnist_idx" / "1.0.0")  # written once, on disk


def test_missing_fashion_mnist_names_the_install_command(tmp_path, monkeypatch):
  monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "absent"))
  with pytest.raises(DataMissingError, match="apt-get install -y dataset-fashion-mnist"):
    image_data.load_images("fashion_mnist", "train", data_dir=str(tmp_path / "tfds"))


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_loads_through_tfds_data_source_under_mock_data(name, classes):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  with tfds.testing.mock_data(num_examples=24):
    arrays = image_data.load_images(name, "train")
  assert arrays["images"].shape == (24, 32, 32, 3) and arrays["images"].dtype == np.uint8
  assert arrays["labels"].dtype == np.int32 and 0 <= arrays["labels"].min() <= arrays["labels"].max() < classes


def all_crops(image, pad=4):
  """Every image the augmentation may produce: 9 x 9 offsets of the zero-padded image, x 2 flips."""
  h, w, c = image.shape
  padded = np.zeros((h + 2 * pad, w + 2 * pad, c), image.dtype)
  padded[pad:pad + h, pad:pad + w] = image
  crops = {}
  for dy in range(2 * pad + 1):
    for dx in range(2 * pad + 1):
      crop = padded[dy:dy + h, dx:dx + w]
      crops[(dy, dx, False)] = crop
      crops[(dy, dx, True)] = crop[:, ::-1]
  return crops


def test_augmentation_is_a_padded_crop_or_its_mirror_keyed_by_seed_step_and_index():
  rng = np.random.default_rng(1)
  images = rng.integers(1, 256, (64, 12, 12, 3)).astype(np.uint8)
  indices = rng.permutation(1000)[:64]
  out = image_data.augment(images, seed=7, step=3, indices=indices)
  seen = set()
  for image, result in zip(images, out):
    matches = [key for key, crop in all_crops(image).items() if np.array_equal(crop, result)]
    assert len(matches) == 1
    seen.add(matches[0])
  assert len({(dy, dx) for dy, dx, _ in seen}) > 30 and {f for _, _, f in seen} == {False, True}
  # Determinism: the same (seed, step, index) gives the same image whatever else is in the batch.
  np.testing.assert_array_equal(image_data.augment(images[::-1], 7, 3, indices[::-1]), out[::-1])
  np.testing.assert_array_equal(image_data.augment(images[:5], 7, 3, indices[:5]), out[:5])
  assert not np.array_equal(image_data.augment(images, 7, 4, indices), out)
  assert not np.array_equal(image_data.augment(images, 8, 3, indices), out)

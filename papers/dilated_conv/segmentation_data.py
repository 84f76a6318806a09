"""Segmentation data: Fashion-MNIST canvases (offline) and Pascal VOC 2012 (a VOCdevkit folder).

Canvases: a `size` x `size` black image with 2-4 Fashion-MNIST items pasted at random places
and sizes (nearest-neighbour resize of the 28 x 28 item to a side drawn in [min_side,
max_side]); later items cover earlier ones. The label of a pixel is 1 + the class of the item
seen there where that item's resized intensity exceeds `threshold` (its foreground), else 0
(background): 11 classes. A canvas is a pure function of (seed, split, index), so a source of
them is random-access and a resumed run reads the same stream; train canvases paste items of
the training split, test canvases items of the test split.

Pascal VOC 2012 (21 classes, label 255 = "void", ignored): TFDS's `voc/2012` holds boxes only,
no segmentation masks, so this reads the extracted VOCtrainval_11-May-2012.tar (a VOCdevkit
folder): ImageSets/Segmentation/{train,val}.txt, JPEGImages/*.jpg, SegmentationClass/*.png.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from core.task import DataMissingError

SPLIT_IDS = {"train": 0, "test": 1}
VOC_CLASSES = 21
VOC_IGNORE = 255
VOC_MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics: the front end is an ImageNet VGG
VOC_STD = (0.229, 0.224, 0.225)
VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"


@dataclasses.dataclass(frozen=True)
class CanvasSpec:
  size: int = 64
  min_objects: int = 2
  max_objects: int = 4
  min_side: int = 16
  max_side: int = 40
  threshold: int = 32  # uint8 intensity above which a pasted pixel is the item's foreground


def resize_nearest(image: np.ndarray, side: int) -> np.ndarray:
  """Nearest-neighbour resize of a square (n, n) image to (side, side)."""
  rows = (np.arange(side) * image.shape[0]) // side
  return image[rows][:, rows]


def placements(spec: CanvasSpec, num_items: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
  """[(item index, top, left, side)] of one canvas, in paste order."""
  out = []
  for _ in range(int(rng.integers(spec.min_objects, spec.max_objects + 1))):
    side = int(rng.integers(spec.min_side, spec.max_side + 1))
    top, left = (int(v) for v in rng.integers(0, spec.size - side + 1, size=2))
    out.append((int(rng.integers(num_items)), top, left, side))
  return out


def render(spec: CanvasSpec, images: np.ndarray, labels: np.ndarray, placed) -> tuple[np.ndarray, np.ndarray]:
  """(image uint8 (size, size, 1), labels int32 (size, size)) of the given placements."""
  canvas = np.zeros((spec.size, spec.size), np.uint8)
  target = np.zeros((spec.size, spec.size), np.int32)
  for item, top, left, side in placed:
    patch = resize_nearest(images[item, :, :, 0], side)
    foreground = patch > spec.threshold
    window = (slice(top, top + side), slice(left, left + side))
    canvas[window] = np.where(foreground, patch, canvas[window])
    target[window] = np.where(foreground, labels[item] + 1, target[window])
  return canvas[..., None], target


class CanvasSource:
  """`length` canvases of one split, canvas i a pure function of (seed, split, i) (grain source)."""

  def __init__(self, items: dict, spec: CanvasSpec, seed: int, split: str, length: int):
    self.items, self.spec, self.seed, self.split, self.length = items, spec, seed, split, length

  def __len__(self) -> int:
    return self.length

  def placements(self, index: int):
    rng = np.random.default_rng([self.seed, SPLIT_IDS[self.split], int(index)])
    return placements(self.spec, len(self.items["labels"]), rng)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    image, target = render(self.spec, self.items["images"], self.items["labels"], self.placements(index))
    return {"images": image, "labels": target}


# ---- Pascal VOC 2012 ------------------------------------------------------------------------
def voc_root(voc_dir: str) -> str:
  """The VOC2012 folder inside `voc_dir` (a VOCdevkit folder, its parent, or VOC2012 itself)."""
  for root in (voc_dir, os.path.join(voc_dir, "VOC2012"), os.path.join(voc_dir, "VOCdevkit", "VOC2012")):
    if os.path.isdir(os.path.join(root, "SegmentationClass")):
      return root
  raise DataMissingError(f"no Pascal VOC 2012 segmentation data under data.voc_dir={voc_dir!r}: "
                         f"download {VOC_URL}, extract it (tar xf) and pass "
                         f"--config.data.voc_dir=<the folder holding VOCdevkit>")


def voc_ids(voc_dir: str, split: str) -> list[str]:
  path = os.path.join(voc_root(voc_dir), "ImageSets", "Segmentation", f"{split}.txt")
  with open(path, encoding="utf-8") as f:
    return [line.strip() for line in f if line.strip()]


def pad_or_crop(image: np.ndarray, target: np.ndarray, size: int, top: int, left: int):
  """The size x size window at (top, left) of the image padded with zeros (labels with 255) to
  at least size x size."""
  h, w = target.shape
  ph, pw = max(size - h, 0), max(size - w, 0)
  image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
  target = np.pad(target, ((0, ph), (0, pw)), constant_values=VOC_IGNORE)
  return image[top:top + size, left:left + size], target[top:top + size, left:left + size]


class VocSource:
  """VOC 2012 segmentation examples cropped (train: a random window keyed by (seed, index);
  val: the top-left window) to crop x crop, padded where the image is smaller."""

  def __init__(self, voc_dir: str, split: str, crop: int, seed: int, random_crop: bool):
    self.root, self.ids = voc_root(voc_dir), voc_ids(voc_dir, split)
    self.crop, self.seed, self.random_crop = crop, seed, random_crop

  def __len__(self) -> int:
    return len(self.ids)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    from PIL import Image  # pylint: disable=g-import-not-at-top
    name = self.ids[index]
    image = np.asarray(Image.open(os.path.join(self.root, "JPEGImages", f"{name}.jpg")).convert("RGB"))
    target = np.asarray(Image.open(os.path.join(self.root, "SegmentationClass", f"{name}.png"))).astype(np.int32)
    top = left = 0
    if self.random_crop:
      rng = np.random.default_rng([self.seed, int(index)])
      top = int(rng.integers(max(target.shape[0] - self.crop, 0) + 1))
      left = int(rng.integers(max(target.shape[1] - self.crop, 0) + 1))
    image, target = pad_or_crop(image, target, self.crop, top, left)
    return {"images": image.astype(np.uint8), "labels": target}

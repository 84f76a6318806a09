"""Sort-of-CLEVR (Santoro et al. 2017, section 3.2 and appendix D), rendered with numpy.

Each image holds 6 objects, one per colour (red, blue, green, orange, yellow, gray), each a
square or a circle chosen at random. Every image carries 10 non-relational and 10 relational
questions, encoded as the paper's 11-bit strings: bits 0-5 one-hot colour of the object asked
about, bits 6-7 one-hot question type (non-relational, relational), bits 8-10 one-hot subtype:

  non-relational  0 shape of the object     1 left or right of the image   2 top or bottom
  relational      0 shape of the closest    1 shape of the furthest        2 number of objects
                    object                    object                         with the same shape

A scene is a pure function of (seed, split, index): no files, and resuming a run replays it.
Test scenes come from `core.task.heldout_rng(seed, index)`, the held-out stream of every paper,
which no training step or training scene draws from.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from core.task import heldout_rng

COLORS = ("red", "blue", "green", "orange", "yellow", "gray")
RGB = np.array([(255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 128, 0), (255, 255, 0),
                (128, 128, 128)], np.uint8)
BACKGROUND = 255  # white
SHAPES = ("square", "circle")
ANSWERS = ("square", "circle", "left", "right", "top", "bottom", "1", "2", "3", "4", "5", "6")
NUM_ANSWERS = len(ANSWERS)
QUESTION_BITS = 11
NON_RELATIONAL, RELATIONAL = 0, 1
SUBTYPES = (("shape", "horizontal", "vertical"), ("closest", "furthest", "count"))
SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class Scene:
  centers: np.ndarray    # (6, 2) float (x, y) in pixels, object k has colour COLORS[k]
  shapes: np.ndarray     # (6,) int, index into SHAPES
  image: np.ndarray      # (size, size, 3) uint8
  questions: np.ndarray  # (20, 11) uint8: 10 non-relational, then 10 relational
  answers: np.ndarray    # (20,) int, index into ANSWERS
  kinds: np.ndarray      # (20,) int, 3 * type + subtype, in [0, 6)


def encode_question(color: int, qtype: int, subtype: int) -> np.ndarray:
  q = np.zeros(QUESTION_BITS, np.uint8)
  q[color] = 1
  q[6 + qtype] = 1
  q[8 + subtype] = 1
  return q


def answer(centers, shapes, color, qtype, subtype, image_size) -> int:
  """The answer index for one question about a scene, from object centres and shapes."""
  if qtype == NON_RELATIONAL:
    if subtype == 0:
      return int(shapes[color])
    # x for horizontal, y for vertical; image rows grow downwards, so small y is the top.
    first_half = centers[color, subtype - 1] < image_size / 2
    words = ("left", "right") if subtype == 1 else ("top", "bottom")
    return ANSWERS.index(words[0] if first_half else words[1])
  if subtype == 2:
    return ANSWERS.index(str(int(np.sum(shapes == shapes[color]))))
  distance = np.linalg.norm(centers - centers[color], axis=1)
  distance[color] = np.inf if subtype == 0 else -np.inf
  other = np.argmin(distance) if subtype == 0 else np.argmax(distance)
  return int(shapes[other])


def render(centers, shapes, image_size: int, object_size: int) -> np.ndarray:
  """Squares of side 2*object_size and circles of radius object_size on white."""
  image = np.full((image_size, image_size, 3), BACKGROUND, np.uint8)
  pixel = np.arange(image_size) + 0.5  # pixel centres
  dx = pixel[None, :] - centers[:, 0, None, None]
  dy = pixel[:, None] - centers[:, 1, None, None]
  square = (np.abs(dx) <= object_size) & (np.abs(dy) <= object_size)
  circle = dx ** 2 + dy ** 2 <= object_size ** 2
  for k in range(len(COLORS)):
    image[circle[k] if shapes[k] else square[k]] = RGB[k]
  return image


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
  """The generator of one scene: [seed, 0, index] for training, held-out for test."""
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  return np.random.default_rng([seed, 0, index]) if split == "train" else heldout_rng(seed, index)


def scene(seed: int, split: str, index: int, image_size: int = 75, object_size: int = 5,
          questions_per_type: int = 10) -> Scene:
  """The `index`-th scene of `split`, drawn from its own generator."""
  rng = scene_rng(seed, split, index)
  # Objects never overlap: centre distance >= the diagonal of two squares, plus a pixel.
  min_distance = 2 * np.sqrt(2) * object_size + 1
  centers = np.zeros((len(COLORS), 2))
  placed = attempts = 0
  while placed < len(COLORS):
    if attempts == 1000:  # boxed in by the first objects (small images only): start over
      placed = attempts = 0
    attempts += 1
    candidate = rng.uniform(object_size, image_size - object_size, size=2)
    if np.all(np.linalg.norm(centers[:placed] - candidate, axis=1) >= min_distance):
      centers[placed] = candidate
      placed += 1
  shapes = rng.integers(0, len(SHAPES), size=len(COLORS))

  questions, answers, kinds = [], [], []
  for qtype in (NON_RELATIONAL, RELATIONAL):
    colors = rng.integers(0, len(COLORS), size=questions_per_type)
    subtypes = rng.integers(0, 3, size=questions_per_type)
    for color, subtype in zip(colors, subtypes):
      questions.append(encode_question(color, qtype, subtype))
      answers.append(answer(centers, shapes, color, qtype, subtype, image_size))
      kinds.append(3 * qtype + subtype)
  return Scene(centers, shapes, render(centers, shapes, image_size, object_size),
               np.stack(questions), np.array(answers), np.array(kinds))


def describe(question: np.ndarray) -> str:
  """The question in words, for logs and plots."""
  color = COLORS[int(np.argmax(question[:6]))]
  qtype, subtype = int(np.argmax(question[6:8])), int(np.argmax(question[8:]))
  return {
      (0, 0): f"What is the shape of the {color} object?",
      (0, 1): f"Is the {color} object on the left or right of the image?",
      (0, 2): f"Is the {color} object on the top or bottom of the image?",
      (1, 0): f"What is the shape of the object closest to the {color} object?",
      (1, 1): f"What is the shape of the object furthest from the {color} object?",
      (1, 2): f"How many objects have the shape of the {color} object?",
  }[qtype, subtype]


def save_examples(path: str, seed: int = 0, count: int = 3, image_size: int = 75,
                  object_size: int = 5) -> None:
  """A PNG of `count` test scenes, each with one non-relational and one relational question."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, count, figsize=(3.2 * count, 4.2))
  for k, ax in enumerate(np.atleast_1d(axes)):
    s = scene(seed, "test", k, image_size, object_size)
    ax.imshow(s.image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    text = [f"{describe(s.questions[j])}\n-> {ANSWERS[s.answers[j]]}" for j in (0, 10)]
    ax.set_xlabel("\n".join(text), fontsize=6.5)
  fig.tight_layout()
  fig.savefig(path, dpi=90)


if __name__ == "__main__":
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description="Draw Sort-of-CLEVR test scenes with questions.")
  parser.add_argument("--out", default="sort_of_clevr.png")
  parser.add_argument("--image_size", type=int, default=75)
  parser.add_argument("--object_size", type=float, default=5)
  args = parser.parse_args()
  save_examples(args.out, image_size=args.image_size, object_size=args.object_size)

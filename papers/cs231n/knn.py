"""k-nearest-neighbour classification as in CS231n assignment 1 (knn.ipynb): k by 5-fold
cross-validation on the training images, then the test accuracy with that k.

  python -m papers.cs231n.knn --out runs/cs231n/knn [--data fashion_mnist] [--train_examples 0]
                              [--metric l2] [--folds 5]

Images are raw pixel vectors (values 0-255, as the course's). Writes <out>/knn.json: the best k,
the mean cross-validation accuracy of every k (and each fold's), the test accuracy with the best k
and with k = 1, and the number of training (reference) and test images used. Nothing is trained:
a kNN "model" is its training set. L2 distances are one matrix product per chunk of 500 queries;
L1 distances have no matrix product and are far slower: use a subset (--train_examples) for them.
On all 60,000 Fashion-MNIST training images the L2 run took 2 minutes of CPU time.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from core import image_data
from papers.cs231n import layers

KS = (1, 3, 5, 8, 10, 12, 15, 20, 50, 100)  # the assignment's k_choices


def run(data: str, train_examples: int, test_examples: int, metric: str, folds: int, ks=KS,
        chunk: int = 500) -> dict:
  train = image_data.load_images(data, "train")
  test = image_data.load_images(data, "test")
  n_train = train_examples or len(train["labels"])
  n_test = test_examples or len(test["labels"])
  x_train = train["images"][:n_train].reshape(n_train, -1).astype(np.float32)
  y_train = train["labels"][:n_train]
  x_test = test["images"][:n_test].reshape(n_test, -1).astype(np.float32)
  y_test = test["labels"][:n_test]
  classes = image_data.NUM_CLASSES[data]

  start = time.time()
  best_k, fold_accuracies = layers.cross_validate_k(x_train, y_train, ks, folds, metric, classes,
                                                    chunk)
  neighbours = layers.nearest_labels(x_test, x_train, y_train, max(best_k, 1), metric, chunk)
  accuracy = {k: float((layers.vote(neighbours, k, classes) == y_test).mean()) for k in {1, best_k}}
  return {
      "data": data, "metric": metric, "folds": folds,
      "train_examples": int(n_train), "test_examples": int(n_test),
      "k": int(best_k),
      "cv_accuracy": {str(k): float(np.mean(a)) for k, a in fold_accuracies.items()},
      "cv_fold_accuracy": {str(k): a for k, a in fold_accuracies.items()},
      "test_accuracy": accuracy[best_k],
      "test_accuracy_k1": accuracy[1],
      "seconds": round(time.time() - start, 1),
  }


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", required=True, help="directory for knn.json")
  parser.add_argument("--data", default="fashion_mnist", choices=image_data.NAMES)
  parser.add_argument("--train_examples", type=int, default=0, help="0 = all")
  parser.add_argument("--test_examples", type=int, default=0, help="0 = all")
  parser.add_argument("--metric", default="l2", choices=("l1", "l2"))
  parser.add_argument("--folds", type=int, default=5)
  args = parser.parse_args(argv)
  result = run(args.data, args.train_examples, args.test_examples, args.metric, args.folds,
               chunk=100 if args.metric == "l1" else 500)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "knn.json"), "w") as f:
    json.dump(result, f, indent=1)
  cv = ", ".join(f"k={k}: {a:.3f}" for k, a in result["cv_accuracy"].items())
  print(f"{args.data}, {args.metric}, {result['train_examples']} training images: cross-validation "
        f"({args.folds} folds) {cv}\nbest k = {result['k']}: test accuracy "
        f"{result['test_accuracy']:.4f} on {result['test_examples']} test images "
        f"(k = 1: {result['test_accuracy_k1']:.4f}); {result['seconds']} s")


if __name__ == "__main__":
  main()

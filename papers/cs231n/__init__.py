"""Stanford CS231n's assignment pipeline: kNN, SVM / softmax, two-layer net, batch norm, dropout,
a small convnet, saliency maps."""
from papers.cs231n.layers import (batch_norm, cross_validate_k, dropout, dropout_mask, l2_penalty,
                                  nearest_labels, pairwise_distances, softmax_loss, svm_loss, vote)
from papers.cs231n.model import KINDS, BatchNorm, Classifier, Dropout

"""AlexNet (Krizhevsky, Sutskever, Hinton 2012) and the paper's data augmentation (papers.alexnet.augment)."""
from papers.alexnet.model import SIZES, AlexNet, Model, local_response_norm

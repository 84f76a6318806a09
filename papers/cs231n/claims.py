"""The claims of papers/cs231n, as data for launch.reproduce (see core/claims.py).

Fashion-MNIST rows: our test accuracy (all 10,000 test images) beside the scikit-learn baselines
of Xiao, Rasul & Vollgraf 2017 (arXiv 1708.07747, Table 3: mean test accuracy of 5 runs, the
whole training set) and, for the convnet, the "2 Conv+pooling" row of the benchmark table in the
Fashion-MNIST GitHub README (a submitted result that its authors say they have not re-tested).
CIFAR-10 rows: the course's targets as the assignment notebooks state them (validation
accuracy; knn.ipynb: test accuracy with k = 1 on 5,000 training and 500 test images), answered
by the cifar10_* variants, which need internet (pod tier: not run here).
"""
from core.claims import Claim, Run

_CPU = "configs/cs231n.py:{}"
_FIGURES = "papers/cs231n"

RUNS = {
    "softmax_smoke": Run(_CPU.format("softmax"), tier="smoke",
                         overrides=("--config.total_steps=300", "--config.eval_every=300")),
    "knn": Run(tier="cpu", commands=(("papers.cs231n.knn", "--out", "{workdir}"),)),
    "softmax": Run(_CPU.format("softmax"), tier="cpu"),
    "svm": Run(_CPU.format("svm"), tier="cpu"),
    "two_layer": Run(_CPU.format("two_layer"), tier="cpu"),
    "convnet": Run(_CPU.format("convnet"), tier="cpu"),
    # Reads the runs above: the templates of the linear classifiers and the convnet's saliency.
    "figures": Run(tier="cpu", commands=(
        ("papers.cs231n.templates", "--workdirs", "{workdir}/../softmax", "{workdir}/../svm",
         "--out", f"{_FIGURES}/templates.png"),
        ("papers.cs231n.saliency", "--workdir", "{workdir}/../convnet",
         "--out", f"{_FIGURES}/saliency.png"))),
    "cifar10_knn": Run(tier="pod", commands=(("papers.cs231n.knn", "--data", "cifar10",
                                              "--out", "{workdir}"),)),
    **{f"cifar10_{m}": Run(_CPU.format(f"cifar10_{m}"), tier="pod")
       for m in ("svm", "softmax", "two_layer", "convnet")},
}

_PCT = "{:.1%}"
_TABLE3 = "Xiao et al. 2017, Table 3"

CLAIMS = (
    Claim(run="softmax_smoke", metric="test_accuracy", paper="84.2%",
          source=f"{_TABLE3} (LogisticRegression C=1)", target=0.842, tolerance=0.01, fmt=_PCT,
          what="softmax classifier, Fashion-MNIST, 300 steps: test accuracy"),
    # Fashion-MNIST (cpu tier).
    Claim(run="knn", file="knn.json", metric="test_accuracy", paper="84.9%",
          source=f"{_TABLE3} (KNeighbors, uniform, k=5, L2)", target=0.849, tolerance=0.01,
          fmt=_PCT, what="kNN (L2, k by 5-fold cross-validation), Fashion-MNIST: test accuracy"),
    Claim(run="svm", metric="test_accuracy", paper="83.6%",
          source=f"{_TABLE3} (LinearSVC hinge, C=1)", target=0.836, tolerance=0.01, fmt=_PCT,
          what="linear SVM (multiclass hinge), Fashion-MNIST: test accuracy"),
    Claim(run="softmax", metric="test_accuracy", paper="84.2%",
          source=f"{_TABLE3} (LogisticRegression C=1)", target=0.842, tolerance=0.01, fmt=_PCT,
          what="softmax classifier, Fashion-MNIST: test accuracy"),
    Claim(run="two_layer", metric="test_accuracy", paper="87.1%",
          source=f"{_TABLE3} (MLPClassifier, 100 relu units)", target=0.871, tolerance=0.01,
          fmt=_PCT, what="two-layer net (100 hidden units), Fashion-MNIST: test accuracy"),
    Claim(run="convnet", metric="test_accuracy", paper="91.6%",
          source="Fashion-MNIST GitHub benchmark table (2 Conv+pooling, submitted)", target=0.916,
          tolerance=0.01, fmt=_PCT,
          what="convnet (2 x conv-bn-relu-pool, batch norm, dropout), Fashion-MNIST: test accuracy"),
    # CIFAR-10 (pod tier: the data needs internet).
    Claim(run="cifar10_knn", file="knn.json", metric="test_accuracy", paper="about 27%",
          source="CS231n assignment 1, knn.ipynb (k=1)", target=0.27, fmt=_PCT,
          what="kNN, CIFAR-10: test accuracy"),
    Claim(run="cifar10_svm", metric="test_accuracy", paper="about 39% (val.)",
          source="CS231n assignment 1, svm.ipynb", target=0.39, fmt=_PCT,
          what="linear SVM, CIFAR-10: test accuracy"),
    Claim(run="cifar10_softmax", metric="test_accuracy", paper="over 35% (val.)",
          source="CS231n assignment 1, softmax.ipynb", target=0.35, fmt=_PCT,
          what="softmax classifier, CIFAR-10: test accuracy"),
    Claim(run="cifar10_two_layer", metric="test_accuracy", paper="over 48% (val.)",
          source="CS231n assignment 1, two_layer_net.ipynb", target=0.48, fmt=_PCT,
          what="two-layer net, CIFAR-10: test accuracy"),
    Claim(run="cifar10_convnet", metric="test_accuracy", paper="at least 70% (val.)",
          source="CS231n assignment 2, PyTorch.ipynb", target=0.70, fmt=_PCT,
          what="convnet, CIFAR-10: test accuracy"),
)

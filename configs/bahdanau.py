"""Bahdanau, Cho and Bengio (2015): RNNsearch vs RNNencdec, English -> Spanish on the Bible.

Variants (after ':'):
  rnnsearch        (default) a tiny RNNsearch (hidden 16) for tests: 20 steps on 8 devices
  rnnencdec        the same size, RNNencdec (fixed context from the encoder's last state)
  rnnsearch_cpu    CPU size: embeddings 96, GRUs 192 (bidirectional encoder), alignment 192,
                   maxout 96, 4,000-piece vocabularies, batch 32, verses up to 50 words,
                   1,500 steps (1.7 epochs of the 27,950 training pairs)
  rnnencdec_cpu    the same size and budget, RNNencdec
  rnnsearch_paper  the paper's RNNsearch-50 (appendix A, B): 620-d embeddings, 1000 GRU units,
                   alignment 1000, maxout 500, 30,000-piece vocabularies, Adadelta (eps 1e-6,
                   rho 0.95), batch 80, beam 12, sentences up to 50 words, on WMT14 En-Fr
                   (tensorflow-datasets; needs internet); `--config.data.corpus=bible` for the Bible
  rnnencdec_paper  the paper's RNNencdec-50, the same sizes

Data: `python -m core.datasets bible` (Debian packages python3-sword sword-text-kjv
sword-text-web sword-text-sparv). Held-out books: valid Ruth, Jonah, Philippians, Titus;
test Joshua, Mark, Romans (core/translation_data.py).

Commands (one at a time; on a 2-core CPU shared with other jobs: RNNencdec 38 min wall / 9 min
CPU, RNNsearch 52 min wall / 19 min CPU):
  python -m launch.train --config configs/bahdanau.py:rnnencdec_cpu --workdir runs/bahdanau/rnnencdec
  python -m launch.train --config configs/bahdanau.py:rnnsearch_cpu --workdir runs/bahdanau/rnnsearch
  python -m papers.bahdanau.compare --runs runs/bahdanau/rnnencdec runs/bahdanau/rnnsearch
  python -m papers.bahdanau.figures --workdir runs/bahdanau/rnnsearch --out papers/bahdanau

Result: beam-search BLEU on 500 test verses, overall and by source length (the paper's finding
to check: RNNsearch above RNNencdec, the more so on long sentences). Measured at step 1,500:
RNNsearch 3.59, RNNencdec 2.27 BLEU; see papers/bahdanau/README.md for the recorded figures. The paper (Table 1,
WMT14 En-Fr, all sentences): RNNsearch-50 26.75, RNNencdec-50 17.82.
"""
from configs.common import base_config

VARIANTS = ("rnnsearch", "rnnencdec", "rnnsearch_cpu", "rnnencdec_cpu", "rnnsearch_paper",
            "rnnencdec_paper")


def get_config(arg=None):
  variant = arg or "rnnsearch"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  c = base_config()
  c.task = "papers.bahdanau.task:TranslationTask"
  c.seed = 0

  c.data.corpus = "bible"          # bible | wmt14
  c.data.english = "kjv"           # kjv | web (the Bible's English side)
  c.data.wmt14_pair = "fr-en"      # tensorflow-datasets wmt14_translate config
  c.data.max_words = 50            # training pairs longer than this (either side) are dropped
  c.data.max_len = 16              # subword pieces: array width, longest decoded output
  c.data.eval_examples = 8         # test verses translated by evaluate()
  c.data.eval_batch_size = 48      # rows of eval_batches and of a decoding batch (multiple of 8)
  c.data.beam_size = 2

  c.model.attention = not variant.startswith("rnnencdec")
  c.model.src_vocab_size = 256
  c.model.tgt_vocab_size = 256
  c.model.embed = 16
  c.model.hidden = 16
  c.model.align = 16
  c.model.maxout = 8

  c.total_steps = 200
  c.batch_size = 16
  c.log_every = 20
  c.eval_every = 100
  c.checkpoint_every = 100
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.clip_norm = 1.0      # the paper rescales gradients to norm 1 (appendix B.2.1)

  if variant.endswith("_cpu"):
    c.data.max_len = 64            # 99% of the training verses of <= 50 words fit in 64 pieces
    c.data.eval_examples = 500
    c.data.eval_batch_size = 96
    c.data.beam_size = 12
    c.model.src_vocab_size = 4000
    c.model.tgt_vocab_size = 4000
    c.model.embed = 96
    c.model.hidden = 192
    c.model.align = 192
    c.model.maxout = 96
    c.batch_size = 32
    c.total_steps = 1500
    c.log_every = 50
    c.eval_every = 1500
    c.checkpoint_every = 250

  if variant.endswith("_paper"):
    c.data.corpus = "wmt14"
    c.data.max_len = 100           # pieces; sentences are filtered at 50 words
    c.data.eval_examples = 3003    # newstest2014 has 3,003 sentences
    c.data.eval_batch_size = 80
    c.data.beam_size = 12
    c.model.src_vocab_size = 30000
    c.model.tgt_vocab_size = 30000
    c.model.embed = 620
    c.model.hidden = 1000
    c.model.align = 1000
    c.model.maxout = 500
    c.batch_size = 80
    c.total_steps = 400_000        # the paper trained RNNsearch-50 for about 5 days
    c.log_every = 200
    c.eval_every = 20_000
    c.checkpoint_every = 5000
    # Adadelta (eps 1e-6, rho 0.95), as the paper.
    c.optimizer.name = "adadelta"
    c.optimizer.learning_rate = 1.0
    c.optimizer.eps = 1e-6
    c.optimizer.rho = 0.95
  return c

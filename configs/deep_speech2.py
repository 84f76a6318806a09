"""Deep Speech 2 (Amodei et al. 2016): CTC speech recognition from spectrograms.

Variants (after ':'):
  tiny   (default) a few seconds: 64 synthetic utterances (synthesised on first use with
         espeak-ng), one conv layer, one bidirectional GRU layer of 16, greedy decoding
  cpu    8,192 espeak-ng utterances (25 training voice variants x 7 accents), 2 conv
         layers (16 channels), 2 bidirectional GRU layers of 128 with sequence-wise batch
         norm, batch 16, 1,200 Adam steps (about 2.4 passes); greedy and LM
         beam-search CER/WER on 512 utterances of 6 held-out voice variants, and CER on the
         ten real pocketsphinx-testdata recordings
  paper  the paper's English network: 3 layers of 2D convolution (Amodei et al. 2016 Table 4:
         41x11, 21x11, 21x11 filters, 32/32/96 channels, strides 2x2, 2x1, 2x1), 7
         bidirectional GRU layers of 1760 (the 9-7 network of Table 1), LibriSpeech (tfds,
         needs internet), batch 512 over a pod

Commands:
  python -m papers.deep_speech2.data --utterances 8192          # synthesise once (~10 min)
  python -m launch.train --config configs/deep_speech2.py:cpu --workdir runs/deep_speech2/cpu
  (or python -m launch.reproduce --items deep_speech2 --tier cpu)

Expected result (measured 2026-11-27, `cpu`, 1,200 steps, 49 CPU-min): held-out synthetic voices
CER 24.0% / WER 69.7% greedy; on their first 128 utterances WER 50.6% with the LM beam search
against 71.5% greedy; real recordings CER 64.4% (the synthetic-to-real gap); details in
papers/deep_speech2/README.md. The paper: 5.33% WER on LibriSpeech
test-clean (Amodei et al. 2016 Table 13).
"""
from configs.common import base_config

VARIANTS = ("tiny", "cpu", "paper")


def get_config(arg=None):
  variant = arg or "tiny"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
  c = base_config()
  c.task = "papers.deep_speech2.task:SpeechTask"
  c.seed = 0

  c.data.source = "espeak"          # espeak | librispeech
  c.data.train_utterances = 64
  c.data.test_utterances = 16
  c.data.buckets = (400,)            # padded lengths in frames (10 ms); one: one compile
  c.data.sortagrad = True
  c.data.eval_batch_size = 16

  c.model.conv_channels = (4,)
  c.model.conv_kernels = ((5, 11),)  # (time, frequency), odd
  c.model.conv_strides = ((2, 4),)
  c.model.rnn_layers = 1
  c.model.rnn_features = 16

  c.eval = dict(beam=0, beam_utterances=64, alpha=0.5, beta=1.0, lm_order=5,
                lm_sentences=100_000, real_clips=False)

  # The paper trains with Nesterov SGD and gradient clipping; Adam converges in far fewer
  # steps on a small budget, with the same clipping.
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.clip_norm = 400.0
  c.batch_size = 8
  c.total_steps = 40
  c.log_every = 10
  c.eval_every = 40
  c.checkpoint_every = 40

  if variant == "cpu":
    c.data.train_utterances = 8192
    c.data.test_utterances = 512
    c.data.buckets = (150, 250, 350, 450)
    c.data.eval_batch_size = 64
    # Sized for 2 CPU cores: smaller filters than the paper's, and a time stride of 4 (40 ms
    # per output step, still above espeak-ng's fastest 17 characters a second).
    c.model.conv_channels = (16, 16)
    c.model.conv_kernels = ((5, 21), (5, 11))
    c.model.conv_strides = ((2, 2), (2, 3))
    c.model.rnn_layers = 2
    c.model.rnn_features = 128
    c.eval.beam = 16
    c.eval.beam_utterances = 128
    c.eval.real_clips = True
    c.optimizer.schedule = "warmup_cosine"
    c.optimizer.warmup_steps = 50
    c.batch_size = 16
    c.total_steps = 1200
    c.log_every = 50
    c.eval_every = 600
    c.checkpoint_every = 200
  elif variant == "paper":
    c.data.source = "librispeech"
    c.data.train_utterances = 0      # 0 = all
    c.data.test_utterances = 0
    c.data.buckets = (500, 1000, 1500, 2000, 2500, 3500)
    c.data.eval_batch_size = 256
    c.model.conv_channels = (32, 32, 96)
    c.model.conv_kernels = ((11, 41), (11, 21), (11, 21))
    c.model.conv_strides = ((2, 2), (1, 2), (1, 2))
    c.model.rnn_layers = 7
    c.model.rnn_features = 1760
    c.eval.beam = 500
    c.eval.beam_utterances = 2620
    c.eval.alpha = 1.0
    c.eval.beta = 1.5
    c.eval.real_clips = False
    c.optimizer.name = "momentum"      # Nesterov-free momentum SGD as core.optim offers
    c.optimizer.momentum = 0.99
    c.optimizer.learning_rate = 6e-4
    c.optimizer.schedule = "cosine"
    c.batch_size = 512
    c.total_steps = 60_000
    c.log_every = 100
    c.eval_every = 5_000
    c.checkpoint_every = 5_000
  return c

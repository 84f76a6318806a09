"""The claims of papers/deep_speech2, as data for launch.reproduce (see core/claims.py)."""
from core.claims import Claim, Run

_CONFIG = "configs/deep_speech2.py:{}"

RUNS = {
    "tiny_smoke": Run(_CONFIG.format("tiny"), tier="smoke"),
    "cpu": Run(_CONFIG.format("cpu"), tier="cpu"),
    "paper": Run(_CONFIG.format("paper"), tier="pod"),
}

_PCT = "{:.1%}"
_TABLE13 = "Amodei et al. 2016 Table 13"
# The paper prints no CER for English; our CER rows are judged against 100%, the CER of an
# empty transcription, i.e. whether the model recognises anything at all.
_CER = dict(paper="not reported; 100% = empty output", source="-", target=1.0, better="lower",
            fmt=_PCT)
_WER = dict(paper="5.33% (LibriSpeech test-clean)", source=_TABLE13, target=0.0533, better="lower",
            fmt=_PCT)

CLAIMS = (
    Claim(run="tiny_smoke", metric="greedy_cer", **_CER,
          what="tiny: 64 synthetic utterances, 40 steps, greedy CER on 6 held-out voices"),
    Claim(run="cpu", metric="greedy_wer", what="synthetic speech (espeak-ng), 6 held-out voice "
          "variants, 512 utterances: WER, greedy decoding", **_WER),
    Claim(run="cpu", metric="greedy_cer", **_CER, what="same run, CER, greedy decoding"),
    Claim(run="cpu", metric="beam_lm_wer", what="same run, first 128 utterances: WER, beam 16 + "
          "character 5-gram LM (alpha 0.5, beta 1)", **_WER),
    Claim(run="cpu", metric="subset_greedy_wer", what="same 128 utterances: WER, greedy decoding",
          **_WER),
    Claim(run="cpu", metric="beam_lm_cer", **_CER, what="same 128 utterances: CER, beam 16 + LM"),
    Claim(run="cpu", metric="real_greedy_cer", **_CER,
          what="same model on the 10 real pocketsphinx-testdata recordings: CER, greedy "
               "(synthetic-to-real gap)"),
    Claim(run="cpu", metric="real_beam_lm_wer", what="same 10 real recordings: WER, beam 16 + LM",
          **_WER),
    Claim(run="paper", metric="beam_lm_wer", what="the paper's English network on LibriSpeech "
          "test-clean: WER, beam + LM", **_WER),
)

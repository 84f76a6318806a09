"""The benchmark scripts run end to end on the CPU (tiny sizes) and count the FLOPs that a
hand-written formula gives; their speed figures are read from their output, never asserted."""
import json

import pytest

from benchmarks import compile_time, input_stall, nth_farthest, seq2seq, transformer_lm


def lm_forward_flops(layers, d_model, heads, d_ff, seq, batch, vocab_padded):
  """Matmul FLOPs of one forward pass: projections, full-square attention, feed-forward, logits."""
  del heads  # heads split d_model: the totals do not depend on them
  tokens = batch * seq
  per_layer = 2 * tokens * (4 * d_model * d_model + 2 * d_model * d_ff) + 2 * 2 * batch * seq * seq * d_model
  return layers * per_layer + 2 * tokens * d_model * vocab_padded


def test_transformer_lm_benchmark_counts_model_flops(tmp_path, capsys):
  out = tmp_path / "lm.json"
  assert transformer_lm.main(["--preset", "tiny", "--steps", "1", "--warmup", "1", "--torch", "",
                              "--attention", "xla,einsum", "--peak_n", "128", "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  layers, d_model, heads, d_ff, seq, batch, vocab = transformer_lm.PRESETS["tiny"]
  expected = 3 * lm_forward_flops(layers, d_model, heads, d_ff, seq, batch, vocab)
  assert [r["flops_per_step"] for r in report["rows"]] == [expected, expected]
  assert report["rows"][0]["framework"].endswith("xla attention")
  assert all(r["tokens_per_s"] > 0 for r in report["rows"])
  assert "| jax (project), einsum attention |" in capsys.readouterr().out


def seq2seq_forward_flops(enc, dec, d_model, heads, d_ff, src_len, tgt_len, batch, vocab):
  """Matmul FLOPs of the encoder-decoder's forward pass (full-square attention)."""
  del heads
  src, tgt = batch * src_len, batch * tgt_len
  encoder = 2 * src * (4 * d_model ** 2 + 2 * d_model * d_ff) + 4 * batch * src_len ** 2 * d_model
  decoder = (2 * tgt * (4 * d_model ** 2 + 2 * d_model ** 2 + 2 * d_model * d_ff)  # self, cross q/out, ffn
             + 2 * src * 2 * d_model ** 2                                        # cross keys, values
             + 4 * batch * tgt_len * (tgt_len + src_len) * d_model)              # scores and mixing
  return enc * encoder + dec * decoder + 2 * tgt * d_model * vocab


def test_seq2seq_benchmark_counts_model_flops(tmp_path):
  out = tmp_path / "seq2seq.json"
  assert seq2seq.main(["--preset", "tiny", "--steps", "1", "--warmup", "1", "--torch", "",
                       "--out", str(out)]) == 0
  (row,) = json.loads(out.read_text())["rows"]
  assert row["flops_per_step"] == 3 * seq2seq_forward_flops(*seq2seq.PRESETS["tiny"])
  assert row["tokens_per_s"] > 0


def test_seq2seq_benchmark_pytorch_model_has_the_projects_parameters():
  pytest.importorskip("torch")
  model = seq2seq.torch_model(seq2seq.PRESETS["tiny"], "cpu")
  out = seq2seq.jax_side(seq2seq.PRESETS["tiny"], "float32", steps=1, warmup=1)
  assert sum(p.numel() for p in model.parameters()) == out["params"]


def test_nth_farthest_benchmark_runs(tmp_path):
  out = tmp_path / "nth.json"
  assert nth_farthest.main(["--batch", "4", "--cores", "lstm", "--steps", "1", "--warmup", "1",
                            "--out", str(out)]) == 0
  (row,) = json.loads(out.read_text())["rows"]
  assert row["core"] == "lstm" and row["batch"] == 4 and row["step_ms"] > 0


@pytest.mark.parametrize("module,argv", [
    (transformer_lm, ["--attention", "flash"]),
    (transformer_lm, ["--torch", "jit"]),
    (transformer_lm, ["--steps", "0"]),
    (nth_farthest, ["--cores", "dnc"]),
    (seq2seq, ["--torch", "jit"]),
])
def test_bad_flags_are_one_line_errors(module, argv, capsys):
  with pytest.raises(SystemExit) as exit_info:
    module.main(argv)
  assert exit_info.value.code == 2
  assert capsys.readouterr().err.strip().splitlines()[-1].startswith("usage:") is False


def test_compile_time_benchmark_runs(tmp_path):
  out = tmp_path / "compile.json"
  assert compile_time.main(["--preset", "tiny", "--depths", "1,2", "--modes", "scan", "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  assert [row["depth"] for row in report["seconds"]] == [1, 2]
  assert all(row["scan"] > 0 for row in report["seconds"]) and report["growth"]["scan"] > 0


def test_input_stall_reads_the_train_rows(tmp_path, capsys):
  run = tmp_path / "runs" / "a"
  run.mkdir(parents=True)
  waits = [0.5, 0.01, 0.05, 0.03]  # the first window (compilation) is left out
  rows = [{"step": 10 * i, "split": "train", "loss": 1.0, "input_wait_fraction": w} for i, w in enumerate(waits)]
  rows.insert(2, {"step": 20, "split": "eval", "loss": 1.0})
  (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
  (run / "config.json").write_text(json.dumps({"task": "papers.x.task:XTask"}))
  out = tmp_path / "stall.json"
  assert input_stall.main([str(tmp_path / "runs"), "--out", str(out)]) == 0
  (row,) = json.loads(out.read_text())["runs"]
  assert row["task"] == "XTask" and row["windows"] == 3
  assert row["mean_stall"] == pytest.approx(0.03) and row["worst_window"] == pytest.approx(0.05)
  assert "1 with a mean stall of 2% or more" in capsys.readouterr().out

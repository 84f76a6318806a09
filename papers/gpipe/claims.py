"""The claims of papers/gpipe, as data for launch.reproduce (see core/claims.py).

GPipe's bubble: with K stages and M micro-batches a fraction (K-1)/(M+K-1) of the stage-ticks
idles, negligible once M >= 4K (section 2.2). The benchmark counts the idle ticks of the schedule
core.pipeline runs (K = 4) and measures its FLOPs and memory.
"""
from core.claims import Claim, Run

RUNS = {
    "benchmark_quick": Run(commands=(("papers.gpipe.benchmark", "--quick", "--out", "{workdir}/benchmark.json"),),
                           tier="smoke"),
    "benchmark": Run(commands=(("papers.gpipe.benchmark", "--out", "{workdir}/benchmark.json"),), tier="cpu"),
}

_BUBBLE = dict(metric="", file="benchmark.json", better="lower", tolerance=0.001, fmt="{:.3f}",
               source="section 2.2")

CLAIMS = (
    Claim(run="benchmark_quick", **{**_BUBBLE, "metric": "microbatches.1.bubble_schedule"}, paper="3/7 = 0.429",
          target=3 / 7, what="Bubble (idle stage-ticks) of the schedule, K = 4, M = 4"),
    Claim(run="benchmark", **{**_BUBBLE, "metric": "microbatches.4.bubble_schedule"}, paper="3/19 = 0.158",
          target=3 / 19, what="Bubble of the schedule, K = 4, M = 16 = 4K (the paper's 'negligible' point)"),
    Claim(run="benchmark", **{**_BUBBLE, "metric": "microbatches.5.bubble_schedule"}, paper="3/35 = 0.086",
          target=3 / 35, what="Bubble of the schedule, K = 4, M = 32"),
)

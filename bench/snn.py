"""Spiking-network fault injection: the default campaign, and fast vs naive in the same process.

1. ``dse snn-inject`` with no flags (csnn, every target, fp32 bit flips, permanent, pooled
   Leveugle list at 1 % / 99 %, 100 images x 10 steps) run in this process: its table and wall
   time (the trained model is loaded from the cache first, so training is not in the figure).
2. On a seeded random subset of that campaign's faults (``--naive-faults``, or ``all``), the naive
   engine (re-simulate the model per fault) and the fast engine (fresh, same faults, same images)
   are timed one after the other; every (fault, image) score must be bit-identical and every
   outcome equal. The ratio is like with like: same faults, same images, one thread each.

    python bench/snn.py [--naive-faults 600|all] [--out DIR] [--no-doc]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import write_section  # noqa: E402
from dse.cli import main  # noqa: E402
from dse.resilience.snn import faultlist  # noqa: E402
from dse.resilience.snn.data import trained_snn  # noqa: E402
from dse.resilience.snn.engines import FastSnnEngine, NaiveSnnEngine  # noqa: E402
from dse.resilience.snn.outcomes import classify  # noqa: E402


def _timed(engine, faults) -> tuple[torch.Tensor, float]:
    t0 = time.perf_counter()
    scores = engine.scores(faults)
    return scores, time.perf_counter() - t0


def run(naive_faults: str, out: Path) -> str:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model, x, y = trained_snn("csnn")
    load_s = time.perf_counter() - t0
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        code = main(["snn-inject", "--out", str(out)])
    campaign_s = time.perf_counter() - t0
    assert code == 0, buf.getvalue()
    table = buf.getvalue().split("\nwall time")[0]
    faults = faultlist.load(out / "faultlist.csv")
    subset = (list(faults) if naive_faults == "all" else
              random.Random(0).sample(list(faults), min(int(naive_faults), len(faults))))
    x, y = x[:, :100], y[:100]
    naive_scores, naive_s = _timed(NaiveSnnEngine(model, x), subset)
    fast_engine = FastSnnEngine(model, x)
    fast_scores, fast_s = _timed(fast_engine, subset)
    identical = torch.equal(naive_scores.view(torch.int32), fast_scores.view(torch.int32))
    g = fast_engine.golden.scores
    same_outcomes = bool((classify(g, naive_scores, y) == classify(g, fast_scores, y)).all())
    assert identical and same_outcomes, "fast and naive disagree"
    per_naive, per_fast = naive_s / len(subset), campaign_s / len(faults)
    return f"""## Spiking networks (bench/snn.py)

`python bench/snn.py --naive-faults {naive_faults}` on the 2-core machine, one torch thread
(shared with other jobs: wall times vary run to run).

**Default campaign** `dse snn-inject --model csnn` (no other flags: every target, fp32 bit flips,
permanent, pooled Leveugle list at 1 % / 99 %, 100 rate-coded digits x 10 time steps, fast engine,
1 worker): **{len(faults)} faults x 100 images in {campaign_s:.1f} s wall**
({1000 * per_fast:.2f} ms per fault; the trained model came from the cache in {load_s:.1f} s).

**Fast vs naive, same process, same {len(subset)} faults** (a seeded random subset of that list)
and the same 100 images: naive re-simulation {naive_s:.1f} s ({1000 * per_naive:.1f} ms per
fault), fast engine {fast_s:.1f} s: **{naive_s / fast_s:.1f}x**; scores bit-identical for every
(fault, image): {identical}; outcomes identical: {same_outcomes}. At the naive rate the whole
default list would take about {per_naive * len(faults) / 60:.0f} min (an estimate from the
subset, not a run). The subset gives the fast engine smaller groups than the full list does, so
the ratio on the full campaign is at least this (compare the per-fault times above).

Class score = output spike count over the 10 steps, so the top score is at most 10 and any change
of it is d >= 10 %: the SDC_0_5 and SDC_5_10 buckets are empty by construction at this step count.

```
{table}
```
"""


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--naive-faults", default="600", help="faults re-simulated naively, or 'all'")
    p.add_argument("--out", help="campaign directory (default: a fresh temporary one)")
    p.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        body = run(args.naive_faults, Path(args.out or Path(tmp) / "campaign"))
    print(body)
    if not args.no_doc:
        write_section("snn", body)


if __name__ == "__main__":
    cli()

"""The long fuzz run of the four YAML loaders (CI runs 60 examples each; this runs many more).

    python -m bench.fuzz_loaders [--examples 2000]   # writes the "fuzz" section of docs/benchmarks.md

Each example is a mutated real file (tests/hostile/_fuzz.py): a value replaced by NaN, inf, a
negative, a huge integer, a wrong type or an odd string, a key deleted or added, or the raw text
cut and spliced. A failure is anything but "loads" or "one-line DseError"; failures are grouped by
exception type and the source line that raised it.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "hostile"))
import _fuzz  # noqa: E402

from bench._report import write_section  # noqa: E402
from dse.errors import DseError  # noqa: E402


def fuzz(loader: str, examples: int, seed: int) -> dict:
    base = _fuzz.LOADERS[loader][0]()
    load, name = _fuzz.LOADERS[loader][1], _fuzz.LOADERS[loader][2]
    stats = collections.Counter()
    failures: dict[tuple, str] = {}

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data):
        text = _fuzz.mutated_text(base, data)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="dse-fuzz-") as tmp:
            path = Path(tmp) / name
            path.write_text(text)
            stats["tried"] += 1
            try:
                load(path)
                stats["loaded"] += 1
            except DseError as exc:
                stats["refused"] += 1
                stats["net"] += "malformed " in str(exc)  # by validate.parsing, not a field check
                if len(str(exc).splitlines()) != 1:
                    failures.setdefault(("multi-line DseError",), str(exc)[:120])
            except Exception as exc:  # noqa: BLE001 - what the fuzzing looks for
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                failures.setdefault((type(exc).__name__, Path(tb.filename).name, tb.lineno),
                                    str(exc)[:120])

    import random

    random.seed(seed)
    start = time.perf_counter()
    run()
    return {"loader": loader, "tried": stats["tried"], "loaded": stats["loaded"],
            "refused": stats["refused"], "net": stats["net"], "failures": failures,
            "wall_s": time.perf_counter() - start}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--examples", type=int, default=2000, help="examples per loader")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    results = [fuzz(name, args.examples, args.seed) for name in sorted(_fuzz.LOADERS)]
    lines = ["## Fuzzing the YAML loaders (bench/fuzz_loaders.py)", "",
             f"`python -m bench.fuzz_loaders --examples {args.examples}`: mutated real files per "
             "loader; a failure is anything but loading or a one-line DseError (distinct failures "
             "= distinct exception type + raising line). 'Safety net': refusals by `validate.parsing` "
             "(one line naming the file and the exception, not the field).", "",
             "| loader | examples tried | loaded | refused (one line) | of which by the safety net |"
             " distinct failures | wall s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['loader']} | {r['tried']} | {r['loaded']} | {r['refused']} | "
                     f"{r['net']} | {len(r['failures'])} | {r['wall_s']:.1f} |")
    for r in results:
        for key, msg in r["failures"].items():
            lines.append(f"- {r['loader']}: {' '.join(map(str, key))}: {msg}")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("fuzz", text)


if __name__ == "__main__":
    main()

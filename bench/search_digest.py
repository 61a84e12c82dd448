"""Exactness and CPU of the sweep's searches: the 48 ResNet-18 layer searches of ``bench.sweep``
(4 designs x 12 layers, budget 2000, the sweep's seed), run one after the other in this process.

    python bench/search_digest.py          # prints: cpu_s <seconds> digest <16 hex digits>

The digest covers every search's kept mappings (text, energy, cycles, roles) and its evaluated
and valid counts, so an exact speed-up of the mapper keeps it unchanged while ``cpu_s`` drops
(compare two trees back to back: run it with ``PYTHONPATH`` on each)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time


def main(budget: int = 2000) -> None:
    from dse.sweep import ModelSpec, SweepConfig
    from dse.sweep import run as sweep_run
    from dse.sweep.config import MapperSettings
    from dse.sweep.tasks import run_map_task

    config = SweepConfig(name="digest", designs=["all"],
                         models=[ModelSpec("resnet18", input_shape=(1, 3, 224, 224))],
                         mapper=MapperSettings(budget=budget, time_limit=600.0),
                         output="/tmp/dse-search-digest")
    plan = sweep_run._plan(config, sweep_run.validate(config))
    digest = hashlib.sha256()
    start = time.process_time()
    for task in plan.map_tasks.values():  # plan order (task keys carry the code version)
        result = run_map_task(task)
        rows = [{k: v for k, v in dataclasses.asdict(row).items()
                 if k != "wall_s" and not k.endswith("_key")} for row in result.rows]
        digest.update(json.dumps([result.evaluated, result.valid, rows], sort_keys=True,
                                 default=str).encode())
    print("cpu_s", round(time.process_time() - start, 2), "digest", digest.hexdigest()[:16])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)

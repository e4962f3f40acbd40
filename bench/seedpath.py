"""The memory run without the network: every seed of a file through the project's seed path.

``python -m bench.seedpath SEED_FILE WORK_DIR`` first loads what every crawl process holds
(Scrapy, the project's settings and its ``note_detail`` spider with everything it imports,
through Scrapy's public ``SpiderLoader``), then pushes every seed of the file through the
project's plain seed modules, as the spider does: ``pgy_spider.seeds.iter_seeds`` (lazy reading,
``pgy_spider.noteid`` validation), in-run dedup on ``noteid.note_id_to_int`` keys in a
``pgy_spider.idset.CompactIdSet``, and one failed record per rejected seed. Each accepted seed
counts as one request settled at once, as if its call had come back, so only what the seed path
itself keeps grows. Prints one JSON line with the counts and the time taken.

It touches no private spider attribute: the spider's own bookkeeping (the run accounting) is
O(1) per settled seed, while the dedup set holds every distinct ID read.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    seed_file, work_dir = argv
    from scrapy.settings import Settings
    from scrapy.spiderloader import SpiderLoader

    from pgy_spider import noteid, seeds
    from pgy_spider.idset import CompactIdSet

    settings = Settings()
    settings.setmodule("pgy_spider.settings", priority="project")
    SpiderLoader.from_settings(settings.frozencopy()).load("note_detail")
    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    started = time.monotonic()
    seen = CompactIdSet()
    seeds_read = requests = duplicates = rejected = 0
    with (Path(work_dir) / "failed.jsonl").open("wb") as failed:
        for seed in seeds.iter_seeds([seed_file]):
            seeds_read += 1
            note_id = seed.note_id
            if note_id is None:
                rejected += 1
                failed.write(json.dumps({"seed": seed.raw, "reason": seed.reason}).encode())
                failed.write(b"\n")
            elif not seen.add(noteid.note_id_to_int(note_id)):
                duplicates += 1
            else:
                requests += 1
    elapsed = time.monotonic() - started
    result = {
        "seeds_read": seeds_read,
        "requests": requests,
        "duplicates": duplicates,
        "rejected": rejected,
        "seconds": round(elapsed, 3),
        "baseline_rss_bytes": baseline_rss,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

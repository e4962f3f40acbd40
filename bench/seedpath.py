"""The memory run without the network: every seed through exactly the spider's seed path.

``python -m bench.seedpath SEED_FILE WORK_DIR`` builds a real ``NoteDetailSpider`` (project
settings, a crawler, its ledger and failed file) and feeds every seed of the file through
``spider._iter_seeds`` (``pgy_spider.seeds.iter_seeds`` + ``noteid`` validation) and
``spider._take_seed`` (the in-run dedup on ``note_id_to_int`` keys, the ledger, the request).
Each request is settled as written at once, as if its call had come back, so only what the seed
path itself keeps grows. Prints one JSON line with the ledger's counts and the time taken.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    seed_file, work_dir = argv
    work = Path(work_dir)
    from scrapy.settings import Settings
    from scrapy.utils.reactor import install_reactor
    from scrapy.utils.test import get_crawler

    from pgy_spider import settings as project_settings
    from pgy_spider.spiders.note_detail import NoteDetailSpider

    settings = Settings()
    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    settings.setmodule(project_settings, priority="project")
    overrides = {
        **settings.copy_to_dict(),
        "PGY_BASE_URL": "http://127.0.0.1:9",
        "PGY_TOKEN": "bench-token",
        "PGY_FAILED_PATH": str(work / "failed.jsonl"),
        "PGY_SUMMARY_PATH": str(work / "summary.json"),
        "LOG_LEVEL": "WARNING",
    }
    crawler = get_crawler(NoteDetailSpider, overrides)
    spider = NoteDetailSpider.from_crawler(crawler, ids_file=seed_file)
    started = time.monotonic()
    requests = 0
    no_fresh: frozenset[str] = frozenset()
    ledger = spider.ledger
    for seed in spider._iter_seeds([seed_file]):
        request = spider._take_seed(seed, no_fresh)
        if request is not None:
            requests += 1
            ledger.settle_written(seed.seq)
    elapsed = time.monotonic() - started
    spider.failed_file.close()
    result = {
        "seeds_read": ledger.seeds_read,
        "requests": requests,
        "duplicates": ledger.duplicates,
        "rejected": sum(ledger.rejected.values()),
        "seconds": round(elapsed, 3),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

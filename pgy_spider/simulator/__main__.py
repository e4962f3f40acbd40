"""``python -m pgy_spider.simulator``: see the package docstring and ``--help``."""

import sys

from pgy_spider.simulator.server import main

sys.exit(main())

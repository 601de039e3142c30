"""``python -m refinedlr_bench bench|data ...`` (the same as ``refinedlr bench|data ...``)."""

import sys

from refinedlr_bench.cli import main

sys.exit(main())

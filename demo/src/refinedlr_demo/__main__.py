"""``python -m refinedlr_demo [options]``: the same as ``refinedlr demo [options]``."""

import sys

from refinedlr.cli import main

sys.exit(main(["demo", *sys.argv[1:]]))

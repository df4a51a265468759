"""``python -m analysis.price``: the same command as ``culturesim price``, without the culturesim CLI."""

import sys

from analysis.price.cli import main

sys.exit(main())

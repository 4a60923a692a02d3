"""`python -m mlpc.cli`: the `mlpc` command."""

import sys

from mlpc.cli import main

sys.exit(main())

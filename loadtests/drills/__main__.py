"""`python -m loadtests.drills`: the fault drills (loadtests/drills/cli.py)."""

import sys

from loadtests.drills.cli import main

sys.exit(main())

"""`python -m loadtests.linearizability`: see loadtests/linearizability/cli.py."""

import sys

from loadtests.linearizability.cli import main

sys.exit(main())

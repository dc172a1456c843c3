"""`python -m experiments` is the `mnist-parity` command."""

import sys

from experiments.cli import main

sys.exit(main())

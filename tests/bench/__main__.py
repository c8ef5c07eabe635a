"""Entry point: `python -m tests.bench [--quick] [--keep-db] [--only 1,3]` (`make bench`)."""

import sys

from .runner import main

sys.exit(main())

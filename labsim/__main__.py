"""``python -m labsim``: the same as the ``labsim`` console script."""

import sys

from labsim.cli import main

sys.exit(main())

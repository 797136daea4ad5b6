"""``python -m lossguard ...``: the same as the ``lossguard`` console script."""

import sys

from lossguard.harness.app.cli import main

if __name__ == "__main__":
    sys.exit(main())

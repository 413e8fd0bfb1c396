"""`python -m backfill_cli`: the same as the `backfill` command."""

import sys

from backfill_cli.main import main

if __name__ == "__main__":
    sys.exit(main())

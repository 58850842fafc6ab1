"""`python -m streaming_cli feedback|groups ...`."""

from __future__ import annotations

import sys

from streaming_cli.cli import main

if __name__ == "__main__":
    sys.exit(main())

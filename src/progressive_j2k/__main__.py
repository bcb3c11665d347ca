"""``python -m progressive_j2k``: the ``progressive-j2k`` command."""
import sys

from progressive_j2k.cli import main

sys.exit(main())

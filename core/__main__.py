"""``python -m core`` runs the ``duetrl`` command line."""

import sys

from core.cli import main

sys.exit(main())

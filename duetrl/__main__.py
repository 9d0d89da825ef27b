"""``python -m duetrl`` runs the ``duetrl`` command line."""

import sys

from duetrl.core.cli import main

sys.exit(main())

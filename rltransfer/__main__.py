"""``python -m rltransfer`` runs the command line."""

import sys

from rltransfer.cli import main

sys.exit(main())

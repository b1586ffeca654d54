"""``python -m exporter`` runs the exporter (same as ``confscale-exporter``)."""

import sys

from confscale.exporter.cli import main

sys.exit(main())

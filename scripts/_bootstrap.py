"""Put the project root on sys.path for `python scripts/x.py` (no .pth, no pip install -e)."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # os.path: pathlib is not loaded for --help
if ROOT not in sys.path:
    sys.path.insert(1, ROOT)

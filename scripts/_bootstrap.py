"""Put the project root on sys.path for `python scripts/x.py` (no .pth, no pip install -e)."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(1, ROOT)

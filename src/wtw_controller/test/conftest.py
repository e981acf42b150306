"""wtw_controller tests: make wtw_helpers (TorchScript runs made on the spot) importable (a unique module name)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

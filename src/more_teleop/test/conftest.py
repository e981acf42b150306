"""more_teleop tests: make scripted_operator importable (a unique module name; no `test` package, which would
clash with other packages' test directories)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

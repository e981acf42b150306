"""wtw_controller tests: make the shared helper module importable (unique name: no clash with other suites)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

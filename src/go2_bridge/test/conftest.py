"""go2_bridge tests: make the process-test helpers importable (unique module name across suites)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

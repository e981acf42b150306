"""go2_sim tests: make go2_rig (the three-process rig's probe side) importable (a unique module name)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sys
from pathlib import Path

# Before any test module imports torch: the kernels every number here (the golden values) is computed on.
import bench  # noqa: F401,E402

# Let tests import the shared fakes in tests/helpers.py.
sys.path.insert(0, str(Path(__file__).parent))

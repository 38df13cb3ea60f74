import sys
from pathlib import Path

# Before any test module imports torch: the kernels every number here (the golden values) is computed on.
import bench  # noqa: F401,E402

# Let tests import the shared fakes in tests/helpers.py. tests/methods, tests/metrics and
# tests/attacks (folders without __init__.py, mirroring the packages) would be found as empty
# namespace packages by the path search, which runs before an editable install's finder: the
# checkout goes first on the path, the tests folder last.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.append(str(Path(__file__).parent))

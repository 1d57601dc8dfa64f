"""`python -m kiwi_platform.warm HOME IDLE_S [TORCH]`: the worker process (started by `kiwi worker start`)."""

import sys
from pathlib import Path

from kiwi_platform.warm.server import serve

serve(Path(sys.argv[1]), float(sys.argv[2]), torch=sys.argv[3:4] != ["0"])

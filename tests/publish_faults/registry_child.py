"""Child process for registry kill tests: register a version, then promote it.

usage: registry_child.py MODELS_DIR ARTIFACT_DIR NAME
FLOWCAST_FAULT=registry:<point> makes the registry SIGKILL this process at that point.
"""

import sys
from datetime import datetime
from pathlib import Path

from flowcast.registry import ModelRegistry

root, artifact, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
reg = ModelRegistry(root)
mv = reg.register(artifact, name=name, dataset="toy", config={}, fingerprint={}, metrics={}, as_of=None,
                  created_at=datetime(2024, 1, 2))
print(mv.version, flush=True)
reg.promote(mv.version, reason="child", at=datetime(2024, 1, 2))
print("promoted", flush=True)

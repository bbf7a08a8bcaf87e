"""Child process for registry kill tests: register a version, then promote it.

usage: registry_child.py MODELS_DIR ARTIFACT_DIR NAME [together]
`together`: register and promote in one transaction (as a retrain run does), printing the version after.
MODELS_DIR is a folder, or a JSON object {"url": ..., "storage_options": {...}, "cache_dir": ...}
(a registry at an object-store URL).
FLOWCAST_FAULT=registry:<point> makes the registry SIGKILL this process at that point.
"""

import json
import sys
from datetime import datetime
from pathlib import Path

from flowcast.registry import ModelRegistry, Promotion

spec, artifact, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
together = sys.argv[4:] == ["together"]
if spec.lstrip().startswith("{"):
    at = json.loads(spec)
    reg = ModelRegistry(at["url"], storage_options=at.get("storage_options"), cache_dir=Path(at["cache_dir"]))
else:
    reg = ModelRegistry(Path(spec))
then = Promotion("promote", reason="child", at=datetime(2024, 1, 2)) if together else None
mv = reg.register(artifact, name=name, dataset="toy", config={}, fingerprint={}, metrics={}, as_of=None,
                  created_at=datetime(2024, 1, 2), then=then)
print(mv.version, flush=True)
if together:
    sys.exit(0)
reg.promote(mv.version, reason="child", at=datetime(2024, 1, 2))
print("promoted", flush=True)

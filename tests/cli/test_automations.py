"""`flowcast automations list|apply` without a configured Prefect server."""

from __future__ import annotations

import os
import subprocess
import sys


def test_listing_on_the_temporary_api_logs_no_telemetry_error(tmp_path):
    """Regression: `flowcast automations list` (and apply, and serve) without PREFECT_API_URL used Prefect's
    temporary server without the settings flowcast gives it for runs: offline it logged 'ERROR ... Failed to
    send telemetry' and a 'database is locked' traceback from the telemetry heartbeat under the listing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "FLOWCAST_HOME": str(tmp_path / "home"),
            "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", "from flowcast.cli import app; app()", "automations", "list", "--json"],
                          check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert '"automations": [' in done.stdout.strip().splitlines()[-1]
    assert "telemetry" not in done.stderr and "Traceback" not in done.stderr, done.stderr

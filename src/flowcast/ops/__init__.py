"""Operating flowcast for months: realized accuracy (accuracy.py), quiet schedules (quiet.py),
Prefect automations as code (automations.py), run-failure hooks (hooks.py) and retention (retention.py)."""

"""What a flow run the reaper marks Crashed published before it stopped, read off the store (ops53).

The reaper's Crashed message said that whether the killed run published anything 'cannot be told from here': it
reads the run's Prefect state only. The store can tell, for a run of one explicit as_of (a `flowcast run` or
`forecast --as-of`, a deployment run given `as_of`): each publish's receipt names the flow run that wrote it, so the
key (dataset, as_of) either holds this run's publish, another run's, or nothing. A publish is atomic (a key holds
one run's forecasts or none), so the answer is whole. A run without an `as_of` parameter (a schedule slot: its
as_of is the time it was scheduled for, which its parameters do not hold) or of several (a backfill), and a store
or configuration that cannot be read from the reaper's process, are left as before: None, 'cannot be told'.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# the flow parameters that name the settings a run read its store from (`flows.common.flow_settings`)
_SETTINGS_PARAMETERS = ("config_file", "home", "dataset", "source", "overrides")


def what_it_published(parameters: dict[str, Any] | None, run_id: str, home: str | Path | None = None) -> str | None:
    """The sentence the Crashed message of flow run `run_id` says of its publish, from the store its `parameters`
    name (`home`: the reaper's, where they name none): 'It published the forecasts of tiny as_of 2019-06-01 before
    it stopped', 'It published nothing: the store holds no forecasts of tiny as_of 2019-06-01' (or 'holds flow run
    X's'); None where that cannot be told (module doc)."""
    params = dict(parameters or {})
    if not params.get("as_of"):
        return None
    try:
        from flowcast.data.datasets import resolve_source
        from flowcast.flows.common import flow_settings
        from flowcast.store import open_store
        from flowcast.timekeys import as_instant, utc_text

        given = {k: params.get(k) for k in _SETTINGS_PARAMETERS}
        if not given["home"] and home is not None:
            given["home"] = str(home)
        settings = flow_settings(**given)
        source = resolve_source(settings)
        as_of = as_instant(params["as_of"], source.tz).replace(microsecond=0)
        store = open_store(settings, migrate=False)
        key = f"{source.name} as_of {utc_text(as_of)}"
        if not store.has(source.name, as_of):
            return f"It published nothing: the store holds no forecasts of {key}"
        by = str(store.receipt_of(source.name, as_of).get("run_id") or "")
    except Exception as exc:  # noqa: BLE001 - the message then says it cannot be told, as before
        log.debug("could not read what flow run %s published: %s", run_id, exc)
        return None
    if by == str(run_id):
        return f"It published the forecasts of {key} before it stopped"
    return f"It published nothing: the forecasts of {key} in the store are flow run {by or '(unnamed)'}'s"

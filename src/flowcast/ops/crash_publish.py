"""What a flow run the reaper marks Crashed published before it stopped, read off the store (ops53).

The reaper's Crashed message said that whether the killed run published anything 'cannot be told from here': it
reads the run's Prefect state only. The store can tell, for a run of one explicit as_of (a `flowcast run` or
`forecast --as-of`, a deployment run given `as_of`): each publish's receipt names the flow run that wrote it, so the
key (dataset, as_of) either holds this run's publish, another run's, or nothing. A publish is atomic (a key holds
one run's forecasts or none), so the answer is whole.

The store read is the one the run itself wrote to: a run records its store and dataset in its claim as it starts
(`run_store`, from its own settings: its environment and configuration, which the reaper's process may not share),
and the reaper reads the store only where the one its parameters and home name from here is that store (fix A53: a
reaper whose `FLOWCAST_STORE__URL` named another store said 'It published nothing' of a run that had published). A
run without an `as_of` parameter (a schedule slot: its as_of is the time it was scheduled for, which its parameters
do not hold) is read at the as_of it resolved, which a retrain or forecast records in its claim as it resolves it
(`flows.common.run_identity`; ops54: a Crashed scheduled retrain said 'cannot be told'). A run of several as_ofs (a
backfill), a claim that records no store (or, without an `as_of` parameter, no as_of: the run was killed before
it resolved one, or started before ops54), a store that is not the run's from here, and
a store or configuration that cannot be read from the reaper's process (a PostgreSQL store is tried once, not waited
for: the reap runs as every flow run starts) are left as before: None, 'cannot be told'. Where the key holds another
run's forecasts, the message says whose, not that the killed run published nothing: a later run may have replaced
its publish before the reap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowcast.config import Settings

log = logging.getLogger(__name__)

# the flow parameters that name the settings a run read its store from (`flows.common.flow_settings`)
SETTINGS_PARAMETERS = ("config_file", "home", "dataset", "source", "overrides")


def run_store(settings: Settings) -> dict[str, str]:
    """What a flow run of `settings` records in its claim of where it publishes: its store's location (a PostgreSQL
    URL redacted: no password is written to the claim) and its dataset's name."""
    from flowcast.data.datasets import resolve_source
    from flowcast.store import open_store

    return {"store": str(open_store(_probe(settings), migrate=False).location),
            "dataset": resolve_source(settings).name}


def _probe(settings: Settings) -> Settings:
    """`settings` whose PostgreSQL store is tried once, not waited for (store.pg_wait_s = 0)."""
    return settings.model_copy(update={"store": settings.store.model_copy(update={"pg_wait_s": 0.0})})


def what_it_published(parameters: dict[str, Any] | None, run_id: str, claim: dict[str, Any] | None = None,
                      home: str | Path | None = None) -> str | None:
    """The sentence the Crashed message of flow run `run_id` says of its publish, from the store its `claim` records
    (`run_store`), found from its `parameters` (`home`: where the claim is, where they name none): 'It published the
    forecasts of tiny as_of 2019-06-01 before it stopped', 'It published nothing: the store holds no forecasts of tiny
    as_of 2019-06-01', 'The forecasts of tiny as_of 2019-06-01 in the store are flow run X's'; None where that cannot
    be told (module doc)."""
    params, recorded = dict(parameters or {}), dict(claim or {})
    given_as_of = params.get("as_of") or recorded.get("as_of")  # (a schedule slot's: resolved by the run, module doc)
    if not given_as_of or not recorded.get("store") or not recorded.get("dataset"):
        return None
    try:
        from flowcast.data.datasets import resolve_source
        from flowcast.errors import NothingPublished
        from flowcast.flows.common import flow_settings, resolve_as_of
        from flowcast.store import open_store
        from flowcast.timekeys import utc_text

        given = {k: params.get(k) for k in SETTINGS_PARAMETERS}
        if not given["home"] and home is not None:
            given["home"] = str(home)
        settings = flow_settings(**given)
        source = resolve_source(settings)
        store = open_store(_probe(settings), migrate=False)
        if (str(store.location), source.name) != (recorded["store"], recorded["dataset"]):
            log.debug("flow run %s published to %s (%s); from here its parameters name %s (%s): cannot tell", run_id,
                      recorded["store"], recorded["dataset"], store.location, source.name)
            return None
        as_of = resolve_as_of(given_as_of, source.tz)
        key = f"{source.name} as_of {utc_text(as_of)}"
        try:
            by = str(store.receipt_of(source.name, as_of).get("run_id") or "")
        except NothingPublished:
            return f"It published nothing: the store holds no forecasts of {key}"
    except Exception as exc:  # noqa: BLE001 - the message then says it cannot be told, as before
        log.debug("could not read what flow run %s published: %s", run_id, exc)
        return None
    if by == str(run_id):
        return f"It published the forecasts of {key} before it stopped"
    return (f"The forecasts of {key} in the store are flow run {by or '(unnamed)'}'s (whether this run published "
            "them before that run replaced them cannot be told)")

"""A failed run leaves only flowcast's artifacts: Prefect's flow engine writes the exception of a run that raised
to its result storage (`write_result=True`, whatever the flow's `persist_result`), and the server turns that
result's address into a keyless artifact of no type, listed as 'unknown' on the run's page (ui31): one for the
flow run, one for the task run in its parent that tracks a child flow. A failure flowcast explains (a
FlowcastError) is now returned as the run's Failed state with the same message, which writes nothing."""

from __future__ import annotations

import pytest
from flow_helpers import AS_OF, artifacts_of

from flowcast.errors import FlowcastError, RegistryError


def _flow_runs(name_like: str) -> list:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    async def read() -> list:
        async with get_client() as client:
            return await client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=name_like)))

    return asyncio.run(read())


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("as_child", [False, True], ids=["own-run", "child-run"])
def test_a_failed_run_leaves_no_keyless_result_artifact(flow_kwargs, as_child):
    from prefect import flow

    from flowcast.flows import forecast_flow

    when = AS_OF.replace(day=2 if as_child else 3)  # a run of its own in the session's API

    @flow(name="parent")
    def parent() -> str:
        state = forecast_flow(as_of=when, return_state=True, **flow_kwargs)
        assert state.is_failed()
        with pytest.raises(RegistryError) as err:  # the child's exception, as before, from its state
            state.result()
        return str(err.value)

    if as_child:
        said = parent()
    else:
        with pytest.raises(RegistryError) as err:  # the caller gets flowcast's error, as before
            forecast_flow(as_of=when, **flow_kwargs)
        said = str(err.value)
    (run,) = _flow_runs(f"forecast tiny {when:%Y-%m-%d}%")
    assert run.state.is_failed()
    # the same message as Prefect's own for a raised exception: what the UI, the hooks and the alerts read
    assert run.state.message == f"Flow run encountered an exception: RegistryError: {said}", run.state.message
    assert issubclass(RegistryError, FlowcastError)
    runs = [run, *(_flow_runs("parent%") if as_child else [])]
    keyless = [a for r in runs for a in artifacts_of(str(r.id)).get(None, [])]
    assert keyless == [], [(a.type, a.data) for a in keyless]

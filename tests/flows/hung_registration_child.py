"""`flowcast.flows.deploy.serve` of two deployments, DONE and HUNG (their names), in a process of its own, whose
Prefect API does not answer the registration of HUNG (HANG_S, 40 s): the test signals it for real (SIGTERM, or SIGINT as a
Ctrl-C) once it prints IN_FLIGHT, and reads what it said (one SAID line per message logged to 'prefect' and its
children, at INFO and above) and how serve ended (RETURNED, or RAISED and the exception, raised on).

usage: hung_registration_child.py DONE HUNG THEN
THEN, what else the moment holds (the serve's own signal handling is real; only the moment is chosen here):
  hangs             nothing: the registration waits until it is cut off
  fails             the API answers 503 once the 40 s are up (a serve that waited for it would fail)
  slow_cancel       the cut-off registration holds its loop 2 s as it ends (a stuck call)
  sigint_on_cancel  a SIGINT (Ctrl-C) as the cut-off registration ends, held 0.5 s
  sigterm_on_pause  a SIGTERM as the Ctrl-C's stop pauses DONE (in the serve's main thread)"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

IN_FLIGHT, SAID, RETURNED, RAISED = "in flight", "said: ", "serve returned", "serve raised "
HANG_S = 40.0
"""How long the API takes to answer the hung registration (`hung_registration`): longer than any stop waits."""
Answer = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Awaitable[Any]]
THENS = ("hangs", "fails", "slow_cancel", "sigint_on_cancel", "sigterm_on_pause")


def say(line: str) -> None:
    """`line` on stdout at once (the test polls the log file)."""
    print(line, flush=True)


def hung_registration(hung: str, in_flight: Callable[[], object], on_cancel: Answer, on_answer: Answer,
                      taken: bool = False) -> Callable[..., Awaitable[Any]]:
    """Prefect's `RunnerDeployment.aapply` as an API that does not answer the registration of the deployment named
    `hung` (HANG_S; `taken`: it registered it all the same) sees it: `in_flight()` as that registration begins, then
    what `on_cancel` (a stop cut it off: its cancel taken) or `on_answer` (the HANG_S are up) does, each awaited as
    `answer(deployment, aapply, args, kwargs)` (`aapply`: the real one). The other registrations are the real ones.
    The one set-up of a hung registration, for this process's serve and for the tests' own (test_serve_stop)."""
    from prefect.deployments.runner import RunnerDeployment

    aapply = RunnerDeployment.aapply

    async def slow_api(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.name != hung:
            return await aapply(self, *args, **kwargs)
        if taken:
            await aapply(self, *args, **kwargs)
        in_flight()
        try:
            await asyncio.sleep(HANG_S)
        except asyncio.CancelledError:
            return await on_cancel(self, aapply, args, kwargs)
        return await on_answer(self, aapply, args, kwargs)

    return slow_api


def one_registration_hangs(hung: str, done: str, then: str) -> None:
    """Prefect's API, as this process's serve sees it, hangs on the registration of the deployment `hung` (said
    IN_FLIGHT as it begins: `hung_registration`), and does `then` (THENS) around it."""
    from prefect.client.orchestration import PrefectClient
    from prefect.deployments.runner import RunnerDeployment

    read = PrefectClient.read_deployment_by_name

    async def cut_off(self: Any, aapply: Any, args: Any, kwargs: Any) -> Any:
        if then == "slow_cancel":
            time.sleep(2)  # noqa: ASYNC251 - (it holds the registration's loop, as a stuck call does)
        elif then == "sigint_on_cancel":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # noqa: ASYNC251 - (it holds the registration's loop, as a stuck call does)
        raise asyncio.CancelledError

    async def answered(self: Any, aapply: Any, args: Any, kwargs: Any) -> Any:
        if then == "fails":
            raise RuntimeError("the API answered 503")
        return await aapply(self, *args, **kwargs)

    async def read_sigterming(self: Any, name: str) -> Any:
        if then == "sigterm_on_pause" and threading.current_thread() is threading.main_thread() and done in name:
            os.kill(os.getpid(), signal.SIGTERM)  # (a SIGTERM as the Ctrl-C pauses what serve registered)
            await asyncio.sleep(0.1)
        return await read(self, name)

    RunnerDeployment.aapply = hung_registration(hung, lambda: say(IN_FLIGHT), cut_off, answered)  # type: ignore[method-assign]
    PrefectClient.read_deployment_by_name = read_sigterming  # type: ignore[method-assign]


def main() -> None:
    # a process started with SIGINT ignored (the test suite run as a background job: `make test &`, nohup, CI runners)
    # inherits SIG_IGN, and Python then installs no KeyboardInterrupt handler: a Ctrl-C test that signalled the test
    # process itself hung until its 900 s timeout there; a terminal's Ctrl-C reaches a foreground process, which has
    # Python's own handler: this child is given it, however the suite was started (here, not as the test imports this)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    done_name, hung_name, then = sys.argv[1:]
    assert then in THENS, f"THEN {then!r} is not one of {THENS}"
    from prefect.schedules import Cron

    from flowcast.flows import forecast_flow
    from flowcast.flows.deploy import serve

    done, hung = (forecast_flow.to_deployment(name, schedules=[Cron("* * * * *", timezone="UTC")])
                  for name in (done_name, hung_name))
    one_registration_hangs(hung_name, done_name, then)
    heard = logging.Handler(logging.INFO)
    heard.emit = lambda record: say(SAID + record.getMessage().replace("\n", " "))  # type: ignore[method-assign]
    log = logging.getLogger("prefect")
    log.addHandler(heard)
    log.setLevel(min(log.level or logging.INFO, logging.INFO))
    try:
        serve([done, hung])
    except BaseException as exc:
        say(RAISED + type(exc).__name__)
        raise
    say(RETURNED)


if __name__ == "__main__":
    main()

"""A source URL's secrets kept out of a flow run's parameters, and given back to the flow that reads it.

Prefect keeps a flow run's parameters in its database and shows them in its UI and API: a `--data` URL with a
password or a token (`https://u:PASSWORD@h/x.csv?token=T`) was stored whole there. A command hands its flow the URL
as `redaction.redact` shows it (`https://u:***@h/x.csv?token=***`, `parameter_path`), and the flow takes the URL
back (`secret_path`) from where a user already keeps it:

- the URL this process was given (`flowcast run`, `forecast`, `backfill` and `tune` run their flow in the process of
  the command, which `parameter_path` told), never written anywhere;
- else the configuration of the process the flow runs in (a worker's): a source it declares (`[sources.NAME]` path
  in its flowcast.toml, or FLOWCAST_SOURCES__NAME__PATH) whose URL `redact` shows the same.

A URL with a hidden secret found in neither is refused, naming it as shown and where to give it: read without its
password or token, it would fail with a server's 401 or 403 that says nothing of why.
"""

from __future__ import annotations

from collections.abc import Iterable

from flowcast.redaction import HIDDEN, passwords, redact

# the URLs this process was given, by the form shown in the flow run's parameters (memory only)
_GIVEN: dict[str, str] = {}


def parameter_path(path: str) -> str:
    """`path` (a source's file or URL) as a flow run's parameter holds it: a URL with its secrets `***`, the URL
    itself kept in this process for the flow it starts (`secret_path`); anything else as written. A second URL shown
    the same as one this process was given (another password or token) is refused: the flow, which knows the URL by
    that form alone, would read with the first one's secrets."""
    shown = redact(path) if "://" in path else path
    if shown != path and _GIVEN.setdefault(shown, path) != path:
        from flowcast.errors import ConfigError

        raise ConfigError(
            f"the source {shown} was given twice in this process with different passwords or tokens; a flow run "
            "knows a source by the URL as shown, so it cannot tell them apart: run each in a process of its own")
    return shown


def hides_secrets(path: str) -> bool:
    """Whether `path` is a URL whose password or secret query value is `***` (the form `parameter_path` stores)."""
    return "://" in path and HIDDEN in passwords(path)


def secret_path(path: str, declared: Iterable[str] = ()) -> str:
    """`path` (a flow run's parameter) with the secrets `parameter_path` hid: the URL this process was given, else
    the one of `declared` (the paths of the sources this process's configuration declares) that `redact` shows as
    `path`. A path that hides none is returned as it is; one whose URL is in neither place is refused."""
    if not hides_secrets(path):
        return path
    if path in _GIVEN:
        return _GIVEN[path]
    for candidate in declared:
        if "://" in candidate and candidate != path and redact(candidate) == path:
            return candidate
    from flowcast.errors import ConfigError

    raise ConfigError(
        f"the source {path} holds a password or token that a flow run's parameters do not store (Prefect shows them); "
        "this process was not given it: declare the URL in this worker's configuration ([sources.NAME] path in its "
        "flowcast.toml, or FLOWCAST_SOURCES__NAME__PATH), or run it with `flowcast run --data URL` on this machine")

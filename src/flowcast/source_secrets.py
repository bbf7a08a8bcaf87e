"""A source URL's secrets kept out of what Prefect stores of a flow run, whichever way the run starts.

Prefect keeps a flow run's parameters in its database and shows them in its UI and API: a source URL with a password
or a token (`https://u:PASSWORD@h/x.csv?token=T`, `postgresql://u:PW@h/db?table=t`, `s3://KEY:SECRET@bucket/x`) was
stored whole there, as were a keyword DSN's password (`host=db user=u password=PW dbname=x`) and an object store's
options (`shared_options`, `store.storage_options`: `{"key": K, "secret": S}`, secrets51). "Secrets" below are all
three: what `stored_parameters` shows `***` (an option whose name says it is a secret, `SECRET_OPTION`).

- A flow called in a process: `flowcast run`, `forecast`, `backfill` and `tune` (their flow runs in the command's
  process), a backfill's dates (subflows), or a flow called from Python (`retrain_flow(source={"path": URL, ...})`).
  Prefect stores the parameters of such a call as it creates the run, before the flow's body (or its parameters'
  validation) runs, through `Flow.serialize_parameters`, the one place it turns a call's parameters into what it
  stores. The flows are `SecretSafeFlow`s (`flow`, as Prefect's `@flow`), whose `serialize_parameters` stores every
  URL of the parameters `redact`ed (`stored_parameters`: `https://u:***@h/x.csv?token=***`; one within other text,
  a keyword DSN's password next to another of its pairs: `redact_parameter`); the flow's body is given
  the values themselves, in memory, and they are written nowhere.
- A run created through the API with its parameters (a deployment's Run form in the Prefect UI, `run_deployment`,
  `prefect deployment run --param`): the server stores them as sent, before any flowcast code runs. A deployment's
  parameter schema refuses a source whose URL shows a password or a secret query value (`VISIBLE_SECRET`, applied by
  `flows.parameters.form_schema`; a DSN's password, an option's secret: `SECRET_FREE_OPTIONS` there, naming the
  option): the server answers 409 and stores nothing. A caller may turn that check off for one run
  (`enforce_parameter_schema=false`): such a run, as it starts, has its stored parameters replaced by
  `stored_parameters` of them (Prefect's `PATCH /flow_runs/{id}`), says so in a warning, and runs on those, as a run
  sent with `***` does (`SecretSafeFlow`'s body, `_withdraws_shown_secrets`). Such a run names the URL as shown
  (`***` for each secret), and the flow takes the URL itself from the configuration of the process it runs in (a
  worker's: `secret_path`), a source it declares (`[sources.NAME]` path in its flowcast.toml, or
  FLOWCAST_SOURCES__NAME__PATH) whose URL a stored parameter shows the same. A backfill's dates sent to a deployment
  (`backfill --deployment`) name their URL as shown (`stored_parameters`), for the same reason, and those of their
  `overrides` (`store.url`, `shared`, an option's secret): a worker reads each from its own configuration
  (`secret_settings`), as it reads the source's.

A URL with a hidden secret that the configuration does not declare is refused, naming it as shown and where to give
it: read without its password or token, it would fail with a server's 401 or 403 that says nothing of why.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from prefect.flows import Flow

from flowcast.redaction import (
    DSN_KEYS,
    DSN_PAIR,
    DSN_SECRET_KEYS,
    DSN_VALUE,
    HIDDEN,
    KEY_VALUE,
    LOCATION_KEYS,
    LOCATION_SECRET_ENDS,
    LOCATION_SECRET_NAME,
    NAME_BEFORE,
    NOT_A_FILE,
    PERCENT_WORD,
    SECRET_NAME_ENDS,
    SECRET_NAMES,
    TEXT_ENDS,
    WORD_START,
    ascii_names,
    ending_before,
    next_pair,
    percent_encoded,
    redact_location,
    redact_log_text,
    redact_parameter,
)

P = ParamSpec("P")
R = TypeVar("R")


def _any_case(pattern: str) -> str:
    """`pattern` (letters and regex marks) matching its letters in any case, without a flag (JSON schema has none)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in pattern)


def _atomic(pattern: str, group: int) -> str:
    """`pattern` matched once, as much as it first matches, never given back (an atomic group, which ECMA-262 lacks:
    a lookahead's capture then a backreference to it, capturing group number `group` of the whole pattern)."""
    return rf"(?=({pattern}))\{group}"


def _atomic_pair(group: int) -> str:
    """`redaction.DSN_PAIR` whose value is read `_atomic` (capturing group number `group`)."""
    return DSN_PAIR.replace(f"(?:{DSN_VALUE})", _atomic(DSN_VALUE, group))


# A JSON-schema `pattern` (ECMA-262 and Python `re` alike) found in a URL that shows a secret: a password after the
# user that is not `***`, or a non-empty secret query value that is not `***` (named as `redaction` reads them). The
# password is the one `redaction.redact` hides, to an '@': one holding a '/', '?' or '#' too (`https://u:12/x@h`,
# `postgresql://u:p?s/s@h/db`: they were not seen, fixrev50), but for digits then a '/' or '?' that read as a port and
# a path (`h:5432/db?application_name=a@b`, `h:443/@scope/x`: `redaction._no_userinfo`): a query that names a value
# before the '@', or, but in a PostgreSQL URL, a '/' just before it. A Windows drive is no user (`file://C:/u@x.csv`).
_USER_COLON = r"://(?![A-Za-z]:[/\\])[^:/?#@\s\[\]]*:(?!\*\*\*@)"
_PASSWORD_TO_AT = (r"(?:(?!\d+[/?])[^@]+"  # no port's digits then a '/' or '?'
                   r"|\d+/[^?@]*[^/?@]"  # digits, a path and no query, no '/' before the '@'
                   r"|\d+(?:/[^?@]*)?\?(?:[^=@]*[^=@/])?)@")  # digits, a query naming no value, no '/' before the '@'
# `redaction.TEXT_ENDS` as a class of characters (ECMA-262 and Python `re` alike)
_TEXT_END_MARKS = "[" + TEXT_ENDS.replace("]", "\\]") + "]"
# where a DSN value's text ends but at a space or its closing quote: the text's end, or a '\' that escapes nothing
_ESCAPES_NOTHING = r"(?![\s\S])|\\(?:\n|(?![\s\S]))"
# `redaction.DSN_KEYS` and `DSN_SECRET_KEYS`, any case
_DSN_KEYS = "|".join(map(_any_case, DSN_KEYS))
_DSN_SECRET_KEYS = "|".join(map(_any_case, DSN_SECRET_KEYS))
# a DSN's value within text that shows a secret (its first character): quoted, neither empty nor `***`; or unquoted
# (to a space, or a '\' that escapes no character), neither `***` nor the marks that end a clause alone (`TEXT_ENDS`:
# `password=***',`)
# A value in double quotes as in single ones (`redaction._TEXT_QUOTED`: `password="s3 cret"`, fixD53)
_SHOWN_VALUE = (r"(?:'(?!(?:\*\*\*)?(?:'|" + _ESCAPES_NOTHING + "))"
                + r"|\"(?!(?:\*\*\*)?(?:\"|" + _ESCAPES_NOTHING + "))"
                + r"|(?!(?:\*\*\*)?" + _TEXT_END_MARKS + r"*(?:\s|" + _ESCAPES_NOTHING + r"))(?:[^\s'\"\\]|\\.))")


def _to_next_pair(value: str) -> str:
    """`value` (`redaction.DSN_VALUE`, `KEY_VALUE`) read unquoted to the next pair of `DSN_KEYS` within it whose own
    unquoted value ends where it does (`redaction.next_pair`)."""
    return ending_before(value, next_pair(_DSN_KEYS))


VISIBLE_SECRET = (
    _USER_COLON + _PASSWORD_TO_AT
    + "|" + _any_case("postgres") + "(?:" + _any_case("ql") + ")?" + _USER_COLON + r"\d+(?:/[^?@]*)?(?:\?[^=@]*)?@"
    # a secret query value in text that holds a '://' (`redaction.redact` reads none in text without one: a file's
    # glob `/d/x?token=1.csv`, a note's `?token=t`; the form refused them, secrets53), a fragment's first too
    # (`#access_token=abc`, secrets53b)
    + r"|^(?=[\s\S]*?://)[\s\S]*?"
    # its name's characters percent-encoded too (`?tok%65n=a`: `redaction.percent_encoded`, secrets54)
    + rf"[?&;#](?:(?:[\w.-]|{PERCENT_WORD})*(?:{'|'.join(map(percent_encoded, SECRET_NAME_ENDS))})"
    + rf"|{'|'.join(map(percent_encoded, SECRET_NAMES))})="
    r"(?!\*\*\*(?:[&#]|$))[^&#]"
    # a keyword DSN (text of `keyword=value` pairs alone: `redaction.DSN_PAIR`) whose password or sslpassword is neither
    # empty nor `***` (quoted or not: `password='***'`; an unterminated quote runs to the end). The value of each pair
    # before and after the secret's is read whole, once (`_atomic`): an unterminated quote that could stop at any space
    # before another pair was read again from each, in each way (`host=' ` repeated, 512 characters: 20 s, fixF53)
    + rf"|^\s*(?:{_atomic_pair(1)}\s+)*(?:{'|'.join(map(_any_case, DSN_SECRET_KEYS))})\s*=\s*"
    + r"(?!(?:\*\*\*'*|'\*\*\*'?|''?)(?:\s|$))"
    + rf"(?:{DSN_VALUE})(?:\s+{_atomic_pair(2)})*\s*$"
    # a keyword DSN's password or sslpassword within text (`redaction.redact_parameter`), where a word starts, next to
    # a pair of `DSN_KEYS` (one before it and spaces: `conn host=db password=s3cret; select 1`; or spaces and one's
    # '=' after its value: `password=s3cret dbname=x`)
    # (its value's spaces escaped too, `host=a\ b password=s3cret`: `redaction._ESCAPED_KEY_PAIR`)
    # An unquoted value is read to the next pair within it whose own unquoted value ends where it does
    # (`redaction.next_pair`; a secret's, shown): `,host=` repeated was read to its end from each pair (secrets54)
    + rf"|(?:^|[{WORD_START}])(?:{_DSN_KEYS})\s*=\s*(?:{_to_next_pair(KEY_VALUE)}|{_to_next_pair(DSN_VALUE)})\s+"
    + rf"(?:{_DSN_SECRET_KEYS})\s*=\s*" + _SHOWN_VALUE
    + rf"|(?:^|[{WORD_START}])(?:{_DSN_SECRET_KEYS})\s*=\s*(?={_SHOWN_VALUE})"
    + rf"(?:{ending_before(DSN_VALUE, next_pair(_DSN_SECRET_KEYS, f'(?={_SHOWN_VALUE})'))})\s+(?:{_DSN_KEYS})\s*="
)
# secrets53: the names of a run's parameters that give a location, a URL or a DSN (a source's `path`, `store.url`,
# `shared`, a `*_url`, a `*_dsn`; any case), stored as `redaction.redact_location` shows them: what the form refuses
# there (`VISIBLE_LOCATION_SECRET`), a secret's `name=value` anywhere in a URL's or a DSN's text too. Free text of
# another name that holds one is stored as written (a note's `password = ...` is no secret's), and said at deploy time
# (`free_text_secrets`)
LOCATION_NAME = "^(?:" + "|".join(map(_any_case, ("path", "shared", "url", "dsn"))) + ")$|_(?:" + "|".join(
    map(_any_case, ("url", "dsn"))) + ")$"
_LOCATION_NAME = re.compile(LOCATION_NAME)
VISIBLE_LOCATION_SECRET = (
    VISIBLE_SECRET
    + rf"|^(?=[\s\S]*?(?:{NOT_A_FILE}|(?:^|[{WORD_START}])(?:{'|'.join(map(_any_case, LOCATION_KEYS))})\s*=))[\s\S]*?"
    + rf"(?:^|[{WORD_START}]){NAME_BEFORE}(?:{'|'.join(map(_any_case, LOCATION_SECRET_ENDS))})\s*=\s*{_SHOWN_VALUE}"
)
# the same name with a value where a word starts in any text (`free_text_secrets`), `redaction.LOCATION_SECRET_NAME`
_NAMED_SECRET = re.compile(
    rf"(?<![^{WORD_START}])({ascii_names(LOCATION_SECRET_NAME)})\s*=\s*(?!\*\*\*|'\*\*\*'|''|\s|$)", re.IGNORECASE)


def is_location(name: str) -> bool:
    """Whether a parameter or setting named `name` gives a location (`LOCATION_NAME`)."""
    return bool(_LOCATION_NAME.search(name))


def stored_text(text: str, location: bool) -> str:
    """A run's parameter's `text` as stored: `redact_location`ed where it gives a `location`, else
    `redact_parameter`ed."""
    return redact_location(text) if location else redact_parameter(text)


# The options of an fsspec filesystem that a run's parameters may give (a setting named `*options`: `shared_options`,
# `store.storage_options`, stored whole before secrets51), and the names among them (any depth: `client_kwargs`)
# whose value is a secret: one ending in `password`, `secret`, `token`, `key` (`key`, `account_key`,
# `aws_secret_access_key`), `signature`, `connection_string`, `credential(s)`, `passphrase`, `authorization`
# (`headers.Authorization`: fixA51) or `auth` but `oauth` (`_AUTH_WORD`), `sig` alone, or one holding `secret`. A pattern
# of JSON schema and Python's `re` alike, any case (`_any_case`): the form refuses what `stored_parameters` hides.
OPTIONS = "options"
_OPTION_SECRET_ENDS = ("password", "passwd", "pwd", "secret", "token", "signature", "key", "connection_string",
                       "credentials?", "passphrase", "authorization")
# `auth` ending a name (`auth`, `proxy_auth`, `AUTH`, `basicAuth`, `proxyauth`: secrets53, it was shown), but after an
# 'o' (`oauth`, `use_oauth`, `OAuth`: a flag, a provider's name) is no secret's: its value was hidden (secrets52); its
# dicts' secrets are hidden by their own names (`client_secret`).
_AUTH_WORD = _any_case("(?<!o)auth") + "$"
# What a secret option may hold that is no secret, shown as it is (with a boolean, a null and an empty text): gcsfs's
# `token="anon"` (anonymous access)
NOT_SECRET = ("anon",)
SECRET_OPTION = "|".join([f"(?:{'|'.join(map(_any_case, _OPTION_SECRET_ENDS))})$", _AUTH_WORD,
                          f"^{_any_case('sig')}$", _any_case("secret")])
_SECRET_OPTION = re.compile(SECRET_OPTION)
# gcsfs's `token` option (the name alone, any case) where it names how to authenticate, no secret, shown as it is
# (secrets52: hidden): `TOKEN_MODES`. Any other text (a service account's JSON, its key file's path, an OAuth token),
# a number, a list or a dict is a secret (be conservative: `token: "default"`, no gcsfs mode, is hidden).
TOKEN_OPTION = f"^{_any_case('token')}$"
TOKEN_MODES = ("anon", "google_default", "cloud", "cache", "browser")
_TOKEN_OPTION = re.compile(TOKEN_OPTION)
# a secret option's name but gcsfs's `token` (`TOKEN_OPTION`): the form's check of a secret option's value
# (`flows.parameters`), which allows `TOKEN_MODES` for `token` alone
SECRET_OPTION_BUT_TOKEN = rf"^(?!{_any_case('token')}$)[\s\S]*(?:{SECRET_OPTION})"


def stored_parameters(value: Any) -> Any:
    """`value` (a flow run's parameters as Prefect serializes them: JSON's dicts, lists, strings, numbers) with every
    URL or keyword DSN `redact`ed, within other text too (`redaction.redact_parameter`), and every secret of an fsspec
    options dict (a key named `*options`) `***` (`stored_options`): what Prefect may store and show of them."""
    if isinstance(value, str):
        return redact_parameter(value)
    if isinstance(value, dict):
        return {k: stored_options(v) if str(k).lower().endswith(OPTIONS)
                else _stored_location(v) if is_location(str(k)) else stored_parameters(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [stored_parameters(v) for v in value]
    return value


def _stored_location(value: Any) -> Any:
    """`value` given under a location's name (`is_location`) as `stored_parameters` stores it: its text, and each text
    of its list, a location's (`stored_text`: `{"shared": ["postgresql://h/db (token=***)"]}` was stored as free text,
    `token=abc` as written, secrets53b); anything else as any parameter's."""
    if isinstance(value, str):
        return stored_text(value, True)
    if isinstance(value, (list, tuple)):
        return [stored_text(v, True) if isinstance(v, str) else stored_parameters(v) for v in value]
    return stored_parameters(value)


def stored_options(value: Any) -> Any:
    """`value` (fsspec options: `{"key": ..., "secret": ..., "client_kwargs": {"aws_secret_access_key": ...}}`) as
    `stored_parameters`, the value of each option whose name says it is a secret (`SECRET_OPTION`) `hidden` (gcsfs's
    `token` shown where it is one of `TOKEN_MODES`)."""
    if isinstance(value, dict):
        return {k: hidden(v, TOKEN_MODES if _TOKEN_OPTION.search(str(k)) else NOT_SECRET)
                if _SECRET_OPTION.search(str(k)) else stored_options(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [stored_options(v) for v in value]
    return stored_parameters(value)


def hidden(value: Any, shown: tuple[str, ...] = NOT_SECRET) -> Any:
    """A secret option's `value` as stored: each text and number in it `***`, at any depth of its lists and dicts
    (`token: ["abc"]`, `password: 123456`, a service account's dict: they were stored whole, fixA51); an empty text,
    one of `shown` (`NOT_SECRET`: `anon`; gcsfs's `token` takes `TOKEN_MODES`), and within its lists and dicts
    `NOT_SECRET`, a boolean (s3fs's `anon: true`) and a null as they are."""
    if isinstance(value, dict):
        return {k: hidden(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [hidden(v) for v in value]
    if value is None or isinstance(value, bool) or value == "" or value in shown:
        return value
    return HIDDEN


class SecretSafeFlow(Flow[P, R]):
    """A Prefect flow whose runs' stored parameters name each URL without its secrets (`stored_parameters`); its body
    is called with the parameters as given, but in a run whose stored parameters show a secret (sent through the API
    with the form's check off): there it is called with them shown, which replace them (`_withdraws_shown_secrets`).
    Parameters that fail their validation are logged and raised as stored (`validate_parameters`).
    (Prefect's `Flow.with_options` makes a plain `Flow`: flowcast makes
    none of its flows that way.)"""

    def __init__(self, fn: Callable[P, R], **options: Any):
        super().__init__(_withdraws_shown_secrets(fn), **options)

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Prefect's serialized `parameters`, the form it stores and shows, each URL in them redacted."""
        stored: dict[str, Any] = stored_parameters(super().serialize_parameters(parameters))
        return stored

    def validate_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Prefect's validation of `parameters`, which, where it fails, logs and raises them as stored
        (`serialize_parameters`) and its error's text redacted (`redact_log_text`): Prefect's own line
        (`Parameter validation failed for flow ...` then `Parameters: {...}`, each value and its error's input as given)
        showed a DSN's password and an option's secret, which no filter of its text finds (fixA51); it is withheld."""
        from prefect.exceptions import ParameterTypeError

        _withhold_validation_line()
        withheld: list[logging.LogRecord] = []
        token = _WITHHELD.set(withheld)
        try:
            return super().validate_parameters(parameters)
        except ParameterTypeError as exc:
            failed = exc
        finally:
            _WITHHELD.reset(token)
        said = redact_log_text(str(failed))
        if withheld:  # Prefect's line, said as stored (this context withholds it no more)
            logging.getLogger(withheld[0].name).error(
                f"{_VALIDATION_FAILED}{self.name!r}: {said}\nParameters: {self.serialize_parameters(parameters)}")
        raise ParameterTypeError(said)


# Prefect's line as a flow's parameters fail their validation (`prefect.flows`: `Flow.validate_parameters`), and the
# lines of it withheld in this context, a call of `SecretSafeFlow.validate_parameters` (None outside one)
_VALIDATION_FAILED = "Parameter validation failed for flow "
_WITHHELD: ContextVar[list[logging.LogRecord] | None] = ContextVar("flowcast_withheld_validation", default=None)


class _WithholdValidationLine(logging.Filter):
    """Withholds Prefect's `_VALIDATION_FAILED` line in a call of `SecretSafeFlow.validate_parameters` (which logs it
    as stored), keeping it in the call's list; any other line passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        withheld = _WITHHELD.get()
        if withheld is None or not str(record.msg).startswith(_VALIDATION_FAILED):
            return True
        withheld.append(record)
        return False


def _withhold_validation_line() -> None:
    """Add `_WithholdValidationLine` to Prefect's `prefect.flows` logger, once."""
    from prefect.logging import get_logger

    logger = get_logger("flows")
    if not any(isinstance(f, _WithholdValidationLine) for f in logger.filters):
        logger.addFilter(_WithholdValidationLine())


def _withdraws_shown_secrets(fn: Callable[P, R]) -> Callable[P, R]:
    """A flow's body that, run by a flow run whose stored parameters show a secret, replaces them in Prefect with
    `stored_parameters` of them (the API's PATCH of a flow run), says so in a warning, and runs on those, the
    secrets `***`: the worker's configuration gives each (`secret_path`, `secret_settings`), or the run is refused
    naming it. Only a run created through the API stores them so: one sent with `enforce_parameter_schema=false`
    (`run_deployment`, `POST /deployments/{id}/create_flow_run`), which the deployment's form does not check. A flow
    called in a process stores its parameters redacted already (`SecretSafeFlow.serialize_parameters`)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        if ctx is None or ctx.flow is None or ctx.flow.fn is not run or ctx.flow_run is None:
            return fn(*args, **kwargs)  # not this flow's run: its `.fn` called as a function
        stored = ctx.flow_run.parameters
        shown = stored_parameters(stored)
        if shown == stored:
            return fn(*args, **kwargs)
        from prefect import get_client
        from prefect.logging import get_run_logger
        from prefect.utilities.callables import parameters_to_args_kwargs

        with get_client(sync_client=True) as client:
            client.update_flow_run(ctx.flow_run.id, parameters=shown)
        ctx.flow_run.parameters = shown
        get_run_logger().warning(
            f"This flow run's parameters showed a password or token ({', '.join(_changed(stored, shown))}): the "
            "Prefect API stored them as sent, with the deployment's parameter schema not enforced "
            "(enforce_parameter_schema=false). They are replaced by the same parameters with each secret ***, and "
            "the run reads the secrets this worker's configuration declares")
        given = ctx.flow.validate_parameters(shown) if ctx.flow.should_validate_parameters else shown
        ctx.parameters = given
        positional, named = parameters_to_args_kwargs(fn, given)
        return fn(*positional, **named)

    return run


def _changed(stored: Any, shown: Any, where: str = "") -> list[str]:
    """The places of `stored` (a flow run's parameters) that `shown` (`stored_parameters` of them) hides a secret of,
    each named with its value as shown: `source.path = https://u:***@h/x.csv`."""
    if isinstance(stored, dict) and isinstance(shown, dict):
        return [c for k in stored for c in _changed(stored[k], shown.get(k), f"{where}.{k}" if where else str(k))]
    if isinstance(stored, list) and isinstance(shown, list):
        return [c for i, (a, b) in enumerate(zip(stored, shown)) for c in _changed(a, b, f"{where}[{i}]")]
    return [] if stored == shown else [f"{where} = {shown}"]


def flow(**options: Any) -> Callable[[Callable[P, R]], Flow[P, R]]:
    """Prefect's `@flow(**options)`, making a `SecretSafeFlow`."""

    def make(fn: Callable[P, R]) -> Flow[P, R]:
        return SecretSafeFlow(fn, **options)

    return make


# what `hides_secrets` puts in each `***`'s place: two secrets of one character that every pattern of `redaction` reads
# alike (no word's letter, no mark of a URL, a DSN or a clause), which `redact_parameter` hides where it hides a secret
# (`***` it leaves as it is)
_ONE_CHARACTER_SECRETS = ("\ue000", "\ue001")


def hides_secrets(path: str, location: bool = False) -> bool:
    """Whether `path` (a flow run's parameter as stored) holds a `***` where `redact_parameter` hides a secret: a URL's
    password or secret query value, a keyword DSN's password, whole or within other text (`host=db password=*** dbname=x
    # prod`: it was run with `***`, fixF52). `path` is read twice, each `***` a secret of one character, the first
    character of `_ONE_CHARACTER_SECRETS` then the second: the two readings are alike but where such a secret is shown,
    so each shown is where they differ, and one is hidden where fewer than the `***` differ. (A character stood for
    each `***` in one reading, and a secret was hidden where fewer of it were left: a path that held that character
    itself where a secret is hidden, `https://u:<U+E000>@h/***.csv`, was read so, secrets53.) A `location`'s `path` is
    read as a location's parameter is stored (`stored_text`)."""
    if HIDDEN not in path:
        return False
    first, second = (stored_text(path.replace(HIDDEN, c), location) for c in _ONE_CHARACTER_SECRETS)
    shown = sum(a != b for a, b in zip(first, second, strict=True))
    return shown < path.count(HIDDEN)


def secret_path(path: str, declared: Iterable[str] = ()) -> str:
    """`path` (a flow run's parameter) with the secrets a stored parameter hides: the one of `declared` (the paths of
    the sources this process's configuration declares) that a stored parameter shows as `path` (`redact_parameter`).
    A path that hides none is returned as it is; one that no declared source's URL matches is refused."""
    if not hides_secrets(path, location=True):
        return path
    for candidate in declared:
        if candidate != path and redact_location(candidate) == path:
            return candidate
    raise _undeclared(f"the source {path}", "the URL in this worker's configuration ([sources.NAME] path in its "
                      "flowcast.toml, or FLOWCAST_SOURCES__NAME__PATH), or run it with `flowcast run --data URL` on "
                      "this machine")


def secret_settings(given: Any, declared: Any, where: str = "") -> Any:
    """`given` (a flow run's `overrides` as a nested dict, or one of its values) with each URL that hides its secrets
    (`hides_secrets`: `store.url`, `shared` as a deployment run's stored parameters hold them) the value at the same
    place of `declared` (the same settings as this process's configuration gives them) that a stored parameter shows
    the same (`redact_parameter`),
    and each `***` alone of options (`*options`: an option's secret, `stored_options`) the value there:
    a worker ran such a run with a literal `***` credential (fixrev50). One its configuration does not give is
    refused, naming the setting and where to declare it."""
    if isinstance(given, str):
        parts = re.split(r"[.\[]", where)
        option = given == HIDDEN and any(part.lower().endswith(OPTIONS) for part in parts)
        # a location's text, or one of a list's under a location's name (`shared[0]`: `_stored_location`)
        location = is_location(parts[-1]) or len(parts) > 1 and parts[-1][:-1].isdigit() and is_location(parts[-2])
        if not option and not hides_secrets(given, location):
            return given
        if declared is not None and declared != given and (option or isinstance(declared, str)
                                                           and stored_text(declared, location) == given):
            return declared  # an option's secret (`stored_options`: a number too, `password: 123456`), or a URL's
        env = "FLOWCAST_" + where.upper().replace(".", "__")
        raise _undeclared(f"the setting {where} = {given}", f"it in this worker's configuration ({where} in its "
                          f"flowcast.toml, or {env})")
    if isinstance(given, dict):
        mine = declared if isinstance(declared, dict) else {}
        return {k: secret_settings(v, mine.get(k), f"{where}.{k}" if where else str(k)) for k, v in given.items()}
    if isinstance(given, (list, tuple)):
        same = isinstance(declared, (list, tuple)) and len(declared) == len(given)
        return [secret_settings(v, declared[i] if same else None, f"{where}[{i}]") for i, v in enumerate(given)]
    return given


def free_text_secrets(parameters: Any, where: str = "") -> list[str]:
    """The places of `parameters` (a deployment's, as `stored_parameters` stores them) whose free text, no location's
    (`is_location`) nor an option's, holds a secret's `name=value` (`password = s3cret`, `pwd=`, `token=`) that it
    stores as written, each named with the secret's name, not its value (`note (password=)`): a note's words are no
    secret, so they are not hidden, but a deployment that gives such text is said at deploy time (secrets53: it was
    stored and shown without a word)."""
    if isinstance(parameters, str):
        found = _NAMED_SECRET.search(redact_parameter(parameters))
        return [f"{where} ({found[1]}=)"] if found else []
    if isinstance(parameters, dict):
        return [place for k, v in parameters.items() if not str(k).lower().endswith(OPTIONS)
                for place in (_free_text_beside_locations if is_location(str(k)) else free_text_secrets)(
                    v, f"{where}.{k}" if where else str(k))]
    if isinstance(parameters, (list, tuple)):
        return [place for i, v in enumerate(parameters) for place in free_text_secrets(v, f"{where}[{i}]")]
    return []


def _free_text_beside_locations(value: Any, where: str) -> list[str]:
    """`free_text_secrets` of `value` given under a location's name (`is_location`): its text, and each text of its
    list, is a location's (`_stored_location`), no free text; anything else is read as any parameter's."""
    if isinstance(value, str):
        return []
    if isinstance(value, (list, tuple)):
        return [place for i, v in enumerate(value) if not isinstance(v, str)
                for place in free_text_secrets(v, f"{where}[{i}]")]
    return free_text_secrets(value, where)


def _undeclared(what: str, declare: str) -> Exception:
    """The refusal of `what`, a run's value whose password or token is hidden, that this process's configuration does
    not declare (`declare`: what to do)."""
    from flowcast.errors import ConfigError

    return ConfigError(f"{what} holds a password or token that a flow run's parameters do not store (Prefect shows "
                       f"them); this process's configuration does not declare it: declare {declare}")

"""Errors a user reads: one line each (flowcast.errors)."""

from __future__ import annotations

import pytest

from flowcast.config import load_settings
from flowcast.errors import (
    AlreadyPublished,
    DataValidationError,
    FlowcastError,
    StorageError,
    StoreUnreachableError,
    earlier_errors,
    earlier_said,
    lock_lost_outcome,
    one_line,
    removal,
)


def test_a_misspelled_setting_is_unknown_and_names_the_one_it_may_be(tmp_path):
    """Regression: a misspelled key said pydantic's 'Extra inputs are not permitted' and no more; it says
    'unknown setting' and names the nearest key of its section (also inside [sources.NAME])."""
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text('hom = "x"\n[model]\nmax_step = 5\n[sources.sales]\npath = "a.csv"\ntime_col = "d"\n'
                   'target_col = "y"\nfreq = "1d"\nfutur_cols = ["promo"]\nzzzz = 1\n')
    with pytest.raises(ValueError) as err:
        load_settings(cfg)
    said = one_line(err.value).replace(f" in {cfg}", "")  # each names the file (and the value written there)
    assert """hom = "x": unknown setting (did you mean 'home'?)""" in said
    assert "model.max_step = 5: unknown setting (did you mean 'max_steps'?)" in said
    assert """sources.sales.futur_cols = ["promo"]: unknown setting (did you mean 'future_cols'?)""" in said
    assert "sources.sales.zzzz = 1: unknown setting;" in said + ";" and "Extra inputs" not in said


@pytest.mark.parametrize(("toml", "said"), [
    ('dataset = "mine"\n[source.mine]\npath = "a.csv"\ntime_col = "d"\ntarget_col = "y"\nfreq = "1d"\n',
     ("source.mine: a named source is a [sources.mine] table ('sources', plural; [source] holds the settings of one "
     "unnamed source), read with dataset = 'mine' or --dataset mine")),
    ('[source.mine]\npath = "a.csv"\n[model]\nmax_step = 5\n',  # beside another error, each said once
     ("source.mine: a named source is a [sources.mine] table ('sources', plural; [source] holds the settings of one "
     "unnamed source), read with dataset = 'mine' or --dataset mine; model.max_step = 5 in {cfg}: unknown setting "
     "(did you mean 'max_steps'?)")),
])
def test_a_named_source_under_source_singular_points_to_sources(tmp_path, toml, said):
    """Regression: [source.mine] for [sources.mine] said 'source.path: Field required; source.time_col: Field
    required; ...; source.mine: unknown setting (did you mean 'y_min'?)': four missing fields the table had, and a
    suggestion from the wrong vocabulary. It now names the table and the section it belongs in."""
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(toml)
    with pytest.raises(ValueError) as err:
        load_settings(cfg)
    assert one_line(err.value) == said.format(cfg=cfg)


def _error_classes():
    import inspect

    from flowcast import errors
    from flowcast.flows.backfill import BackfillError

    # (BackfillError: the one defined elsewhere, a failed backfill flow's)
    return [c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, BaseException) and c.__module__ == errors.__name__] + [BackfillError]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_survives_a_pickle_round_trip(cls):
    """Regression: an error whose __init__ takes more than its message (StoreUnreachableError's server,
    AlreadyPublished's held, SettingsValueError's errors) could not be unpickled (a TypeError where Prefect or a
    worker process hands it back: the error a user should read lost). Each comes back whole, its attributes too."""
    import inspect
    import pickle

    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    args = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    if params and params[0].name == "message":
        args["message"] = "what went wrong"
    if "errors" in args:  # SettingsValueError: pydantic's list
        args["errors"] = [{"loc": ("model", "max_steps"), "msg": "bad", "input": "abc", "type": "int_parsing"}]
    err = cls(**args)
    for name, value in {"server": "host h, port 1, database d", "held": {"run_id": "r1"}}.items():
        if name in vars(err):
            setattr(err, name, value)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == str(err) and vars(back) == vars(err)


@pytest.mark.parametrize("what, outcome", [
    ("the publish record of dataset d as_of 2024-03-01", "the publish record of dataset d as_of 2024-03-01 was not written"),
    (removal("the publish record of dataset d as_of 2024-03-01"),
     "the publish record of dataset d as_of 2024-03-01 was not removed"),
    (removal("s3://b/models/versions/v1"), "s3://b/models/versions/v1 was not removed"),
    ("the removal", "the removal was not written"),  # no thing named: a write's wording
])
def test_a_lost_lock_says_what_was_not_written_or_not_removed(what, outcome):
    """words44: a lost lock that guarded a deletion said `the removal of X was not written`; it says `X was not
    removed` now, a write still `X was not written`."""
    assert lock_lost_outcome(what) == outcome


@pytest.mark.parametrize("error", [
    lambda m: FlowcastError(m), lambda m: DataValidationError(m), lambda m: AlreadyPublished(m, {"run_id": "r1"}),
    lambda m: StoreUnreachableError(m, server="host h", advice="check it"),
])
def test_an_error_s_message_names_a_url_without_its_secrets_pickled_too(error):
    """redact48: an error naming the URL it could not read (a source's, a store's) showed its password and token
    wherever it was printed or kept (the CLI, the run's state in Prefect's database, an artifact)."""
    import pickle

    exc = error("cannot read https://u:pw1@h/x.csv?token=tok2 nor postgresql://v:pw3@k/db?application_name=a@b")
    said = "cannot read https://u:***@h/x.csv?token=*** nor postgresql://v:***@k/db?application_name=a@b"
    assert str(exc) == said
    assert str(pickle.loads(pickle.dumps(exc))) == said  # a Prefect state, a worker's error


@pytest.mark.parametrize("error", [lambda m: FlowcastError(m), lambda m: StoreUnreachableError(m, server="host h")])
def test_an_error_s_message_names_a_keyword_dsn_without_its_password_pickled_too(error):
    """secrets52: an error's message hid a URL's secrets but showed a keyword DSN's password, as a log line does not
    (`redact_log_text`)."""
    import pickle

    exc = error("cannot connect to host=db user=u password='s3 cret' dbname=x, nor https://u:pw1@h/x.csv")
    said = "cannot connect to host=db user=u password=*** dbname=x, nor https://u:***@h/x.csv"
    assert str(exc) == said
    assert str(pickle.loads(pickle.dumps(exc))) == said


def test_an_error_without_a_url_keeps_its_message_and_arguments():
    exc = FlowcastError("password authentication failed for user 'u'", 3)
    assert exc.args == ("password authentication failed for user 'u'", 3)


def _raised_while_handling(first: BaseException, second: BaseException, how: str) -> BaseException:
    """`second` raised while `first` was handled: `how` 'context' (no `from`), 'cause' (`from first`), 'none'
    (`from None`)."""
    try:
        try:
            raise first
        except BaseException as handled:
            if how == "cause":
                raise second from handled
            if how == "none":
                raise second from None
            raise second
    except BaseException as exc:  # noqa: BLE001
        return exc


@pytest.mark.parametrize("first, second, how, said", [
    # an explained error hidden by a later one: both said, the later first
    (DataValidationError("no rows"), StorageError("could not write q.parquet"), "context",
     "; raised while handling an earlier error: DataValidationError: no rows"),
    (DataValidationError("no rows"), KeyError("x"), "context",
     "; raised while handling an earlier error: DataValidationError: no rows"),
    # after an error flowcast does not explain, any earlier one: it may be the one to mend
    (ValueError("bad padding"), KeyError("x"), "context", "; raised while handling an earlier error: ValueError: bad padding"),
    (ValueError(), KeyError("x"), "context", "; raised while handling an earlier error: ValueError"),
    # a library's error that an explained one replaced on purpose: that one says what it means
    (FileNotFoundError("x.csv"), DataValidationError("file not found: x.csv"), "context", ""),
    # an explicit cause, or none, is the raiser's choice; a Ctrl-C is an interrupt, said as one
    (DataValidationError("no rows"), StorageError("could not write"), "cause", ""),
    (DataValidationError("no rows"), StorageError("could not write"), "none", ""),
    (KeyboardInterrupt(), ValueError("x"), "context", ""),
    # already said in the message (a combined error's), not twice
    (DataValidationError("no rows"), StorageError("the task failed (no rows), and its entry could not be checked"),
     "context", ""),
    # a secret in the earlier error's URL hidden
    (ValueError("cannot open https://u:pw1@h/x.csv?token=tok2"), KeyError("x"), "context",
     "; raised while handling an earlier error: ValueError: cannot open https://u:***@h/x.csv?token=***"),
    # and a keyword DSN's password (secrets52: shown)
    (ValueError("cannot open host=db password=s3cret"), KeyError("x"), "context",
     "; raised while handling an earlier error: ValueError: cannot open host=db password=***"),
])
def test_an_error_raised_while_handling_another_says_that_one_too(first, second, how, said):
    """redact48: an error raised inside an `except` without `from` kept the first error only as its `__context__`,
    which the CLI's sentence never showed: a refusal then a failed write said the write alone."""
    assert earlier_said(_raised_while_handling(first, second, how)) == said


def test_every_earlier_error_of_a_chain_is_said_nearest_first():
    exc = _raised_while_handling(_raised_while_handling(ValueError("first"), DataValidationError("second"), "context"),
                                 TypeError("third"), "context")
    assert [str(e) for e in earlier_errors(exc)] == ["second", "first"]
    assert earlier_said(exc) == ("; raised while handling an earlier error: DataValidationError: second"
                                 "; raised while handling an earlier error: ValueError: first")

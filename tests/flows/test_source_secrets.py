"""redact49, secrets50: a flow run's parameters held a source URL whole, password and token in Prefect's database, UI
and API (`flowcast run --data URL`, a flow called from Python, a deployment's Run form). The parameter holds the URL
as a log shows it (`u:***@...?token=***`); the flow, called in a process, reads the URL it was given; on a worker, the
URL its configuration declares. A deployment run whose URL shows a secret is refused by the server."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from flow_helpers import source_dict, write_series
from timed_child import run_in_processor_time
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.errors import ConfigError
from flowcast.flows.common import flow_settings
from flowcast.redaction import redact
from flowcast.source_secrets import stored_parameters


@pytest.mark.usefixtures("prefect_api")
def test_a_run_on_a_url_with_a_password_and_a_token_stores_neither_in_its_parameters(tmp_path, http_server):
    from prefect import get_client

    write_series(http_server.root / "sales.csv", n_series=2, n_months=48)
    url = http_server.url("sales.csv").replace("http://", "http://u:pw1@") + "?token=tok2"
    res = CliRunner().invoke(app, ["run", "--data", url, "--id-col", "store", "--time-col", "month", "--target-col",
                                   "sales", "--freq", "1mo", "--horizon", "3", "--models", "none", "--as-of",
                                   "2013-06-01", "--home", str(tmp_path / "home"), "--json"])
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.stdout.strip().splitlines()[-1])["run_id"]
    with get_client(sync_client=True) as client:
        params = client.read_flow_run(run_id).parameters
    stored = json.dumps(params)
    assert "pw1" not in stored and "tok2" not in stored, stored
    assert params["source"]["path"] == http_server.url("sales.csv").replace("http://", "http://u:***@") + "?token=***"
    # the flow read the URL itself: the token went to the server (the password too: a server without auth ignores it)
    assert ("GET", "/sales.csv?token=tok2", None) in http_server.requests, http_server.requests
    assert "pw1" not in res.output and "tok2" not in res.output


@pytest.mark.usefixtures("prefect_api")
def test_a_backfill_on_a_url_stores_no_secret_in_its_or_its_dates_parameters(tmp_path, http_server):
    """A backfill hands each date's run its own `source` parameter: the URL as shown, read back in this process."""
    from datetime import date, timedelta

    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    rows = [f"{s},{date(2023, 1, 1) + timedelta(weeks=i)},{10 + s + i % 4}" for s in (1, 2) for i in range(30)]
    (http_server.root / "w.csv").write_text("id,week,units\n" + "\n".join(rows) + "\n")
    url = http_server.url("w.csv").replace("http://", "http://u:pw3@") + "?access_token=tok4"
    res = CliRunner().invoke(app, ["backfill", url, "--id-col", "id", "--time-col", "week", "--target-col", "units",
                                   "--freq", "1w", "--horizon", "2", "--home", str(tmp_path / "home"), "--start",
                                   "2023-07-10", "--end", "2023-07-17", "--mode", "retrain", "--models", "none", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert [d["status"] for d in summary["outcomes"]] == ["published", "published"], summary
    with get_client(sync_client=True) as client:
        runs = [client.read_flow_run(summary["run_id"]), *client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[summary["run_id"]])))]
    assert len(runs) == 3, [r.name for r in runs]  # the backfill and its two dates
    for run in runs:
        stored = json.dumps(run.parameters)
        assert "pw3" not in stored and "tok4" not in stored, stored
        assert run.parameters["source"]["path"].endswith("/w.csv?access_token=***"), stored
    assert "pw3" not in res.output and "tok4" not in res.output


def test_a_worker_takes_the_url_its_configuration_declares(tmp_path, monkeypatch):
    """A flow run whose parameter hides a password another process was given (a deployment's run on a worker) reads
    the URL the worker's configuration declares, as `redact` shows it the same."""
    url = "https://u:worker-pw@h.example/data/sales.csv?token=worker-tok"
    shown = "https://u:***@h.example/data/sales.csv?token=***"
    monkeypatch.setenv("FLOWCAST_SOURCES__SALES__PATH", url)
    for k, v in {"TIME_COL": "month", "TARGET_COL": "sales", "FREQ": "1mo"}.items():
        monkeypatch.setenv(f"FLOWCAST_SOURCES__SALES__{k}", v)
    settings = flow_settings(home=str(tmp_path / "home"), source=source_dict(shown))
    assert settings.source is not None and settings.source.path == url


def test_a_hidden_secret_given_nowhere_is_refused_naming_the_url_as_shown(tmp_path):
    shown = "https://u:***@elsewhere.example/sales.csv?token=***"
    with pytest.raises(ConfigError) as err:
        flow_settings(home=str(tmp_path / "home"), source=source_dict(shown))
    assert shown in str(err.value) and "[sources.NAME]" in str(err.value)


def test_a_worker_reads_the_store_and_shared_urls_its_configuration_gives_for_hidden_ones(tmp_path, monkeypatch):
    """fixrev50: a backfill's dates sent to a deployment name the URLs of their `overrides` as shown
    (`stored_parameters`), but a worker put back the source's URL alone: its run read the store at a literal `***`
    password. It reads the URL of each such setting that its configuration gives, and refuses one it does not give,
    naming the setting and where to declare it."""
    from flowcast.source_secrets import stored_parameters

    store, shared = "postgresql://u:pg-secret@db.example/store", "s3://KEY:s3-secret@bucket/shared?token=tok-9"
    monkeypatch.setenv("FLOWCAST_STORE__URL", store)
    monkeypatch.setenv("FLOWCAST_SHARED", shared)
    sent = stored_parameters({"store": {"url": store}, "shared": shared, "model": {"max_steps": 3}})
    assert not {"pg-secret", "s3-secret", "tok-9"} & set(re.findall(r"[\w-]+", json.dumps(sent))), sent
    settings = flow_settings(home=str(tmp_path / "home"), overrides=sent)
    assert (settings.store.url, settings.shared, settings.model.max_steps) == (store, shared, 3)
    monkeypatch.delenv("FLOWCAST_STORE__URL")
    with pytest.raises(ConfigError) as err:
        flow_settings(home=str(tmp_path / "home"), overrides=sent)
    assert "the setting store.url = postgresql://u:***@db.example/store holds a password" in str(err.value)
    assert "FLOWCAST_STORE__URL" in str(err.value)


def test_a_worker_reads_the_options_and_the_dsn_its_configuration_gives_for_hidden_ones(tmp_path, monkeypatch):
    """secrets51: the options of an object store (`shared_options`, `store.storage_options`) were stored whole, and a
    keyword DSN's password too. A run's parameters hold each option whose name says it is a secret `***` (an empty
    one as it is), and a DSN's password `***`; a worker reads the value its configuration gives at the same place,
    and refuses one it does not give, naming the setting and where to declare it."""
    from flowcast.source_secrets import stored_parameters

    options = {"key": "AKIA-1", "secret": "opt-secret", "token": "", "endpoint_url": "https://minio.example",
               "client_kwargs": {"aws_secret_access_key": "opt-secret-2", "region_name": "eu-west-1"}}
    dsn = "host=db.example user=u password='dsn secret' dbname=shop"
    sent = stored_parameters({"shared_options": options, "store": {"storage_options": {"password": "opt-pw"}},
                              "source": source_dict(dsn)})
    assert sent["shared_options"] == {**options, "key": "***", "secret": "***",
                                      "client_kwargs": {"aws_secret_access_key": "***", "region_name": "eu-west-1"}}
    assert sent["store"] == {"storage_options": {"password": "***"}}
    assert sent["source"]["path"] == "host=db.example user=u password=*** dbname=shop"
    monkeypatch.setenv("FLOWCAST_SHARED_OPTIONS", json.dumps({**options, "key": "AKIA-1"}))
    monkeypatch.setenv("FLOWCAST_STORE__STORAGE_OPTIONS", json.dumps({"password": "opt-pw"}))
    monkeypatch.setenv("FLOWCAST_SOURCES__SHOP__PATH", dsn)
    for k, v in {"TIME_COL": "month", "TARGET_COL": "sales", "FREQ": "1mo"}.items():
        monkeypatch.setenv(f"FLOWCAST_SOURCES__SHOP__{k}", v)
    overrides = {k: v for k, v in sent.items() if k != "source"}
    settings = flow_settings(home=str(tmp_path / "home"), source=sent["source"], overrides=overrides)
    assert (settings.shared_options, settings.store.storage_options) == (options, {"password": "opt-pw"})
    assert settings.source is not None and settings.source.path == dsn
    monkeypatch.delenv("FLOWCAST_SHARED_OPTIONS")
    with pytest.raises(ConfigError) as err:
        flow_settings(home=str(tmp_path / "home"), overrides=overrides)
    assert "the setting shared_options.key = *** holds a password" in str(err.value), err.value
    assert "FLOWCAST_SHARED_OPTIONS__KEY" in str(err.value)


def test_a_dsn_hidden_within_other_text_is_restored_or_refused_never_run_with_its_stars():
    """fixF52: a keyword DSN's password within other text is stored `***` (`redact_parameter`), but a worker saw a
    hidden secret in a whole URL or DSN alone (`hides_secrets`), and ran `host=db password=*** dbname=x # prod` as
    it was. It reads the value its configuration gives, or is refused naming it; a file's name holding `password=`
    (no DSN: stored `/data/my password=*** x.csv`, a path that does not exist) is stored and read as written."""
    from flowcast.source_secrets import secret_path, secret_settings

    dsn = "host=db password=s3 dbname=x # prod"
    shown = stored_parameters(dsn)
    assert shown == "host=db password=*** dbname=x # prod"
    assert secret_path(shown, ["/other.csv", dsn]) == dsn
    with pytest.raises(ConfigError, match=re.escape(f"the source {shown} holds a password")):
        secret_path(shown, ["/other.csv"])
    assert secret_settings({"store": {"url": shown}}, {"store": {"url": dsn}}) == {"store": {"url": dsn}}
    with pytest.raises(ConfigError, match=re.escape(f"the setting store.url = {shown} holds a password")):
        secret_settings({"store": {"url": shown}}, {"store": {"url": "host=db dbname=x"}})
    path = "/data/my password=1 x.csv"
    assert stored_parameters(path) == path
    assert secret_path(path, ["/data/my password=1/x.csv"]) == path


def test_a_locations_secret_by_name_is_hidden_refused_and_restored_and_a_notes_is_said_at_deploy_time():
    """secrets53: a secret's `name=value` with no pair of libpq's keywords next to it (`note (password = s3cret)`) was
    stored as written wherever it was. In a location's text that is a URL or a DSN (a source's path, store.url, shared)
    it is stored `***`, the form refuses it there, and a worker reads the location its configuration declares; in a
    note (free text of another name) it is stored as written, a note's words, and said at deploy time naming the
    parameter, not its value."""
    from prefect._internal.schemas.validators import validate_values_conform_to_schema
    from prefect.utilities.callables import parameter_schema

    from flowcast.flows import retrain_flow
    from flowcast.flows.deploy import free_text_secrets_said
    from flowcast.flows.parameters import form_schema
    from flowcast.source_secrets import secret_path, secret_settings

    path = "postgresql://h/db?table=t note (password = s3cret)"
    overrides = {"store": {"url": "host=db (pwd=s3cret)"}, "shared": "s3://b/x token=abc"}
    given = {"source": {"path": path}, "overrides": overrides, "note": "note (password = s3cret) kept"}
    stored = stored_parameters(given)
    assert stored == {"source": {"path": "postgresql://h/db?table=t note (password = ***)"},
                      "overrides": {"store": {"url": "host=db (pwd=***)"}, "shared": "s3://b/x token=***"},
                      "note": "note (password = s3cret) kept"}
    assert secret_path(stored["source"]["path"], ["/other.csv", path]) == path
    with pytest.raises(ConfigError, match=re.escape("the source postgresql://h/db?table=t note (password = ***) holds")):
        secret_path(stored["source"]["path"], ["/other.csv"])
    assert secret_settings(stored["overrides"], overrides) == overrides
    with pytest.raises(ConfigError, match=re.escape("the setting store.url = host=db (pwd=***) holds a password")):
        secret_settings(stored["overrides"], {"store": {"url": "host=db"}})
    schema = form_schema(parameter_schema(retrain_flow).model_dump())
    for field, value in [("source", {"source": given["source"]}), ("overrides.store.url", {"overrides": {"store": {
            "url": overrides["store"]["url"]}}}), ("overrides.shared", {"overrides": {"shared": overrides["shared"]}})]:
        with pytest.raises(ValueError, match=rf"Validation failed for field '{re.escape(field)}'"):
            validate_values_conform_to_schema(value, schema)
    validate_values_conform_to_schema({k: v for k, v in stored.items() if k != "note"}, schema)
    said = free_text_secrets_said("retrain", stored)
    assert said is not None and said.startswith("the parameters of the deployments retrain: note (password=) holds")
    assert "s3cret" not in said, said
    assert free_text_secrets_said("retrain", {"note": "the password is in vault", **overrides}) is None


@pytest.mark.parametrize("stored, hides", [
    ("host=db password=*** dbname=x # prod", True), ("see postgresql://u:***@h/db and ?x=1", True),
    ("conn user=u password='***'; select 1", True), ("https://h/x.csv?token=***", True), ("password=***", True),
    ("/data/my password=*** x.csv", False), ("keep *** as it is", False), ("https://u:pw@h/***.csv", False),
    ("https://h/x.csv?since=***", False),
    # secrets53: a character stood for each `***`, and a parameter that held it where a secret is hidden read as hiding
    # one: a value's own character is no `***`
    ("https://u:\ue000@h/***.csv", False), ("host=db password=\ue000 dbname=x # ***", False),
    ("https://u:***@h/\ue000.csv", True), ("x=\ue000\ue001 *** host=db password=***", True),
])
def test_a_stored_parameter_hides_a_secret_where_a_stars_stands_for_one_redact_parameter_hides(stored, hides):
    from flowcast.source_secrets import hides_secrets

    assert hides_secrets(stored) is hides


# fixA51: an option's secret that is no text (a number, a list, a dict's values) was stored whole, and an option named
# `credential`, `passphrase` or `Authorization` shown
SECRETS_NOT_TEXT = {"password": 123456, "token": ["abc", ["def"]], "headers": {"Authorization": "Bearer T0KEN"},
                    "credential": "ACCOUNTKEY", "passphrase": "pp", "credentials": {"type": "sa", "n": {"pin": 0}}}
# what such an option holds that is no secret: gcsfs's `token="anon"`, s3fs's `anon=true`, a flag, an empty value
NO_SECRET_OPTIONS = {"token": "anon", "anon": True, "use_ssl": False, "password": "", "key": None, "port": 9000,
                     "auth": {"enabled": True, "mode": "anon"}, "client_kwargs": {"region_name": "eu-west-1"}}


def test_an_options_secret_that_is_no_text_is_stored_hidden_and_the_form_refuses_it():
    """fixA51: `stored_parameters` hid an option's secret only where it was text: `password: 123456`, `token: ["abc"]`
    were stored whole, as were `credential`, `passphrase` and a header's `Authorization`. Each number and text in such
    an option's value, at any depth, is stored `***` (`anon`, a boolean, an empty value as they are); the deployments'
    form refuses what it hides, naming the place, and takes what it stores; a worker reads each from its own
    configuration, a number as a number."""
    from prefect._internal.schemas.validators import validate_values_conform_to_schema
    from prefect.utilities.callables import parameter_schema

    from flowcast.flows import retrain_flow
    from flowcast.flows.parameters import form_schema
    from flowcast.source_secrets import secret_settings, stored_parameters

    stored = stored_parameters({"shared_options": SECRETS_NOT_TEXT})["shared_options"]
    assert stored == {"password": "***", "token": ["***", ["***"]], "headers": {"Authorization": "***"},
                      "credential": "***", "passphrase": "***", "credentials": {"type": "***", "n": {"pin": "***"}}}
    assert stored_parameters({"store": {"storage_options": NO_SECRET_OPTIONS}}) == {
        "store": {"storage_options": NO_SECRET_OPTIONS}}
    assert secret_settings({"shared_options": stored}, {"shared_options": SECRETS_NOT_TEXT}) == {
        "shared_options": SECRETS_NOT_TEXT}
    schema = form_schema(parameter_schema(retrain_flow).model_dump())
    for name, field in [("password", "password"), ("token", r"token\[\d\]"), ("headers", r"headers\.Authorization"),
                        ("credential", "credential"), ("passphrase", "passphrase"), ("credentials", r"credentials\.")]:
        with pytest.raises(ValueError, match=rf"Validation failed for field 'overrides\.shared_options\.{field}"):
            validate_values_conform_to_schema({"overrides": {"shared_options": {name: SECRETS_NOT_TEXT[name]}}}, schema)
    for options in (stored, NO_SECRET_OPTIONS):
        validate_values_conform_to_schema({"overrides": {"shared_options": options,
                                                         "store": {"storage_options": options}}}, schema)


# secrets52: an option's name that merely ends in `auth` (`oauth`), and gcsfs's `token` naming how to authenticate,
# were hidden; what such a token holds otherwise (a key file's path, a service account's JSON, a token) is a secret, as
# is `auth` ending a name but `oauth`, and a mode under another secret's name
SHOWN_OPTIONS = [{"oauth": "google"}, {"use_oauth": "on"}, {"OAuth": {"provider": "x", "scopes": ["read"]}},
                 {"token": "google_default"}, {"token": "cloud"}, {"token": "cache"}, {"TOKEN": "browser"}]
HIDDEN_OPTIONS = [{"token": "/keys/sa.json"}, {"token": '{"type": "service_account"}'}, {"token": "ya29.t0k"},
                  {"token": {"type": "authorized_user", "refresh_token": "r"}}, {"token": ["cloud"]},
                  {"token": "default"}, {"auth": "u:p"}, {"proxy_auth": ["u", "p"]}, {"basicAuth": "x"},
                  {"AUTH": "x"}, {"password": "browser"}, {"access_token": "cloud"}, {"oauth": {"client_secret": "s"}},
                  # secrets53: a name ending in `auth` that is not the word alone was shown
                  {"proxyauth": "u:p"}, {"ProxyAuth": ["u", "p"]}]


@pytest.mark.parametrize("options", SHOWN_OPTIONS + HIDDEN_OPTIONS)
def test_an_option_is_hidden_and_refused_where_its_name_or_value_says_it_is_a_secret(options):
    from prefect._internal.schemas.validators import validate_values_conform_to_schema
    from prefect.utilities.callables import parameter_schema

    from flowcast.flows import retrain_flow
    from flowcast.flows.parameters import form_schema

    stored = stored_parameters({"shared_options": options})["shared_options"]
    schema = form_schema(parameter_schema(retrain_flow).model_dump())
    given = {"overrides": {"shared_options": options}}
    if options in SHOWN_OPTIONS:
        assert stored == options
        validate_values_conform_to_schema(given, schema)
    else:
        assert stored != options and "***" in json.dumps(stored), stored
        with pytest.raises(ValueError, match=r"Validation failed for field 'overrides\.shared_options"):
            validate_values_conform_to_schema(given, schema)
    validate_values_conform_to_schema({"overrides": {"shared_options": stored}}, schema)


def test_a_path_without_secrets_is_read_as_written(tmp_path):
    for plain in ("https://given.example/sales.csv", str(tmp_path / "sales.csv")):
        assert flow_settings(home=str(tmp_path / "home"), source=source_dict(plain)).source.path == plain


@pytest.mark.usefixtures("prefect_api")
def test_a_flow_called_from_python_stores_no_secret_and_reads_the_url_it_was_given(tmp_path, http_server):
    """secrets50: a flow called from Python with a full URL (`retrain_flow(source={"path": URL, ...})`) was stored as
    given: Prefect stores a call's parameters before the flow's body runs. The flows store each URL redacted
    (`SecretSafeFlow`), and their body reads the URL itself. Two URLs shown the same (another token, another password)
    are two runs of one process, each reading its own: nothing is kept between them (fixA49 refused the second,
    which a process-wide map of URLs by their shown form would have read with the first one's secrets)."""
    from prefect import get_client

    from flowcast.config import SourceConfig
    from flowcast.flows import retrain_flow

    write_series(http_server.root / "sales.csv", n_series=2, n_months=48)
    base = http_server.url("sales.csv")
    shown = base.replace("http://", "http://u:***@") + "?token=***"
    given = [source_dict(base.replace("http://", "http://u:py-pw1@") + "?token=py-tok1"),
             SourceConfig(**source_dict(base.replace("http://", "http://u:py-pw2@") + "?token=py-tok2"))]
    options = {"key": "AKIA-py", "secret": "py-opt-secret", "client_kwargs": {"aws_secret_access_key": "py-opt-2"}}
    for source in given:
        result = retrain_flow(as_of="2013-06-01", source=source, horizon=3, home=str(tmp_path / "home"),
                              overrides={"model": {"cells": []}, "shared_options": options})
        with get_client(sync_client=True) as client:
            params = client.read_flow_run(result["run_id"]).parameters
        stored = json.dumps(params)
        assert "py-pw" not in stored and "py-tok" not in stored and "py-opt" not in stored, stored
        assert params["source"]["path"] == shown, stored
        # secrets51: an object store's options, stored whole, are stored with their secrets *** as well
        assert params["overrides"]["shared_options"] == {"key": "***", "secret": "***",
                                                         "client_kwargs": {"aws_secret_access_key": "***"}}, stored
    requests = [path for _, path, _ in http_server.requests]
    assert "/sales.csv?token=py-tok1" in requests and "/sales.csv?token=py-tok2" in requests, requests


@pytest.mark.parametrize("params, field", [
    ({"source": source_dict("postgresql://u:pg-secret@db.example/shop?table=sales")}, "source"),
    ({"source": source_dict("s3://AKIAKEY:s3-secret@bucket/sales.parquet")}, "source"),
    ({"source": source_dict("https://user:web-secret@h.example/x.csv")}, "source"),
    ({"source": source_dict("https://h.example/x.csv?X-Amz-Security-Token=web-secret")}, "source"),
    ({"source": source_dict("https://u:***@h.example/x.csv?sig=web-secret")}, "source"),  # one hidden, another shown
    ({"home": "s3://AKIAKEY:s3-secret@bucket/home"}, "home"),  # any text of the form
    ({"overrides": {"store": {"url": "postgresql://u:pg-secret@db.example/store"}}}, "overrides.store.url"),
    # secrets51: a keyword DSN, and the options of an object store, were stored whole
    ({"source": source_dict("host=db.example user=u password=pg-secret dbname=shop")}, "source"),
    ({"home": "host=db.example password='pg secret' dbname=shop"}, "home"),
    ({"overrides": {"store": {"url": "host=db.example sslpassword=pg-secret dbname=x"}}}, "overrides.store.url"),
    ({"overrides": {"shared_options": {"key": "***", "secret": "s3-secret"}}}, "overrides.shared_options.secret"),
    ({"overrides": {"store": {"storage_options": {"client_kwargs": {"aws_secret_access_key": "s3-secret"}}}}},
     "overrides.store.storage_options.client_kwargs.aws_secret_access_key"),
    ({"overrides": {"shared_options": {"endpoint_url": "https://u:web-secret@minio.example"}}},
     "overrides.shared_options.endpoint_url"),
    # fixA51: an option's secret that is no text, and a header's
    ({"overrides": {"shared_options": {"token": ["s3-secret"]}}}, "overrides.shared_options.token[0]"),
    ({"overrides": {"store": {"storage_options": {"headers": {"Authorization": "Bearer web-secret"}}}}},
     "overrides.store.storage_options.headers.Authorization"),
    # secrets52: a URL or a keyword DSN within other text was stored whole (and passed)
    ({"home": "see host=db.example user=u password=pg-secret dbname=x; then"}, "home"),
    ({"source": source_dict("from postgresql://u:pg-secret@db.example/db?x=1 and ?y=2")}, "source"),
])
@pytest.mark.usefixtures("prefect_api")
def test_a_deployment_run_whose_url_shows_a_secret_is_refused_and_stores_nothing(tmp_path, params, field):
    """secrets50: a URL typed into a deployment's Run form (or sent by `run_deployment`) was stored as given: the
    server stores a run's parameters before any flowcast code runs. The deployments' schema (`form_schema`) refuses
    a URL that shows a secret: the server answers 409, naming the parameter, and creates no run. The URL written with
    its secrets `***` is a run, stored so, whose worker reads the URL its configuration declares. secrets51: a keyword
    DSN's password and an fsspec option's secret (`shared_options`, `store.storage_options`) alike, the option named.
    ui51: the UI shows the 409's detail in a toast; it names the form's definition the URL failed, not its regex."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.utilities.callables import parameter_schema

    from flowcast.flows import retrain_flow
    from flowcast.flows.parameters import form_schema
    from flowcast.source_secrets import stored_parameters

    with get_client(sync_client=True) as client:
        dep = client.create_deployment(flow_id=client.create_flow(retrain_flow), name=f"secrets-{tmp_path.name}",
                                       parameter_openapi_schema=form_schema(parameter_schema(retrain_flow).model_dump()),
                                       enforce_parameter_schema=True, paused=True)
        with pytest.raises(PrefectHTTPStatusError) as refused:
            client.create_flow_run_from_deployment(dep, parameters=params)
        assert refused.value.response.status_code == 409, refused.value
        detail = refused.value.response.json()["detail"]
        assert f"Validation failed for field {field!r}" in detail, detail
        assert "'pattern'" not in detail, detail
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep])))
        assert runs == [], [r.parameters for r in runs]
        shown = stored_parameters(params)
        assert not re.search(r"(?:s3|pg|web)[- ]secret", json.dumps(shown)), shown
        run = client.create_flow_run_from_deployment(dep, parameters=shown)
        assert client.read_flow_run(run.id).parameters == shown


@pytest.mark.parametrize("url", [
    "postgresql://u:p@ss@h/db", "https://u:s3 cret@h/x.csv", "s3://KEY:SECRET@bucket/x", "https://h/x?token=t",
    "https://h/x?Access_Token=t&a=1", "https://h/x?apikey=t", "https://h/x?key=t", "https://u:***@h/x?sig=t",
    "https://u:***x@h/x",
    # secrets51: a keyword DSN
    "host=db user=u password=s3cret dbname=x", "host=db password='a b' dbname=x", "sslpassword=k3y host=db",
    "host=db password=*** sslpassword=k3y", "password = s3cret",
])
def test_the_forms_pattern_finds_a_url_that_shows_a_secret(url):
    import re

    from flowcast.source_secrets import VISIBLE_SECRET

    assert redact(url) != url and re.search(VISIBLE_SECRET, url), url
    assert not re.search(VISIBLE_SECRET, redact(url)), redact(url)


@pytest.mark.parametrize("url", [
    "postgresql://h:5432/db?application_name=a@b", "https://registry.example.org:443/@scope/pkg",
    "file://C:/data/u@x.csv", "https://u:@h/x", "https://u:***@h/x.csv?token=***&sig=***", "/data/my token=1 x.csv",
    "https://h/x.csv?tokens_left=3", "2019-06-01T00:00:00+10:00",
    "password=***", "host=db user=u password='***' dbname=x", "the password is in vault", "host=db dbname=x",
    # fixF52: `password=` that is no DSN's (no pair of libpq's keywords next to it): a file's name, a note
    "/data/my password=1 x.csv", "note (password = s3cret) kept",
])
def test_the_forms_pattern_passes_what_shows_no_secret(url):
    import re

    from flowcast.source_secrets import VISIBLE_SECRET

    assert not re.search(VISIBLE_SECRET, url), url


def test_the_form_refuses_text_too_long_to_check_without_reading_it_with_its_pattern():
    """fixF52: the pattern's search grows with the square of a text's length (`'x://:' * 60000`, 300,000 characters,
    took 120 s as Prefect's server checked a run's parameters). Text over `MAX_CHECKED_TEXT` characters is refused
    whole, its length checked before the pattern (`anyOf` stops at the first schema that holds); text up to it is
    checked by the pattern, as before."""
    from prefect.utilities.schema_tools.validation import validate

    from flowcast.flows.parameters import MAX_CHECKED_TEXT, NO_VISIBLE_SECRET, SECRET_URL, SECRET_URL_NAME

    schema = {"type": "object", "properties": {"note": {"type": "string", **NO_VISIBLE_SECRET}},
              "definitions": {SECRET_URL_NAME: SECRET_URL}}
    assert SECRET_URL["anyOf"][0] == {"minLength": MAX_CHECKED_TEXT + 1}, SECRET_URL  # before the pattern

    def refused(text: str) -> bool:
        return bool(validate({"note": text}, schema))

    longest = "x" * (MAX_CHECKED_TEXT - len("https://h/")) + "https://h/"
    assert len(longest) == MAX_CHECKED_TEXT and not refused(longest)
    assert refused("https://u:pw@h/" + "x" * (MAX_CHECKED_TEXT - 16)), "the pattern reads text up to the bound"
    assert refused(longest + "x") and refused("x://:" * 60_000)
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f"refuses text over {MAX_CHECKED_TEXT} characters whole" in readme


# fixF53: texts on which the form's patterns backtracked (`host=' ` repeated, 512 characters: over 20 s, growing
# 7-fold each 28 characters), and their kin
_BACKTRACKING_UNITS = ("host=' ", "host=\\ ", ",host=", "a='b ", '"x ', "password=' ", "host=' password=' ",
                       "host=' host=\\ ,host=\"x ", "host=a\\ ", "x://:")


def test_the_forms_patterns_read_texts_that_backtracked_in_bounded_time():
    """fixF53: each pattern the form sends (`VISIBLE_SECRET`, `VISIBLE_LOCATION_SECRET`) searched each of
    `_BACKTRACKING_UNITS` repeated to 256 and to 2,048 characters, in a process given 10 s of the processor (120 s of
    the clock, a busy machine's; 10 s of the clock with the interpreter's start-up was flaky, fixE54): the exponential
    pattern took over 20 s at 512 characters; the pattern now reads them in well under a second at 4,096."""
    from flowcast.source_secrets import VISIBLE_LOCATION_SECRET, VISIBLE_SECRET

    assert re.compile(VISIBLE_SECRET).groups == re.compile(VISIBLE_LOCATION_SECRET).groups == 2  # `_atomic` numbers them
    body = (f"for unit in {_BACKTRACKING_UNITS!r}:\n"
            "    for n in (256, 2048):\n"
            "        text = (unit * n)[:n]\n"
            "        for pattern in (VISIBLE_SECRET, VISIBLE_LOCATION_SECRET):\n"
            "            re.search(pattern, text)\n")
    run_in_processor_time(f"the form's patterns on {_BACKTRACKING_UNITS} repeated to 256 and 2,048 characters",
                          "import re\nfrom flowcast.source_secrets import VISIBLE_LOCATION_SECRET, VISIBLE_SECRET",
                          body, seconds=10)


@pytest.mark.usefixtures("prefect_api")
def test_flowcast_deploys_deployments_enforce_their_form_refusing_a_visible_password(tmp_path, monkeypatch):
    """fixrev50: deployments/prefect.yaml set `enforce_parameter_schema: false` (a configured dataset's name was once
    refused by the form's list) and `give_forms` replaced only the schema: the server checks a run's parameters
    against it only where it is enforced, so `run_deployment(..., source={"path": "https://user:pw@h/x.csv"})` on a
    deployment `flowcast deploy` made was stored whole. `give_forms` makes each enforce its form, and what the Run form,
    the CLI and a backfill's dates send still validates. Here deployments of the file's flows are made as `prefect
    deploy` made them with the former file (not enforced), under names of their own."""
    import uuid
    from pathlib import Path

    import yaml
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.exceptions import PrefectHTTPStatusError

    from flowcast.config import SourceConfig
    from flowcast.flows.deploy import _file_deployments, give_forms

    root = Path(__file__).resolve().parents[2]
    spec = yaml.safe_load((root / "deployments" / "prefect.yaml").read_text())
    assert [d["enforce_parameter_schema"] for d in spec["deployments"]] == [True] * 3
    suffix = uuid.uuid4().hex[:8]
    for d in spec["deployments"]:
        d["name"] = f"{d['name']}-{suffix}"
    (tmp_path / "prefect.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(root)  # (entrypoints are read from the repository root, as `flowcast deploy` reads them)
    source = SourceConfig(**source_dict("https://u:***@h.example/x.csv?token=***")).model_dump(mode="json")
    sent = {"dataset": "my_sales", "source": source, "horizon": 6, "config_file": "flowcast.toml",
            "home": "s3://KEY:***@bucket/home",
            "overrides": {"shared": "s3://KEY:***@bucket/shared", "store": {"url": "postgresql://u:***@db/store"}},
            "overwrite": False, "as_of": "2024-01-01T00:00:00+00:00"}  # a backfill's date (`backfill --deployment`)
    empty = {"dataset": None, "source": None, "horizon": None, "home": None, "overrides": None, "config_file": None}
    valid = {"retrain": [{**sent, "promote": False}, {"as_of": None, "models": None, **empty}, {}],
             "forecast": [sent, {"as_of": "2024-01-01", "overwrite": "on", **empty}, {"overwrite": None}],
             "backfill": [{"start": "2024-01-01", "end": "2024-03-01", "every": "1mo", "mode": "retrain",
                           "overwrite": True, "deployment": "retrain/retrain-pool", "dataset": "my_sales"},
                          {"start": "2024-01-01", "end": "2024-03-01", "every": None, **empty}]}
    with get_client(sync_client=True) as client:
        for flow, d in _file_deployments(tmp_path / "prefect.yaml"):
            client.create_deployment(flow_id=client.create_flow(flow), name=d["name"], paused=True,
                                     enforce_parameter_schema=False)
        names = give_forms(tmp_path / "prefect.yaml")
        assert len(names) == 3, names
        for name in names:
            dep = client.read_deployment_by_name(name)
            assert dep.enforce_parameter_schema, name
            shown = {"start": "2024-01-01", "end": "2024-03-01"} if name.startswith("backfill/") else {}
            with pytest.raises(PrefectHTTPStatusError) as refused:
                client.create_flow_run_from_deployment(dep.id, parameters={
                    **shown, "source": source_dict("https://user:pw@h.example/x.csv")})
            assert refused.value.response.status_code == 409, (name, refused.value)
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))
            assert runs == [], [r.parameters for r in runs]
            for params in valid[name.split("/")[0]]:
                run = client.create_flow_run_from_deployment(dep.id, parameters=params)
                assert client.read_flow_run(run.id).parameters == params, name


def _sent_unenforced(client, dep, params: dict):
    """A flow run of deployment `dep` created as `POST /deployments/{id}/create_flow_run` with
    `enforce_parameter_schema: false` creates it (`run_deployment`'s way round the form's check), read back."""
    from uuid import UUID

    response = client.request("POST", "/deployments/{id}/create_flow_run", path_params={"id": dep},
                              json={"parameters": params, "enforce_parameter_schema": False})
    return client.read_flow_run(UUID(response.json()["id"]))


@pytest.mark.parametrize("declared", [True, False])
@pytest.mark.usefixtures("prefect_api")
def test_a_run_sent_round_the_form_has_its_stored_secrets_replaced_as_it_starts(tmp_path, http_server, monkeypatch,
                                                                                 declared):
    """secrets51: an API caller can turn the form's check off for one run (`enforce_parameter_schema=false`), and the
    server stores its parameters as sent: a source URL's password and token, an option's secret. Prefect lets a flow
    run's parameters be replaced (`PATCH /flow_runs/{id}`): the flow, as it starts on a worker, replaces them with
    the same parameters shown (`stored_parameters`), says so in a warning, and runs on those: it reads the URL and
    the option its worker's configuration declares (not the ones sent), or is refused where it declares none."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel
    from prefect.flow_engine import run_flow
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.callables import parameter_schema

    from flowcast.flows import retrain_flow
    from flowcast.flows.parameters import form_schema
    from flowcast.source_secrets import stored_parameters

    write_series(http_server.root / "sales.csv", n_series=2, n_months=48)
    base = http_server.url("sales.csv")
    sent_url = base.replace("http://", "http://u:sent-pw@") + "?token=sent-tok"
    params = {"as_of": "2013-06-01", "source": source_dict(sent_url), "horizon": 3, "home": str(tmp_path / "home"),
              "overrides": {"model": {"cells": []}, "shared_options": {"secret": "sent-opt"}}}
    shown = stored_parameters(params)
    if declared:
        monkeypatch.setenv("FLOWCAST_SOURCES__SALES__PATH", base.replace("http://", "http://u:worker-pw@")
                           + "?token=worker-tok")
        for k, v in {"TIME_COL": "month", "TARGET_COL": "sales", "FREQ": "1mo"}.items():
            monkeypatch.setenv(f"FLOWCAST_SOURCES__SALES__{k}", v)
        monkeypatch.setenv("FLOWCAST_SHARED_OPTIONS__SECRET", "worker-opt")
    with get_client(sync_client=True) as client:
        dep = client.create_deployment(flow_id=client.create_flow(retrain_flow), name=f"round-{tmp_path.name}",
                                       parameter_openapi_schema=form_schema(parameter_schema(retrain_flow).model_dump()),
                                       enforce_parameter_schema=True, paused=True)
        run = _sent_unenforced(client, dep, params)
        assert "sent-pw" in json.dumps(run.parameters)  # the server stored them whole
        state = run_flow(retrain_flow, flow_run=run, parameters=run.parameters, return_type="state")
        after = client.read_flow_run(run.id)
        # the run's logs reach the API in batches from a background worker: sent, then read (a loaded machine
        # read none right after the run: flaky, ui51/fixA51)
        APILogWorker.drain_all(timeout=10)
        for _ in range(20):
            logs = [log.message for log in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(
                any_=[run.id]), level=LogFilterLevel(ge_=30, le_=30))) if "password" in log.message]
            if logs:
                break
            time.sleep(0.5)
    assert after.parameters == shown, after.parameters
    assert logs == [(
        f"This flow run's parameters showed a password or token (source.path = {shown['source']['path']}, "
        "overrides.shared_options.secret = ***): the Prefect API stored them as sent, with the deployment's parameter "
        "schema not enforced (enforce_parameter_schema=false). They are replaced by the same parameters with each "
        "secret ***, and the run reads the secrets this worker's configuration declares")], logs
    requests = [path for _, path, _ in http_server.requests]
    assert not any("sent-tok" in p for p in requests), requests
    if declared:
        assert state.is_completed(), state.message
        assert "/sales.csv?token=worker-tok" in requests, requests
    else:
        # refused at the first secret its configuration does not declare (the settings are read before the source)
        assert state.is_failed() and "the setting shared_options.secret = *** holds a password" in state.message, \
            state.message


def test_each_text_of_a_list_under_a_locations_name_is_a_location():
    """secrets53b: a list under a location's name (`{"shared": ["postgresql://h/db (token=abc)"]}`) was read as free
    text: its items' secrets by name stored as written, said at deploy time as a note's, and a worker given them back
    read `***` as a note's words. Each text of such a list is a location's, stored, restored and said as one; a list's
    other items (a dict, a list within) are read as any parameter's."""
    from flowcast.flows.deploy import free_text_secrets_said
    from flowcast.source_secrets import secret_settings

    given = {"overrides": {"shared": ["postgresql://h/db (token=abc)", "s3://b/x", {"note": "x (pwd=s3cret)"}],
                           "backup_url": ("host=db (pwd=s3cret)",)}}
    stored = stored_parameters(given)
    assert stored == {"overrides": {"shared": ["postgresql://h/db (token=***)", "s3://b/x", {"note": "x (pwd=s3cret)"}],
                                    "backup_url": ["host=db (pwd=***)"]}}
    said = free_text_secrets_said("retrain", stored)
    assert said is not None and said.startswith("the parameters of the deployments retrain: overrides.shared[2].note "
                                                "(pwd=) holds"), said
    assert "shared[0]" not in said and "backup_url" not in said, said
    declared = {"shared": ["postgresql://h/db (token=abc)", "s3://b/x", {"note": "x (pwd=s3cret)"}],
                "backup_url": ["host=db (pwd=s3cret)"]}
    assert secret_settings(stored["overrides"], declared) == declared
    with pytest.raises(ConfigError, match=re.escape("the setting shared[0] = postgresql://h/db (token=***) holds")):
        secret_settings(stored["overrides"], {"shared": ["postgresql://h/db"]})

"""A store URL is shown without its password wherever flowcast says it (errors, logs, run summaries)."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from flowcast.config import load_settings
from flowcast.flows.common import store_label
from flowcast.store.postgres import redact, redact_error

# (a URL, libpq's keyword of its secret: each is what libpq reads as that secret, checked below)
URLS = [
    ("postgresql://u:s3cret@h/db", "password"),
    ("postgresql://:s3cret@h/db", "password"),  # no user: libpq reads the password all the same
    ("postgresql://u:s3:cret@h1:5432,h2:5433/db", "password"),
    ("postgresql://u@h/db?password=s3cret", "password"),
    ("postgresql://u@h/db?sslmode=require&password=s3cret&connect_timeout=3", "password"),
    ("postgresql://u@h/db?sslpassword=s3cret", "sslpassword"),  # the client key's passphrase
    ("postgresql+psycopg://u:s3cret@h/db", "password"),
    ("postgresql://u:s3%40cret@h/db", "password"),  # a '@' percent-encoded, as libpq wants it
    ("postgresql://u:s3?cret@h/db", "password"),  # revD47: a '?' libpq reads in the password (it was shown whole)
    ("postgresql://u:s3?cret@h/db?sslmode=require", "password"),
]


@pytest.mark.parametrize("url, keyword", URLS)
def test_redact_hides_every_form_of_the_password(url, keyword):
    """Regression (revA47): `postgresql://:pw@h/db` (no user) and `?sslpassword=` were shown whole."""
    assert "s3" in conninfo_to_dict(url.replace("+psycopg", ""))[keyword]  # libpq reads a secret there
    shown = redact(url)
    assert "s3" not in shown and "cret" not in shown and "***" in shown, shown
    assert shown.split("?")[0].endswith("/db")  # the rest of it is shown: where the store is


@pytest.mark.parametrize("dsn", ["host=h password=s3cret dbname=db", "host=h password = s3cret dbname=db",
                                 "host=h password='s3 cret' dbname=db", r"host=h password='s3\' cret' dbname=db"])
def test_redact_hides_a_keyword_dsn_password_quoted_or_spaced(dsn):
    """Regression (revA47): a quoted value (`password='s3 cret'`) showed its part after the space, `password = x` all."""
    assert "s3" in conninfo_to_dict(dsn)["password"]
    shown = redact(dsn)
    assert "s3" not in shown and "cret" not in shown, shown
    assert shown.startswith("host=h password") and shown.endswith(" dbname=db"), shown


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgresql://h:5432/db?sslmode=require",
                                 "postgresql://h:5432/db?application_name=a@b"])
def test_redact_leaves_a_url_without_a_password_as_it_is(url):
    assert redact(url) == url


@pytest.mark.parametrize("url, keyword", URLS)
def test_a_run_summary_names_the_store_without_its_password(tmp_path, url, keyword):
    """Regression (revA47): the run summary's store (`store_label`, kept in Prefect's database and shown in its UI)
    hid `user:pw@` only, with a regex of its own: `?password=` was shown whole."""
    settings = load_settings(home=tmp_path, store={"url": url})
    assert store_label(settings) == redact(url)
    assert "s3" not in store_label(settings)


@pytest.mark.parametrize("url", ["postgresql://u:s3@cret@h/db", "postgresql://u:s3/cret@h/db"])
def test_redact_hides_a_password_whose_at_or_slash_is_not_percent_encoded(url):
    """Regression (revA47): 'postgresql://u:s3@cret@h/db' was shown 'u:***@cret@h/db', 'u:s3/cret@h/db' whole (libpq
    reads the part after the first '@' or '/' as the host: the password the user meant is hidden all the same)."""
    assert redact(url) == "postgresql://u:***@h/db"


@pytest.mark.parametrize("message, url, said", [
    ('invalid percent-encoded token: "s3cr%zzet"', "postgresql://u:s3cr%zzet@h/db", 'token: "***"'),
    ('unexpected spaces found in "s3 cret", use %20', "postgresql://u@h/db?password=s3 cret", 'in "***", use'),
    ("failed to resolve host 'cret@h': [Errno -2]", "postgresql://u:s3@cret@h/db", "host '***': [Errno"),
    ('could not translate host name "h" to address', "postgresql://u:s3cret@h/db", 'name "h" to'),
    ('password authentication failed for user "u"', "postgresql://u:s3cret@h/db", 'user "u"'),
    # redact48: libpq reads a password's part before a '/' as the port, after it as the database
    ('invalid integer value "s3?x" for connection option "port"', "postgresql://u:s3?x/cret@h/db", 'value "***" for'),
    ('database "cret@h/db" does not exist', "postgresql://u:s3?x/cret@h/db", 'database "***" does'),
    ("could not connect to postgresql://u:s3cret@h/db?application_name=a@b",
     "postgresql://u:s3cret@h/db?application_name=a@b", "u:***@h/db?application_name=a@b"),
])
def test_redact_error_hides_what_libpq_quotes_of_a_password(message, url, said):
    """Regression (revA47): libpq quotes the part of a URL it cannot read, the password among them; other quoted
    parts (the host, the user) stay."""
    shown = redact_error(message, url)
    assert said in shown and "s3" not in shown and "cret" not in shown, shown


@pytest.mark.parametrize("secret", ["u:12 ab@", "u:a b c d@", "?password=a b"])
def test_a_store_unreachable_error_names_a_url_with_a_spaced_secret_redacted_whole(secret):
    """fixA49: a PostgreSQL store's connection errors left its URL to FlowcastError's text redactor, which reads URLs
    out of a message and cannot tell where a password with a space ends: `postgresql://u:12 ab@h/db` was shown. libpq
    refuses such a URL at once (spaces not percent-encoded); its error names the URL redacted whole."""
    from pg_helpers import free_port

    from flowcast.errors import StoreUnreachableError
    from flowcast.store.postgres import PostgresStore

    plain = f"postgresql://127.0.0.1:{free_port()}/db"
    url = plain + secret if secret.startswith("?") else plain.replace("://", f"://{secret}")
    with pytest.raises(StoreUnreachableError) as err:
        PostgresStore(url, wait_s=0).datasets()
    assert f"cannot connect to the PostgreSQL store {redact(url)} to read " in str(err.value), str(err.value)
    assert secret.strip("?@u:").partition("=")[2 if "=" in secret else 0] not in str(err.value), str(err.value)

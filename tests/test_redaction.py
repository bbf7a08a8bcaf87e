"""A URL's password and secret query values are shown `***`, the rest of it as written (redact48)."""

from __future__ import annotations

import re

import pytest
from psycopg.conninfo import conninfo_to_dict
from timed_child import run_in_processor_time

from flowcast.redaction import (
    DSN_VALUE,
    KEY_VALUE,
    ending_before,
    passwords,
    redact,
    redact_location,
    redact_log_text,
    redact_parameter,
    redact_text,
)
from flowcast.source_secrets import VISIBLE_LOCATION_SECRET, VISIBLE_SECRET

HIDDEN_PASSWORDS = [
    # a '@' in the query is no password's end: its part before was hidden (over-redaction)
    ("postgresql://u:pw@h:5432/db?application_name=a@b", "postgresql://u:***@h:5432/db?application_name=a@b"),
    ("postgresql://u:pw@h:5432?application_name=a@b", "postgresql://u:***@h:5432?application_name=a@b"),
    # a '?' and a '/' in the password: it was shown whole
    ("postgresql://u:p?s/s@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:p/s?x@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
    ("postgresql://u:p@ss/x?y=1@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
    ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # to the last '@' before the host
    ("postgresql://:pw@h/db", "postgresql://:***@h/db"),  # no user
    ("postgresql://u:1234@h:5432/db", "postgresql://u:***@h:5432/db"),  # digits alone: no port without a path
    # revR48: digits then a '/' or '?' read as a port, the password shown whole; a PostgreSQL URL's path (a database)
    # holds no '@', and its query names its values
    ("postgresql://u:12/x@h/db", "postgresql://u:***@h/db"), ("postgres://u:12?x@h:5432/db", "postgres://u:***@h:5432/db"),
    ("jdbc:postgresql://u:12/x@h/db?application_name=a@b", "jdbc:postgresql://u:***@h/db?application_name=a@b"),
    ("postgresql://u:pw@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),  # IPv6 host
    ("postgresql://u:p@w@[2001:db8::1]/db?application_name=a@b",
     "postgresql://u:***@[2001:db8::1]/db?application_name=a@b"),
    ("postgresql://u:pw@/db?host=/var/run/postgresql", "postgresql://u:***@/db?host=/var/run/postgresql"),  # socket
    ("postgresql://u:p@w@/db?host=/var/run/postgresql", "postgresql://u:***@/db?host=/var/run/postgresql"),
    ("postgresql://u:p%40s%2Fs%3F@h/db", "postgresql://u:***@h/db"),  # percent-encoded
    ("postgresql://u%40corp:pw@h/db", "postgresql://u%40corp:***@h/db"),  # an encoded user stays
    ("postgresql://u:pw@h1:5432,h2:5433/db", "postgresql://u:***@h1:5432,h2:5433/db"),  # a host list
    ("postgresql://u:s3 cret@h/db", "postgresql://u:***@h/db"),  # one URL: read to its end
    ("https://u:tok@example.com/data/@scope/x.csv", "https://u:***@example.com/data/@scope/x.csv"),  # '@' in a path
    # redact49: a password of digits then a '/' or '?' over HTTP read as a port and a path, shown whole
    ("https://u:12/x@h", "https://u:***@h"), ("https://u:12/x@h/data/x.csv?token=t", "https://u:***@h/data/x.csv?token=***"),
    ("http://u:12?x@h:8080/x.csv", "http://u:***@h:8080/x.csv"), ("s3://k:12/x@bucket/x.csv", "s3://k:***@bucket/x.csv"),
    ("https://u:s3 cret@h/x.csv", "https://u:***@h/x.csv"),  # a space not percent-encoded
    # secrets52: a query holding a '?' after the '@' (no '@' was followed by one '?' at most): shown whole
    ("https://u:pw@h/x.csv?a=1?b=2", "https://u:***@h/x.csv?a=1?b=2"),
    ("postgresql://u:pw@h/db?application_name=a?b", "postgresql://u:***@h/db?application_name=a?b"),
]
NO_SECRET = [
    "postgresql://u@h/db",  # no password
    "postgresql://u:@h/db",  # an empty password: nothing to hide
    "postgresql://h:5432/db?application_name=a@b",  # no userinfo, a '@' in the query
    "postgresql://h:5432?application_name=a@b",
    "postgresql://[::1]:5432/db?application_name=a@b",
    "https://registry.example.org:443/@scope/pkg", "https://h:8080/users/@me?tab=a@b",  # a '@' in a path after a port
    "postgresql:///db?host=/var/run/postgresql",
    "https://example.com/data.csv?since=2024-01-01&tokens_per_page=5",  # a name that only begins like a secret
    # secrets53: an empty secret query value is none (it was stored `token=***`, a secret a worker looked for)
    "https://h/x.csv?token=", "https://h/x.csv?token=&page=2#sig=",
]
SECRET_QUERY_NAMES = ["password", "passwd", "pwd", "secret", "token", "sslpassword", "access_token", "client_secret",
                      "X-Amz-Security-Token", "X-Amz-Signature", "api_key", "key", "sig", "PASSWORD",
                      # secrets53: a name ending in `auth` not the word alone, and what presigned URLs carry: S3's
                      # (SigV4 and SigV2), GCS's (V4 and V2) and an Azure SAS's signer and signature
                      "proxyauth", "x-auth", "auth", "Authorization", "X-Amz-Credential", "Signature", "AWSAccessKeyId",
                      "X-Goog-Signature", "X-Goog-Credential", "GoogleAccessId"]
# secrets53: presigned URLs as S3, GCS and Azure write them: each signature, session token and signer hidden, the rest
# (dates, expiry, scopes) as written
PRESIGNED = [
    (("https://b.s3.amazonaws.com/x.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA1%2F20240101%2Fus-east-1"
     "%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
     "&X-Amz-Security-Token=FQo&X-Amz-Signature=abc123"),
     ("https://b.s3.amazonaws.com/x.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***"
     "&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
     "&X-Amz-Security-Token=***&X-Amz-Signature=***")),
    ("https://b.s3.amazonaws.com/x.csv?AWSAccessKeyId=AKIA1&Expires=1700000000&Signature=abc%3D&x-amz-security-token=t",
     "https://b.s3.amazonaws.com/x.csv?AWSAccessKeyId=***&Expires=1700000000&Signature=***&x-amz-security-token=***"),
    (("https://storage.googleapis.com/b/x.csv?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40p.iam"
     "&X-Goog-Date=20240101T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=0a1b"),
     ("https://storage.googleapis.com/b/x.csv?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=***"
     "&X-Goog-Date=20240101T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=***")),
    ("https://storage.googleapis.com/b/x.csv?GoogleAccessId=sa@p.iam&Expires=1700000000&Signature=abc%3D",
     "https://storage.googleapis.com/b/x.csv?GoogleAccessId=***&Expires=1700000000&Signature=***"),
    (("https://a.blob.core.windows.net/c/x.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2024-01-02T00:00:00Z&spr=https"
     "&sig=abc%2Bdef%3D"),
     "https://a.blob.core.windows.net/c/x.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2024-01-02T00:00:00Z&spr=https&sig=***"),
    ("https://h/x.csv?proxyauth=u:p&x-auth=k&oauth=1&use_oauth=on",
     "https://h/x.csv?proxyauth=***&x-auth=***&oauth=1&use_oauth=on"),
]
# secrets51: a keyword DSN (text of `keyword=value` pairs alone) whose password libpq reads, and text that shows none
KEYWORD_DSNS = ["host=db user=u password=s3cret dbname=x", "host=db password='a b' dbname=x",
                "host=db sslpassword=k3y sslmode=verify-full", r"host=h password='s3\' cret' dbname=db",
                "host=h password = s3cret dbname=db", "host=db password=*** sslpassword=k3y", "password=p'q"]
NO_DSN_SECRET = ["password=***", "host=db user=u password='***' dbname=x", "the password is in vault",
                 "/data/my password=1 x.csv", "host=db dbname=x", "password=''", "keep the password=*** form"]
# secrets52: a URL or a keyword DSN within other text (a note, a list's item) was stored whole in a run's parameters,
# read as one URL or one DSN (`redact`): hidden as a log line hides it
WITHIN_TEXT = [
    ("see postgresql://u:pw@h/db?x=1 and ?y=2", "see postgresql://u:***@h/db?x=1 and ?y=2"),
    ("conn host=db user=u password=s3cret dbname=x; select 1", "conn host=db user=u password=*** dbname=x; select 1"),
    ("x\nhost=db password='a b' dbname=y", "x\nhost=db password=*** dbname=y"),
    ("note (host=db password = s3cret) kept", "note (host=db password = ***) kept"),
    ('host=db password="s3 cret" dbname=x', "host=db password=*** dbname=x"),
    ("select 1 -- postgresql://u:pw@h/db, user=u sslpassword=k3y.",
     "select 1 -- postgresql://u:***@h/db, user=u sslpassword=***."),
    # fixF52: a DSN's secret next to a pair of libpq's keywords, before it or after it, in any case
    ("use password=s3cret dbname=x then", "use password=*** dbname=x then"),
    ("x HOST='a USER=b PASSWORD=c", "x HOST='a USER=b PASSWORD=***"),
    ("host=db password=s3 dbname=x # prod", "host=db password=*** dbname=x # prod"),
    ("x host=a\\b password=c", "x host=a\\b password=***"),
    # secrets53: a pair before it whose value holds an escaped space (libpq's `host=a\ b` is 'a b'): stored as written
    ("x host=a\\ b password=c", "x host=a\\ b password=***"),
    ("x HOST=a\\ b\\ c  user=u\\ v password='p q' d", "x HOST=a\\ b\\ c  user=u\\ v password=*** d"),
    ("x host=a\\\\ user=b password=c", "x host=a\\\\ user=b password=***"),
]
NO_SECRET_IN_TEXT = ["select password from users", "the password is in vault", "db_password=abc and passwords=1",
                     "keep password=*** and password='' as they are", "a url https://h/x?since=1 then ?y=2",
                     # fixF52: `password=` with no pair of libpq's keywords next to it is no DSN's: a file's name
                     # (stored `password=***`, a path that a worker read) or a note, stored as written
                     "/data/my password=1/x.csv", "note (password = s3cret) kept",
                     "a=1 password=2 b.csv", "host password=2 x", "/d/host=a/password=2 x.csv",
                     # secrets53: a secret query value in text with no '://' (a glob, a note) is stored as written,
                     # and the form refused it
                     "/d/x?token=1.csv", "h.example/x.csv?a=1&sig=s then"]
# secrets53: a secret's `name=value` with no pair of libpq's keywords next to it, in a location's text (a source's path,
# store.url, shared) that is a URL or a DSN: it was stored as written
IN_LOCATION = [
    ("postgresql://h/db note (password = s3cret) kept", "postgresql://h/db note (password = ***) kept"),
    ("host=db (pwd=s3cret)", "host=db (pwd=***)"), ("s3://b/x.csv token='a b', see", "s3://b/x.csv token=***, see"),
    ("https://h/x.csv DB_SECRET=s3.", "https://h/x.csv DB_SECRET=***."),
    # fixD53: a double-quoted value whole (`password=*** cret"` showed its words after the first)
    ('postgresql://h/db note password="s3 cret"', "postgresql://h/db note password=***"),
    ('host=db (token="a \\" b") x', "host=db (token=***) x"),
]
# no URL nor DSN (a file's or a folder's name, a note), or none shown: as written in a location too
NO_SECRET_IN_LOCATION = ["/data/my password=1 x.csv", "note (password = s3cret) kept", "/d/token=a/x.csv",
                         "host=db (pwd=***) x", "https://h/x.csv secret=''", 'host=db pwd="***"',
                         # fixD53: a `file://` URL is a file's name as a bare path is (stored `password=***`, a path
                         # that a worker then refused)
                         "file:///data/my password=1 x.csv", "FILE:///d/token=a b.csv"]
LIBPQ_URLS = ["postgresql://u:pw@h:5432/db?application_name=a@b", "postgresql://u:p?s/s@h/db",
              "postgresql://u:p@ss@h/db", "postgresql://u:pw@[::1]:5432/db",
              "postgresql://u:pw@/db?host=/var/run/postgresql"]


@pytest.mark.parametrize("url, shown", HIDDEN_PASSWORDS)
def test_redact_hides_the_password_to_the_last_at_before_the_host(url, shown):
    assert redact(url) == shown


@pytest.mark.parametrize("url", NO_SECRET)
def test_redact_leaves_a_url_without_a_secret_as_it_is(url):
    assert redact(url) == url
    assert passwords(url) == []


@pytest.mark.parametrize("name", SECRET_QUERY_NAMES)
def test_redact_hides_a_query_value_named_as_a_secret(name):
    url = f"https://h/x.csv?since=2024&{name}=s3%2Fcret&page=2#top"
    assert redact(url) == f"https://h/x.csv?since=2024&{name}=***&page=2#top"
    assert passwords(url) == ["s3%2Fcret"]


@pytest.mark.parametrize("url, shown", PRESIGNED)
def test_a_presigned_urls_signature_and_signer_are_hidden(url, shown):
    assert redact(url) == shown == redact_parameter(url)
    assert re.search(VISIBLE_SECRET, url) and not re.search(VISIBLE_SECRET, shown)


@pytest.mark.parametrize("url", LIBPQ_URLS)
def test_what_is_hidden_is_what_libpq_reads_as_the_password_where_it_reads_one(url):
    """libpq reads the password to the first '@' or '/' (a '?' within it too): where the password has neither, what is
    hidden is exactly libpq's password; where it has one, more is hidden (the password the user meant, whole)."""
    try:
        read = conninfo_to_dict(url).get("password")
    except Exception:  # noqa: BLE001 - a URL libpq cannot read (a '/' in its password): nothing to compare
        read = None
    hidden = passwords(url)
    assert len(hidden) == 1
    if read is not None:
        assert read in hidden[0]


@pytest.mark.parametrize("dsn", KEYWORD_DSNS)
def test_redact_hides_every_password_libpq_reads_in_a_keyword_dsn(dsn):
    """secrets51: a keyword DSN typed into a flow's parameter was stored whole (the redaction of a source location read no DSN)."""
    read = conninfo_to_dict(dsn)
    secrets = [read[k] for k in ("password", "sslpassword") if read.get(k) not in (None, "***")]
    shown = redact(dsn)
    assert secrets and not any(s in shown for s in secrets), shown
    assert [k for k, v in conninfo_to_dict(shown).items() if v == "***"] == [k for k in read if "password" in k]


@pytest.mark.parametrize("text", NO_DSN_SECRET)
def test_redact_leaves_text_that_is_no_dsn_or_hides_its_password_as_it_is(text):
    assert redact(text) == text


@pytest.mark.parametrize("text, shown", WITHIN_TEXT)
def test_a_parameter_hides_a_url_or_a_dsn_within_its_text(text, shown):
    assert redact_parameter(text) == shown


@pytest.mark.parametrize("text", NO_SECRET_IN_TEXT + NO_SECRET + NO_DSN_SECRET)
def test_a_parameter_without_a_secret_is_stored_as_it_is(text):
    assert redact_parameter(text) == text


@pytest.mark.parametrize("url", [u for u, _ in HIDDEN_PASSWORDS] + NO_SECRET + LIBPQ_URLS + KEYWORD_DSNS + NO_DSN_SECRET
                         + [f"https://h/x.csv?since=2024&{name}=s3%2Fcret&page=2#top" for name in SECRET_QUERY_NAMES]
                         + [t for t, _ in WITHIN_TEXT] + NO_SECRET_IN_TEXT
                         + ["password=***'", "host=db password=***'' dbname=x", "x password='***\\", "password=***\\"])
def test_the_forms_pattern_finds_a_secret_where_redact_hides_one(url):
    """A deployment's form refuses (`VISIBLE_SECRET`) a URL that shows a secret that a stored parameter hides
    (`redact_parameter`), and passes what it shows as it is: `https://u:12/x@h`, `postgresql://u:p?s/s@h/db` and
    `s3://k:12/x@bucket/x.csv` were passed (fixrev50); a keyword DSN's password was neither refused nor hidden in a
    stored parameter (secrets51); nor one within other text, `conn host=db password=s3cret; select 1` (secrets52); a
    DSN's `password=***'` was refused, shown as it is."""
    assert bool(re.search(VISIBLE_SECRET, url)) == (redact_parameter(url) != url), redact_parameter(url)
    assert not re.search(VISIBLE_SECRET, redact_parameter(url)), redact_parameter(url)


@pytest.mark.parametrize("text, shown", IN_LOCATION)
def test_a_location_hides_a_secrets_value_anywhere_in_a_url_or_a_dsn(text, shown):
    assert redact_parameter(text) == text  # free text of another parameter: a note's words, as written
    assert redact_location(text) == shown


@pytest.mark.parametrize("text", NO_SECRET_IN_LOCATION)
def test_a_location_that_is_no_url_nor_dsn_is_stored_as_written(text):
    assert redact_location(text) == text


@pytest.mark.parametrize("text", [u for u, _ in HIDDEN_PASSWORDS] + NO_SECRET + LIBPQ_URLS + KEYWORD_DSNS
                         + NO_DSN_SECRET + [t for t, _ in WITHIN_TEXT + IN_LOCATION + PRESIGNED] + NO_SECRET_IN_TEXT
                         + NO_SECRET_IN_LOCATION + ["host=db token=***'", "postgresql://h/db password=\\'a b\\'"])
def test_the_forms_location_pattern_finds_a_secret_where_a_location_hides_one(text):
    """secrets53: the form refuses in a location's text (`VISIBLE_LOCATION_SECRET`) what a stored location hides
    (`redact_location`), and passes what it shows."""
    assert bool(re.search(VISIBLE_LOCATION_SECRET, text)) == (redact_location(text) != text), redact_location(text)
    assert not re.search(VISIBLE_LOCATION_SECRET, redact_location(text)), redact_location(text)


def test_redact_text_hides_the_secrets_of_every_url_in_a_message():
    message = ("cannot read 'https://u:tok1@h/x.csv?token=tok2' nor postgresql://v:pw3@k:5432/db?application_name=a@b,"
               " nor https://h/y.csv?access_token=tok4.")
    shown = redact_text(message)
    assert shown == ("cannot read 'https://u:***@h/x.csv?token=***' nor "
                     "postgresql://v:***@k:5432/db?application_name=a@b, nor https://h/y.csv?access_token=***.")


@pytest.mark.parametrize("message, shown", [
    # redact49: a password with a space not percent-encoded: the words after its first were shown
    ("cannot read https://u:s3 cret@h/x.csv: 401", "cannot read https://u:***@h/x.csv: 401"),
    ("'postgresql://u:a b c@h:5432/db' refused", "'postgresql://u:***@h:5432/db' refused"),
    ("https://u:pw@h/x and https://v:s p@k/y.", "https://u:***@h/x and https://v:***@k/y."),
    ("cannot read https://u:12/x@h/x.csv: 401", "cannot read https://u:***@h/x.csv: 401"),  # digits then a '/'
    ("https://u:pw@h/x.csv failed for a@b.org", "https://u:***@h/x.csv failed for a@b.org"),  # ends at its '@'
    # secrets50: a password of four words or more showed its words after the third
    ("cannot read https://u:a b c d@h/x.csv: 401", "cannot read https://u:***@h/x.csv: 401"),
    ("'s3://KEY:w1 w2 w3 w4 w5 w6 w7@bucket/x.parquet' and https://v:p q r s t@k/y",
     "'s3://KEY:***@bucket/x.parquet' and https://v:***@k/y"),
])
def test_redact_text_hides_a_password_that_reads_as_a_port_or_holds_a_space(message, shown):
    assert redact_text(message) == shown


@pytest.mark.parametrize("message", [
    "at https://h:8080 or mail me@x.org",  # a port and a sentence, no password of words
    # fixrev50: a port then a mark that ends a clause read as a password of words up to the sentence's '@'
    "could not reach https://db.example:5432, so the nightly report went to ops@example.org",
    "at https://h:8080. Mail me@x.org", "(see https://h:8080) or mail me@x.org", "https://h:8080; me@x.org",
    "host=h password: see 'a@b' at 12:30 (no URL) https:/not-one",
    "cannot read /data/user@host/sales.csv: row 3 'id=token:1@x'",  # a local path, a quoted row: no URL
    "C:\\data\\x.csv: column 'api_key' is not a number (got 'key=abc:1@x')",
    "s3://bucket/a@b/x.parquet: no such file", "gs://b/dir/a:b@c.csv", "https://h/a:b@c/x.csv",  # '@' in a path
    "s3://b/time=12:00@utc/x.csv", "sftp://host/home/me:2/x@y.csv",
    "file://C:/data/u@x.csv and file://D:\\data\\u@x.csv",  # a Windows drive is no user: 'C:***@x.csv' was shown
])
def test_redact_text_leaves_a_message_without_a_url_s_secret_as_it_is(message):
    assert redact_text(message) == message


@pytest.mark.parametrize("line", [
    "a" * 200_000,  # a scheme was tried at each letter of a word, read to its end each time
    "see https://h/x" + "." * 200_000 + "x",  # the URL's end was looked for past the marks at each character
    "a://b:@?x?" * 20_000,  # each user's '@' was looked for past every '@' after it
    "https://u:" + "@a?" * 66_000, "https://h/x?" + "&a.b-c" * 33_000, "postgresql://u:p@h/db?x=1 " * 8_000,
    "x://u:p q@h " * 16_000, "a://b:c d e@" * 16_000,  # a password of words, read at each URL (redact49)
    "x://u:p q r s t u@h " * 8_000, "a://b:c" + " d" * 100_000, "a://b:c d e f@ " * 12_000,  # (secrets50)
])
def test_redact_text_of_a_long_line_takes_time_in_proportion_to_its_length(line):
    """A run's every log line is redacted: 200,000 characters of these took from seconds to minutes (the square of the
    length); they take milliseconds now (the bound leaves room for a busy machine)."""
    import time

    began = time.process_time()  # (processor time: a loaded machine stretches the clock, not the work)
    redact_text(line)
    assert time.process_time() - began < 1.5


@pytest.mark.parametrize("dsn", KEYWORD_DSNS)
def test_a_log_line_hides_a_keyword_dsns_password_wherever_it_is(dsn):
    """fixA51: a log line showed a keyword DSN's password whole (`RedactFilter` read URLs alone: Prefect's
    `Parameters: {'path': 'host=db password=s3cret'}` as a flow's parameters fail their validation, a library's error):
    in a sentence and in a dict's repr (one whose repr doubles a '\\' too: `'s3\\\\' cret'` showed ' cret', fixC51), each
    password libpq reads is hidden, the marks around it kept."""
    read = conninfo_to_dict(dsn)
    secrets = [read[k] for k in ("password", "sslpassword") if read.get(k) not in (None, "***")]
    assert redact_log_text(f"could not connect to {dsn}.") == f"could not connect to {redact(dsn)}."
    line = f"Parameters: {{'source': {{'path': {dsn!r}}}, 'home': None}}"
    shown = redact_log_text(line)
    assert shown == line.replace(repr(dsn)[1:-1], repr(redact(dsn))[1:-1]), shown
    assert not any(s in shown or repr(s)[1:-1] in shown for s in secrets), shown


def test_a_log_line_hides_a_repr_s_doubly_escaped_quote_and_the_rest_of_the_password():
    """fixC51: in a repr the '\\' of a password's escaped quote is doubled, and the value ended at that quote."""
    line = "Parameters: " + repr({"path": "host=db password='a\\'b c' dbname=x"})
    assert redact_log_text(line) == """Parameters: {'path': "host=db password=*** dbname=x"}"""


@pytest.mark.parametrize("dsn", ["host=db password=s3\\ cr3t dbname=x", "host=db password=w1\\ w2\\ w3\\  dbname=x",
                                 "host=db password=\\ w1\\ w2"])
def test_a_log_line_hides_a_password_whose_escaped_spaces_a_repr_escapes_again(dsn):
    """secrets53: in a repr the '\\' of a password's escaped space is doubled, and the value ended at that space: its
    words after the first were shown."""
    read = conninfo_to_dict(dsn)["password"]
    line = "Parameters: " + repr({"path": dsn})
    shown = redact_log_text(line)
    assert shown == "Parameters: " + repr({"path": redact(dsn)}), shown
    assert not any(word in shown for word in read.split()), shown


def test_a_log_line_hides_a_password_quoted_by_a_repr_s_escaped_quotes():
    """fixC51's risk, mended by the lead: the repr of text holding both quote marks escapes the DSN's own quotes
    (`password=\\'a b\\'`), and the value was read unquoted, to the next space: its words after the first were shown."""
    line = "Parameters: " + repr({"path": "host=db password='a b c' x=\"y\""})
    shown = redact_log_text(line)
    assert "password=***" in shown and " b" not in shown and " c" not in shown and 'x="y"' in shown, shown


@pytest.mark.parametrize("line", [
    "password='" + "\\" * 300_000, "password='" + "\\\\'" * 100_000, " password='a\\\\'" * 30_000,
    "password=" * 33_000, "x password='\\\n" * 21_000, "password=a\\" * 27_000,
])
def test_redact_log_text_of_a_long_line_takes_time_in_proportion_to_its_length(line):
    """A quoted DSN value is read once: a 300,000-character line of backslashes, quotes and passwords takes
    milliseconds (the bound leaves room for a busy machine)."""
    import time

    began = time.process_time()  # (processor time: a loaded machine stretches the clock, not the work)
    redact_log_text(line)
    assert time.process_time() - began < 1.5


@pytest.mark.parametrize("line", [
    "postgresql://u:***@h/db?password=***&sslmode=require", "a run: host=db password=*** dbname=x",
    "password='' host=db", "the password is in vault", "db_password=abc and passwords=1", "kwargs ?password=***&a=1",
])
def test_a_log_line_without_a_dsns_password_shown_is_left_as_it_is(line):
    assert redact_log_text(line) == line


@pytest.mark.parametrize("text", ["host=\\ " * 10_000, "host=\\ host=\\ " * 5_000 + "x", " host=a\\ user=b" * 4_000])
def test_a_parameter_with_pairs_of_escaped_spaces_takes_time_in_proportion_to_its_length(text):
    """secrets53: a pair's value read over escaped spaces is read once, its pairs within it not read again (read from
    each pair, `host=\\ host=\\ ...` grew with the square of its length: seconds for 60,000 characters)."""
    import time

    began = time.process_time()  # (processor time: a loaded machine stretches the clock, not the work)
    redact_parameter(text + " password=s3cret")
    assert time.process_time() - began < 1.5


def test_a_log_line_hides_a_url_and_a_dsn_together():
    line = "read https://u:pw1@h/x.csv?token=tok2, then host=db password=s3cret."
    assert redact_log_text(line) == "read https://u:***@h/x.csv?token=***, then host=db password=***."


@pytest.mark.parametrize("url", ["https://u:12 ab@h/api", "https://u:a b c d@h/api", "https://h/api?token=a b"])
def test_a_backfills_api_wait_names_the_api_redacted_whole(url):
    """fixA49: `api_wait_said` left the API's URL to its run logger's filter, which reads URLs out of a line and cannot
    tell where a password with a space ends (`u:12 ab@`, `u:a b c d@`, `token=*** b` were shown). It names the URL
    redacted whole, and the error's text redacted too."""
    from flowcast.ops.reaper import api_wait_said

    said = api_wait_said("2019-03-01", url, "did not answer", ConnectionError(f"cannot reach {url}"), "running the date")
    assert said.startswith(f"2019-03-01: the Prefect API at {redact(url)} did not answer (ConnectionError: "), said
    assert url not in said and said.count("***") == 2, said


def test_a_backfills_api_wait_names_a_keyword_dsn_in_its_error_without_its_password():
    """secrets52: the error's text was redacted of its URLs alone."""
    from flowcast.ops.reaper import api_wait_said

    said = api_wait_said("2019-03-01", "http://h/api", "did not answer", OSError("host=db password=s3cret"), "then")
    assert "(OSError: host=db password=***)" in said, said


@pytest.mark.parametrize("text, shown", IN_LOCATION)
def test_a_log_line_and_redact_hide_what_a_stored_location_hides(text, shown):
    """fixD53: a secret's `name=value` hidden in a stored location (`redact_location`) was shown by a log line
    (`redact_log_text`) and by `redact`: a log line shows no secret that storage hides."""
    assert redact(text) == shown
    assert redact_log_text(f"connect failed: {text}") == f"connect failed: {shown}"


def test_a_log_line_hides_a_secrets_value_after_a_dsns_pair():
    assert redact_log_text("connect failed: host=db pwd=s3cret") == "connect failed: host=db pwd=***"
    assert redact("postgresql://h/db (token=s3cret)") == "postgresql://h/db (token=***)"
    assert redact_log_text('x: host=db password="s3 cret", y') == "x: host=db password=***, y"


def test_a_log_line_keeps_the_marks_after_a_hidden_value():
    """fixD53: `(..., shared_options.secret = ***): the` lost its '):', read as a value shown and hidden whole."""
    said = "showed a token (host=db, x.secret = ***): the API stored them; password = s3cret: see"
    assert redact_log_text(said) == "showed a token (host=db, x.secret = ***): the API stored them; password = ***: see"


@pytest.mark.parametrize("text", ["https://h/x.csv?\u017fecret=a", "https://h/x.csv?\u212aey=a",
                                  "https://h/x.csv?api_\u212aey=a", "host=db pa\u017f\u017fword=a dbname=x",
                                  "conn host=db pa\u017f\u017fword=a; select 1", "ho\u017ft=db pwd=a",
                                  "postgresql://h/db (\u017fecret=a)", "\u017fervice=x token=a"])
def test_a_name_that_reads_as_a_secrets_only_by_unicodes_case_folding_is_none_and_the_form_agrees(text):
    """secrets53b: Python's any case (`re.IGNORECASE`) read 'ſ' (U+017F) as an 's' and 'K' (U+212A) as a 'k', the
    form's pattern (ECMA-262, `[sS]`) did not: `?ſecret=a` passed the form and was stored `***`, which a worker then
    refused. A name is a secret's in ASCII letters alone, stored, logged and refused alike."""
    assert redact_location(text) == redact_parameter(text) == redact(text) == text
    assert redact_log_text(text) == text
    assert not re.search(VISIBLE_LOCATION_SECRET, text)



@pytest.mark.parametrize("text, shown", [("host=db\u00a0password=s3", "host=db\u00a0password=***"),
                                         ("conn host=db\u00a0password=s3; x", "conn host=db\u00a0password=***; x")])
def test_a_no_break_space_ends_a_dsns_value_in_storage_and_logs_as_in_the_form(text, shown):
    """secrets53b: a names' ASCII case read for the whole pattern (`re.ASCII`) read a no-break space as a value's, not a
    space: `host=db<U+00A0>password=s3` was logged whole, and stored whole within other text, though the form (ECMA-262's
    `\\s`) refuses it."""
    assert redact_parameter(text) == shown
    assert redact_log_text(text) == shown
    assert re.search(VISIBLE_SECRET, text) and not re.search(VISIBLE_SECRET, shown)

@pytest.mark.parametrize("url, shown", [
    ("https://h/x.csv#access_token=abc", "https://h/x.csv#access_token=***"),
    ("https://h/x.csv?a=1#token=abc&state=s", "https://h/x.csv?a=1#token=***&state=s"),
    ("https://h/cb#id_token=a.b.c", "https://h/cb#id_token=***"),
])
def test_a_fragments_secret_value_is_hidden_stored_logged_and_refused(url, shown):
    """secrets53b: `#access_token=abc` (an OAuth implicit grant's fragment) was stored and logged as written, while
    `#&token=abc` was hidden: a fragment's first parameter is read as a query's."""
    assert redact(url) == redact_parameter(url) == redact_location(url) == shown
    assert redact_log_text(f"GET {url} failed") == f"GET {shown} failed"
    assert re.search(VISIBLE_SECRET, url) and re.search(VISIBLE_LOCATION_SECRET, url)
    assert not re.search(VISIBLE_LOCATION_SECRET, shown)


@pytest.mark.parametrize("url, shown", [
    ("https://h/x.csv?tok%65n=a", "https://h/x.csv?tok%65n=***"),
    ("https://h/x.csv?pass%77ord=a&page=2", "https://h/x.csv?pass%77ord=***&page=2"),
    ("https://h/x.csv?%54%4F%4B%45%4E=a", "https://h/x.csv?%54%4F%4B%45%4E=***"),
    ("https://h/x.csv?since=1&access%5ftoken=a", "https://h/x.csv?since=1&access%5ftoken=***"),
    ("https://h/x.csv?api%5Fkey=a", "https://h/x.csv?api%5Fkey=***"),
    ("https://h/x.csv?x%2Dauth=a", "https://h/x.csv?x%2Dauth=***"),
    ("https://h/x.csv?k%65y=a", "https://h/x.csv?k%65y=***"),
    ("https://h/x.csv?%73ig=a", "https://h/x.csv?%73ig=***"),
    ("https://h/cb#id%5Ftoken=a.b", "https://h/cb#id%5Ftoken=***"),
    ("postgresql://h/db?ssl%70assword=a", "postgresql://h/db?ssl%70assword=***"),
])
def test_a_query_name_whose_characters_are_percent_encoded_is_read_decoded(url, shown):
    """secrets54: a server decodes a query parameter's name before it reads it (`?tok%65n=a` is `token`), and such a
    secret was stored, logged and passed by the form as written."""
    assert redact(url) == redact_parameter(url) == redact_location(url) == shown
    assert passwords(url) == ["a.b" if "#" in url else "a"]
    assert redact_log_text(f"GET {url} failed") == f"GET {shown} failed"
    assert re.search(VISIBLE_SECRET, url) and re.search(VISIBLE_LOCATION_SECRET, url)
    assert not re.search(VISIBLE_LOCATION_SECRET, shown)


@pytest.mark.parametrize("url", [
    "https://h/x.csv?o%61uth=a", "https://h/x.csv?%6Fauth=a", "https://h/x.csv?%4F%41uth=a",  # 'oauth', no secret
    "https://h/x.csv?tok%65n=", "https://h/x.csv?tok%65n=***", "https://h/x.csv?%C5%BFecret=a",  # 'ſecret' (U+017F)
    "https://h/x.csv?tok%6Fen=a", "https://h/x.csv?a%26token=a", "/d/x?tok%65n=1.csv",  # 'tokoen'; 'a&token'; a file
])
def test_a_percent_encoded_name_that_decodes_to_no_secrets_is_stored_as_written_and_passed(url):
    """secrets54: a name is decoded where it reads as a secret's (`percent_encoded`), and nowhere else: 'oauth', an
    empty or hidden value, a character beyond ASCII's, a '&' within a name, a file's glob stay as written."""
    assert redact(url) == redact_parameter(url) == redact_location(url) == redact_log_text(url) == url
    assert not re.search(VISIBLE_SECRET, url) and not re.search(VISIBLE_LOCATION_SECRET, url)


_SQUARE_UNITS = (",host=", "(host=", ",host=\\", ",password=", ",host=x", "\\,port=a")
# the imports and patterns of its child process, not timed (`run_in_processor_time`)
_TIMED_SETUP = ("import re\n"
                "from flowcast.redaction import redact_location, redact_parameter\n"
                "from flowcast.source_secrets import VISIBLE_LOCATION_SECRET, VISIBLE_SECRET\n"
                "visible, located = re.compile(VISIBLE_SECRET), re.compile(VISIBLE_LOCATION_SECRET)")


def test_pairs_within_an_unquoted_value_are_read_in_time_in_proportion_to_the_texts_length():
    """secrets54: `,host=` repeated was read to its end from each pair, by the form's patterns (`VISIBLE_SECRET`: 0.1 s
    at 4,096 characters, 19 s in ECMA-262 at 65,536) and by a stored parameter's (`redact_parameter`: over a minute at
    65,536). Each unit of `_SQUARE_UNITS` repeated to 65,536 characters, then a secret's pair hidden or shown, read
    by both and refused where it is shown, in 10 s of the processor (120 s of the clock, a busy machine's): each
    reading takes a tenth of a second or so now, and `,host=` alone took minutes."""
    body = (f"for unit in {_SQUARE_UNITS!r}:\n"
            "    for text in ((unit * 65536)[:65536] + ' password=***', (unit * 65536)[:65536] + ' password=s3'):\n"
            "        assert bool(visible.search(text)) == (redact_parameter(text) != text), (unit, text[-20:])\n"
            "        assert bool(located.search(text)) == (redact_location(text) != text), (unit, text[-20:])\n"
            # fixE54: agreeing alone passed were both to show ` password=s3`
            "        if text.endswith('s3'):\n"
            "            assert visible.search(text) and located.search(text), (unit, text[-20:])\n"
            "            assert 's3' not in redact_parameter(text) and 's3' not in redact_location(text), unit\n")
    run_in_processor_time(f"{_SQUARE_UNITS} repeated to 65,536 characters", _TIMED_SETUP, body, seconds=10)


def test_ending_before_refuses_a_pattern_that_holds_no_unquoted_tail():
    """fixE54: `ending_before` rewrote a value's unquoted tail (`_UNQUOTED_TAILS`) with a replace that, the value
    edited and the tails not with it, found nothing and said nothing: the search grew with the square of the text's
    length again. Each of `DSN_VALUE` and `KEY_VALUE` is rewritten; a value holding no tail is refused, named."""
    stop = "(?:X)"
    for value in (DSN_VALUE, KEY_VALUE):
        assert f"(?!{stop})" in ending_before(value, stop), value
    edited = KEY_VALUE.replace(r"\\\S", r"\\[^\s]")  # the same value, written otherwise
    assert edited != KEY_VALUE and re.fullmatch(edited, "a\\ b") is None and re.fullmatch(edited, "a\\,b")
    with pytest.raises(ValueError, match="holds none of the unquoted values' tails") as refused:
        ending_before(edited, stop)
    assert repr(edited) in str(refused.value)

"""Secrets kept out of what flowcast says: a URL's password and secret query values shown `***`.

`redact(url)` hides them in one URL (a store's `store.url`, a source's path) or keyword DSN (`host=h password=x`);
`redact_text(message)` in every URL of a message; `redact_log_text(message)` there and in every keyword DSN's
`password=` too (a log line, an error's text: what the CLI prints); `redact_parameter(text)` in a flow run's stored
parameter, whether it is one URL or DSN or holds them within other text. The rest of a URL stays as written: it says
where the store or the data is.

- The password after the user (`scheme://user:PASSWORD@host`, or `://:PASSWORD@host` with no user) runs to the last
  '@' before the host: the first '@' after which the rest reads as a URL's hosts, path and query (a host holds no '@').
  A '@', '?' or '/' within it that libpq wants percent-encoded is hidden with it ('p@ss', 'p?ss/x'); a '@' in the
  query (`?application_name=a@b`) is not a password's end. A URL with no userinfo whose '@' is in its query or path
  after a port (`postgresql://h:5432/db?application_name=a@b`, `https://h:443/@scope/x`) is shown whole, as is an
  empty password (`u:@h`: nothing to hide) and a Windows drive (`file://C:/data/u@x.csv`: no user). Such a '@' is one
  in a query of parameters (`?name=value`) or, but in a PostgreSQL URL (its path, a database's name, holds none), one
  that begins a path's segment (`/@scope`): `postgresql://u:12/x@h/db`, `postgresql://u:12?x@h/db` and
  `https://u:12/x@h` hide '12/x' and '12?x' (they were shown whole, read as a port; `https://h:443/a@b` is hidden too).
- A query value whose name says it is a secret (`password`, `passwd`, `pwd`, `secret`, `token`, `signature`, an API key,
  `auth`, `authorization`, a credential and names ending in them: `sslpassword`, `access_token`, `client_secret`,
  `proxyauth`, `x-auth`; `oauth` is a flag or a provider's name) is shown `***`: a presigned URL's signature and what
  names the signer (S3's `X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`, `Signature` and
  `AWSAccessKeyId`; GCS's `X-Goog-Signature`, `X-Goog-Credential`, `GoogleAccessId`; an Azure SAS's `sig`). A name's
  characters may be percent-encoded, as a server decodes them (`?tok%65n=`, `?pass%77ord=`).
- In a keyword DSN (text of `keyword=value` pairs alone), `password` and `sslpassword`, quoted ('s3 cret', a \\'
  within) or to the next space; a value shown `***` already is left so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

HIDDEN = "***"


def ascii_names(names: str) -> str:
    r"""`names` (a pattern of names, in one compiled `re.IGNORECASE`) read in any case in ASCII letters alone, its `\w`
    ASCII's, as the deployments' form reads them (ECMA-262's `[sS]`, `source_secrets._any_case`, and `\w`): Python's
    any case read 'ſ' (U+017F) as an 's' and 'K' (U+212A) as a 'k', and `?ſecret=a` passed the form yet was stored
    `***`, which a worker then refused (secrets53b). The rest of the pattern reads Unicode's spaces as it did (a whole
    pattern's `re.ASCII` read a no-break space as a value's: `host=db<U+00A0>password=s3` was logged whole)."""
    return f"(?a:{names})"


# a URL's scheme, then its user and the ':' before a password (a user holds none of ':/?#@', nor '[' of an IPv6 host;
# a Windows drive is none: `file://C:/data/u@x.csv` hid 'C:' to the '@' of its path)
_USER = re.compile(r"://(?![A-Za-z]:[/\\])[^:/?#@\s\[\]]*:")
# a host, a port (digits) and a path or query: `h:5432/db?application_name=a` before the '@' of
# `postgresql://h:5432/db?application_name=a@b`, `h:443/` before that of `https://h:443/@scope/x`, can be no user and
# password (`_no_userinfo` says which: a password of digits then a '/' or '?', `https://u:12/x@h`, is one)
_HOST_PORT_PATH = re.compile(r"[^/?#@:]*:\d+[/?].*", re.DOTALL)
_POSTGRES = ("postgresql", "postgres")
# the names of a query parameter whose value is a secret (patterns, any case): one of these or a name ending in one
# (`SECRET_NAME_ENDS`), or one of `SECRET_NAMES` alone
# (`auth` not after an 'o': `proxyauth`, `x-auth`, not `oauth`; patterns of Python's `re` and ECMA-262 alike)
SECRET_NAME_ENDS = ("password", "passwd", "pwd", "secret", "token", "signature", "api_?key", "api-key", "(?<!o)auth",
                    "authorization", "credentials?", "accesskeyid", "accessid")
SECRET_NAMES = ("key", "sig")
# one of ASCII's word characters, '.' or '-' percent-encoded (`%5F` for '_', `%65` or `%45` for an 'e'), as a query
# parameter's name may hold it: none of '&', '=', '#', '@', a space nor a character beyond ASCII (`%C5%BF`, 'ſ', is no
# 's': `ascii_names`)
PERCENT_WORD = "%(?:2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF])"


def percent_encoded(name: str) -> str:
    """`name` (a pattern of a query parameter's name: letters, '_', '-', a '?' after one, `(?<!o)`) matching each of its
    letters in any case and each of its characters percent-encoded too (`tok%65n`, `%54OKEN`, `api%5Fkey`), as a
    server decodes a name before it reads it. Patterns of Python's `re` and ECMA-262 alike, without a flag."""
    shown = []
    for part in re.findall(r"\(\?<!.\)|.", name):
        if part.startswith("(?<!"):  # not after the letter, nor after it encoded (`%6Fauth`, 'oauth')
            shown.append(f"(?<![{part[4].lower()}{part[4].upper()}])(?<!{_encoded(part[4])})")
        elif part.isalpha():
            shown.append(f"(?:[{part.lower()}{part.upper()}]|{_encoded(part)})")
        elif part in "_-":
            shown.append(f"(?:{part}|{_encoded(part)})")
        else:
            shown.append(part)
    return "".join(shown)


def _encoded(character: str) -> str:
    """`character` (an ASCII letter in either case, '_' or '-') percent-encoded, its hexadecimal digits in any case."""
    codes = {f"{ord(c):02X}" for c in {character.lower(), character.upper()}}
    first = "".join(sorted({c[0] for c in codes}))
    second = codes.pop()[1]
    second = f"[{second.lower()}{second.upper()}]" if second.isalpha() else second
    return f"%[{first}]{second}" if len(first) > 1 else f"%{first}{second}"
# a query parameter whose value is a secret, the value up to the next parameter or fragment; an empty one is none
# (`?token=` was stored `?token=***`, a secret a worker then looked for in its configuration, and the form passed it:
# secrets53); a fragment's first parameter too (`#access_token=abc`, an OAuth implicit grant's, was shown while
# `#&token=abc` was hidden, secrets53b)
# A name's characters may be percent-encoded (`?tok%65n=a`, `?pass%77ord=a`: a server reads the name decoded, and they
# were stored as written, secrets54): `percent_encoded`
_SECRET_QUERY_NAME = ascii_names(rf"(?:[\w.-]|{PERCENT_WORD})*?(?:{'|'.join(map(percent_encoded, SECRET_NAME_ENDS))})"
                                 rf"|{'|'.join(map(percent_encoded, SECRET_NAMES))}")
_URL_SECRET = re.compile(rf"([?&;#])({_SECRET_QUERY_NAME}=)([^&#]+)", re.IGNORECASE)
# a keyword DSN (libpq's `host=db user=u password=s3cret dbname=x`): text that is `keyword=value` pairs alone, spaces
# between them and around each '=', a value quoted ('a b', a \' within; the last one's closing quote may be missing)
# or to the next space (a '\' escaping the character after it). Patterns of Python's `re` and ECMA-262 alike: the
# deployments' form refuses a DSN that shows a secret with the same pairs (`source_secrets.VISIBLE_SECRET`). Text
# that holds other words is no DSN: '/data/my password=1 x.csv' (a file) and prose stay as written.
_DSN_UNQUOTED = r"(?:[^\s'\\]|\\.)(?:[^\s\\]|\\.)*"
DSN_VALUE = r"'(?:[^'\\]|\\.)*'?|" + _DSN_UNQUOTED
DSN_PAIR = rf"[A-Za-z_][A-Za-z0-9_]*\s*=\s*(?:{DSN_VALUE})"
# the keywords of a DSN's secrets (any case)
DSN_SECRET_KEYS = ("password", "sslpassword")
_DSN = re.compile(rf"\s*{DSN_PAIR}(?:\s+{DSN_PAIR})*\s*")
_DSN_PAIR = re.compile(rf"([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)({DSN_VALUE})")
# a URL within a message: a scheme, '://', up to the next space, less the marks that end a sentence or a quote there.
# Linear in the message's length: a scheme is tried from the start of a word alone, its characters read once
# (possessive), and the URL read to the space at once, then back to its last character that is no such mark (a scheme
# tried at each letter of a long word, a lazy URL that looked ahead over the marks at each character, took seconds
# for a line of 20,000 characters and grew with its square). A password of words (a space not percent-encoded,
# `https://u:s3 cret@h/x.csv`: its words after the first were shown) is read with its URL, however many, to the '@'
# that ends them where a host follows it; its first word not digits alone, nor digits then a mark that ends a clause
# (`https://h:8080 or mail me@x.org`, `https://h:5432, so ... ops@x.org` are a port and a sentence). Each word possessive, and a word holds no '/': the words of one URL end at the next URL's '://' at
# the latest, so that each character is read by one URL's words at most (they were at most three, for that: a
# password of four or more words showed its words after the third).
_URL_IN_TEXT = re.compile(r"(?<![\w+.-])[\w+.-]++://(?:[^:/?#@\s\[\]]*+:(?!\d+(?:[\s,;.!?)]|$))[^\s@/]++(?: [^\s@/]++)++@(?=[\w\[-]))?"
                          r"\S*[^\s.,;:!?)\]'\"]")


# a keyword DSN's value in any text (`DSN_VALUE`), but a quoted one's escaped quote may be escaped once more: a
# Python repr doubles a '\' (`{'path': "host=db password='a\\'b c'"}`: the value ended at that quote and 'b c' was
# shown, fixC51).
# Read once (possessive): a 300,000-character line takes milliseconds. A value that ends in an escaped '\' (`'a\\'`)
# is read on past its closing quote: more of the line hidden, none of the password shown.
# A value quoted by escaped quotes (`\'a b\'`: the repr of text holding both quote marks escapes the DSN's own) is
# read to its closing `\'` (it was read unquoted, to the next space: `password=*** b\'` showed the password's words
# after the first).
# A value in double quotes (`password="s3 cret"`, a '\\' escaping the character after it) is read to its closing
# quote too (it was read unquoted, to the next space: `password=*** cret"` showed the password's words after the first)
_TEXT_QUOTED = r"\\'(?:[^\\]|\\[^'])*+(?:\\')?|'(?:[^'\\]|\\\\?.)*+'?|\"(?:[^\"\\]|\\.)*+\"?"
# the quotes a value may be quoted by in text (`_TEXT_QUOTED`)
QUOTES = "'\""
_TEXT_DSN_VALUE = _TEXT_QUOTED + "|" + _DSN_UNQUOTED
# a word's start in text (a character before it), where a DSN's keyword may begin
WORD_START = "\\s'\"(\\[{,:"


def _secret_in_text(value: str, names: str = "|".join(DSN_SECRET_KEYS)) -> re.Pattern[str]:
    """A keyword DSN's secret in any text: a secret keyword (`names`) where a word starts (not a URL's query:
    `redact_text` reads it) and its `value`, any case."""
    return re.compile(rf"(?<![^{WORD_START}])({ascii_names(names)}\s*=\s*)({value})", re.IGNORECASE)


# a keyword DSN's secret in a parameter's text (`_TEXT_DSN_VALUE`)
_DSN_SECRET_IN_TEXT = _secret_in_text(_TEXT_DSN_VALUE)
# and in a log line (Prefect's `Parameters: {'path': 'host=db password=s3cret'}`, a library's error), where an unquoted
# value's escaped '\' may be escaped once more too, as a quoted one's: a repr doubles it (`{'path': 'password=a\\ b'}`:
# ' b' was shown, secrets53). A value that ends in an escaped '\' (`a\\ b`) is read on over the space after it: the
# word after it hidden too, none of the password shown
_LOG_DSN_VALUE = _TEXT_QUOTED + r"|(?:[^\s'\\]|\\\\?.)(?:[^\s\\]|\\\\?.)*+"
_LOG_DSN_SECRET = _secret_in_text(_LOG_DSN_VALUE)
# secrets53: the names of a secret's `name=value` anywhere in a location's text that is a URL or a DSN (a source's path,
# a store's URL: `redact_location`), any case: one ending in these (`password`, `pwd`, `db_secret`, `token`). Patterns
# of Python's `re` and ECMA-262 alike (`source_secrets.VISIBLE_LOCATION_SECRET`)
LOCATION_SECRET_ENDS = ("password", "passwd", "pwd", "secret", "token")
NAME_BEFORE = r"[A-Za-z0-9_.-]*?"
LOCATION_SECRET_NAME = rf"{NAME_BEFORE}(?:{'|'.join(LOCATION_SECRET_ENDS)})"
_LOCATION_SECRET = _secret_in_text(_TEXT_DSN_VALUE, LOCATION_SECRET_NAME)
# and in a log line, its value read as `_LOG_DSN_SECRET` reads one: a log line shows no secret that a stored location
# hides (`connect failed: host=db pwd=s3cret` was shown whole, fixD53)
_LOG_LOCATION_SECRET = _secret_in_text(_LOG_DSN_VALUE, LOCATION_SECRET_NAME)
# the marks after a value in text that end a quote, a clause or a collection, shown: `password=***'}`, `secret = ***):`
# (a ':' too: a log line's `(x.secret = ***): the ...` lost its '):', read as a value shown, fixD53)
TEXT_ENDS = "'\",;.:)]}"
# libpq's keywords that make a secret's pair within a parameter's text a DSN's where a pair of one stands next to it
# (before it, or after it past spaces: `conn host=db password=s3cret; select 1`): a file's name or a note holding
# `password=` (`/data/my password=1 x.csv`) is no DSN, stored as written (secrets52 stored it `password=***`, a path
# that a worker then read, fixF52). Patterns of Python's `re` and ECMA-262 alike (`source_secrets.VISIBLE_SECRET`).
DSN_KEYS = ("host", "hostaddr", "port", "dbname", "user", "sslmode", "service", "application_name",
            "connect_timeout", *DSN_SECRET_KEYS)
# the value of such a pair before a secret's: `DSN_VALUE`, but an unquoted one ends at a space, escaped or not (one read
# on over escaped spaces, `host=\ host=\ ...`, was read again from each pair: minutes for a line of 300,000 characters)
KEY_VALUE = r"'(?:[^'\\]|\\.)*'?|(?:[^\s'\\]|\\\S)(?:[^\s\\]|\\\S)*"
# the repeated characters of an unquoted value after its first (`_DSN_UNQUOTED`, `KEY_VALUE`)
_UNQUOTED_TAILS = (r"(?:[^\s\\]|\\.)*", r"(?:[^\s\\]|\\\S)*")


def ending_before(value: str, stop: str) -> str:
    """`value` (a pattern of a DSN's value: `DSN_VALUE`, `KEY_VALUE`) whose unquoted value ends before `stop` (a
    pattern read at each of its characters after the first; a quoted value as it was). Patterns of Python's `re` and
    ECMA-262 alike. Raises ValueError where `value` holds none of `_UNQUOTED_TAILS` (its unquoted value edited and they
    not with it): a value left as it was is read to its end from each pair, a search that grows with the square of the
    text's length (fixE54: a replace that found nothing said nothing). Each caller runs at import."""
    if not any(tail in value for tail in _UNQUOTED_TAILS):
        raise ValueError(f"ending_before: the pattern {value!r} holds none of the unquoted values' tails "
                         f"{_UNQUOTED_TAILS!r} (`_UNQUOTED_TAILS`): edit them with `_DSN_UNQUOTED` and `KEY_VALUE`")
    for tail in _UNQUOTED_TAILS:
        value = value.replace(tail, f"(?:(?!{stop}){tail[:-1]})*")
    return value


def next_pair(keys: str, value: str = "") -> str:
    r"""Where a pair of one of `keys` (a pattern of names) begins within an unquoted value, its own value unquoted: a
    character that starts a word (escaped or not: `a\\,host=b` is read from its ',' too), the name, '=' and a character
    that is no space nor quote (`a,host=b`). Such a pair's value is the rest of the first one's, read alike from there
    to the same space, so a value read to it (`ending_before`) says no less than the whole: `,host=` repeated was read to its end from each
    pair, a search that grew with the square of the text's length (secrets54: 0.1 s at 4,096 characters, a minute at
    65,536). `value`: a lookahead its value's start must pass too (a secret's value shown)."""
    return rf"\\?[{WORD_START}](?:{keys})={value}[^\s']"


# a pair of one of `DSN_KEYS` and the spaces after it, where a word starts (group 1): where each ends, a secret's pair
# is a DSN's (read ahead at each start: pairs may overlap, `host='a user=b password=c`; an unquoted value read to the
# next such pair within it, `next_pair`, which ends where it does)
_DSN_KEY_NAMES = ascii_names("|".join(DSN_KEYS))
_KEY_PAIR = re.compile(rf"(?<![^{WORD_START}])(?=({_DSN_KEY_NAMES}\s*=\s*"
                       rf"(?:{ending_before(KEY_VALUE, next_pair(_DSN_KEY_NAMES))})\s+))", re.IGNORECASE)
# such a pair whose unquoted value holds an escaped space (`host=a\ b password=c`: libpq's value 'a b', and the
# secret's pair, read as next to none, was stored as written, secrets53), and the spaces after it (group 1; none where
# the text ends): read once, possessive, each pair's value to its end, the pairs within it (`a\ user=b`) skipped: they
# end where it does
_ESCAPED_KEY_PAIR = re.compile(rf"(?<![^{WORD_START}]){ascii_names('|'.join(DSN_KEYS))}\s*=\s*"
                               r"(?:[^\s'\\]|\\.)(?:[^\s\\]|\\.)*+(\s*)", re.IGNORECASE)
# spaces then one of `DSN_KEYS` and its '=', after a secret's value: a DSN's
_KEY_AFTER = re.compile(rf"\s+{ascii_names('|'.join(DSN_KEYS))}\s*=", re.IGNORECASE)
# what makes a location's text a URL or a DSN (`redact_location`): a '://' but a file's (`file:///data/my password=1
# x.csv` is a file's name as a bare path is: it was stored `password=***`, a path a worker then refused, fixD53), or one
# of `DSN_KEYS` but a secret's and its '=' where a word starts (`host=db`); a file's or a folder's name
# (`/data/my password=1 x.csv`) holds neither. Patterns of Python's `re` and ECMA-262 alike
# (`source_secrets.VISIBLE_LOCATION_SECRET`)
LOCATION_KEYS = tuple(k for k in DSN_KEYS if k not in DSN_SECRET_KEYS)
NOT_A_FILE = "(?<![Ff][Ii][Ll][Ee])://"
_URL_OR_DSN = re.compile(rf"{ascii_names(NOT_A_FILE)}|(?<![^{WORD_START}]){ascii_names('|'.join(LOCATION_KEYS))}\s*=",
                         re.IGNORECASE)


def password_spans(url: str) -> Iterator[tuple[int, int]]:
    """The (start, end) of each non-empty password after a user in `url` (one URL, read to its end), by the rule of
    the module's docstring."""
    ends: list[int] | None = None
    loose: list[int] | None = None
    for user in _USER.finditer(url):
        start = user.end()
        ends = _userinfo_ends(url) if ends is None else ends
        at = ends[start]
        if at == -1:  # no '@' is followed by one query at most: the first followed by hosts (a query may hold a '?',
            # `https://u:pw@h/x?a=1?b=2`: its password was shown, secrets52)
            loose = _userinfo_ends(url, queries=False) if loose is None else loose
            at = loose[start]
        if at == -1 or _no_userinfo(url, user.start(), at):
            continue
        if at > start:
            yield start, at


def _no_userinfo(url: str, after_scheme: int, at: int) -> bool:
    """Whether the text of `url` from its '://' (at `after_scheme`) to the '@' at `at` is a host, a port and a path or
    query, not a user and password (`_HOST_PORT_PATH`): only where the '@' is in a query of parameters
    (`h:5432/db?application_name=a@b`: a query names its values) or, but in a PostgreSQL URL (its path is a
    database's name, which holds no '@'), begins a path's segment (`h:443/@scope/x`). Elsewhere the text is a user and
    a password of digits and a '/' or '?' (`u:12/x@h/db`, `https://u:12/x@h`: it was shown whole, read as a port)."""
    if not _HOST_PORT_PATH.fullmatch(url, after_scheme + 3, at):
        return False
    if "=" in url[after_scheme:at].partition("?")[2]:
        return True
    return url[at - 1] == "/" and not url[:after_scheme].lower().endswith(_POSTGRES)


def _userinfo_ends(url: str, queries: bool = True) -> list[int]:
    """For each index i of `url` (and its length), the first '@' at or after i after which the rest reads as a URL's
    hosts, path, query and fragment, -1 where none: what follows it holds no '@' before its first '/', '?' or '#' (the
    hosts: a list, an IPv6 '[...]', none for a unix socket), and, with `queries`, one '?' at most before its first '#'
    (a '?' before the '@' and one after it: the first is the password's; a fragment holds anything). Read once from
    the end (a '@' tried in turn for each user, the rest read again from each,
    grew with the square of a long line's length: minutes for 200,000 characters of 'a://b:@?x?')."""
    ends = [-1] * (len(url) + 1)
    special = ""  # the first of '/?#@' after the index
    questions = 0  # the '?' after the index, before the first '#' after it
    for i in range(len(url) - 1, -1, -1):
        c = url[i]
        ends[i] = i if c == "@" and special != "@" and (questions <= 1 or not queries) else ends[i + 1]
        if c in "/?#@":
            special = c
        questions = 0 if c == "#" else questions + (c == "?")
    return ends


def passwords(url: str) -> list[str]:
    """Each secret `redact` hides in `url`: its password after the user, its secret query or DSN values (a quoted
    DSN value without its quotes); the empty ones left out."""
    found = [url[a:b] for a, b in password_spans(url)] + [m[3] for m in _URL_SECRET.finditer(url)] if "://" in url else []
    found += [v.strip("'") for v in _dsn_secrets(url).values()]
    return [s for s in found if s]


def _dsn_secrets(text: str) -> dict[int, str]:
    """The non-empty secret values (`DSN_SECRET_KEYS`, any case) of `text` where it is a keyword DSN (`_DSN`), by
    where each starts, quoted as written; none where it is no DSN."""
    if not _DSN.fullmatch(text):
        return {}
    return {m.start(3): m[3] for m in _DSN_PAIR.finditer(text)
            if m[1].lower() in DSN_SECRET_KEYS and m[3].strip("'")}


def redact(url: str) -> str:
    """`url` (one URL, or a keyword DSN) with its password and secret query values shown `***`, the rest as written:
    'postgresql://u:***@h:5432/db?application_name=a@b', 'https://h/x.csv?token=***', 'host=h password=*** dbname=d';
    and, as a location, each secret's `name=value` in it (`redact_location`: `postgresql://h/db (token=***)` was shown
    whole while stored hidden, fixD53). Other text without '://' is returned as it is ('/data/my password=1 x.csv': a
    file's name, not a DSN): how a source's path (a file, a folder, a glob), URL or DSN is shown."""
    return _hide_location_secrets(_redact(url), _LOCATION_SECRET)


def _redact(url: str) -> str:
    """`url` as `redact` shows it, but a secret's `name=value` of no URL's query nor DSN's password (`redact_parameter`
    stores free text's as written)."""
    if "://" in url:
        url = _URL_SECRET.sub(rf"\1\2{HIDDEN}", url)
        for start, end in reversed(list(password_spans(url))):
            url = url[:start] + HIDDEN + url[end:]
    for start, value in reversed(_dsn_secrets(url).items()):
        if value.strip("'") != HIDDEN:
            url = url[:start] + HIDDEN + url[start + len(value):]
    return url


def redact_text(message: str) -> str:
    """`message` with each URL in it (a scheme, '://', up to the next space; a full stop, comma or quote before it
    left out) redacted as `redact` does."""
    return _URL_IN_TEXT.sub(lambda m: _redact(m[0]), message)



def redact_log_text(message: str) -> str:
    """`message` (a log line, a traceback, an error's text) with each URL in it redacted (`redact_text`) and each
    keyword DSN's password in it `***` (`password=s3cret`, `sslpassword='a b'` anywhere: a log line showed
    `host=db password=s3cret` whole, fixA51); an unquoted one to the next space, less the marks that end a quote or a
    clause (`TEXT_ENDS`), one shown `***` already or empty as it is."""
    shown = _hide_dsn_secrets(redact_text(message) if "://" in message else message, beside_keys=False)
    return _hide_location_secrets(shown, _LOG_LOCATION_SECRET)


def _hide_location_secrets(text: str, secrets: re.Pattern[str]) -> str:
    """`text` with the value of each of `secrets` (a secret's `name=value`: `_LOCATION_SECRET`) in it `***` where
    `text` is a URL or a DSN (`_URL_OR_DSN`), as `redact_location` stores it; other text as it is."""
    return _hide_values(text, secrets) if _URL_OR_DSN.search(text) else text


def _hide_dsn_secrets(message: str, beside_keys: bool) -> str:
    """`message` with each keyword DSN's password in it `***` (`redact_log_text`); with `beside_keys`, only one next to
    a pair of `DSN_KEYS` (a DSN's, not a file's name: `redact_parameter`)."""
    if "password" not in message.lower():
        return message
    return _hide_values(message, _DSN_SECRET_IN_TEXT if beside_keys else _LOG_DSN_SECRET, beside_keys)


def _hide_values(message: str, secrets: re.Pattern[str], beside_keys: bool = False) -> str:
    """`message` with the value of each of `secrets` (a secret's name and '=', then its value) in it `***`
    (`_hide_dsn_secrets`), but one empty or `***` already; an unquoted one to the next space, less the marks that end a
    quote or a clause (`TEXT_ENDS`); with `beside_keys`, only one next to a pair of `DSN_KEYS`."""
    after_keys: set[int] = set()
    if beside_keys:  # where a pair of `DSN_KEYS` and its spaces end
        after_keys = {m.end(1) for m in _KEY_PAIR.finditer(message)}
        after_keys |= {m.end() for m in _ESCAPED_KEY_PAIR.finditer(message) if m[1]}

    def hide(m: re.Match[str]) -> str:
        value = m[2] if m[2].startswith(tuple(QUOTES)) else m[2].rstrip(TEXT_ENDS)
        if value.strip(QUOTES) in ("", HIDDEN):
            return m[0]
        if beside_keys and m.start() not in after_keys and not _KEY_AFTER.match(message, m.end()):
            return m[0]
        return m[1] + HIDDEN + m[2][len(value):]

    return secrets.sub(hide, message)


def redact_parameter(text: str) -> str:
    """`text` (a flow run's parameter: a source's path, a URL, a DSN, any text) as it is stored and shown: `redact`ed
    whole (one URL or keyword DSN, read to its end: a password of words, `https://u:s3 cret@h/x.csv`), then each URL
    within it (`redact_text`) and each keyword DSN's password within it next to a pair of `DSN_KEYS`
    (`select 1 -- postgresql://u:***@h/db?x=1 and ?y=2`, `conn host=db password=*** dbname=x; select 1`: they were
    stored whole, `redact` reading the text as one URL or one DSN, secrets52). A `password=` with no such pair next to
    it is no DSN's (a file's name, `/data/my password=1 x.csv`, a note): stored as written (secrets52 hid it, and a
    worker read the path `***` named, fixF52)."""
    shown = _redact(text)
    return _hide_dsn_secrets(redact_text(shown) if "://" in shown else shown, beside_keys=True)


def redact_location(text: str) -> str:
    """`text` (a location's parameter: a source's path, a store's URL or DSN, `shared`) as it is stored and shown:
    `redact_parameter`ed, and, where it is a URL or a DSN (`_URL_OR_DSN`), each secret's `name=value` in it too
    (`LOCATION_SECRET_NAME`: `password`, `pwd`, `secret`, `token`, with no pair of libpq's keywords next to it:
    `postgresql://h/db note (password = s3cret)`, `host=db (pwd=s3cret)` were stored as written, secrets53). A file's
    or a folder's name (`/data/my password=1 x.csv`) is stored as written, as is free text that is no location's (a
    note: `redact_parameter`)."""
    return _hide_location_secrets(redact_parameter(text), _LOCATION_SECRET)

"""`source_states` / `changed_since` on an object store (s3src43): an object's ETag, size, LastModified and version id,
asked of the moto S3 server, tell a replaced or removed object from one left alone; a URL that cannot be asked is not
checked. The whole run (read again, or failed) is tests/flows/test_object_written_while_read.py."""

from __future__ import annotations

import pytest
from data_helpers import make_source

from flowcast.data.remote import source_fingerprint
from flowcast.data.source_files import changed_since, source_states

OLD = b"id,date,val\na,2024-01-01,1\n"


@pytest.fixture
def s3(s3_url, monkeypatch):
    """(put, delete, url of an object 'v.csv' holding OLD) on the moto server, s3fs pointed at it by the environment."""
    import boto3

    url, opts = s3_url
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_ENDPOINT_URL": opts["endpoint_url"], "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    client = boto3.client("s3", endpoint_url=opts["endpoint_url"], aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    key = f"{prefix}/v.csv"

    def put(body: bytes) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=body)

    put(OLD)
    return put, lambda: client.delete_object(Bucket=bucket, Key=key), f"s3://{bucket}/{key}"


@pytest.mark.parametrize(("change", "said"), [
    (None, None),
    (OLD.replace(b",1\n", b",2\n"), "replaced by another object: still 27 bytes"),  # same size, another ETag
    (OLD + b"a,2024-01-02,2\n", "replaced by another object: 27 -> 42 bytes"),
    ("delete", "removed"),
])
def test_an_object_replaced_or_removed_is_named(s3, change, said):
    put, delete, url = s3
    source = make_source(url)
    before = source_states(source)
    assert before[url] is not None and before[url][0] == len(OLD) and before[url][1]  # size and ETag asked
    if change == "delete":
        delete()
    elif isinstance(change, bytes):
        put(change)
    assert changed_since(source, before) == ([] if said is None else [f"{url} ({said})"])


@pytest.mark.parametrize("url", ["https://example.invalid/v.csv", "nosuchprotocol://bucket/v.csv"])
def test_a_url_that_is_not_asked_is_not_checked(url):
    """An HTTP(S) file is read whole once (nothing to compare); an object whose store cannot be asked is left out."""
    source = make_source(url)
    assert source_states(source) == {}
    assert changed_since(source, {}) == []


def test_an_object_replaced_after_its_folder_was_listed_is_fingerprinted_afresh(s3):
    """tgt43: `source_fingerprint` asked s3fs for an object's metadata without dropping its listing cache: in a
    long-lived process (a worker, `flowcast serve`) whose filesystem had listed the folder, a replaced object kept
    its old ETag and size, and a run's cached result was served for new data. Its metadata are asked afresh."""
    import fsspec

    put, _, url = s3
    source = make_source(url)
    before = source_fingerprint(source)
    fs, path = fsspec.core.url_to_fs(url)
    fs.ls(path.rsplit("/", 1)[0])  # (the folder's listing cached, as a glob or another read of it caches it)
    put(OLD + b"a,2024-01-02,2\n")
    assert source_fingerprint(source) != before
    put(OLD)  # the same bytes again: the ETag, an MD5 of them, reads the same
    assert source_fingerprint(source) == before


@pytest.mark.parametrize("url", [False, True])
def test_a_file_url_globs_files_are_checked_as_a_local_globs(tmp_path, url):
    """Regression (ingest53b): a file:// glob's state was the glob's alone (`{glob: None}`: no object store to ask),
    so its files written, removed or added while a run read them went unnoticed, where a local glob's were named
    and read again. Each of its files is checked as a local glob's (`local_files`), named as the source names it,
    and a file written meanwhile is read again (`read_steadily`)."""
    from flowcast.data.source_files import read_steadily
    from flowcast.data.sources import ingest

    for name in ("a", "b"):
        (tmp_path / f"{name}.csv").write_bytes(OLD)
    glob = f"file://{tmp_path}/*.csv" if url else str(tmp_path / "*.csv")
    named = {n: f"file://{tmp_path / n}" if url else str(tmp_path / n) for n in ("a.csv", "b.csv", "c.csv")}
    source = make_source(glob)
    before = source_states(source)
    assert set(before) == {named["a.csv"], named["b.csv"]}, before
    assert changed_since(source, before) == []
    (tmp_path / "a.csv").write_bytes(OLD + b"a,2024-01-02,2\n")  # in place: the same inode
    (tmp_path / "b.csv").unlink()
    (tmp_path / "c.csv").write_bytes(OLD)
    assert changed_since(source, before) == [f"{named['a.csv']} (written in place: 27 -> 42 bytes)",
                                             f"{named['b.csv']} (removed)", f"{named['c.csv']} (added)"]
    warned, reads = [], []

    def written_while_read() -> object:
        reads.append(1)
        if len(reads) == 1:  # the first read's file written in place meanwhile; the second read steady
            (tmp_path / "a.csv").write_bytes(OLD)
        return ingest(source, None)

    read_steadily(source, written_while_read, lambda ingested: ingested, warned.append, sleep=lambda _: None)
    assert len(reads) == 2 and warned == [
        (f"Source 't' changed while it was read: {named['a.csv']} (written in place: 42 -> 27 bytes); another "
         "program writes it in place: read again in 1 s (read 2 of 3)")], warned

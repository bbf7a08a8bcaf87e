"""A source object on an object store replaced while a run reads it (s3src43): a real process stopped between ingest's
fingerprint and validation's read (FLOWCAST_FAULT=source:ingested, SIGSTOP), the object replaced on the moto S3 server,
the process continued. The local-file twin is tests/flows/test_source_written_while_read.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from flow_helpers import tiny_toml, write_series
from proc_state import stopped

from flowcast.config import load_settings
from flowcast.data.datasets import resolve_source
from flowcast.data.remote import source_fingerprint

AS_OF = datetime(2019, 6, 1)
HERE = Path(__file__).resolve().parent


def _aws_env(endpoint: str) -> dict[str, str]:
    """The environment that points polars (the scan) and s3fs (the checks) at the moto server."""
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}


def _reader(conf: Path, home: Path, endpoint: str) -> subprocess.Popen[str]:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, **_aws_env(endpoint), "FLOWCAST_FAULT": "source:ingested", "FLOWCAST_FAULT_SIGNAL": "SIGSTOP",
           "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONPATH": os.pathsep.join([str(HERE.parents[1] / "src"), str(HERE)])}
    return subprocess.Popen([sys.executable, str(HERE / "read_source_child.py"), str(conf), str(home),
                             AS_OF.isoformat()], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("writer", ["done", "replacing"])
def test_an_object_replaced_while_it_is_read_is_read_again(tmp_path, prefect_api, s3_url, monkeypatch, writer):
    """Regression: the files' states compared after validation's read left out every path with '://', so an s3://
    source replaced between ingest's fingerprint and validation's read gave the run the new object's rows under the
    old one's fingerprint, without a word. Its ETag, size, LastModified (and version id) are compared now, as a local
    file's size, times and inode are: an object replaced is read again (the writer done: the whole new object, its
    own fingerprint); one replaced at every read fails the run naming it, nothing read."""
    import boto3

    url, opts = s3_url
    endpoint = opts["endpoint_url"]
    for k, v in _aws_env(endpoint).items():
        monkeypatch.setenv(k, v)
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    key = f"{prefix}/tiny.csv"
    old = write_series(tmp_path / "tiny.csv", n_series=8).read_bytes()
    new = old.replace(b"S0,2011-01-01,", b"S0,2011-01-01,1")  # one value corrected, the same series
    assert new != old
    s3.put_object(Bucket=bucket, Key=key, Body=old)
    conf = tmp_path / "tiny.toml"
    conf.write_text(tiny_toml(f"s3://{bucket}/{key}"))
    # what each of the 3 reads finds as validation reads it: the writer done after the first (the second and third
    # reads find the object it left), or the object replaced whole at each read
    writes = {"done": [new, None, None], "replacing": [new, old, new]}
    reader = _reader(conf, tmp_path / "home", endpoint)
    try:
        for data in writes[writer]:
            assert stopped(reader), reader.communicate()
            if data is not None:
                s3.put_object(Bucket=bucket, Key=key, Body=data)
            os.kill(reader.pid, signal.SIGCONT)
            if writer == "done" and data is None:
                break  # read 2 agreed with itself: no third read
    finally:
        if reader.poll() is None:
            os.kill(reader.pid, signal.SIGCONT)
    out, err = reader.communicate(timeout=240)
    assert f"s3://{bucket}/{key} (replaced by another object: {len(old):,} -> {len(new):,} bytes)" in err, err[-3000:]
    if writer == "replacing":
        assert reader.returncode != 0 and "changed while it was read, 3 times" in err
        assert "replaces it again and again; nothing was published. Run the same command again once it" in err
        return
    assert reader.returncode == 0, err[-3000:]
    got = json.loads(out.strip().splitlines()[-1])
    assert "read again in 1 s (read 2 of 3)" in err and "read 3 of 3" not in err
    assert got["n_series"] == 8 and got["rows_in"] == 8 * 114  # every series, 2010-01 .. 2019-06
    assert got["fingerprint"] == source_fingerprint(resolve_source(load_settings(conf, home=tmp_path / "home")))

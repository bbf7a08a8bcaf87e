"""flowcast.store.fs.FileStore: files and folders at a local path or an S3-compatible server
(moto on loopback), each file whole or absent, each folder visible only once complete."""

from __future__ import annotations

import pytest

from flowcast.errors import ConfigError, StorageError
from flowcast.store.fs import MARKER, FileStore


@pytest.fixture(params=["local", "s3"])
def files(request, tmp_path) -> FileStore:
    if request.param == "local":
        return FileStore(tmp_path / "shared")
    url, opts = request.getfixturevalue("s3_url")
    return FileStore(url + "/models", storage_options=opts)


def _artifact(tmp_path, payload: str):
    art = tmp_path / f"art-{payload}"
    (art / "sub").mkdir(parents=True)
    (art / "model.ckpt").write_bytes(payload.encode() * 1000)
    (art / "sub" / "meta.json").write_text(f'{{"payload": "{payload}"}}')
    return art


def test_files_and_folders_round_trip(files, tmp_path):
    assert not files.exists("versions/gru-v1/version.json") and files.list("versions") == []
    files.write_text("versions/gru-v1/version.json", '{"v": 1}')
    assert files.read_text("versions/gru-v1/version.json") == '{"v": 1}'
    files.write_text("versions/gru-v1/version.json", '{"v": 2}')  # replaced whole
    assert files.read_text("versions/gru-v1/version.json") == '{"v": 2}'
    assert not files.has_dir("versions/gru-v1/artifact")
    files.put_dir(_artifact(tmp_path, "a"), "versions/gru-v1/artifact")
    assert files.has_dir("versions/gru-v1/artifact")
    assert files.list("versions/gru-v1") == ["artifact", "version.json"]
    with files.local_dir("versions/gru-v1/artifact") as path:
        assert (path / "model.ckpt").read_bytes() == b"a" * 1000
        assert (path / "sub" / "meta.json").read_text() == '{"payload": "a"}'
    files.put_dir(_artifact(tmp_path, "b"), "versions/gru-v1/artifact")  # replaced whole
    out = files.get_dir("versions/gru-v1/artifact", tmp_path / "copy")
    assert (out / "model.ckpt").read_bytes() == b"b" * 1000 and not (out / MARKER).exists()
    with files.open("versions/gru-v1/artifact/sub/meta.json") as fh:
        assert fh.read() == b'{"payload": "b"}'
    files.put_file(tmp_path / "art-b" / "model.ckpt", "reports/x.bin")
    assert files.read_bytes("reports/x.bin") == b"b" * 1000
    files.remove("versions/gru-v1")
    assert files.list("versions") == [] and not files.exists("versions/gru-v1/version.json")


def test_a_folder_without_its_marker_is_never_loaded(files, tmp_path):
    """What a writer killed half-way through put_dir leaves: files but no marker."""
    files.write_bytes("versions/gru-v2/artifact/model.ckpt", b"half")
    assert not files.has_dir("versions/gru-v2/artifact")
    with pytest.raises(StorageError, match="absent or incomplete"):
        files.get_dir("versions/gru-v2/artifact", tmp_path / "x")
    files.put_dir(_artifact(tmp_path, "c"), "versions/gru-v2/artifact")  # the next put_dir completes it
    with files.local_dir("versions/gru-v2/artifact") as path:
        assert (path / "model.ckpt").read_bytes() == b"c" * 1000


def test_bad_urls_and_paths_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not ftp://"):
        FileStore("ftp://host/x")
    with pytest.raises(ConfigError, match="leaves the root"):
        FileStore(tmp_path).write_text("../escape.txt", "x")

"""The downloader against a local HTTP server on 127.0.0.1 serving files made here: only a file
with the expected sha256 is kept, and nothing partial is ever left in the folder."""

import functools
import hashlib
import http.server
import threading

import pytest

from conftest import MNIST, harness
from harness.errors import ConfigError
from harness.data import Mnist
from harness.download import DownloadError, fetch

sha256 = lambda data: hashlib.sha256(data).hexdigest()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """A folder whose files a local server serves, and the server's base URL."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
        server.shutdown()


@pytest.fixture
def cache(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    return folder


def test_good_file_is_downloaded_verified_and_kept_alone(served, cache):
    folder, url = served
    data = bytes(range(256)) * 1000
    (folder / "a.gz").write_bytes(data)

    path = fetch("a.gz", cache, [url], sha256(data))

    assert path == cache / "a.gz"
    assert path.read_bytes() == data
    assert [p.name for p in cache.iterdir()] == ["a.gz"]  # no temporary file left behind


def test_corrupted_file_gives_checksum_mismatch_and_caches_nothing(served, cache):
    folder, url = served
    data = b"the published bytes" * 1000
    (folder / "a.gz").write_bytes(data[:-1] + b"X")

    with pytest.raises(DownloadError, match=f"sha256 mismatch: expected {sha256(data)}"):
        fetch("a.gz", cache, [url], sha256(data))
    assert list(cache.iterdir()) == []


def test_next_mirror_is_tried_when_one_fails(served, cache):
    folder, url = served
    (folder / "good").mkdir()
    (folder / "good" / "a.gz").write_bytes(b"intact")
    (folder / "bad").mkdir()
    (folder / "bad" / "a.gz").write_bytes(b"broken")

    fetch("a.gz", cache, [url + "missing/", url + "bad/", url + "good/"], sha256(b"intact"))

    assert (cache / "a.gz").read_bytes() == b"intact"


def test_error_names_every_mirror_that_failed(served, cache):
    _, url = served
    with pytest.raises(DownloadError, match="404") as error:
        fetch("a.gz", cache, [url + "one/", url + "two/"], sha256(b""))
    assert f"{url}one/a.gz" in str(error.value) and f"{url}two/a.gz" in str(error.value)
    assert list(cache.iterdir()) == []


def test_missing_files_with_download_disabled_name_root_and_download(cache):
    with pytest.raises(ConfigError, match="data.root: .*lacks train-images-idx3-ubyte.gz.*data.download=true"):
        Mnist(root=str(cache), download=False).load()


def test_root_that_is_not_a_folder_is_a_setting_error(tmp_path):
    with pytest.raises(ConfigError, match="data.root: .*nowhere is not a folder"):
        Mnist(root=str(tmp_path / "nowhere")).load()


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"no MNIST files in {MNIST}")
def test_mnist_downloads_its_missing_files_from_its_mirrors(served, cache, monkeypatch):
    folder, url = served
    checksums = {}
    for name in Mnist.FILES:
        data = (MNIST / name).read_bytes()
        (folder / name).write_bytes(data)
        checksums[name] = sha256(data)
    monkeypatch.setattr(Mnist, "MIRRORS", (url,))
    monkeypatch.setattr(Mnist, "SHA256", checksums)

    downloaded = Mnist(root=str(cache)).load()

    assert sorted(p.name for p in cache.iterdir()) == sorted(Mnist.FILES)
    assert downloaded.digest() == Mnist(root=str(MNIST)).load().digest()


@pytest.mark.slow
def test_command_line_stops_on_missing_files_before_any_run(workdir):
    result = harness("data=mnist", f"data.root={workdir}", "data.download=false", cwd=workdir, check=False)
    assert result.returncode != 0
    assert "data.root" in result.stderr and "data.download=true" in result.stderr
    assert not (workdir / "mlflow.db").exists()

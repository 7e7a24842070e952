"""synth.download and tools/download_checkpoint.py against a real HTTP server on 127.0.0.1.

The server is a ThreadingHTTPServer with a handler written here: it serves bytes with
Content-Length, honours `Range: bytes=N-` (206 with Content-Range, 416 past the end), can
ignore ranges, and can cut the next transfer of a path short. Every request is logged.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading

import pytest

from synth import download as dl
from synth.errors import ConfigError, OutputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDER = "faster_rcnn_resnet50_v1_640x640_coco17_tpu-8"
NO_PROXY_ENV = {"no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}


# ----------------------------------------------------------------------------- helpers

def make_tarball(members: list[tuple], compress: bool = True) -> bytes:
    """members: (name, bytes) files, (name, "dir"), (name, "sym", target), (name, "lnk", target),
    (name, "chr")."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w") as tar:
        for m in members:
            info = tarfile.TarInfo(m[0])
            data = None
            if isinstance(m[1], bytes):
                info.size, data = len(m[1]), io.BytesIO(m[1])
            elif m[1] == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif m[1] == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, m[2]
            elif m[1] == "lnk":
                info.type, info.linkname = tarfile.LNKTYPE, m[2]
            elif m[1] == "chr":
                info.type = tarfile.CHRTYPE
            tar.addfile(info, data)
    return buf.getvalue()


def checkpoint_members(folder: str = FOLDER, data_size: int = 300_000) -> list[tuple]:
    """What a zoo tarball holds, with deterministic pseudo-random data (hard to compress)."""
    data = hashlib.shake_256(folder.encode()).digest(data_size)
    return [(folder, "dir"), (f"{folder}/checkpoint", "dir"),
            (f"{folder}/checkpoint/ckpt-0.index", b"index:" + folder.encode()),
            (f"{folder}/checkpoint/ckpt-0.data-00000-of-00001", data),
            (f"{folder}/checkpoint/checkpoint", b'model_checkpoint_path: "ckpt-0"\n'),
            (f"{folder}/pipeline.config", b"model { faster_rcnn { num_classes: 90 } }\n")]


class Server:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.log: list[tuple[str, str | None, int]] = []  # (path, Range header, status)
        self.cut: dict[str, int] = {}       # path -> bytes to send on the next request, then hang up
        self.ignore_range = False
        self.wrong_start = False            # answer a Range with 206 from byte 0
        self.httpd: http.server.ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def serve(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.url(path)


def make_handler(state: Server):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            rng = self.headers.get("Range")
            data = state.files.get(self.path)
            if data is None:
                state.log.append((self.path, rng, 404))
                self.send_error(404)
                return
            start, status = 0, 200
            if rng and not state.ignore_range:
                start = 0 if state.wrong_start else int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    state.log.append((self.path, rng, 416))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            state.log.append((self.path, rng, status))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut = state.cut.pop(self.path, None)
            self.wfile.write(body if cut is None else body[:cut])
            self.close_connection = True

    return Handler


@pytest.fixture
def server(monkeypatch):
    for k, v in NO_PROXY_ENV.items():
        monkeypatch.setenv(k, v)
    state = Server()
    state.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.httpd.daemon_threads = True
    thread = threading.Thread(target=state.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    state.httpd.shutdown()
    state.httpd.server_close()
    thread.join(timeout=5)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(path) -> list[str]:
    out = []
    for root, dirs, files in os.walk(path):
        out += [os.path.relpath(os.path.join(root, n), path) for n in dirs + files]
    return sorted(out)


# ----------------------------------------------------------------------------- registry

def test_zoo_registry_urls_and_aliases():
    assert len(dl.ZOO) == 5
    for name, m in dl.ZOO.items():
        assert m.url == f"http://download.tensorflow.org/models/object_detection/tf2/20200711/{name}.tar.gz"
        assert m.sha256 is None and m.folder == name == m.name
    # the fine-tuning template in pipelines/ is a valid model name
    assert os.path.isfile(os.path.join(ROOT, "pipelines", "faster_rcnn_resnet50_v1_640x640.config"))
    assert dl.resolve_model("faster_rcnn_resnet50_v1_640x640").name == FOLDER
    assert dl.resolve_model("mask_rcnn_inception_resnet_v2_1024x1024").folder.endswith("_coco17_gpu-8")


def test_unknown_model_lists_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError) as e:
        dl.fetch_checkpoint("resnet9000", str(tmp_path))
    msg = str(e.value)
    assert "'resnet9000'" in msg and all(name in msg for name in dl.ZOO)
    with pytest.raises(ConfigError, match="trains from scratch"):
        dl.resolve_model("small_cpu")
    with pytest.raises(ConfigError, match="not a SHA-256"):
        dl.fetch_checkpoint(FOLDER, str(tmp_path), sha256="abc")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- download

def test_full_download_and_extract_returns_prefix_and_is_idempotent(server, tmp_path):
    tgz = make_tarball(checkpoint_members())
    url = server.serve(f"/{FOLDER}.tar.gz", tgz)
    notes = []
    prefix = dl.fetch_checkpoint("faster_rcnn_resnet50_v1_640x640", str(tmp_path), url=url,
                                 progress=False, report=notes.append, timeout=10)
    assert prefix == os.path.join(str(tmp_path), FOLDER, "checkpoint", "ckpt-0")
    with open(prefix + ".index", "rb") as f:
        assert f.read() == b"index:" + FOLDER.encode()
    with open(prefix + ".data-00000-of-00001", "rb") as f:
        assert f.read() == checkpoint_members()[3][1]
    assert os.listdir(tmp_path) == [FOLDER]  # tarball, .part and staging folder all gone
    assert any(sha(tgz) in n and "not verified" in n for n in notes)
    assert len(server.log) == 1
    # second call: already complete, no request at all
    assert dl.fetch_checkpoint(FOLDER, str(tmp_path), url=url, progress=False, timeout=10) == prefix
    assert len(server.log) == 1


def test_truncated_transfer_raises_keeps_part_and_resumes_with_range(server, tmp_path):
    data = os.urandom(200_000)
    url = server.serve("/blob.bin", data)
    dest = str(tmp_path / "blob.bin")
    server.cut["/blob.bin"] = 70_000
    with pytest.raises(dl.DownloadError, match=r"ended after 70000 of 200000 bytes.*kept"):
        dl.download(url, dest, progress=False, chunk=16_384, timeout=10)
    assert not os.path.exists(dest) and os.path.getsize(dest + ".part") == 70_000
    digest = dl.download(url, dest, sha256=sha(data).upper(), progress=True, chunk=16_384, timeout=10)
    assert digest == sha(data)
    assert [(r, s) for _, r, s in server.log] == [(None, 200), ("bytes=70000-", 206)]
    with open(dest, "rb") as f:
        assert f.read() == data
    assert not os.path.exists(dest + ".part")


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    data = os.urandom(50_000)
    url = server.serve("/x.bin", data)
    dest = str(tmp_path / "x.bin")
    with open(dest + ".part", "wb") as f:
        f.write(b"stale bytes from another file")
    server.ignore_range = True
    assert dl.download(url, dest, sha256=sha(data), progress=False, timeout=10) == sha(data)
    assert server.log[0][1:] == ("bytes=29-", 200)
    with open(dest, "rb") as f:
        assert f.read() == data


def test_206_for_another_range_asks_again_for_everything(server, tmp_path):
    data = os.urandom(40_000)
    url = server.serve("/w.bin", data)
    dest = str(tmp_path / "w.bin")
    with open(dest + ".part", "wb") as f:
        f.write(data[:1000])
    server.wrong_start = True
    assert dl.download(url, dest, sha256=sha(data), progress=False, timeout=10) == sha(data)
    assert [(r, s) for _, r, s in server.log] == [("bytes=1000-", 206), (None, 200)]


def test_complete_part_gets_416_and_is_finished(server, tmp_path):
    data = os.urandom(10_000)
    url = server.serve("/y.bin", data)
    dest = str(tmp_path / "y.bin")
    with open(dest + ".part", "wb") as f:
        f.write(data)
    assert dl.download(url, dest, progress=False, timeout=10) == sha(data)
    assert [s for *_, s in server.log] == [416] and os.path.getsize(dest) == 10_000
    # a part longer than the file is thrown away and the file fetched again
    with open(dest + ".part", "wb") as f:
        f.write(data + b"junk")
    assert dl.download(url, dest, progress=False, timeout=10) == sha(data)
    assert [s for *_, s in server.log] == [416, 416, 200]


def test_wrong_checksum_refuses_and_leaves_no_file(server, tmp_path):
    data = os.urandom(30_000)
    url = server.serve("/z.tar.gz", data)
    dest = str(tmp_path / "z.tar.gz")
    wrong = "0" * 64
    with pytest.raises(dl.ChecksumError) as e:
        dl.download(url, dest, sha256=wrong, progress=False, timeout=10)
    assert wrong in str(e.value) and sha(data) in str(e.value)
    assert os.listdir(tmp_path) == []


def test_http_error_and_refused_connection_are_clear(server, tmp_path):
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        dl.download(server.url("/missing.tar.gz"), str(tmp_path / "m"), progress=False, timeout=10)
    port = server.httpd.server_address[1]
    server.httpd.shutdown()
    server.httpd.server_close()
    with pytest.raises(dl.DownloadError, match="cannot download"):
        dl.download(f"http://127.0.0.1:{port}/a", str(tmp_path / "a"), progress=False, timeout=5)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- extraction

@pytest.mark.parametrize("bad, why", [
    (("/tmp/evil_abs.txt", b"x"), "absolute path"),
    (("../escape.txt", b"x"), "'..' component"),
    ((f"{FOLDER}/../../escape.txt", b"x"), "'..' component"),
    ((f"{FOLDER}/out", "sym", "../../outside"), "leaves the destination"),
    ((f"{FOLDER}/abs", "sym", "/etc/passwd"), "leaves the destination"),
    ((f"{FOLDER}/hard", "lnk", "../outside"), "'..' component|leaves the destination"),
    ((f"{FOLDER}/tty", "chr"), "device file"),
])
def test_unsafe_members_are_refused_and_nothing_is_extracted(tmp_path, bad, why):
    tar_path = tmp_path / "bad.tar.gz"
    tar_path.write_bytes(make_tarball(checkpoint_members() + [bad]))
    dest = tmp_path / "dest"
    with pytest.raises(dl.UnsafeArchiveError, match=why) as e:
        dl.safe_extract(str(tar_path), str(dest))
    assert repr(bad[0]) in str(e.value)
    assert not dest.exists() and sorted(os.listdir(tmp_path)) == ["bad.tar.gz"]


def test_symlink_chain_that_escapes_is_refused(tmp_path):
    # each link looks harmless alone: x -> "." and x/l -> ".." (= folder of x), but x/l resolves
    # to the parent of the destination, so x/l/evil would land outside it
    members = [("x", "sym", "."), ("x/l", "sym", ".."), ("x/l/evil.txt", b"pwned")]
    tar_path = tmp_path / "chain.tar"
    tar_path.write_bytes(make_tarball(members, compress=False))
    with pytest.raises(dl.UnsafeArchiveError, match="'x/l'"):
        dl.safe_extract(str(tar_path), str(tmp_path / "dest"))
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "dest").exists()
    # a symlink defined twice could point outside between its two definitions
    twice = [("d", "dir"), ("l", "sym", "d"), ("l", "sym", "d")]
    tar_path.write_bytes(make_tarball(twice, compress=False))
    with pytest.raises(dl.UnsafeArchiveError, match="shares its name"):
        dl.safe_extract(str(tar_path), str(tmp_path / "dest"))


def test_links_inside_are_extracted(tmp_path):
    members = checkpoint_members() + [(f"{FOLDER}/latest", "sym", "checkpoint/ckpt-0.index"),
                                      (f"{FOLDER}/copy.config", "lnk", f"{FOLDER}/pipeline.config")]
    tar_path = tmp_path / "ok.tar.gz"
    tar_path.write_bytes(make_tarball(members))
    dest = tmp_path / "dest"
    names = dl.safe_extract(str(tar_path), str(dest))
    assert names == [m[0] for m in members]
    assert tree(dest) == sorted(m[0] for m in members)  # no staging folder left
    assert os.readlink(dest / FOLDER / "latest") == "checkpoint/ckpt-0.index"
    assert (dest / FOLDER / "latest").read_bytes() == b"index:" + FOLDER.encode()
    assert (dest / FOLDER / "copy.config").read_bytes() == (dest / FOLDER / "pipeline.config").read_bytes()
    # extracting again clashes with what is there: refused, nothing changed
    with pytest.raises(OutputError, match="already exists"):
        dl.safe_extract(str(tar_path), str(dest))
    assert tree(dest) == sorted(m[0] for m in members)


def test_fetch_of_unsafe_or_wrong_archive(server, tmp_path):
    url = server.serve("/evil.tar.gz", make_tarball(checkpoint_members("evil") + [("../x", b"x")]))
    with pytest.raises(dl.UnsafeArchiveError, match=r"'\.\./x'"):
        dl.fetch_checkpoint(None, str(tmp_path / "d"), url=url, progress=False, timeout=10)
    assert os.listdir(tmp_path / "d") == ["evil.tar.gz"]  # only the (refused) download itself
    url = server.serve("/other.tar.gz", make_tarball([("other", "dir"), ("other/readme", b"hi")]))
    with pytest.raises(dl.DownloadError, match="holds no other/checkpoint/ckpt-0.index"):
        dl.fetch_checkpoint(None, str(tmp_path / "e"), url=url, progress=False, timeout=10)


# ----------------------------------------------------------------------------- command line

def run_tool(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **NO_PROXY_ENV)
    return subprocess.run([os.path.join(ROOT, ".venv", "bin", "python") if os.path.exists(
        os.path.join(ROOT, ".venv", "bin", "python")) else sys.executable,
        os.path.join(ROOT, "tools", "download_checkpoint.py"), *args],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


def test_cli_downloads_and_refuses_a_bad_checksum(server, tmp_path):
    tgz = make_tarball(checkpoint_members())
    url = server.serve(f"/{FOLDER}.tar.gz", tgz)
    bad = run_tool(f"--model={FOLDER}", f"--dest={tmp_path}", f"--url={url}", "--sha256=" + "ab" * 32,
                   "--noprogress")
    assert bad.returncode == 2, bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("download_checkpoint: error: sha256 mismatch")
    assert sha(tgz) in lines[0] and bad.stdout == "" and os.listdir(tmp_path) == []

    ok = run_tool("--model=faster_rcnn_resnet50_v1_640x640", f"--dest={tmp_path}", f"--url={url}",
                  f"--sha256={sha(tgz)}", "--noprogress")
    assert ok.returncode == 0, ok.stderr
    prefix = os.path.join(str(tmp_path), FOLDER, "checkpoint", "ckpt-0")
    assert ok.stdout.strip() == prefix and os.path.isfile(prefix + ".index")
    assert f"sha256 verified: {sha(tgz)}" in ok.stderr and "--checkpoint=" + prefix in ok.stderr

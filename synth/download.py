"""Downloading and unpacking pretrained checkpoints of the TF2 Detection Zoo.

Three steps, each usable alone:

`download(url, dest_file, sha256)` streams a URL to ``dest_file + ".part"`` with the stdlib's
``urllib.request`` (proxies from the environment are honoured). When a ``.part`` file is
already there it asks only for the rest (``Range: bytes=N-``): a ``206`` answer whose
``Content-Range`` starts at N is appended, a ``200`` (a server that ignores ranges) or a
``206`` starting elsewhere restarts from byte 0, and a ``416`` whose total equals N means the
part was already complete. The bytes received are checked against ``Content-Length``: a short
transfer raises `DownloadError` and keeps the ``.part`` for the next call to resume. The
SHA-256 is computed while streaming; when one is given and it differs, `ChecksumError` names
both digests and the bad file is deleted. Only a complete (and, if asked, verified) file is
renamed to ``dest_file``.

`safe_extract(tar_path, dest_dir)` checks every member before writing anything: absolute
names, ``..`` components, device files and FIFOs are refused, and so is a symbolic or hard
link whose target, resolved through the archive's own symlinks (``x -> .`` then
``x/l -> ..`` escapes although each looks harmless), leaves the destination. A name that is
a symlink in one member and something else in another is refused too, so the link table
used for the check is the one on disk. Members are extracted into a hidden staging folder
inside ``dest_dir`` (with Python's ``data`` filter as a second guard) and the top-level
entries are renamed into place, so a refused archive leaves nothing behind.

`fetch_checkpoint(model, dest_dir)` ties them together for a zoo model (or any ``--url``):
it skips everything when ``DEST/<folder>/checkpoint/ckpt-0.index`` and its data shard are
already there, otherwise downloads the tarball into ``dest_dir``, extracts it, deletes the
tarball and returns the checkpoint prefix ``DEST/<folder>/checkpoint/ckpt-0``.

The zoo publishes no checksums and this project has not pinned any, so every `ZooModel`
has ``sha256=None``: the computed digest is reported so that users can pin it with
``--sha256``. Model names are the zoo's (``faster_rcnn_resnet50_v1_640x640_coco17_tpu-8``)
or the same without the ``_coco17_tpu-8``/``_coco17_gpu-8`` suffix, which is how the
templates in ``pipelines/`` are named.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import posixpath
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable

from synth.errors import ConfigError, OutputError, SynthError

ZOO_BASE_URL = "http://download.tensorflow.org/models/object_detection/tf2/20200711/"
PIPELINES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pipelines")
_ZOO_SUFFIX = re.compile(r"_coco17_(tpu|gpu)-8$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)$")


class DownloadError(SynthError):
    """A transfer failed or ended early, or an archive is not a usable checkpoint."""


class ChecksumError(DownloadError):
    """A downloaded file's SHA-256 differs from the expected one."""


class UnsafeArchiveError(SynthError):
    """A tar member would be written outside the destination, or is a device file."""


@dataclasses.dataclass(frozen=True)
class ZooModel:
    name: str
    url: str
    sha256: str | None  # None: not pinned yet (the zoo publishes none); never guessed
    folder: str         # the tarball's top-level folder


def _zoo_model(name: str) -> ZooModel:
    return ZooModel(name=name, url=f"{ZOO_BASE_URL}{name}.tar.gz", sha256=None, folder=name)


ZOO: dict[str, ZooModel] = {m.name: m for m in map(_zoo_model, [
    "faster_rcnn_resnet50_v1_640x640_coco17_tpu-8",
    "faster_rcnn_resnet50_v1_1024x1024_coco17_tpu-8",
    "faster_rcnn_resnet101_v1_640x640_coco17_tpu-8",
    "faster_rcnn_inception_resnet_v2_640x640_coco17_tpu-8",
    "mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8",
])}

# Template-style names (pipelines/<alias>.config) -> zoo names.
ALIASES: dict[str, str] = {_ZOO_SUFFIX.sub("", name): name for name in ZOO}


def known_models() -> list[str]:
    return sorted(ZOO) + sorted(ALIASES)


def resolve_model(name: str) -> ZooModel:
    """The zoo entry for a zoo name or a template-style alias; ConfigError lists the valid ones."""
    if name in ZOO:
        return ZOO[name]
    if name in ALIASES:
        return ZOO[ALIASES[name]]
    why = ""
    if os.path.isfile(os.path.join(PIPELINES_DIR, name + ".config")):
        why = " (it is a pipeline template with no zoo checkpoint: it trains from scratch)"
    raise ConfigError(f"unknown model {name!r}{why}; known models: {', '.join(known_models())}")


def check_sha256(value: str | None) -> str | None:
    """Normalises a hex SHA-256 (lower case) or raises ConfigError naming it."""
    if value is None:
        return None
    v = value.strip().lower()
    if not _SHA256.match(v):
        raise ConfigError(f"sha256 {value!r} is not a SHA-256 digest (64 hexadecimal characters)")
    return v


# ----------------------------------------------------------------------------- download

def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _hash_file(path: str, chunk: int) -> "hashlib._Hash":
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h


def _open(url: str, offset: int, timeout: float):
    """Returns (response, status); a 416 comes back as (HTTPError, 416)."""
    req = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
        return resp, resp.status
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return exc, 416
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"cannot download {url}: {reason}") from None


def _content_range(resp) -> tuple[int | None, int | None]:
    """(start, total) from a Content-Range header; None for what it does not say."""
    m = _CONTENT_RANGE.match((resp.headers.get("Content-Range") or "").strip())
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) else None
    total = int(m.group(3)) if m.group(3) != "*" else None
    return start, total


def download(url: str, dest_file: str, sha256: str | None = None, progress: bool = True,
             chunk: int = 1 << 20, timeout: float = 60) -> str:
    """Downloads `url` to `dest_file`, resuming `dest_file`.part; returns the hex SHA-256.

    Raises DownloadError for a failed or short transfer (the .part is kept for a resume) and
    ChecksumError when `sha256` is given and differs (nothing is left under either name).
    """
    expected_sha = check_sha256(sha256)
    if chunk < 1 or timeout <= 0:
        raise ConfigError(f"chunk={chunk} and timeout={timeout} must both be positive")
    part = dest_file + ".part"
    os.makedirs(os.path.dirname(os.path.abspath(dest_file)), exist_ok=True)
    offset = os.path.getsize(part) if os.path.isfile(part) else 0
    for _attempt in range(2):
        resp, status = _open(url, offset, timeout)
        with resp:
            start, total = _content_range(resp)
            if status == 416:
                if total is not None and total == offset:
                    return _finish(url, part, dest_file, _hash_file(part, chunk).hexdigest(), expected_sha)
                _remove(part)  # the part is larger than the file, or the server cannot tell
                offset = 0
                continue
            if offset and status == 206 and start != offset:
                _remove(part)  # answered another range than asked: ask again for everything
                offset = 0
                continue
            if offset and status != 206:
                offset = 0  # a 200 ignores the Range: its body is the whole file, start over
            length = resp.headers.get("Content-Length")
            size = offset + int(length) if length and length.isdigit() else total
            digest = _hash_file(part, chunk) if offset else hashlib.sha256()
            received = _stream(resp, part, offset, size, digest, url, progress, chunk)
        if size is not None and received < size:
            raise DownloadError(f"the transfer of {url} ended after {received} of {size} bytes; "
                                f"the partial file {part} is kept: run again to resume")
        return _finish(url, part, dest_file, digest.hexdigest(), expected_sha)
    raise DownloadError(f"cannot download {url}: the server refused the range request twice")


def _stream(resp, part: str, offset: int, size: int | None, digest, url: str,
            progress: bool, chunk: int) -> int:
    """Appends the body to `part` (or rewrites it when offset is 0); returns the bytes on disk."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=size, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=os.path.basename(part[:-5]), file=sys.stderr, leave=False)
    received = offset
    try:
        with open(part, "ab" if offset else "wb") as f:
            while True:
                try:
                    block = resp.read(chunk)
                except (OSError, http.client.HTTPException) as exc:
                    raise DownloadError(f"the transfer of {url} failed after {received} bytes ({exc}); "
                                        f"the partial file {part} is kept: run again to resume") from None
                if not block:
                    break
                f.write(block)
                digest.update(block)
                received += len(block)
                if bar is not None:
                    bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()
    return received


def _finish(url: str, part: str, dest_file: str, actual: str, expected: str | None) -> str:
    if expected is not None and actual != expected:
        _remove(part)
        raise ChecksumError(f"sha256 mismatch for {url}: expected {expected}, got {actual}; "
                            f"the download was deleted")
    os.replace(part, dest_file)
    return actual


# ----------------------------------------------------------------------------- extraction

def _parts(name: str) -> list[str]:
    return [p for p in name.split("/") if p not in ("", ".")]


def _resolve(parts: list[str], links: dict[str, str], depth: int = 0) -> list[str] | None:
    """Follows the archive's symlinks along `parts` (relative to the root); None if it leaves it."""
    if depth > 40:
        return None  # a symlink loop
    out: list[str] = []
    for p in parts:
        if p == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(p)
        target = links.get("/".join(out))
        if target is not None:
            out.pop()
            if target.startswith("/"):
                return None
            resolved = _resolve(out + _parts(target), links, depth + 1)
            if resolved is None:
                return None
            out = resolved
    return out


def check_members(members: list[tarfile.TarInfo]) -> list[str]:
    """Normalised member names; UnsafeArchiveError names the first member that is refused."""
    names, links, kinds = [], {}, {}
    for m in members:
        if m.name.startswith("/") or os.path.isabs(m.name):
            raise UnsafeArchiveError(f"refusing tar member {m.name!r}: absolute path")
        parts = _parts(m.name)
        if ".." in parts:
            raise UnsafeArchiveError(f"refusing tar member {m.name!r}: '..' component")
        if not parts:
            continue  # the archive root itself ("./")
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise UnsafeArchiveError(f"refusing tar member {m.name!r}: device file or FIFO")
        name = "/".join(parts)
        if name in kinds and (kinds[name] or m.issym()):
            raise UnsafeArchiveError(f"refusing tar member {m.name!r}: a symlink shares its name "
                                     f"with another member")
        kinds[name] = m.issym()
        if m.issym():
            links[name] = m.linkname
        names.append(name)
    for m, name in zip((m for m in members if _parts(m.name)), names):
        parts = name.split("/")
        if _resolve(parts[:-1], links) is None:
            raise UnsafeArchiveError(f"refusing tar member {m.name!r}: its folder is a link that "
                                     f"leaves the destination")
        if m.issym():
            bad = m.linkname.startswith("/") or _resolve(parts[:-1] + _parts(m.linkname), links) is None
        elif m.islnk():
            bad = m.linkname.startswith("/") or _resolve(_parts(m.linkname), links) is None
        else:
            continue
        if bad:
            raise UnsafeArchiveError(f"refusing tar member {m.name!r}: link target {m.linkname!r} "
                                     f"leaves the destination")
    return names


def safe_extract(tar_path: str, dest_dir: str) -> list[str]:
    """Extracts a tar archive (any compression) into `dest_dir`; returns the member names.

    Nothing is written unless every member passes `check_members`; an entry that already
    exists in `dest_dir` raises OutputError before anything is moved.
    """
    try:
        tar = tarfile.open(tar_path, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise DownloadError(f"cannot read {tar_path} as a tar archive: {exc}") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DownloadError(f"{tar_path} is not a complete tar archive: {exc}") from None
        names = check_members(members)
        tops = sorted({n.split("/")[0] for n in names})
        clash = [t for t in tops if os.path.lexists(os.path.join(dest_dir, t))]
        if clash:
            raise OutputError(f"cannot extract {tar_path}: {os.path.join(dest_dir, clash[0])} already "
                              f"exists; remove it first")
        os.makedirs(dest_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".extract-", dir=dest_dir)
        try:
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            try:
                tar.extractall(staging, members=members, **kwargs)
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise DownloadError(f"cannot extract {tar_path}: {exc}") from None
            for t in tops:
                os.replace(os.path.join(staging, t), os.path.join(dest_dir, t))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return names


# ----------------------------------------------------------------------------- checkpoints

def checkpoint_complete(prefix: str) -> bool:
    """True when `prefix`.index and at least one `prefix`.data-* shard exist."""
    folder, base = os.path.split(prefix)
    if not os.path.isfile(prefix + ".index") or not os.path.isdir(folder):
        return False
    return any(f.startswith(base + ".data-") for f in os.listdir(folder))


def _archive_name(url: str) -> str:
    name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    if not name or name in (".", ".."):
        raise ConfigError(f"url {url!r} does not end in a file name (expected .../NAME.tar.gz)")
    return name


def _folder_from_archive(name: str) -> str:
    for ext in (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def fetch_checkpoint(model_or_none: str | None, dest_dir: str, url: str | None = None,
                     sha256: str | None = None, progress: bool = True, *,
                     report: Callable[[str], None] | None = None, timeout: float = 60) -> str:
    """Downloads and unpacks a zoo checkpoint into `dest_dir`; returns its prefix (.../ckpt-0).

    `url` and `sha256` override the zoo's; without a model the folder is the archive's
    name without its extension. `report` receives one-line notes (skip, digest).
    """
    say = report or (lambda _msg: None)
    sha256 = check_sha256(sha256)
    if model_or_none:
        entry = resolve_model(model_or_none)
        url, sha256, folder = url or entry.url, sha256 or entry.sha256, entry.folder
    elif url:
        folder = _folder_from_archive(_archive_name(url))
    else:
        raise ConfigError(f"give a model name or a url; known models: {', '.join(known_models())}")
    archive_name = _archive_name(url)
    prefix = os.path.join(dest_dir, folder, "checkpoint", "ckpt-0")
    if checkpoint_complete(prefix):
        say(f"{os.path.join(dest_dir, folder)} is already complete; nothing downloaded")
        return prefix
    if os.path.lexists(os.path.join(dest_dir, folder)):
        raise OutputError(f"{os.path.join(dest_dir, folder)} exists but holds no complete checkpoint "
                          f"(checkpoint/ckpt-0.index and .data-*); remove it and run again")
    archive = os.path.join(dest_dir, archive_name)
    digest = download(url, archive, sha256, progress=progress, timeout=timeout)
    if sha256:
        say(f"sha256 verified: {digest}")
    else:
        say(f"sha256 of {archive_name}: {digest} (no checksum known, not verified; "
            f"pin it with --sha256={digest})")
    names = safe_extract(archive, dest_dir)
    _remove(archive)
    if not checkpoint_complete(prefix):
        found = [n for n in names if n.endswith(".index")]
        raise DownloadError(f"{url} holds no {folder}/checkpoint/ckpt-0.index with its data shard "
                            f"(index files in the archive: {', '.join(found) or 'none'})")
    return prefix

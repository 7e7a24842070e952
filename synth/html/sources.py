"""The HTML inputs of a header run: files from folders and globs, checked up front (too large,
not HTML: skipped, counted and listed in the manifest), and the embedded default,
`package_docs`: the Markdown long descriptions that installed Python packages ship in their
METADATA, converted to HTML with the pinned Markdown package. Nothing is downloaded; images
and embedded frames are replaced by their alt text (they point at the network)."""

from __future__ import annotations

import glob
import html
import os
import re
from dataclasses import dataclass
from importlib import metadata

from synth.errors import InputImageError
from synth.images import SkippedInput

HTML_SUFFIXES = (".html", ".htm", ".xhtml")
SNIFF_BYTES = 65536
_MARKUP = re.compile(rb"<\s*(!doctype|html|head|body|h[1-6]|p|div|span|section|article|main|table|ul|ol|a|title)[\s>/]",
                     re.IGNORECASE)
BUILTIN_PREFIX = "builtin:"
BUILTIN_DIR = "builtin_html"  # <work folder>/builtin_html/: the embedded default's pages, written by place_builtin
MIN_DOC_HEADINGS = 2  # package descriptions with fewer Markdown headings are left out
EXCLUDED_PACKAGES = ("tfod-synth",)  # its description is this README, which changes with every edit


class HtmlInputError(InputImageError):
    """An HTML input cannot be used."""


@dataclass(frozen=True)
class Page:
    path: str  # the file rendered
    name: str  # as recorded: the path, or builtin:package_docs/NAME.html
    root: str = ""  # the folder it may load files from (absolute); "": its own folder


def check_html_file(path: str, max_bytes: int) -> None:
    """Raises HtmlInputError naming `path` unless it is a readable HTML file of at most max_bytes."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        raise HtmlInputError(f"{path}: cannot be read ({exc.strerror})") from None
    if size > max_bytes:
        raise HtmlInputError(f"{path}: is {size} bytes, over max_file_bytes = {max_bytes}")
    if not head.strip():
        raise HtmlInputError(f"{path}: is empty")
    if b"\x00" in head:
        raise HtmlInputError(f"{path}: is not HTML (binary content)")
    if not _MARKUP.search(head):
        raise HtmlInputError(f"{path}: is not HTML (no HTML markup in its first {SNIFF_BYTES // 1024} KB)")


def _files(src, resolve) -> list[str]:
    kind = src.WhichOneof("source")
    if kind == "directory":
        d = resolve(src.directory)
        if not os.path.isdir(d):
            raise HtmlInputError(f"html directory {d!r} does not exist or is not a folder")
        return sorted(os.path.join(d, n) for n in os.listdir(d)
                      if n.lower().endswith(HTML_SUFFIXES) and os.path.isfile(os.path.join(d, n)))
    pattern = resolve(src.glob)
    found = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    if not found:
        raise HtmlInputError(f"html glob {pattern!r} matches no file")
    return found


def _root(src, resolve) -> str:
    """The absolute folder a source's pages may load files from ("" when not set); an error
    naming it when it is not a folder."""
    if not src.HasField("root"):
        return ""
    root = os.path.abspath(resolve(src.root))
    if not os.path.isdir(root):
        raise HtmlInputError(f"html root {src.root!r} ({root}) does not exist or is not a folder")
    return root


def list_pages(cfg) -> tuple[list[Page], list[SkippedInput], tuple]:
    """The usable pages of a LoadedConfig of a HeaderConfig, the skipped inputs with their
    reasons, and the embedded default's documents ((file name, HTML), built in memory: nothing is
    written). The embedded default's pages have paths relative to a work folder (under
    BUILTIN_DIR), where `place_builtin` writes them."""
    c = cfg.proto
    pages, skipped, docs = [], [], ()
    for src in c.html:
        if src.WhichOneof("source") == "builtin":
            docs = docs or tuple(package_docs())
            if not docs:
                raise HtmlInputError(f"builtin {src.builtin}: no installed package ships a Markdown description "
                                     f"with {MIN_DOC_HEADINGS} or more headings")
            for name, _ in docs:
                pages.append(Page(os.path.join(BUILTIN_DIR, name), f"{BUILTIN_PREFIX}{src.builtin}/{name}"))
            continue
        try:
            files = _files(src, cfg.resolve)
        except HtmlInputError as exc:
            skipped.append(SkippedInput(src.directory or src.glob, str(exc)))
            continue
        root = _root(src, cfg.resolve)
        for path in files:
            try:
                check_html_file(path, c.max_file_bytes)
                if root and os.path.commonpath([os.path.abspath(path), root]) != root:
                    raise HtmlInputError(f"{path}: is not under the source's root {src.root!r}")
            except HtmlInputError as exc:
                skipped.append(SkippedInput(path, str(exc)))
                continue
            pages.append(Page(os.path.abspath(path), path, root))
    if not pages:
        raise HtmlInputError(f"{cfg.source}: no usable HTML page; skipped: "
                             + ("; ".join(s.reason for s in skipped) or "none found"))
    return pages, skipped, docs


def place_builtin(pages: list[Page], docs, work: str) -> list[Page]:
    """`pages` with the embedded default's written into `work`/BUILTIN_DIR (absolute paths)."""
    if not docs:
        return list(pages)
    build_package_docs(os.path.join(work, BUILTIN_DIR), docs)
    return [Page(os.path.abspath(os.path.join(work, p.path)), p.name) if p.name.startswith(BUILTIN_PREFIX) else p
            for p in pages]


_REMOTE = re.compile(r"<(img|iframe|video|audio|source|picture|embed|object|script|link)\b[^>]*>(\s*</\1>)?",
                     re.IGNORECASE)
_ALT = re.compile(r"""\balt\s*=\s*("([^"]*)"|'([^']*)')""", re.IGNORECASE)


def _offline(markup: str) -> str:
    def repl(m):
        alt = _ALT.search(m.group(0))
        text = (alt.group(2) or alt.group(3) or "") if alt else ""
        return f"<span>{html.escape(html.unescape(text))}</span>" if text else ""
    return _REMOTE.sub(repl, markup)


def package_docs() -> list[tuple[str, str]]:
    """(file name, HTML) of every installed package whose Markdown description has at least
    MIN_DOC_HEADINGS headings, sorted by name."""
    import markdown

    seen, out = set(), []
    for dist in metadata.distributions():
        name = (dist.metadata.get("Name") or "").strip()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if not key or key in seen or key in EXCLUDED_PACKAGES:
            continue
        if "markdown" not in (dist.metadata.get("Description-Content-Type") or "").lower():
            continue
        body = dist.metadata.get_payload() or dist.metadata.get("Description") or ""
        if len(re.findall(r"^#{1,6}\s+\S", body, re.MULTILINE)) < MIN_DOC_HEADINGS:
            continue
        seen.add(key)
        version = dist.metadata.get("Version", "")
        content = _offline(markdown.markdown(body, extensions=["extra", "sane_lists"]))
        title = html.escape(f"{name} {version}")
        out.append((f"{key}.html", f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
                                   f"</head>\n<body>\n{content}\n</body></html>\n"))
    return sorted(out)


def build_package_docs(folder: str, docs=None) -> list[str]:
    """Writes `docs` ((file name, HTML) pairs; default package_docs()) into `folder` (each file
    atomically; unchanged files are left as they are) and returns the paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, text in (package_docs() if docs is None else docs):
        path = os.path.join(folder, name)
        data = text.encode("utf-8")
        try:
            with open(path, "rb") as f:
                same = f.read() == data
        except OSError:
            same = False
        if not same:
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)
        paths.append(os.path.abspath(path))
    if not paths:
        raise HtmlInputError("builtin package_docs: no installed package ships a Markdown description with "
                             f"{MIN_DOC_HEADINGS} or more headings")
    return paths

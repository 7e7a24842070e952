"""One header image, from (config, split, index) to an encoded record: `HeaderEngine` is a
source of synth.job (`make(split, index)` -> engine.Composite), of its own kind, `HEADERS`
(a HeaderConfig; the HTML pages as inputs; the manifest's pages and browser version), so both
runners (synth.generate, synth.beam_pipeline) run it as they run the logo composites.

Every choice is drawn from a generator seeded by (config seed, split, index), in a fixed
order: the page, the page mode and size, the theme, the camera. A page that cannot be
rendered (PageSkipped) is replaced by the next page in the list, as a background that fails
to decode is: a failure that belongs to the page (not HTML, network, timeout, too tall, no
header) is remembered for the rest of the run, reported once with the image that met it
(Composite.failed_backgrounds) and listed in the manifest; one that belongs to
this rendering only (a printed layout that differs from the measured one) is counted under
`rejected` and the page stays in use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from synth import boxes as boxes_lib, composite, dataset, job as joblib
from synth.engine import Composite
from synth.html import camera, config as hconfig, labels, render, sources, themes
from synth.html.sources import HtmlInputError, Page
from synth.images import SkippedInput

MANIFEST_KIND = "html_headers"
CHUNK_IMAGES = 8  # pages per chunk: a page takes far longer than a composite


@dataclass(frozen=True)
class HtmlInputs:
    """The checked inputs of a header job."""
    pages: list[Page]
    skipped: list[SkippedInput]
    class_names: list[str]
    docs: tuple = ()  # the embedded default's (file name, HTML), written into the work folder by _prepare


def _load_inputs(cfg) -> HtmlInputs:
    """The browser found (a clear error otherwise) and the pages checked; nothing is written."""
    c = cfg.proto
    render.find_browser(c.browser_executable)
    pages, skipped, docs = sources.list_pages(cfg)
    return HtmlInputs(pages, skipped, list(labels.SCHEME_CLASSES[c.classes]), docs)


def _prepare(inputs: HtmlInputs, work: str) -> HtmlInputs:
    return replace(inputs, pages=sources.place_builtin(inputs.pages, inputs.docs, work))


def _manifest(inputs: HtmlInputs, c) -> dict:
    return {"kind": MANIFEST_KIND, "pages": [p.name for p in inputs.pages], "num_pages": len(inputs.pages),
            "package_versions": {**dataset.package_versions(), **_versions(c.browser_executable)}}


def _versions(executable: str) -> dict:
    import subprocess
    from importlib import metadata

    out = {}
    for name in ("playwright", "pypdfium2", "Markdown"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    try:
        out["chromium"] = subprocess.run([render.find_browser(executable), "--version"], capture_output=True,
                                         text=True, timeout=30).stdout.strip()
    except Exception as exc:  # noqa: BLE001 - the version is informative only
        out["chromium"] = f"unknown ({exc})"
    return out


HEADERS = joblib.Kind(hconfig.parse_text, _load_inputs, lambda c: CHUNK_IMAGES, _manifest, _prepare, noun="pages")


class HeaderEngine:
    """Per-process state of a header run: the pages, the config, one browser (started on the
    first page). A synth.job source: HeaderEngine(inputs, config, work_dir)."""

    kind = HEADERS

    def __init__(self, inputs: HtmlInputs, c, work_dir: str | None = None):
        self.pages, self.c = inputs.pages, c
        self.class_names = labels.SCHEME_CLASSES[c.classes]
        self.failed: dict[int, str] = {}  # page index -> reason, for the rest of the run
        self._renderer = None

    @property
    def renderer(self) -> render.Renderer:
        if self._renderer is None:
            c = self.c
            self._renderer = render.Renderer(c.browser_executable, c.page_timeout_s, c.javascript,
                                             c.skip_pages_requesting_network, c.max_page_height_px,
                                             c.print.max_pages)
        return self._renderer

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _render(self, first: int, page, theme, rejected: dict):
        n = len(self.pages)
        for k in range(n):
            i = (first + k) % n
            if i in self.failed:
                continue
            try:
                r = self.renderer.render(self.pages[i].path, page, theme, self.c.classes, self.pages[i].root)
            except render.PageSkipped as exc:
                if exc.page_level:
                    self.failed[i] = exc.reason
                else:
                    rejected[exc.kind] = rejected.get(exc.kind, 0) + 1
                continue
            if not self.c.keep_pages_without_headers and not labels.has_visible_header(r.headers):
                self.failed[i] = "has no visible header (keep_pages_without_headers is false)"
                continue
            return i, r
        raise HtmlInputError("no HTML page could be rendered: "
                             + "; ".join(f"{self.pages[i].name}: {r}" for i, r in sorted(self.failed.items())[:5]))

    def make(self, split: str, index: int) -> Composite:
        c = self.c
        seed = composite.image_seed(c.seed, dataset.SPLIT_IDS[split], index)
        rng = np.random.default_rng(seed)
        first = int(rng.integers(len(self.pages)))
        page = themes.sample_page(rng, c.screen, c.print)
        theme = themes.sample_theme(rng, c.theme)
        cam = camera.sample_page_camera(rng, c.camera, c.jpeg_quality)
        rejected: dict = {}
        known = set(self.failed)
        used, r = self._render(first, page, theme, rejected)
        failed = {self.pages[i].name: why for i, why in self.failed.items() if i not in known}
        image, H = camera.apply_warp(r.image, cam)
        height, width = image.shape[:2]
        kept = [h for h in r.headers if h.lines]
        warped = camera.warp_boxes([h.lines for h in kept], H, height, width)
        boxes, ids, texts, headers_rec = [], [], [], []
        for h in r.headers:
            rec = {"text": h.text[:80], "level": h.level, "tag": h.tag, "class": h.class_name, "dropped": h.dropped}
            headers_rec.append(rec)
        small = 0
        for h, b in zip(kept, warped):
            rec = headers_rec[r.headers.index(h)]
            if b is None or min(b[2] - b[0], b[3] - b[1]) < c.min_box_px:
                rec["dropped"] = f"smaller than min_box_px = {c.min_box_px}" if b is not None else "off-page"
                small += 1
                continue
            box = boxes_lib.from_pixels(b[1], b[0], b[3], b[2], height, width)
            rec["box"] = box.round(6).tolist()
            boxes.append(box)
            ids.append(self.class_names.index(h.class_name) + 1)
            texts.append(h.class_name)
        image = camera.apply_sensor(image, cam)
        jpeg = composite.encode_jpeg(image, cam.jpeg_quality)
        arr = np.asarray(boxes, np.float32).reshape(-1, 4)
        dropped = sum(1 for h in r.headers if h.dropped is not None) + small
        record = {"split": split, "index": index, "seed": seed, "page": self.pages[used].name,
                  "page_drawn": self.pages[first].name if used != first else None,
                  "size": [height, width], "mode": asdict(page), "theme": theme.to_json(),
                  "camera": cam.to_json(), "render": r.info, "headers": headers_rec,
                  "boxes": arr.round(6).tolist(), "class_ids": ids}
        return Composite(f"{split}-{index:08d}", jpeg, image, arr, ids, texts, record, dropped, rejected,
                         failed_backgrounds=failed)

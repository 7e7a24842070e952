"""Rendering HTML pages with headless Chromium through Playwright: one browser per process,
reused across pages, a fresh browser context (cookies, cache, viewport) per page.

Per page: load it (`file://`, its CSS and images from its own folder, or from its source's
root; every other request is aborted, and the page is skipped naming the URL unless the config
says to render it without),
add the theme (themes.PREPARE_JS), and then either
  * screen: scroll to the drawn offset, read the header report (labels.LABEL_JS) and take a
    screenshot of the viewport; or
  * print: switch to print media with the paper as the viewport, read the report, print the
    first max_print_pages pages to PDF (page margins 0, backgrounds on) and rasterise the one
    the page's `sheet` draw picks with pypdfium2 at 96 dpi, so one CSS px is one image px.
    synth.html.printed places the headers on that page (the measured layout shifted by the
    page's offset, read off the PDF's text layer) and checks each box against the PDF's text:
    a header whose text is not printed inside its box is dropped when the box is empty in the
    PDF (the line went to another page), and this rendering is rejected when other text is
    there (the printed layout differs from the measured one: its labels would be wrong).

Anything that goes wrong with one page (load timeout, a crash of its renderer, a network
request, a page over the size limit) raises PageSkipped with the reason; the run goes on. A
browser that does not answer within twice the page timeout is killed (its main process, found
at launch among this process's children, and everything under it) and started again for the
next page. A browser that cannot be found
or started raises BrowserError, which stops the run with the command that fixes it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass

import cv2
import numpy as np

from synth.errors import SynthError
from synth.html import labels as labels_lib, printed, themes
from synth.html.printed import PDF_DPI_SCALE

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = ("install it with `apt-get install -y chromium` (as root; `make setup` does this), "
                "or set browser_executable in the header config")
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-color-profile=srgb", "--disable-lcd-text",
    "--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-sync",
    "--mute-audio", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
]


class BrowserError(SynthError):
    """The browser cannot be found or started: no page can be rendered."""


class PageSkipped(Exception):
    """One page cannot be used; `reason` says why."""

    def __init__(self, path: str, reason: str, page_level: bool = True, kind: str = ""):
        """`page_level`: the page itself is unusable (False: only this rendering of it);
        `kind`: a short name under which rejections of one rendering are counted."""
        super().__init__(f"{path}: {reason}")
        self.path, self.reason, self.page_level, self.kind = path, reason, page_level, kind or reason


def find_browser(executable: str = "") -> str:
    """The Chromium binary to use: `executable` if given (it must exist), else the first of
    BROWSER_NAMES on PATH; BrowserError naming what was looked for otherwise."""
    if executable:
        path = shutil.which(executable) or (executable if os.path.isfile(executable) else None)
        if path is None or not os.access(path, os.X_OK):
            raise BrowserError(f"browser_executable {executable!r} does not exist or is not executable; "
                               + INSTALL_HINT)
        return path
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise BrowserError(f"no Chromium found on PATH (looked for {', '.join(BROWSER_NAMES)}); " + INSTALL_HINT)


def _browser_pids(main_only: bool = False) -> list[int]:
    """Chromium processes under this process (main_only: browser processes, not their
    renderers, GPU or zygote helpers, which carry --type=)."""
    import psutil

    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "chrom" in p.name().lower() and not (main_only and "--type=" in " ".join(p.cmdline())):
                out.append(p.pid)
        except psutil.Error:
            pass
    return out


_PW: list = []  # this process's Playwright driver, shared by its Renderers (one may run per process)


def _playwright():
    if not _PW:
        import atexit

        from playwright.sync_api import sync_playwright

        _PW.append(sync_playwright().start())
        atexit.register(_stop_playwright)
    return _PW[0]


def _stop_playwright():
    while _PW:
        try:
            _PW.pop().stop()
        except Exception:  # noqa: BLE001 - at exit, a dead driver is fine
            pass


@dataclass
class Rendered:
    image: np.ndarray  # RGB uint8, one px per CSS px
    headers: list  # labels.Header, kept and dropped, in document order
    info: dict  # what the page reported: size, scroll, theme changes, blocked requests


def _allowed(url: str, folder: str) -> bool:
    if url.startswith(("data:", "about:", "blob:")):
        return True
    if not url.startswith("file://"):
        return False
    path = os.path.normpath(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    return os.path.commonpath([path, folder]) == folder


class Renderer:
    """One browser for the pages of one process. Use as a context manager, or call close()."""

    def __init__(self, executable: str = "", timeout_s: float = 20.0, javascript: bool = False,
                 skip_network: bool = True, max_page_height: int = 30000, max_print_pages: int = 4):
        self.executable = find_browser(executable)
        self.timeout_s, self.javascript = float(timeout_s), bool(javascript)
        self.skip_network, self.max_page_height = bool(skip_network), int(max_page_height)
        self.max_print_pages = int(max_print_pages)  # printed pages: the first this many of the PDF
        self._browser = None
        self._browser_pid = None  # the browser's main process, found at launch (for the watchdog)
        self._tmpdir = None  # the browser's TMPDIR, made at launch
        self.restarts = 0

    # -- browser lifecycle ------------------------------------------------------------------

    def _ensure(self):
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        self._shutdown()
        from playwright.sync_api import Error as PwError

        before = set(_browser_pids())
        # The browser's own temporary files (its SingletonSocket folder, which a killed browser
        # leaves behind) go to a folder of this launch, removed by _shutdown. Playwright's
        # profile folder is the driver's, and Playwright removes it, killed browser or not.
        self._tmpdir = tempfile.mkdtemp(prefix="tfod-chromium-")
        try:
            self._browser = _playwright().chromium.launch(executable_path=self.executable, args=LAUNCH_ARGS,
                                                          timeout=max(30.0, self.timeout_s) * 1000,
                                                          env={**os.environ, "TMPDIR": self._tmpdir})
            self._browser_pid = next((pid for pid in _browser_pids(main_only=True) if pid not in before), None)
        except PwError as exc:
            self._shutdown()
            raise BrowserError(f"Chromium {self.executable!r} could not be started: "
                               f"{str(exc).splitlines()[0]}; " + INSTALL_HINT) from None
        return self._browser

    def _shutdown(self):
        if self._browser is not None:
            try:
                self._browser.close()
            except Exception:  # noqa: BLE001 - a dead browser cannot be closed politely
                pass
        self._browser = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def _kill_browser(self):
        """Kills this renderer's browser: its main process and every process under it."""
        import psutil

        if self._browser_pid is None:
            return
        try:
            main = psutil.Process(self._browser_pid)
            procs = main.children(recursive=True) + [main]
        except psutil.Error:
            return
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass

    def close(self):
        self._shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- one page ---------------------------------------------------------------------------

    def render(self, path: str, page: themes.PageParams, theme: themes.ThemeParams, scheme: int,
               root: str = "") -> Rendered:
        """Renders `path` as `page` with `theme`; raises PageSkipped with the reason. The page
        may load files under `root` (default: its own folder)."""
        browser = self._ensure()
        killed = threading.Event()

        def watchdog():
            killed.set()
            self._kill_browser()

        timer = threading.Timer(2 * self.timeout_s, watchdog)
        timer.daemon = True
        timer.start()
        from playwright.sync_api import Error as PwError

        ctx = None
        try:
            ctx = browser.new_context(viewport={"width": page.width, "height": page.height}, device_scale_factor=1,
                                      java_script_enabled=self.javascript, reduced_motion="reduce",
                                      service_workers="block")
            return self._render(ctx, path, page, theme, scheme, root)
        except PwError as exc:
            if killed.is_set():
                self.restarts += 1
                self._shutdown()
                raise PageSkipped(path, f"the browser did not answer within {2 * self.timeout_s:g} s and was "
                                        "restarted") from None
            msg = str(exc).splitlines()[0]
            if "Timeout" in msg and "goto" in msg:
                msg = f"did not finish loading within {self.timeout_s:g} s ({msg})"
            elif "Timeout" in msg:
                msg = f"timed out after {self.timeout_s:g} s while being rendered ({msg})"
            elif "crash" in msg.lower() or "closed" in msg.lower():
                msg = f"the renderer crashed or closed the page ({msg})"
            raise PageSkipped(path, msg) from None
        finally:
            timer.cancel()
            if ctx is not None and not killed.is_set():
                try:
                    ctx.close()
                except PwError:
                    self._shutdown()

    def _render(self, ctx, path, page, theme, scheme, root) -> Rendered:
        path = os.path.abspath(path)
        folder = os.path.abspath(root) if root else os.path.dirname(path)
        blocked: list[str] = []

        def route(r):
            url = r.request.url
            if _allowed(url, folder):
                r.continue_()
            else:
                blocked.append(url)
                r.abort("blockedbyclient")

        ctx.route("**/*", route)
        ms = self.timeout_s * 1000
        ctx.set_default_timeout(ms)
        pg = ctx.new_page()
        crashed = []
        pg.on("crash", lambda *_: crashed.append(True))
        pg.goto("file://" + urllib.parse.quote(path), wait_until="load", timeout=ms)
        if crashed:
            raise PageSkipped(path, "the renderer crashed")
        if blocked and self.skip_network:
            more = f" and {len(blocked) - 1} more" if len(blocked) > 1 else ""
            raise PageSkipped(path, f"requests the network or files outside its folder ({blocked[0]}{more}); "
                                    "such requests are blocked")
        css = "\n".join(filter(None, (themes.theme_css(theme), themes.print_css(theme, page))))
        prep = pg.evaluate(f"async (a) => {{ const r = ({themes.PREPARE_JS})(a); await document.fonts.ready; "
                           "return r; }",
                           {"selector": labels_lib.SELECTOR, "css": css, "numbered": theme.numbered,
                            "draws": list(theme.restyle_draws) or [1.0],
                            "header_as_paragraph": theme.header_as_paragraph_p,
                            "paragraph_as_header": theme.paragraph_as_header_p})
        if prep["height"] > self.max_page_height:
            raise PageSkipped(path, f"the page is {prep['height']} px tall, over max_page_height_px = "
                                    f"{self.max_page_height}")
        info = {k: prep[k] for k in ("height", "width", "headers", "numbered", "header_as_paragraph",
                                     "paragraph_as_header")}
        info["blocked_requests"] = len(blocked)
        if page.mode == "print":  # measured above on screen: emulated print media has no pages to measure
            if prep["width"] > page.width + 1:
                raise PageSkipped(path, f"is {prep['width']} px wide on {page.width} px paper: printing would shrink "
                                        "it", page_level=False, kind="wider than the paper")
            pg.emulate_media(media="print")
            return self._print(pg, path, page, scheme, info)
        y = int(round(page.scroll * max(0, prep["height"] - page.height)))
        info["scroll_y"] = pg.evaluate("(y) => { window.scrollTo(0, y); return window.scrollY; }", y)
        report = pg.evaluate(labels_lib.LABEL_JS, {"selector": labels_lib.SELECTOR})
        png = pg.screenshot(type="png", animations="disabled", caret="hide", timeout=ms)
        image = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        headers = labels_lib.header_boxes(report, page.width, page.height, scheme)
        return Rendered(image, headers, info)

    def _print(self, pg, path, page, scheme, info) -> Rendered:
        import pypdfium2 as pdfium

        report = pg.evaluate(labels_lib.LABEL_JS, {"selector": labels_lib.SELECTOR})
        pdf = pg.pdf(width=f"{page.width}px", height=f"{page.height}px", print_background=True,
                     page_ranges=f"1-{self.max_print_pages}", prefer_css_page_size=False,
                     margin={"top": "0", "right": "0", "bottom": "0", "left": "0"})
        doc = pdfium.PdfDocument(pdf)
        try:
            sheets = len(doc)
            sheet = min(int(page.sheet * sheets), sheets - 1)
            pdf_page = doc[sheet]
            bitmap = pdf_page.render(scale=PDF_DPI_SCALE, fill_color=(255, 255, 255, 255))
            image = np.ascontiguousarray(np.asarray(bitmap.to_pil().convert("RGB")))
            try:
                headers, offset = printed.place_on_sheet(report, page.width, page.height, scheme, pdf_page, sheet)
            except printed.PrintMismatch as exc:
                raise PageSkipped(path, str(exc), page_level=False,
                                  kind="printed layout differs from the measured one") from None
        finally:
            doc.close()
        info.update(sheet=sheet, sheets=sheets, sheet_offset_px=None if offset is None else round(offset, 2))
        if image.shape[:2] != (page.height, page.width):  # pdfium rounds the page size to whole px
            image = cv2.resize(image, (page.width, page.height), interpolation=cv2.INTER_AREA)
        return Rendered(image, headers, info)


def smoke_test(executable: str = "", timeout_s: float = 30.0) -> None:
    """Starts the browser and renders a one-header page (make setup runs this); raises
    BrowserError, or RuntimeError when the header is not found where it is drawn."""
    import tempfile

    from synth.protos import header_config_pb2

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "smoke.html")
        with open(path, "w", encoding="utf-8") as f:
            f.write("<!doctype html><body style='margin:0'><h1 style='margin:0'>Setup check</h1></body>")
        with Renderer(executable, timeout_s) as r:
            out = r.render(path, themes.PageParams("screen", 320, 120, 0.0, ""), themes.ThemeParams(False),
                           header_config_pb2.HEADER)
    box = out.headers[0].box if out.headers else None
    if box is None or box[0] > 1 or box[1] > 1:
        raise RuntimeError(f"chromium rendered the setup check page, but its header was not found at the top left: {box}")

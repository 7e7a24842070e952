"""Header boxes from pages rendered by the real browser (Chromium through Playwright).

Expected positions come from the CSS of hand-written pages and the metrics of the font file
itself (fontTools), not from the browser: a monospace font at a fixed size, absolutely
positioned headers, a fixed viewport."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
import time

import numpy as np
import pytest

from conftest import kill_renderers_after
from synth.html import labels, render, themes
from synth.protos import header_config_pb2 as hpb

FONT = "DejaVu Sans Mono"
SIZE, LINE = 32, 40
LEFT, TOP = 40, 50


def font_metrics():
    """(advance of one character, ascent, descent) in px at SIZE, from the font file."""
    from fontTools.ttLib import TTFont

    path = subprocess.run(["fc-match", "-f", "%{file}", FONT], capture_output=True, text=True).stdout.strip()
    f = TTFont(path)
    upm = f["head"].unitsPerEm
    return (f["hmtx"]["H"][0] * SIZE / upm, f["hhea"].ascent * SIZE / upm, -f["hhea"].descent * SIZE / upm)


def expected_line(text: str, left: float, top: float, line_index: int = 0):
    adv, asc, desc = font_metrics()
    y0 = top + line_index * LINE + (LINE - (asc + desc)) / 2
    return [left, y0, left + len(text) * adv, y0 + asc + desc]


PAGE = f"""<!doctype html>
<html><head><style>
  body {{ margin: 0; background: #fff; }}
  h1, h2, p {{ position: absolute; margin: 0; font: {SIZE}px/{LINE}px '{FONT}'; color: #000; white-space: normal; }}
</style></head><body>
  <h1 style="left:{LEFT}px; top:{TOP}px">HEADER</h1>
  <h2 style="left:{LEFT}px; top:150px; width:{int(11 * 0.602 * SIZE)}px">WRAPS OVER TWO LINES</h2>
  <p style="left:{LEFT}px; top:300px">not a header</p>
</body></html>
"""


@pytest.fixture(scope="module")
def renderer():
    with render.Renderer(timeout_s=3.0) as r:
        yield r


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def screen(w=640, h=480, scroll=0.0):
    return themes.PageParams("screen", w, h, scroll, "")


NO_THEME = themes.ThemeParams(False)


@pytest.mark.parametrize("mode", ["screen", "print"])
def test_known_header_positions_within_2px(renderer, tmp_path, mode):
    path = write(tmp_path, "known.html", PAGE)
    page = screen() if mode == "screen" else themes.PageParams("print", 640, 480, 0.0, "custom")
    out = renderer.render(path, page, NO_THEME, hpb.HEADER)
    assert out.image.shape == (480, 640, 3)
    kept = [h for h in out.headers if h.dropped is None]
    assert [h.text for h in kept] == ["HEADER", "WRAPS OVER TWO LINES"]
    np.testing.assert_allclose(kept[0].box, expected_line("HEADER", LEFT, TOP), atol=2.0)
    # Two lines, one box covering both: "WRAPS OVER" (10 chars, the longer) and "TWO LINES".
    assert len(kept[1].lines) == 2
    first, second = expected_line("WRAPS OVER", LEFT, 150, 0), expected_line("TWO LINES", LEFT, 150, 1)
    np.testing.assert_allclose(kept[1].box, [first[0], first[1], first[2], second[3]], atol=2.0)
    # The ink of each header is inside its box, and fills it across (no empty margin over 2 px).
    dark = out.image.min(axis=2) < 128
    for h in kept:
        x0, y0, x1, y1 = h.box
        ys, xs = np.nonzero(dark[int(y0) - 6:int(y1) + 6, int(x0) - 6:int(x1) + 6])
        ys, xs = ys + int(y0) - 6, xs + int(x0) - 6
        assert xs.min() >= x0 - 1 and xs.max() <= x1 + 1 and ys.min() >= y0 - 1 and ys.max() <= y1 + 1
        assert xs.min() - x0 <= 4 and x1 - xs.max() <= 4


HIDDEN = f"""<!doctype html>
<html><head><style>
  body {{ margin: 0; }} h2 {{ position: absolute; margin: 0; font: 20px/24px '{FONT}'; }}
</style></head><body>
  <h2 style="left:10px; top:10px">VISIBLE</h2>
  <h2 style="left:10px; top:40px; display:none">DISPLAY NONE</h2>
  <h2 style="left:10px; top:70px; visibility:hidden">INVISIBLE</h2>
  <h2 style="left:10px; top:100px; opacity:0">TRANSPARENT</h2>
  <h2 style="left:10px; top:130px; font-size:0">ZERO SIZE</h2>
  <h3 style="position:absolute; left:10px; top:160px"></h3>
  <h2 style="left:-3000px; top:190px">OFF TO THE LEFT</h2>
  <h2 style="left:10px; top:5000px">FAR BELOW</h2>
  <h2 style="left:10px; top:220px">COVERED</h2>
  <div style="position:absolute; left:0; top:215px; width:400px; height:40px; background:#fff; z-index:5"></div>
  <div role="heading" aria-level="3" style="position:absolute; left:10px; top:280px; font: 20px '{FONT}'">ROLE</div>
</body></html>
"""


def test_hidden_zero_size_off_page_and_covered_headers_get_no_box(renderer, tmp_path):
    out = renderer.render(write(tmp_path, "hidden.html", HIDDEN), screen(640, 480), NO_THEME, hpb.PER_LEVEL)
    by_text = {h.text: h for h in out.headers}
    assert by_text["VISIBLE"].dropped is None and by_text["VISIBLE"].class_name == "h2"
    assert by_text["ROLE"].dropped is None and by_text["ROLE"].class_name == "h3"  # role=heading, aria-level
    hidden = [h for h in out.headers if h.text not in ("VISIBLE", "ROLE")]
    assert len(hidden) == 8
    dropped = [h.dropped for h in hidden]
    assert all(h.box is None for h in hidden), dropped
    assert "hidden (display: none)" in dropped and "hidden (visibility: hidden)" in dropped
    assert dropped.count("zero-size") == 2  # font-size 0 and the empty h3
    assert dropped.count("off-page") == 2
    assert dropped.count("covered") == 1
    assert sum(d.startswith("hidden") for d in dropped) == 3


def test_scroll_moves_boxes_and_clips_to_the_viewport(renderer, tmp_path):
    body = "".join(f"<h2 style='position:absolute;left:10px;top:{100 + 300 * k}px;margin:0;"
                   f"font:20px/24px \"{FONT}\"'>HEAD {k}</h2>" for k in range(10))
    path = write(tmp_path, "long.html", f"<!doctype html><body style='margin:0;height:3200px'>{body}</body>")
    top = renderer.render(path, screen(400, 500, 0.0), NO_THEME, hpb.HEADER)
    down = renderer.render(path, screen(400, 500, 1.0), NO_THEME, hpb.HEADER)
    assert down.info["scroll_y"] == 3200 - 500
    assert [h.text for h in top.headers if h.dropped is None] == ["HEAD 0", "HEAD 1"]
    kept = {h.text: h.box for h in down.headers if h.dropped is None}
    assert sorted(kept) == ["HEAD 9"]
    assert 99 <= kept["HEAD 9"][1] <= 103 and 119 <= kept["HEAD 9"][3] <= 124  # 2800 - 2700 = 100 in the viewport
    ys, xs = np.nonzero(down.image.min(axis=2) < 128)  # the screenshot is of the scrolled viewport
    x0, y0, x1, y1 = kept["HEAD 9"]
    assert ys.min() >= y0 - 1 and ys.max() <= y1 + 1 and xs.min() >= x0 - 1 and xs.max() <= x1 + 1
    assert ys.max() - ys.min() >= 0.5 * (y1 - y0)


def test_class_schemes(renderer, tmp_path):
    page = ("<!doctype html><body><h1>Title</h1><h2>Intro</h2><h1>Second h1</h1><h4>Deep</h4></body>")
    path = write(tmp_path, "classes.html", page)
    got = {}
    for scheme in (hpb.HEADER, hpb.TITLE_AND_SECTION, hpb.PER_LEVEL):
        got[scheme] = [h.class_name for h in renderer.render(path, screen(), NO_THEME, scheme).headers]
    assert got[hpb.HEADER] == ["header"] * 4
    assert got[hpb.TITLE_AND_SECTION] == ["title", "section_header", "section_header", "section_header"]
    assert got[hpb.PER_LEVEL] == ["h1", "h2", "h1", "h4"]


def test_malformed_html_renders_with_the_browsers_recovery(renderer, tmp_path):
    path = write(tmp_path, "bad.html", "<html><body><div><h2>Broken <b>page</h2><p>unclosed <div></span>"
                                       "<h3>Still here</h3></td></table>")
    out = renderer.render(path, screen(), NO_THEME, hpb.HEADER)
    assert [h.text for h in out.headers if h.dropped is None] == ["Broken page", "Still here"]


def test_theme_numbering_is_labelled_text(renderer, tmp_path):
    path = write(tmp_path, "num.html", "<!doctype html><body><h1>Doc</h1><h2>Alpha</h2><h3>Beta</h3>"
                                       "<h2>Gamma</h2><p>text</p></body>")
    theme = themes.sample_theme(np.random.default_rng(0), _theme_cfg(probability=1, numbered_probability=1))
    out = renderer.render(path, screen(), theme, hpb.HEADER)
    assert [h.text for h in out.headers] == ["Doc", "1. Alpha", "1.1 Beta", "2. Gamma"]
    assert out.info["numbered"] == 3
    assert all(h.box is not None for h in out.headers)


def _theme_cfg(**kw):
    c = hpb.HeaderConfig()
    for k, v in kw.items():
        setattr(c.theme, k, v)
    return c.theme


def test_page_that_never_finishes_loading_is_skipped_with_its_reason(tmp_path):
    path = write(tmp_path, "hang.html", "<!doctype html><body><h1>x</h1><script>while (true) {}</script></body>")
    after = write(tmp_path, "fine.html", "<!doctype html><body><h1>Fine</h1></body>")
    with render.Renderer(timeout_s=1.5, javascript=True) as r:
        t0 = time.time()
        with pytest.raises(render.PageSkipped, match="did not finish loading within 1.5 s"):
            r.render(path, screen(), NO_THEME, hpb.HEADER)
        assert time.time() - t0 < 10
        assert [h.text for h in r.render(after, screen(), NO_THEME, hpb.HEADER).headers] == ["Fine"]


def test_a_renderer_hung_after_load_is_killed_and_restarted(tmp_path):
    """The page's script loops forever only after the load event: loading succeeds, the
    labelling call hangs, the watchdog kills the browser, the next page gets a fresh one."""
    path = write(tmp_path, "late.html", "<!doctype html><body><h1>x</h1><script>"
                                        "addEventListener('load', () => setTimeout(() => { while (true) {} }, 0));"
                                        "</script></body>")
    after = write(tmp_path, "fine.html", "<!doctype html><body><h1>Fine</h1></body>")
    with render.Renderer(timeout_s=1.5, javascript=True) as r:
        t0 = time.time()
        with pytest.raises(render.PageSkipped, match="did not answer within 3 s and was restarted"):
            r.render(path, screen(), NO_THEME, hpb.HEADER)
        assert time.time() - t0 < 15
        assert r.restarts == 1
        assert [h.text for h in r.render(after, screen(), NO_THEME, hpb.HEADER).headers] == ["Fine"]


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):  # noqa: N802
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"h1 { color: red }")

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    _Recorder.hits = []
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_page_requesting_the_network_is_skipped_and_nothing_is_fetched(renderer, tmp_path, http_server):
    path = write(tmp_path, "net.html", f"<!doctype html><head><link rel=stylesheet href='{http_server}/s.css'>"
                                       "</head><body><h1>Net</h1></body>")
    with pytest.raises(render.PageSkipped, match=r"requests the network .*127\.0\.0\.1.*/s\.css") as e:
        renderer.render(path, screen(), NO_THEME, hpb.HEADER)
    assert e.value.page_level
    assert _Recorder.hits == []  # the request was blocked in the browser, never sent


def test_files_outside_the_pages_folder_are_blocked_and_its_own_are_loaded(renderer, tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "style.css").write_text("h1 { position: absolute; left: 123px; top: 0; margin: 0 }")
    (tmp_path / "secret.css").write_text("h1 { left: 0 }")
    own = write(tmp_path / "site", "own.html", "<!doctype html><head><link rel=stylesheet href='style.css'></head>"
                                               "<body><h1>Styled</h1></body>")
    out = renderer.render(own, screen(), NO_THEME, hpb.HEADER)
    assert abs(out.headers[0].box[0] - 123) < 0.5  # its own CSS applied
    outside = write(tmp_path / "site", "out.html", "<!doctype html><head><link rel=stylesheet href='../secret.css'>"
                                                   "</head><body><h1>x</h1></body>")
    with pytest.raises(render.PageSkipped, match="secret.css"):
        renderer.render(outside, screen(), NO_THEME, hpb.HEADER)
    with render.Renderer(timeout_s=3.0, skip_network=False) as r:  # or rendered without it, as configured
        out = r.render(outside, screen(), NO_THEME, hpb.HEADER)
        assert out.info["blocked_requests"] == 1 and out.headers[0].box is not None


def test_page_taller_than_the_limit_is_skipped(tmp_path):
    path = write(tmp_path, "tall.html", "<!doctype html><body><h1>Tall</h1><div style='height:5000px'></div></body>")
    with render.Renderer(timeout_s=3.0, max_page_height=2000) as r:
        with pytest.raises(render.PageSkipped, match="over max_page_height_px = 2000"):
            r.render(path, screen(), NO_THEME, hpb.HEADER)


def test_missing_browser_is_a_clear_error_not_a_hang(tmp_path):
    t0 = time.time()
    with pytest.raises(render.BrowserError, match=r"/nonexistent/chromium.*apt-get install -y chromium"):
        render.Renderer("/nonexistent/chromium")
    not_a_browser = tmp_path / "fake-chromium"
    not_a_browser.write_text("#!/bin/sh\nexit 3\n")
    os.chmod(not_a_browser, 0o755)
    with pytest.raises(render.BrowserError, match="could not be started"):
        render.Renderer(str(not_a_browser), timeout_s=2.0).render(
            write(tmp_path, "p.html", "<h1>x</h1>"), screen(), NO_THEME, hpb.HEADER)
    assert time.time() - t0 < 60


def test_header_boxes_geometry_is_pure():
    report = [{"tag": "h2", "level": 2, "first_h1": False, "text": "a b", "hidden": None,
               "rects": [[10, 10, 50, 30], [52, 11, 90, 29], [10, 40, 30, 60], [10, 475, 60, 495]],
               "covered": [False, False, None, None]}]
    h = labels.header_boxes(report, 640, 480, hpb.HEADER)[0]
    assert h.lines == [[10, 10, 90, 30], [10, 40, 30, 60]]  # the last line is mostly below 480: dropped
    np.testing.assert_allclose(h.box, [10, 10, 90, 60])
    whole = labels.header_boxes(report, 640, 480, hpb.HEADER, whole_lines_only=True)[0]
    assert whole.box is None and whole.dropped == "crosses the page's edge"


def test_a_crashed_renderer_skips_its_page_and_the_browser_goes_on(tmp_path):
    """The page's renderer process is killed while the page is being labelled (a stand-in for
    a renderer that crashes): that page is skipped with the reason, the next renders in the
    same browser."""
    path = write(tmp_path, "crash.html", "<!doctype html><body><h1>x</h1><script>"
                                         "addEventListener('load', () => setTimeout(() => { while (true) {} }, 0));"
                                         "</script></body>")
    after = write(tmp_path, "fine.html", "<!doctype html><body><h1>Fine</h1></body>")


    with render.Renderer(timeout_s=5.0, javascript=True) as r:
        r.render(after, screen(), NO_THEME, hpb.HEADER)  # the browser is up
        killer = threading.Thread(target=kill_renderers_after, args=(1.5,))
        killer.start()
        with pytest.raises(render.PageSkipped, match="crash") as e:
            r.render(path, screen(), NO_THEME, hpb.HEADER)
        killer.join()
        assert e.value.page_level and r.restarts == 0
        assert [h.text for h in r.render(after, screen(), NO_THEME, hpb.HEADER).headers] == ["Fine"]


@pytest.mark.parametrize("seed", range(6))
def test_under_drawn_themes_every_box_holds_its_headers_ink(renderer, tmp_path, seed):
    """Drawn themes and modes (screen and print) on a page with every heading level: each kept
    box contains ink that differs from the page's background (its text was drawn there)."""
    body = "".join(f"<h{k}>Heading level {k}</h{k}><p>{'Body text for the section. ' * 12}</p>" for k in range(1, 7))
    path = write(tmp_path, "levels.html", f"<!doctype html><body>{body * 2}</body>")
    cfg = hpb.HeaderConfig()
    cfg.theme.probability = 1.0
    cfg.print.probability = 0.5
    rng = np.random.default_rng(seed)
    page = themes.sample_page(rng, cfg.screen, cfg.print)
    theme = themes.sample_theme(rng, cfg.theme)
    out = renderer.render(path, page, theme, hpb.PER_LEVEL)
    kept = [h for h in out.headers if h.box is not None]
    assert kept, (page, out.info)
    img = out.image.astype(int)
    bg = np.median(img.reshape(-1, 3), axis=0)
    for h in kept:
        x0, y0, x1, y1 = (int(round(v)) for v in h.box)
        crop = img[y0:y1, x0:x1]
        ink = np.abs(crop - bg).max(axis=2) > 60
        assert ink.mean() > 0.03, (h.text, h.box, page.mode)
        assert ink[:, : max(1, (x1 - x0) // 8)].any() and ink[:, -max(1, (x1 - x0) // 8):].any(), (h.text, h.box)


def test_two_column_printed_page_matches_its_measured_layout(renderer, tmp_path):
    """A two-column theme on a printed page: the printed PDF's text layer agrees with every
    header box (render raises otherwise), and headers are found in both columns."""
    body = "".join(f"<h2>Section {k}</h2><p>{'Words in the body of this section. ' * 15}</p>" for k in range(12))
    path = write(tmp_path, "cols.html", f"<!doctype html><body><h1>Columns</h1>{body}</body>")
    cfg = hpb.HeaderConfig()
    cfg.theme.probability = 1.0
    cfg.theme.two_column_probability = 1.0
    theme = themes.sample_theme(np.random.default_rng(1), cfg.theme)
    page = themes.PageParams("print", *themes.PAPER["A4"], 0.0, "A4")
    out = renderer.render(path, page, theme, hpb.HEADER)
    boxes = [h.box for h in out.headers if h.box is not None]
    assert theme.columns == 2 and out.info["width"] <= page.width
    assert any(b[2] <= page.width / 2 for b in boxes) and any(b[0] >= page.width / 2 for b in boxes)
    assert all(b[3] <= page.height for b in boxes)

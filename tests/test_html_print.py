"""Printed pages after the first (synth.html.printed) and a source's shared root folder, with the
real browser. Expected positions come from the CSS and the font file's metrics
(test_html_render's helpers), not from the browser."""

from __future__ import annotations

import numpy as np
import pytest

from synth.html import printed, render, themes
from synth.protos import header_config_pb2 as hpb
from test_html_render import FONT, LINE, NO_THEME, SIZE, expected_line, screen, write

# Paper 640 x 480. Continuous layout: FIRST 0..40, a 420 px spacer, three paragraph lines from 460
# (the first would cross the page's foot at 480, so the paragraph moves to page 2 whole: page 2
# starts at 460, not 480), SECOND at 580..620 -> 120..160 on page 2, then NOT A HEADER.
TWO_PAGES = f"""<!doctype html>
<html><head><style>
  body {{ margin: 0; background: #fff; }}
  h1, h2, p {{ margin: 0; font: {SIZE}px/{LINE}px '{FONT}'; color: #000; }}
</style></head><body>
  <h1>FIRST</h1><div style="height:420px"></div>
  <p>line one<br>line two<br>line three</p><h2>SECOND</h2><p>not a header</p>
</body></html>
"""


def print_page(sheet: float) -> themes.PageParams:
    return themes.PageParams("print", 640, 480, 0.0, "custom", sheet)


@pytest.fixture(scope="module")
def renderer():
    with render.Renderer(timeout_s=5.0, max_print_pages=4) as r:
        yield r


def _ink_box(image, box, pad=6):
    x0, y0, x1, y1 = box
    dark = image.min(axis=2) < 128
    ys, xs = np.nonzero(dark[int(y0) - pad:int(y1) + pad, int(x0):int(x1) + pad])
    return xs.min() + int(x0), ys.min() + int(y0) - pad, xs.max() + int(x0), ys.max() + int(y0) - pad


def test_the_header_on_the_second_printed_page_gets_its_box_on_the_second_image(renderer, tmp_path):
    path = write(tmp_path, "two.html", TWO_PAGES)
    first = renderer.render(path, print_page(0.0), NO_THEME, hpb.HEADER)
    second = renderer.render(path, print_page(0.5), NO_THEME, hpb.HEADER)  # int(0.5 * 2 pages) = page 2
    assert (first.info["sheet"], first.info["sheets"]) == (0, 2)
    assert (second.info["sheet"], second.info["sheets"]) == (1, 2)
    assert [h.text for h in first.headers if h.box is not None] == ["FIRST"]
    assert [h.text for h in second.headers if h.box is not None] == ["SECOND"]
    np.testing.assert_allclose(first.headers[0].box, expected_line("FIRST", 0, 0), atol=2.0)
    # 580 in the unpaginated layout; page 2 starts at 460 (the moved paragraph), not at 480.
    np.testing.assert_allclose(second.headers[1].box, expected_line("SECOND", 0, 120), atol=2.0)
    assert abs(second.info["sheet_offset_px"] - 460) <= 1.0
    # The box is where the second image shows the header's ink.
    box = second.headers[1].box
    ix0, iy0, ix1, iy1 = _ink_box(second.image, box)
    assert ix0 >= box[0] - 1 and ix1 <= box[2] + 1 and iy0 >= box[1] - 1 and iy1 <= box[3] + 1
    assert iy1 - iy0 >= 0.5 * (box[3] - box[1])
    assert second.headers[0].dropped == "off-page" and first.headers[1].dropped == "off-page"


def test_max_print_pages_one_keeps_the_first_page(tmp_path):
    path = write(tmp_path, "two.html", TWO_PAGES)
    with render.Renderer(timeout_s=5.0, max_print_pages=1) as r:
        out = r.render(path, print_page(0.99), NO_THEME, hpb.HEADER)
    assert (out.info["sheet"], out.info["sheets"]) == (0, 1)
    assert [h.text for h in out.headers if h.box is not None] == ["FIRST"]


def test_a_printed_page_without_any_header_text_gets_no_boxes(renderer, tmp_path):
    body = "<h1>ONLY HEADER</h1>" + "".join(f"<p>paragraph {k}</p>" for k in range(40))
    path = write(tmp_path, "one.html", f"<!doctype html><body style='margin:0'>{body}</body>")
    out = renderer.render(path, print_page(0.99), NO_THEME, hpb.HEADER)
    assert out.info["sheets"] >= 2 and out.info["sheet"] == out.info["sheets"] - 1
    assert out.info["sheet_offset_px"] is None
    assert [h.dropped for h in out.headers] == ["not on the printed page"]


def test_every_printed_page_of_a_long_document_labels_its_headers(renderer, tmp_path):
    """Proportional text, default styles: every header whose text a page prints gets a box
    there holding that text (place_on_sheet checks it against the PDF), on every page."""
    body = "".join(f"<h2>Section number {k}</h2><p>{'Body text of the section goes on. ' * (10 + 7 * (k % 3))}</p>"
                   for k in range(14))
    path = write(tmp_path, "long.html", f"<!doctype html><body><h1>Long document</h1>{body}</body>")
    seen = []
    for k in range(4):
        out = renderer.render(path, themes.PageParams("print", 559, 794, 0.0, "A5", (k + 0.5) / 4),
                              NO_THEME, hpb.HEADER)
        assert out.info["sheets"] == 4 and out.info["sheet"] == k
        kept = [h.text for h in out.headers if h.box is not None]
        assert kept, k
        seen += kept
    assert len(seen) == len(set(seen))  # no header labelled on two pages
    assert {f"Section number {k}" for k in range(5)} <= set(seen)


def test_squash_and_shift_are_pure():
    assert printed.squash("Ĥéllo, ﬁne   World 2!") == "ĥéllofineworld2"
    report = [{"rects": [[1, 500, 9, 520]], "text": "x"}]
    assert printed.shifted(report, 460.5)[0]["rects"] == [[1, 39.5, 9, 59.5]]
    assert report[0]["rects"] == [[1, 500, 9, 520]]  # the input is left as it was


def test_a_sources_root_lets_its_pages_load_shared_files_above_them(renderer, tmp_path):
    site = tmp_path / "site"
    (site / "static").mkdir(parents=True)
    (site / "api" / "mod").mkdir(parents=True)
    (site / "static" / "s.css").write_text("h1 { position: absolute; left: 123px; top: 0; margin: 0 }")
    path = write(site / "api" / "mod", "page.html", "<!doctype html><head><link rel=stylesheet "
                                                    "href='../../static/s.css'></head><body><h1>Shared</h1></body>")
    with pytest.raises(render.PageSkipped, match="static/s.css"):
        renderer.render(path, screen(), NO_THEME, hpb.HEADER)  # default: its own folder only
    out = renderer.render(path, screen(), NO_THEME, hpb.HEADER, root=str(site))
    assert abs(out.headers[0].box[0] - 123) < 0.5
    (tmp_path / "outside.css").write_text("h1 { color: red }")
    leak = write(site / "api", "leak.html", "<!doctype html><head><link rel=stylesheet href='../../outside.css'>"
                                            "</head><body><h1>x</h1></body>")
    with pytest.raises(render.PageSkipped, match="outside.css"):
        renderer.render(leak, screen(), NO_THEME, hpb.HEADER, root=str(site))


def test_shift_moves_edges_within_a_pixel_onto_the_page():
    report = [{"rects": [[0, 99.6, 10, 120], [0, 560, 10, 580.5], [0, 300, 10, 320]], "text": "x"}]
    got = printed.shifted(report, 100.0, height=480)[0]["rects"]
    np.testing.assert_allclose(got, [[0, 0, 10, 20], [0, 460, 10, 480], [0, 200, 10, 220]])
    assert printed.shifted(report, 101.5, height=480)[0]["rects"][0][1] == pytest.approx(-1.9)  # too far: kept out

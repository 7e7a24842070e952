"""Header boxes on a printed page: the DOM's report (measured once, unpaginated, in print media
with the paper as the viewport) placed on one page of Chromium's PDF, checked against the PDF's
own text layer (pypdfium2).

Page 1 of the PDF shows the unpaginated layout's top, unshifted. Every later page k shows a
stretch of it moved up by an offset: the layout's y of the content that opens page k. That is
not k times the paper's height: a line that would cross a page's foot moves to the next page
whole, and the margin at a break is cut. Within one page the offset is the same for all its
content (a flow of blocks is split, not reflowed), so it is read off the PDF: every place where
a header's text is printed on page k gives a candidate (the header's top in the layout minus
the top of its first character's loose box, from the font's ascent, in the PDF), candidates
more than 4 px left or right of the header are discarded, and the offset is the median of the
largest group of candidates within 2 px of each other.

Every header is then shifted by that offset, clipped to the page (a line that does not lie
wholly on it drops the header) and checked: the PDF text inside each kept box must contain
the header's text (an edge less than 1 px off the page, within the offset's error, is moved
onto it). A header whose box is empty in the PDF is dropped ("not on the printed
page"); other text there means the printed layout is not the measured one shifted (content
reordered by breaks, or the offset read from text that is not the header's) and the rendering
is rejected (PrintMismatch). A page on which no header's text is printed gets no boxes.
Missed, so left unlabelled: a header printed where the shifted layout does not put it (a
fixed-position header repeated on every page), and a header of four or more lines broken across
two pages.
"""

from __future__ import annotations

import unicodedata

import numpy as np

from synth.html import labels as labels_lib

PDF_DPI_SCALE = 96.0 / 72.0  # PDF points -> CSS px
ANCHOR_X_TOLERANCE_PX = 4.0
ANCHOR_GROUP_PX = 2.0
EDGE_TOLERANCE_PX = 1.0


class PrintMismatch(Exception):
    """The printed page does not show the measured layout; the message says where."""


def squash(text: str) -> str:
    """Letters and digits only, case-folded: what a PDF's text layer and the DOM agree on
    (spaces, emoji, soft hyphens and ligature forms are not reliably extracted)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if ch.isalnum())


def _page_chars(tp) -> tuple[str, list[int]]:
    """The page's text squashed, and for each squashed character its char index in the page."""
    import pypdfium2.raw as pdfium_c

    chars, index = [], []
    for i in range(tp.count_chars()):
        code = pdfium_c.FPDFText_GetUnicode(tp.raw, i)
        if not code:
            continue
        for ch in squash(chr(code)):
            chars.append(ch)
            index.append(i)
    return "".join(chars), index


def _occurrences(text: str, want: str) -> list[int]:
    out, start = [], text.find(want)
    while start >= 0:
        out.append(start)
        start = text.find(want, start + 1)
    return out


def sheet_offset(report: list[dict], tp, height_pt: float) -> float | None:
    """The offset in CSS px of a later printed page, or None when no header's text is printed
    on it where a header starts (see the module docstring)."""
    text, index = _page_chars(tp)
    candidates = []
    for rec in report:
        want = squash(str(rec.get("text", "")))
        if rec.get("hidden") or not rec.get("rects") or not want:
            continue
        found = _occurrences(text, want)
        x0, y0 = float(rec["rects"][0][0]), float(rec["rects"][0][1])
        for pos in found:
            left, _, _, top = tp.get_charbox(index[pos], loose=True)
            if abs(left * PDF_DPI_SCALE - x0) <= ANCHOR_X_TOLERANCE_PX:
                candidates.append(y0 - (height_pt - top) * PDF_DPI_SCALE)
    if not candidates:
        return None
    c = np.sort(np.asarray(candidates))
    support = [(np.abs(c - v) <= ANCHOR_GROUP_PX).sum() for v in c]
    best = c[int(np.argmax(support))]
    return float(np.median(c[np.abs(c - best) <= ANCHOR_GROUP_PX]))


def shifted(report: list[dict], offset: float, height: float | None = None) -> list[dict]:
    """The report with every rectangle moved up by `offset` CSS px; with `height`, an edge
    within EDGE_TOLERANCE_PX outside [0, height] is moved onto the page's edge (the offset
    is known to within the loose box's rounding, and a line that opens a page starts at 0)."""
    def clamp(v):
        if height is not None and (-EDGE_TOLERANCE_PX <= v < 0 or height < v <= height + EDGE_TOLERANCE_PX):
            return min(max(v, 0.0), float(height))
        return v
    return [{**rec, "rects": [[r[0], clamp(r[1] - offset), r[2], clamp(r[3] - offset)] for r in rec.get("rects", [])]}
            for rec in report]


def check_printed_text(headers: list, tp, height_pt: float) -> None:
    """Compares each kept header with the PDF text inside its box: drops it when the box is
    empty in the PDF, raises PrintMismatch when other text is there."""
    for h in headers:
        box = h.box
        if box is None or not h.text.strip():
            continue
        x0, y0, x1, y1 = (box / PDF_DPI_SCALE).tolist()
        found = squash(tp.get_text_bounded(left=x0 - 1, bottom=height_pt - y1 - 1, right=x1 + 1,
                                           top=height_pt - y0 + 1))
        want = squash(h.text)
        if want and want in found:
            continue
        if not found:
            h.lines, h.dropped = [], "not on the printed page"
            continue
        raise PrintMismatch(f"the printed layout differs from the measured one at header {h.text[:40]!r} "
                            f"(printed there: {found[:40]!r})")


def place_on_sheet(report: list[dict], width: int, height: int, scheme: int, pdf_page, sheet: int):
    """(headers with their boxes on printed page `sheet` (0-based) of the PDF, the offset used).
    Raises PrintMismatch (see the docstring)."""
    _, height_pt = pdf_page.get_size()
    tp = pdf_page.get_textpage()
    try:
        offset = 0.0 if sheet == 0 else sheet_offset(report, tp, height_pt)
        if offset is None:  # no header's text is printed on this page
            headers = labels_lib.header_boxes(report, width, height, scheme, whole_lines_only=True)
            for h in headers:
                if h.dropped is None or h.dropped in ("off-page", "crosses the page's edge"):
                    h.lines, h.dropped = [], "not on the printed page"
            return headers, None
        headers = labels_lib.header_boxes(shifted(report, offset, height if sheet else None), width, height, scheme,
                                          whole_lines_only=True)
        check_printed_text(headers, tp, height_pt)
        return headers, offset
    finally:
        tp.close()

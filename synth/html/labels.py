"""Header labels from the DOM.

`LABEL_JS` runs inside the rendered page and reports, for every h1..h6 and [role=heading]
(outermost only: a header inside a header is part of it), in document order: its level, its
text, why it is hidden (display:none, visibility, opacity, transparent text) or else the
client rectangles of its rendered text (Range.getClientRects over each of its text nodes, in
CSS px of the viewport) and, for each rectangle, whether the element drawn at its centre and at
its quarter points is the header (`covered` is true when most of those points show something
else, null when the points lie outside the viewport, where elementFromPoint cannot look).

`header_boxes` (pure) turns that report into boxes: rectangles are merged into line boxes,
each line is clipped to the visible area and kept when at least half of its height shows; the
header's box is the union of its kept lines. A header without a kept line is dropped with its
reason: hidden, zero-size, covered or off-page.

Limits: an overlay with `pointer-events: none` is invisible to elementFromPoint, so text under
it counts as uncovered; text painted by ::before/::after is not in the DOM and not in the box
(the themes number headings with real text for that reason); a header clipped by an
overflow:hidden ancestor is caught only where the clipped part's points hit something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synth.protos import header_config_pb2

SELECTOR = 'h1,h2,h3,h4,h5,h6,[role="heading"]'

LABEL_JS = """
(args) => {
  const SEL = args.selector;
  const hiddenReason = (el) => {
    let opacity = 1;
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.display === 'none') return 'hidden (display: none)';
      if (s.contentVisibility === 'hidden') return 'hidden (content-visibility)';
      opacity *= parseFloat(s.opacity);
    }
    const s = getComputedStyle(el);
    if (s.visibility !== 'visible') return 'hidden (visibility: ' + s.visibility + ')';
    if (opacity < 0.1) return 'hidden (opacity ' + opacity.toFixed(2) + ')';
    const m = s.color.match(/rgba?\\(([^)]*)\\)/);
    if (m) { const p = m[1].split(/[ ,\\/]+/).filter(Boolean); if (p.length === 4 && parseFloat(p[3]) === 0) return 'hidden (transparent text)'; }
    return null;
  };
  const hits = (el, x, y) => {
    if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) return null;
    const h = document.elementFromPoint(x, y);
    return h !== null && (h === el || el.contains(h));
  };
  const firstH1 = document.querySelector('h1');
  const out = [];
  for (const el of document.querySelectorAll(SEL)) {
    if (el.parentElement && el.parentElement.closest(SEL)) continue;
    const tag = el.tagName.toLowerCase();
    let level = /^h[1-6]$/.test(tag) ? Number(tag[1]) : (parseInt(el.getAttribute('aria-level'), 10) || 2);
    level = Math.min(6, Math.max(1, level));
    const rec = {tag: tag, level: level, first_h1: el === firstH1, text: '', hidden: null, rects: [], covered: []};
    out.push(rec);
    rec.hidden = hiddenReason(el);
    if (rec.hidden) continue;
    const range = document.createRange();
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const texts = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (!n.textContent.trim()) continue;
      if (n.parentElement !== el && hiddenReason(n.parentElement)) continue;
      texts.push(n.textContent);
      range.selectNodeContents(n);
      for (const r of range.getClientRects()) {
        if (!(r.width > 0 && r.height > 0)) continue;
        rec.rects.push([r.left, r.top, r.right, r.bottom]);
        const y = (r.top + r.bottom) / 2;
        const votes = [r.left + r.width / 4, r.left + r.width / 2, r.left + 3 * r.width / 4]
          .map((x) => hits(el, x, y)).filter((v) => v !== null);
        rec.covered.push(votes.length ? votes.filter((v) => !v).length * 2 > votes.length : null);
      }
    }
    rec.text = texts.join('').replace(/\\s+/g, ' ').trim().slice(0, 300);
  }
  return out;
}
"""

# Class names of each scheme, in label-map order (ids from 1).
SCHEME_CLASSES = {
    header_config_pb2.HEADER: ["header"],
    header_config_pb2.TITLE_AND_SECTION: ["title", "section_header"],
    header_config_pb2.PER_LEVEL: [f"h{k}" for k in range(1, 7)],
}


@dataclass
class Header:
    """One header as found in the DOM; `lines` are its kept line boxes [x0, y0, x1, y1] in
    image px, empty when `dropped` says why it has no box."""
    level: int
    tag: str
    class_name: str
    text: str
    lines: list = field(default_factory=list)
    dropped: str | None = None

    @property
    def box(self) -> np.ndarray | None:
        """Pixel [x0, y0, x1, y1] union of the lines, or None."""
        if not self.lines:
            return None
        a = np.asarray(self.lines, np.float64)
        return np.array([a[:, 0].min(), a[:, 1].min(), a[:, 2].max(), a[:, 3].max()])


def class_of(rec: dict, scheme: int) -> str:
    if scheme == header_config_pb2.HEADER:
        return "header"
    if scheme == header_config_pb2.TITLE_AND_SECTION:
        return "title" if rec.get("first_h1") else "section_header"
    if scheme == header_config_pb2.PER_LEVEL:
        return f"h{int(rec['level'])}"
    raise ValueError(f"unknown class scheme {scheme!r}")


def merge_lines(rects: list) -> list:
    """Rectangles [x0, y0, x1, y1] merged into line boxes: rectangles whose vertical extents
    overlap by more than half of the shorter one are on one line."""
    lines: list[list[float]] = []
    for r in sorted(([float(v) for v in r] for r in rects), key=lambda r: (r[1], r[0])):
        for ln in lines:
            overlap = min(ln[3], r[3]) - max(ln[1], r[1])
            if overlap > 0.5 * min(ln[3] - ln[1], r[3] - r[1]):
                ln[:] = [min(ln[0], r[0]), min(ln[1], r[1]), max(ln[2], r[2]), max(ln[3], r[3])]
                break
        else:
            lines.append(list(r))
    return lines


def clip_line(line, width: float, height: float, min_visible: float = 0.5):
    """The part of a line inside [0, width] x [0, height], or None when less than
    `min_visible` of its height (or none of its width) is inside."""
    x0, y0, x1, y1 = line
    cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, width), min(y1, height)
    if cx1 <= cx0 or cy1 - cy0 < min_visible * (y1 - y0) or cy1 <= cy0:
        return None
    return [cx0, cy0, cx1, cy1]


def header_boxes(report: list[dict], width: float, height: float, scheme: int, scale: float = 1.0,
                 whole_lines_only: bool = False) -> list[Header]:
    """Headers (kept and dropped) from LABEL_JS's report for a visible area of width x height
    CSS px; line boxes are returned in image px (CSS px x `scale`). `whole_lines_only`: a line
    that does not lie wholly inside drops its header (printed pages, where a line crossing
    the page's foot moves to the next page)."""
    out = []
    for rec in report:
        h = Header(int(rec["level"]), str(rec["tag"]), class_of(rec, scheme), str(rec.get("text", "")))
        out.append(h)
        if rec.get("hidden"):
            h.dropped = str(rec["hidden"])
            continue
        rects = [r for r, cov in zip(rec["rects"], rec["covered"]) if cov is not True]
        if not rec["rects"]:
            h.dropped = "zero-size"
            continue
        if not rects:
            h.dropped = "covered"
            continue
        lines = merge_lines(rects)
        clipped = [clip_line(line, width, height) for line in lines]
        kept = [[v * scale for v in c] for c in clipped if c is not None]
        if whole_lines_only and kept and any(c != line for c, line in zip(clipped, lines)):
            kept = []
            h.dropped = "crosses the page's edge"
        h.lines = kept
        if not kept and h.dropped is None:
            h.dropped = "off-page"
    return out


def has_visible_header(headers: list[Header]) -> bool:
    """Whether the page has a header that is drawn at all (kept here, or only outside this
    crop or under something), as opposed to none, or only hidden or zero-size ones."""
    return any(h.dropped is None or not (h.dropped.startswith("hidden") or h.dropped == "zero-size")
               for h in headers)

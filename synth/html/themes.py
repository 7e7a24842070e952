"""What an image of a page looks like: the page mode (a screenshot of a browser window or a
printed page) and a CSS theme, each sampled once from an explicit np.random.Generator into a
frozen record; `theme_css` and the page-side JavaScript (`PREPARE_JS`) then apply the record
deterministically.

A theme varies what the people who write HTML vary: font families (the fonts installed
with Chromium here: DejaVu and Liberation), sizes and weights, colours, line spacing,
margins, one or two columns, numbered headings; and distractors: headers drawn like bold
paragraphs (still headers in the DOM, so still labelled) and paragraphs drawn like headers
(never labelled). It is added after the page's own styles with !important, so it wins over
the authored CSS for the properties it sets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

BODY_FONTS = ("DejaVu Sans", "DejaVu Serif", "Liberation Sans", "Liberation Serif", "Liberation Sans Narrow",
              "DejaVu Sans Condensed")
HEADING_FONTS = BODY_FONTS + ("DejaVu Sans Mono", "Liberation Mono")
# Paper sizes in CSS px (96 per inch).
PAPER = {"A4": (794, 1123), "Letter": (816, 1056), "A5": (559, 794), "Legal": (816, 1344)}
# (text, background) colour pairs: dark on light, and a few light on dark.
PALETTES = (("#111111", "#ffffff"), ("#222222", "#fdfdf8"), ("#333333", "#f4f4f4"), ("#1a1a2e", "#ffffff"),
            ("#3b3b3b", "#fffdf0"), ("#e8e8e8", "#1e1e1e"), ("#f0f0f0", "#20252b"), ("#000000", "#eef3f8"))
ACCENTS = ("inherit", "inherit", "#0b3d91", "#8b0000", "#1b5e20", "#4a148c", "#b35900", "#005f73")


@dataclass(frozen=True)
class PageParams:
    mode: str  # "screen" or "print"
    width: int  # CSS px of the viewport (screen) or the paper (print)
    height: int
    scroll: float  # screen: share of the scrollable height scrolled down, 0 = top
    paper: str  # print: the paper's name; screen: ""
    sheet: float = 0.0  # print: which printed page, as a share of the PDF's pages (0 = the first)


@dataclass(frozen=True)
class ThemeParams:
    applied: bool
    body_font: str = ""
    heading_font: str = ""
    base_px: float = 16.0
    line_height: float = 1.4
    heading_ratio: float = 1.25  # size of h(k) / size of h(k+1)
    heading_weight: int = 700
    text_colour: str = "#111111"
    background: str = "#ffffff"
    heading_colour: str = "inherit"
    margin_px: int = 24
    columns: int = 1
    uppercase_headings: bool = False
    rule_under_headings: bool = False
    centre_title: bool = False
    numbered: bool = False
    header_as_paragraph_p: float = 0.0
    paragraph_as_header_p: float = 0.0
    restyle_draws: tuple = ()  # uniform draws, used in turn by the page for each candidate element

    def to_json(self) -> dict:
        d = asdict(self)
        d["restyle_draws"] = len(self.restyle_draws)  # regenerated from the seed; the count is enough
        return d


RESTYLE_DRAWS = 64


def sample_page(rng: np.random.Generator, screen, print_cfg) -> PageParams:
    """Screen or print, and the size, from the config's Screen and Print messages."""
    printed = bool(rng.random() < print_cfg.probability)
    w = int(rng.integers(screen.min_width, screen.max_width + 1))
    h = int(rng.integers(screen.min_height, screen.max_height + 1))
    top = bool(rng.random() < screen.top_probability)
    scroll = 0.0 if top else float(rng.uniform(0.0, 1.0))
    papers = list(print_cfg.paper) or list(PAPER)
    paper = papers[int(rng.integers(len(papers)))]
    u = float(rng.random())  # drawn either way: max_pages does not shift the draws after it
    sheet = u if print_cfg.max_pages > 1 else 0.0
    if printed:
        pw, ph = PAPER[paper]
        return PageParams("print", pw, ph, 0.0, paper, round(sheet, 6))
    return PageParams("screen", w, h, round(scroll, 4), "")


def sample_theme(rng: np.random.Generator, cfg) -> ThemeParams:
    """A theme from the config's Theme message. The same draws happen whether or not the theme
    is applied, so the probability does not shift the other draws."""
    applied = bool(rng.random() < cfg.probability)
    fg, bg = PALETTES[int(rng.integers(len(PALETTES)))]
    params = dict(
        body_font=BODY_FONTS[int(rng.integers(len(BODY_FONTS)))],
        heading_font=HEADING_FONTS[int(rng.integers(len(HEADING_FONTS)))] if rng.random() < 0.5 else "",
        base_px=round(float(rng.uniform(12.0, 20.0)), 2),
        line_height=round(float(rng.uniform(1.1, 1.8)), 3),
        heading_ratio=round(float(rng.uniform(1.05, 1.35)), 3),
        heading_weight=int(rng.choice([400, 600, 700, 800])),
        text_colour=fg, background=bg,
        heading_colour=ACCENTS[int(rng.integers(len(ACCENTS)))],
        margin_px=int(rng.integers(8, 97)),
        columns=2 if rng.random() < cfg.two_column_probability else 1,
        uppercase_headings=bool(rng.random() < 0.1),
        rule_under_headings=bool(rng.random() < 0.2),
        centre_title=bool(rng.random() < 0.3),
        numbered=bool(rng.random() < cfg.numbered_probability),
        header_as_paragraph_p=float(cfg.header_as_paragraph_probability),
        paragraph_as_header_p=float(cfg.paragraph_as_header_probability),
        restyle_draws=tuple(round(float(v), 6) for v in rng.random(RESTYLE_DRAWS)),
    )
    if not applied:
        return ThemeParams(False, restyle_draws=params["restyle_draws"])
    if int(bg[1:3], 16) < 128:  # light text on a dark page: headings in the text colour
        params["heading_colour"] = "inherit"
    return ThemeParams(True, **params)


# Added on printed pages, themed or not: Chromium shrinks a page wider than the paper to fit
# it when printing, which the layout measured before printing does not show; long lines wrap
# instead. On a two-column page the body is one page tall, its columns fill in turn and what
# does not fit is clipped, as on the first printed page (measured unpaginated, a multicol body
# would balance its columns over the whole document).
PRINT_CSS = ("@page { margin: 0 !important; }\n"
             "pre, code { white-space: pre-wrap !important; }\n"
             "body, body * { overflow-wrap: anywhere !important; }\n"
             "img, table, pre, svg, video { max-width: 100% !important; }")


def print_css(t: ThemeParams, page: PageParams) -> str:
    """The extra stylesheet of a printed page ("" on screen)."""
    if page.mode != "print":
        return ""
    css = PRINT_CSS
    if t.applied and t.columns > 1:
        css += (f"\nhtml {{ overflow: hidden !important; }}\n"  # so that body's own overflow clips (no propagation)
                f"body {{ height: {page.height - 2 * t.margin_px}px !important; column-fill: auto !important; "
                "overflow: hidden !important; }")
    return css


def theme_css(t: ThemeParams) -> str:
    """The stylesheet of a theme ("" when the theme is not applied)."""
    if not t.applied:
        return ""
    imp = " !important"
    hf = f"'{t.heading_font}', " if t.heading_font else ""
    rules = [
        f"html, body {{ background: {t.background}{imp}; color: {t.text_colour}{imp}; }}",
        f"body {{ font-family: '{t.body_font}', sans-serif{imp}; font-size: {t.base_px}px{imp}; "
        f"line-height: {t.line_height}{imp}; margin: {t.margin_px}px{imp}; max-width: none{imp}; "
        + (f"column-count: {t.columns}{imp}; column-gap: {max(16, t.margin_px)}px{imp}; " if t.columns > 1 else "")
        + "}",
        f"p, li, td, th, dd, dt, blockquote {{ font-size: {t.base_px}px{imp}; line-height: {t.line_height}{imp}; }}",
        f"pre, code {{ white-space: pre-wrap{imp}; }}",
        f"body, body * {{ overflow-wrap: break-word{imp}; }}",
        "img, table, pre { max-width: 100% !important; }",
    ]
    for k in range(1, 7):
        size = min(t.base_px * t.heading_ratio ** (6 - k) * (1.0 if k > 1 else 1.1), 3.0 * t.base_px)
        rules.append(
            f"h{k} {{ font-family: {hf}'{t.body_font}', sans-serif{imp}; font-size: {size:.2f}px{imp}; "
            f"font-weight: {t.heading_weight if k < 5 else 700}{imp}; color: {t.heading_colour}{imp}; "
            f"line-height: 1.2{imp}; margin: {0.8 * size:.1f}px 0 {0.4 * size:.1f}px 0{imp}; "
            f"text-transform: {'uppercase' if t.uppercase_headings and k > 1 else 'none'}{imp}; "
            f"border-bottom: {'1px solid currentColor' if t.rule_under_headings and k <= 2 else 'none'}{imp}; "
            f"text-align: {'center' if t.centre_title and k == 1 else 'left'}{imp}; }}")
    rules.append(f".tfod-as-paragraph {{ font-size: {t.base_px}px{imp}; font-weight: 700{imp}; "
                 f"margin: {0.5 * t.base_px:.1f}px 0{imp}; border: none{imp}; text-transform: none{imp}; "
                 f"color: {t.text_colour}{imp}; text-align: left{imp}; }}")
    big = t.base_px * t.heading_ratio ** 2
    rules.append(f".tfod-as-header {{ font-family: {hf}'{t.body_font}', sans-serif{imp}; font-size: {big:.2f}px{imp}; "
                 f"font-weight: {t.heading_weight}{imp}; color: {t.heading_colour}{imp}; line-height: 1.2{imp}; }}")
    return "\n".join(rules)


# Runs in the page before labelling: adds the theme's stylesheet last, numbers the headings
# with real text (a counter's ::before content is not in the DOM, so its ink would fall
# outside the labelled text), restyles the distractors; returns the document's size and
# what it changed.
PREPARE_JS = """
(args) => {
  const SEL = args.selector;
  if (args.css) {
    const st = document.createElement('style');
    st.setAttribute('data-tfod', 'theme');
    st.textContent = args.css;
    (document.head || document.documentElement).appendChild(st);
  }
  let draw = 0;
  const next = () => args.draws[(draw++) % args.draws.length];
  const heads = Array.from(document.querySelectorAll(SEL)).filter((e) => !(e.parentElement && e.parentElement.closest(SEL)));
  let asParagraph = 0, asHeader = 0, numbered = 0;
  if (args.numbered) {
    const count = [0, 0, 0, 0, 0, 0, 0];
    for (const e of heads) {
      const tag = e.tagName.toLowerCase();
      const k = /^h[1-6]$/.test(tag) ? Number(tag[1]) : 2;
      if (k === 1) continue;
      count[k] += 1;
      for (let j = k + 1; j <= 6; j++) count[j] = 0;
      const parts = [];
      for (let j = 2; j <= k; j++) parts.push(Math.max(count[j], 1));
      const span = document.createElement('span');
      span.setAttribute('data-tfod', 'number');
      span.textContent = parts.join('.') + (k === 2 ? '. ' : ' ');
      e.insertBefore(span, e.firstChild);
      numbered += 1;
    }
  }
  if (args.css) {
    for (const e of heads) if (e.tagName.toLowerCase() !== 'h1' && next() < args.header_as_paragraph) {
      e.classList.add('tfod-as-paragraph'); asParagraph += 1; }
    for (const p of document.querySelectorAll('p')) {
      const t = (p.textContent || '').trim();
      if (t.length > 0 && t.length < 400 && !p.closest(SEL) && next() < args.paragraph_as_header) {
        p.classList.add('tfod-as-header'); asHeader += 1; }
    }
  }
  const d = document.documentElement, b = document.body;
  return {
    height: Math.max(d.scrollHeight, b ? b.scrollHeight : 0),
    width: d.scrollWidth,
    headers: heads.length, numbered: numbered, header_as_paragraph: asParagraph, paragraph_as_header: asHeader,
  };
}
"""

"""Header detection data from HTML: pages rendered by headless Chromium (Playwright), header
boxes read from the DOM, written as the same OD API shards as the logo composites.

    config   strict HeaderConfig loading (protos/header_config.proto)
    sources  the HTML inputs: folders, globs, and the embedded default built from the
             documentation of installed packages
    themes   CSS themes and page modes, sampled from an explicit np.random.Generator
    labels   the DOM side (JavaScript run in the page) and the pure geometry of header boxes
    printed  header boxes on any page of a printed PDF: the measured layout shifted by the
             page's offset (read off the PDF's text layer), checked against its text
    render   one browser per process: load, theme, label, screenshot or print, with timeouts
    camera   photographed or scanned pages: warp, blur, noise, JPEG, boxes transformed exactly
    engine   one image from (config, split, index): HeaderEngine, a synth.job source of its own
             kind (HEADERS: the config, the pages, the manifest's fields)
    job      the whole run with the local runner (synth.generate); the Beam runner takes the
             same source
"""

"""No browser is left behind: after a renderer is closed, and after pages that hang or crash the
renderer (the browser killed by the watchdog, a renderer process killed), no Chromium process
that we started is still running and the temporary user-data folders Playwright made for
them are gone; the same after a run with two worker processes (whose browsers are not our
children: they are found by a marker in their environment)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid

import psutil

from conftest import kill_renderers_after
from synth.html import config as hconfig, job, render, themes
from synth.protos import header_config_pb2 as hpb

SCREEN = themes.PageParams("screen", 640, 480, 0.0, "")
NO_THEME = themes.ThemeParams(False)
HANG_AFTER_LOAD = ("<!doctype html><body><h1>x</h1><script>"
                   "addEventListener('load', () => setTimeout(() => { while (true) {} }, 0));</script></body>")


def _chromium(procs) -> dict[int, tuple]:
    """{pid: (its --user-data-dir or None, its TMPDIR or None)} of the Chromium processes in `procs`."""
    out = {}
    for p in procs:
        try:
            if "chrom" in p.name().lower():
                arg = [a for a in p.cmdline() if a.startswith("--user-data-dir=")]
                out[p.pid] = (arg[0].split("=", 1)[1] if arg else None, p.environ().get("TMPDIR"))
        except psutil.Error:
            pass
    return out


def _folders(seen: dict) -> set:
    return {d for pair in seen.values() for d in pair if d}


def _ours() -> dict[int, str | None]:
    return _chromium(psutil.Process().children(recursive=True))


def _still_running(pids) -> list:
    """The pids that are alive and not zombies (a killed browser's helpers may wait, dead, for
    the container's init to reap them: they run nothing)."""
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append((pid, p.name(), p.status()))
        except psutil.NoSuchProcess:
            pass
    return out


def _wait_gone(pids, seconds=10.0) -> list:
    deadline = time.time() + seconds
    left = _still_running(pids)
    while left and time.time() < deadline:
        time.sleep(0.2)
        left = _still_running(pids)
    return left


def test_no_browser_process_or_profile_folder_is_left_after_hangs_crashes_and_close(tmp_path):
    fine = tmp_path / "fine.html"
    fine.write_text("<!doctype html><body><h1>Fine</h1></body>")
    hang = tmp_path / "hang.html"
    hang.write_text(HANG_AFTER_LOAD)
    seen: dict = {}


    with render.Renderer(timeout_s=1.5, javascript=True) as r:
        r.render(str(fine), SCREEN, NO_THEME, hpb.HEADER)
        seen.update(_ours())
        try:  # hangs: the watchdog kills the whole browser
            r.render(str(hang), SCREEN, NO_THEME, hpb.HEADER)
            raise AssertionError("the hanging page rendered")
        except render.PageSkipped as exc:
            assert "did not answer" in exc.reason
        r.render(str(fine), SCREEN, NO_THEME, hpb.HEADER)  # a fresh browser
        seen.update(_ours())
        killer = threading.Thread(target=kill_renderers_after, args=(0.8,))
        killer.start()
        try:  # its renderer process dies: the page is skipped, the browser stays
            r.render(str(hang), SCREEN, NO_THEME, hpb.HEADER)
            raise AssertionError("the crashing page rendered")
        except render.PageSkipped as exc:
            assert "crash" in exc.reason
        killer.join()
        seen.update(_ours())
        assert r.restarts == 1
    folders = _folders(seen)
    assert len(folders) == 4  # per browser (the killed one and its replacement): its profile and its TMPDIR
    assert len(seen) >= 4
    assert _wait_gone(seen) == []
    assert _ours() == {}
    assert [d for d in folders if os.path.exists(d)] == []


def test_a_run_with_two_workers_leaves_no_browser_and_no_temporary_folder(tmp_path, monkeypatch):
    marker = uuid.uuid4().hex
    # Short: Chromium binds a socket in a folder under TMPDIR, and a socket's path is at most 107 bytes.
    tmp = tempfile.mkdtemp(prefix="tfod-cleanup-", dir="/tmp")
    monkeypatch.setenv("TFOD_CLEANUP_TEST", marker)  # inherited by the workers, drivers and browsers
    monkeypatch.setenv("TMPDIR", tmp)  # where the workers' drivers and renderers make their folders
    site = tmp_path / "site"
    site.mkdir()
    for k in range(3):
        (site / f"p{k}.html").write_text(f"<!doctype html><body><h1>Page {k}</h1><p>text</p></body>")
    (site / "hang.html").write_text(HANG_AFTER_LOAD)
    cfg = tmp_path / "h.config"
    cfg.write_text(f'html {{ directory: "{site}" }}\nnum_images: 16\nval_fraction: 0\nnum_train_shards: 2\n'
                   "page_timeout_s: 1.5\njavascript: true\nprint { probability: 0.3 }\n")
    seen: dict = {}
    stop = threading.Event()

    def watch():  # the workers' browsers, by the marker in their environment
        while not stop.is_set():
            for p in psutil.process_iter():
                try:
                    if p.environ().get("TFOD_CLEANUP_TEST") == marker:
                        seen.update(_chromium([p]))
                except psutil.Error:
                    pass
            time.sleep(0.3)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        s = job.generate_headers(hconfig.load(str(cfg)), str(tmp_path / "out"), show_progress=False, workers=2)
    finally:
        stop.set()
        watcher.join()
        left_in_tmp = sorted(os.listdir(tmp))
        shutil.rmtree(tmp, ignore_errors=True)
    assert s.counts["train"]["images"] == 16
    assert any("hang.html" in k["path"] for k in s.skipped)  # the hanging page was met and skipped
    assert seen and all(d.startswith(tmp) for d in _folders(seen))  # the watcher saw the workers' browsers
    assert _wait_gone(seen) == []
    left = []
    for p in psutil.process_iter():
        try:
            if (p.environ().get("TFOD_CLEANUP_TEST") == marker and p.status() != psutil.STATUS_ZOMBIE
                    and p.pid != os.getpid() and "multiprocessing.resource_tracker" not in " ".join(p.cmdline())):
                left.append((p.pid, p.name(), p.cmdline()[:3]))
        except psutil.Error:
            pass
    assert left == []  # no browser, driver or worker of the run is still running (multiprocessing's
    # resource tracker, started once per process, stays: it is not the run's)
    assert left_in_tmp == []  # no profile folder, no browser temporary folder (a killed browser's included)

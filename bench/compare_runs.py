"""Compare finished runs of the real-photo benchmark (bench/transfer.py) across work folders.

    python bench/compare_runs.py \\
        --runs=fpn=bench/out/transfer-work-full-fpn/realism,grid=bench/out/transfer-work-full/realism/run-2

A recipe change (another template, --config_override, more steps) is trained in its own work folder,
so bench/transfer.py never compares it with the recipe it replaces. This does, without training or
exporting: each run named LABEL=WORK_DIR/ARM (the arm's first run) or LABEL=WORK_DIR/ARM/run-N is
read from its work folder (stages.json, the detections the benchmark kept), every run is scored on the
same test photos (the work folders must hold the same test_ground_truth.json: the same brands, photos
and boxes, or this refuses), and each pair is compared on the same draws of those photos
(realeval.paired_bootstrap, as bench/transfer.py compares its arms), for the final models and, where
every run has one, the averages of their last checkpoints (the late stage). The report says what
differs between the runs' protocols (template, its sha256, steps, override) and whether they trained
on the same composites (`shards_sha256`): only then is the difference the recipe's alone, and even
then one run per side carries training's spread, which the photos' interval does not include.

Prints a table; --output writes the figures as JSON (default bench/out/compare_runs.json).
Exit status: 0, or 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import transfer  # noqa: E402
from synth import realeval  # noqa: E402
from synth.errors import AnnotationError, ConfigError, read_json, read_json_object  # noqa: E402

FIGURES = ("map50_mean", "map_mean", "ar100_mean")
SAME_PROTOCOL_IGNORED = ("arms", "repeats", "minutes_per_arm")  # what a work folder's runs may differ in freely


def parse_runs(text: str) -> list[tuple[str, str, str, int]]:
    """'a=W/realism,b=W2/naive/run-2' -> [('a', 'W', 'realism', 1), ('b', 'W2', 'naive', 2)]."""
    runs = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        label, eq, path = item.partition("=")
        if not eq or not label.strip() or not path.strip():
            raise ConfigError(f"--runs: {item!r} is not LABEL=WORK_DIR/ARM[/run-N]")
        label, path = label.strip(), os.path.normpath(path.strip())
        repeat = 1
        last = os.path.basename(path)
        if last.startswith("run-"):
            if not (last[4:].isdigit() and int(last[4:]) > 1):
                raise ConfigError(f"--runs: {item!r}: a run is run-N with N of 2 or more (the first is the arm)")
            repeat, path = int(last[4:]), os.path.dirname(path)
        arm = os.path.basename(path)
        if arm not in transfer.ARMS:
            raise ConfigError(f"--runs: {item!r}: {arm!r} is not an arm of the benchmark ({', '.join(transfer.ARMS)})")
        runs.append((label, os.path.dirname(path) or ".", arm, repeat))
    labels = [r[0] for r in runs]
    if len(runs) < 2:
        raise ConfigError(f"--runs names {len(runs)} run; a comparison needs at least 2")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"--runs: labels must differ, got {', '.join(labels)}")
    return runs


def read_run(label: str, work: str, arm: str, repeat: int) -> dict:
    """One finished run of a work folder: its protocol, composites' digest, and kept detections."""
    stages = os.path.join(work, "stages.json")
    if not os.path.isfile(stages):
        raise ConfigError(f"--runs: {label}: {work!r} holds no stages.json: not a work folder of bench/transfer.py")
    state = read_json_object(stages, "the work folder's record of its stages")
    done, names = state.get("done", {}), transfer.run_names(arm, repeat)
    if names["detect"] not in done:
        raise ConfigError(f"--runs: {label}: {work!r} has not scored {arm} run {repeat} yet "
                          f"(no {names['detect']!r} in its stages.json); finish it with bench/transfer.py")
    final = read_json(done[names["detect"]], f"the detections of {label}")
    average = ((done.get(names["late"]) or {}).get("average") or {}).get("detections")
    return {"label": label, "work_dir": os.path.abspath(work), "arm": arm, "repeat": repeat,
            "protocol": state.get("protocol", {}), "shards_sha256": done.get(f"digest:{arm}"),
            "train_minutes": (done.get(names["train"]) or {}).get("train_minutes"),
            "final": final, "average": read_json(average, f"the averaged model's detections of {label}")
            if average else None}


def same_photos(runs: list, truths: dict) -> dict:
    """The test ground truth all the runs' work folders share; refuses where one differs."""
    first = runs[0]
    for r in runs[1:]:
        if truths[r["work_dir"]] != truths[first["work_dir"]]:
            raise ConfigError(f"--runs: {r['label']} ({r['work_dir']}) and {first['label']} ({first['work_dir']}) "
                              "were scored on different test photos (their test_ground_truth.json differ: "
                              "other brands or another real-photo folder), so they do not compare")
    return truths[first["work_dir"]]


def protocol_differences(runs: list) -> dict:
    """{key: {label: value}} for each protocol key whose value is not the same in every run."""
    keys = sorted({k for r in runs for k in r["protocol"]} - set(SAME_PROTOCOL_IGNORED))
    out = {}
    for k in keys:
        values = {r["label"]: r["protocol"].get(k) for r in runs}
        if len({json.dumps(v, sort_keys=True) for v in values.values()}) > 1:
            out[k] = values
    return out


def compare(runs: list, resamples: int = transfer.BOOTSTRAP_RESAMPLES, seed: int = transfer.BOOTSTRAP_SEED) -> dict:
    read = [read_run(*r) for r in runs]
    truths = {r["work_dir"]: read_json_object(os.path.join(r["work_dir"], "test_ground_truth.json"),
                                              "the test photos the benchmark scored") for r in read}
    gt = same_photos(read, truths)
    report = {"runs": {}, "brands": [c["name"] for c in gt["categories"]],
              "test_photos": len(gt["images"]), "boxes": len(gt["annotations"]),
              "protocol_differences": protocol_differences(read),
              "same_composites": len({r["shards_sha256"] for r in read}) == 1 and read[0]["shards_sha256"] is not None}
    for r in read:
        entry = {k: r[k] for k in ("work_dir", "arm", "repeat", "shards_sha256", "train_minutes")}
        entry["template"] = r["protocol"].get("template")
        for name in ("final", "average"):
            if r[name] is not None:
                s = realeval.evaluate(gt, r[name])
                entry[name] = {**{k: s[k] for k in FIGURES},
                               "per_brand": {b: v["map50"] for b, v in s["per_brand"].items()},
                               "recall_by_width": realeval.recall_by_width(gt, r[name])}
        report["runs"][r["label"]] = entry
    report["bootstrap"] = realeval.paired_bootstrap(gt, {r["label"]: [r["final"]] for r in read}, resamples, seed)
    if all(r["average"] is not None for r in read):
        report["bootstrap_average"] = realeval.paired_bootstrap(
            gt, {r["label"]: [r["average"]] for r in read}, resamples, seed)
    return report


def table(report: dict) -> str:
    w = max([8] + [len(k) + 1 for k in report["runs"]])
    lines = [f"{report['test_photos']} test photos, {report['boxes']} boxes; brands: {', '.join(report['brands'])}",
             f"{'run':<{w}}{'final':>8}{'average':>9}{'mAP':>8}{'AR@100':>8}  per brand mAP@.5 (final)   template"]
    for label, e in report["runs"].items():
        avg = f"{e['average']['map50_mean']:.3f}" if "average" in e else "-"
        pb = " ".join(f"{b} {v:.3f}" for b, v in e["final"]["per_brand"].items())
        lines.append(f"{label:<{w}}{e['final']['map50_mean']:>8.3f}{avg:>9}{e['final']['map_mean']:>8.3f}"
                     f"{e['final']['ar100_mean']:>8.3f}  {pb}   {e['template']}")
    first = next(iter(report["runs"].values()))
    bands = "  ".join(f"{b['width'][0]:.2f}-{b['width'][1]:.2f} ({b['boxes']})" for b in first["final"]["recall_by_width"])
    lines.append(f"real boxes found at score >= {realeval.FOUND_SCORE} (any score in the top 100), final models, "
                 f"by box width / photo width (boxes): {bands}")
    for label, e in report["runs"].items():
        lines.append(f"  {label:<{w}}{transfer._band_cells(e['final']['recall_by_width'])}")
    lines.append("the runs trained on the same composites" if report["same_composites"] else
                 "the runs trained on different composites (shards_sha256 differ): the difference is not the recipe's alone")
    for k, v in report["protocol_differences"].items():
        lines.append(f"  {k} differs: " + "; ".join(f"{lbl}: {val}" for lbl, val in v.items()))
    lines += transfer._pair_lines(report["bootstrap"], "the final models")
    if "bootstrap_average" in report:
        lines += transfer._pair_lines(report["bootstrap_average"], "the averaged models")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--runs", required=True,
                   help="LABEL=WORK_DIR/ARM[/run-N], comma-separated, at least two: finished runs of "
                        "bench/transfer.py, in the order their differences are taken")
    p.add_argument("--output", default=os.path.join(transfer.OUT, "compare_runs.json"),
                   help="Where the report goes (JSON)")
    p.add_argument("--resamples", type=int, default=transfer.BOOTSTRAP_RESAMPLES,
                   help="Draws of the test photos for the paired bootstrap")
    a = p.parse_args(argv)
    try:
        report = compare(parse_runs(a.runs), a.resamples)
    except (ConfigError, AnnotationError) as e:
        print(f"compare_runs: {e}", file=sys.stderr)
        return 2
    transfer.write_report(a.output, report)
    print(table(report))
    print(f"compare_runs: wrote {a.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Rescore finished runs of the real-photo benchmark (bench/transfer.py) with other inference
settings, without training again.

    python bench/rescore.py --work_dir=W --runs=realism,naive,naive/run-2 \\
        --config_override='model { faster_rcnn { first_stage_max_proposals: 100 second_stage_post_processing {
            batch_non_max_suppression { max_detections_per_class: 100 max_total_detections: 100 } } } }'

Settings that are not weights (how many first-stage proposals the model keeps, how many detections
it returns) can differ between training and serving. Each run named is exported again from its
final checkpoint with tools/export_model.py --config_override, run on the work folder's test photos
(the brands of its protocol) and on its arm's own val composites, and scored as the benchmark scores:
mAP@0.5, mAP@[.5:.95], AR@100, recall by box width, own-val mAP@0.5. Beside each, the run's figures
as trained, re-read from its detections, and the paired bootstrap of the two on the same draws of
photos (how far the photos alone move the difference; the model is the same, so training's spread
does not enter). The report goes to --output; detections stay in W/ARM/rescore-TAG/.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import transfer  # noqa: E402
from synth import realeval  # noqa: E402
from synth.errors import AnnotationError, ConfigError, read_json, read_json_object  # noqa: E402


FIGURES = ("map50_mean", "map_mean", "ar100_mean", "per_brand")  # as _score_checkpoint returns them


def parse_runs(text: str) -> list[tuple[str, str]]:
    """'realism,naive/run-2' -> [('realism', 'run'), ('naive', 'run-2')]: an arm's first run is `run`."""
    runs = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        arm, _, run = item.partition("/")
        if arm not in transfer.ARMS:
            raise ConfigError(f"--runs: {arm!r} is not an arm of the benchmark ({', '.join(transfer.ARMS)})")
        run = run or "run"
        if run != "run" and not (run.startswith("run-") and run[4:].isdigit() and int(run[4:]) > 1):
            raise ConfigError(f"--runs: {item!r}: a run is 'run' or 'run-N' with N of 2 or more")
        runs.append((arm, run))
    if not runs:
        raise ConfigError("--runs names no run")
    return runs


def detections_of(arm_dir: str, run: str) -> str:
    """The benchmark's detections file of one run: run -> detections.json, run-N -> detections-N.json."""
    return os.path.join(arm_dir, "detections.json" if run == "run" else f"detections-{run[4:]}.json")


def override_tag(override: str) -> str:
    return hashlib.sha256(override.encode()).hexdigest()[:10]


def rescore(work: str, real_dir: str, runs: list, override: str, resamples: int = transfer.BOOTSTRAP_RESAMPLES,
            seed: int = transfer.BOOTSTRAP_SEED) -> dict:
    stages = os.path.join(work, "stages.json")
    if not os.path.isfile(stages):
        raise ConfigError(f"--work_dir={work!r} holds no stages.json: not a work folder of bench/transfer.py")
    protocol = read_json_object(stages, "the work folder's record of its stages").get("protocol")
    if not isinstance(protocol, dict):
        raise ConfigError(f"{stages!r} records no protocol: not a work folder of bench/transfer.py")
    real = realeval.load_real(real_dir)
    gt = realeval.ground_truth(real, realeval.split_for_brands(real, protocol["brands"]))
    tag = override_tag(override)
    report = {"work_dir": os.path.abspath(work), "protocol": protocol, "config_override": override,
              "tag": tag, "runs": {}}
    for arm, run in runs:
        arm_dir = os.path.join(work, arm)
        run_dir = os.path.join(arm_dir, run)
        trained = detections_of(arm_dir, run)
        for path, what in ((os.path.join(run_dir, "pipeline.config"), "training pipeline"),
                           (trained, "detections of the run as trained")):
            if not os.path.isfile(path):
                raise ConfigError(f"run {arm}/{run}: its {what} {path!r} does not exist (has the benchmark "
                                  "finished this run?)")
        folder = os.path.join(arm_dir, f"rescore-{tag}")
        os.makedirs(folder, exist_ok=True)
        rescored = transfer._score_checkpoint(arm, run_dir, run_dir, folder, run, real, gt,
                                              os.path.join(folder, "log.txt"), config_override=override,
                                              own_val=os.path.join(arm_dir, "data"))
        path, own = rescored["detections"], rescored["self_check"]
        new = read_json(path, "the rescored detections")
        old = read_json(trained, "the detections of the run as trained")
        as_trained = realeval.evaluate(gt, old)
        figures = {"trained": {**{k: as_trained[k] for k in FIGURES},
                               "recall_by_width": realeval.recall_by_width(gt, old)},
                   "override": {**{k: rescored[k] for k in FIGURES},
                                "recall_by_width": realeval.recall_by_width(gt, new), "self_check": own}}
        boot = realeval.paired_bootstrap(gt, {"override": [new], "trained": [old]}, resamples, seed)
        report["runs"][f"{arm}/{run}"] = {**figures, "detections": path,
                                          "difference": boot["pairs"]["override - trained"]}
        d = report["runs"][f"{arm}/{run}"]
        print(f"rescore: {arm}/{run}: mAP@0.5 {d['trained']['map50_mean']:.3f} as trained, "
              f"{d['override']['map50_mean']:.3f} with the override (difference {d['difference']['difference']:+.3f}, "
              f"{d['difference']['interval'][0]:+.3f} to {d['difference']['interval'][1]:+.3f}); own val "
              f"{own['map50_mean']:.3f}", flush=True)
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work_dir", required=True, help="A work folder of bench/transfer.py with finished runs.")
    p.add_argument("--real", default=os.path.join(ROOT, "..", "shared", "data", "flickrlogos27"),
                   help="The real photos the work folder was scored on (instances.json, images/).")
    p.add_argument("--runs", required=True, help="Comma-separated runs: ARM (its first run) or ARM/run-N.")
    p.add_argument("--config_override", required=True,
                   help="Pipeline fragment merged over each run's pipeline.config at export "
                        "(tools/export_model.py --config_override).")
    p.add_argument("--output", default=os.path.join(transfer.OUT, "rescore.json"), help="The JSON report.")
    a = p.parse_args(argv)
    try:
        report = rescore(a.work_dir, a.real, parse_runs(a.runs), a.config_override)
    except (AnnotationError, ConfigError) as e:
        print(f"rescore: error: {e}", file=sys.stderr)
        return 2
    transfer.write_report(a.output, report)
    print(f"rescore: report in {a.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

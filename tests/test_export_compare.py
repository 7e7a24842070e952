"""export.compare_detections: the check a SavedModel must pass against its checkpoint."""

import numpy as np
import pytest

from synth import export
from synth.export import ExportVerificationError


def _outputs(rng, n_raw=100):
    boxes = rng.uniform(0, 1, (n_raw, 4))
    scores = rng.uniform(0, 1, (n_raw, 3))
    det_boxes = boxes[:5].copy()
    return {"num_detections": np.array([5.0]), "detection_boxes": det_boxes[None],
           "detection_scores": np.sort(scores[:5, 1])[::-1][None], "detection_classes": np.ones((1, 5)),
           "raw_detection_boxes": boxes.copy(), "raw_detection_scores": scores.copy()}


def _moved(out, rows, by):
    o = {k: np.array(v, copy=True) for k, v in out.items()}
    o["raw_detection_boxes"][list(rows)] += by
    return o


def test_identical_outputs_pass_and_report_what_was_compared():
    a = _outputs(np.random.default_rng(0))
    r = export.compare_detections(a, a, 1e-4)
    assert r["raw_proposals_compared"] == 100 and r["raw_proposals_differing"] == 0 and r["max_raw_box_diff"] == 0


def test_a_few_proposals_picked_differently_pass_but_are_counted():
    a = _outputs(np.random.default_rng(0))
    r = export.compare_detections(_moved(a, [7, 40], 0.03), a, 1e-4)
    assert r["raw_proposals_differing"] == 2 and r["max_raw_box_diff"] == pytest.approx(0.03)


def test_a_wrong_export_moving_most_proposals_fails():
    a = _outputs(np.random.default_rng(0))
    with pytest.raises(ExportVerificationError, match=r"100 of 100 proposals"):
        export.compare_detections(_moved(a, range(100), 0.01), a, 1e-4)
    with pytest.raises(ExportVerificationError, match=r"6 of 100 proposals"):  # just over 5 %
        export.compare_detections(_moved(a, range(6), 0.01), a, 1e-4)

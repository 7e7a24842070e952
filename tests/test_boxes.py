import numpy as np
import pytest

from synth import boxes


def test_tight_box_uses_pixel_edges_in_od_api_order():
    m = np.zeros((100, 200), bool)
    m[10:20, 50:150] = True
    np.testing.assert_allclose(boxes.tight_box(m), [0.10, 0.25, 0.20, 0.75])
    assert boxes.tight_box(np.zeros((5, 5), bool)) is None


def test_iou():
    a = np.array([0, 0, 0.5, 0.5])
    assert boxes.iou(a, a) == pytest.approx(1.0)
    assert boxes.iou(a, np.array([0.5, 0.5, 1, 1])) == 0.0
    assert boxes.iou(a, np.array([0, 0, 0.5, 0.25])) == pytest.approx(0.5)


def test_validate_normalised_names_the_box():
    boxes.validate_normalised(np.array([0.1, 0.1, 0.2, 0.2]), "ok")
    with pytest.raises(ValueError, match="record 7"):
        boxes.validate_normalised(np.array([0.3, 0.1, 0.2, 0.2]), "record 7")

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


def test_to_coco_xywh_is_top_left_and_size_in_pixels():
    # height 100, width 200: x = 0.2 * 200, y = 0.1 * 100, w = 0.4 * 200, h = 0.4 * 100
    np.testing.assert_allclose(boxes.to_coco_xywh([0.1, 0.2, 0.5, 0.6], 100, 200), [40, 10, 80, 40])
    mask = np.zeros((100, 200), bool)
    mask[5:15, 7:37] = True  # rows 5..14, columns 7..36: 30 px wide, 10 px high
    np.testing.assert_allclose(boxes.to_coco_xywh(boxes.tight_box(mask), 100, 200), [7, 5, 30, 10])
    with pytest.raises(ValueError, match=r"not 4 numbers"):
        boxes.to_coco_xywh([0.1, 0.2, 0.5], 100, 200)
    with pytest.raises(ValueError, match="0x200"):
        boxes.to_coco_xywh([0.1, 0.2, 0.5, 0.6], 0, 200)

import numpy as np
import pytest

from synth import boxes


def test_tight_box_uses_pixel_edges_in_od_api_order():
    m = np.zeros((100, 200), bool)
    m[10:20, 50:150] = True
    np.testing.assert_allclose(boxes.tight_box(m), [0.10, 0.25, 0.20, 0.75])
    assert boxes.tight_box(np.zeros((5, 5), bool)) is None


def test_pixel_rect_is_the_slice_of_the_true_pixels_and_tight_box_its_normalised_box():
    m = np.zeros((40, 60), bool)
    m[3, 7] = m[12, 20] = True  # rows 3..12, columns 7..20
    r = boxes.tight_rect(m)
    assert r == boxes.PixelRect(3, 7, 13, 21) and (r.y1, r.x1) == (13, 21)
    assert m[r.y0:r.y1, r.x0:r.x1].sum() == m.sum()  # end exclusive: the slice holds every True pixel
    np.testing.assert_array_equal(boxes.tight_box(m), boxes.from_pixels(3, 7, 13, 21, 40, 60))
    assert boxes.tight_rect(np.zeros((4, 4), bool)) is None
    with pytest.raises(ValueError, match=r"2-D mask.*\(4, 4, 3\)"):
        boxes.tight_rect(np.zeros((4, 4, 3), bool))


def test_pixel_rect_union_and_overlap():
    a, b = boxes.PixelRect(0, 0, 10, 10), boxes.PixelRect(5, 8, 20, 30)
    assert a.union(b) == (0, 0, 20, 30) and a.union(None) == a
    assert a.overlaps(b) and b.overlaps(a)
    assert not a.overlaps(boxes.PixelRect(10, 0, 20, 10))  # sharing an edge is no shared pixel
    assert not a.overlaps(boxes.PixelRect(0, 10, 10, 20)) and not a.overlaps(None)
    assert boxes.PixelRect.of((1, 2, 3, 4)) == boxes.PixelRect(1, 2, 3, 4) and boxes.PixelRect.of(None) is None


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


def test_crowds_refuses_a_small_box_inside_a_large_one_whatever_its_iou():
    large, small = np.array([0.1, 0.1, 0.9, 0.9]), np.array([0.2, 0.2, 0.3, 0.3])
    assert boxes.iou(large, small) < 0.05 and boxes.covered_share(large, small) == pytest.approx(1.0)
    assert boxes.crowds(large, small, 0.05) and boxes.crowds(small, large, 0.05)
    partly_in = np.array([0.86, 0.2, 0.96, 0.3])  # 40 % of it inside `large`
    assert boxes.covered_share(large, partly_in) == pytest.approx(0.4)
    assert not boxes.crowds(large, partly_in, 0.05)  # up to half inside is allowed
    mostly_in = np.array([0.84, 0.2, 0.94, 0.3])  # 60 % inside
    assert boxes.crowds(large, mostly_in, 0.05)
    assert not boxes.crowds(large, small, 1.0)  # max_overlap_iou 1: anything goes
    apart = np.array([0.0, 0.0, 0.05, 0.05])
    assert boxes.covered_share(large, apart) == 0.0 and not boxes.crowds(large, apart, 0.0)

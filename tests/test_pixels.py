"""synth.pixels: the fast helpers give numpy's results bit for bit (generation's bytes rest on it)."""

import numpy as np
import pytest

from synth.pixels import channel_sum, clip_to


@pytest.mark.parametrize("channels", range(1, 10))
def test_channel_sum_has_the_bits_of_numpy_sum(channels):
    rng = np.random.default_rng(channels)
    for scale in (1e-3, 1.0, 37.0, 1e4):
        q = (rng.standard_normal((41, 67, channels)) * scale).astype(np.float32)
        got = channel_sum(q)
        assert got.shape == (41, 67) and got.dtype == np.float32
        assert np.array_equal(got.view(np.uint32), q.sum(axis=2).view(np.uint32))


@pytest.mark.parametrize("shape", [(23, 31), (23, 31, 1), (23, 31, 3), (23, 31, 4)])
@pytest.mark.parametrize("hi", [1.0, 255.0])
def test_clip_to_gives_np_clip_new_and_in_place(shape, hi):
    rng = np.random.default_rng(len(shape) + int(hi))
    a = (rng.uniform(-0.5, 1.5, shape) * hi).astype(np.float32)
    a.flat[:5] = [0.0, hi, -hi, 2 * hi, hi / 2]  # on the bounds and beyond them
    want = np.clip(a, 0.0, hi)
    got = clip_to(a, hi)
    assert got is not a and got.dtype == np.float32 and np.array_equal(got, want)
    assert not np.array_equal(a, want)  # the input is left as it was
    b = a.copy()
    assert clip_to(b, hi, out=b) is b and np.array_equal(b, want)


def test_clip_to_works_in_place_on_a_crop_and_leaves_the_rest():
    rng = np.random.default_rng(3)
    big = rng.uniform(-100, 400, (50, 60, 3)).astype(np.float32)
    before = big.copy()
    view = big[10:30, 5:45]  # rows strided, pixels packed: OpenCV writes it in place
    assert clip_to(view, 255.0, out=view) is view
    assert np.array_equal(big[10:30, 5:45], np.clip(before[10:30, 5:45], 0, 255))
    outside = np.ones(big.shape[:2], bool)
    outside[10:30, 5:45] = False
    assert np.array_equal(big[outside], before[outside])


def test_clip_to_falls_back_to_numpy_where_opencv_does_not_apply():
    rng = np.random.default_rng(4)
    for a in (rng.uniform(-2, 300, (9, 11)),  # float64
              rng.uniform(-2, 300, (9, 11, 6)).astype(np.float32),  # 6 channels
              rng.uniform(-2, 300, (9, 11, 3)).astype(np.float32)[:, ::2],  # pixels not packed
              rng.uniform(-2, 300, 17).astype(np.float32)):  # 1-D
        got = clip_to(a, 255.0)
        assert got.dtype == a.dtype and np.array_equal(got, np.clip(a, 0.0, 255.0))


def test_clip_to_refuses_an_out_that_is_not_its_input():
    a = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="out must be None or the input"):
        clip_to(a, 1.0, out=np.zeros((4, 4), np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channel_sum_of_points_rows_has_the_bits_of_numpy_sum(dtype):
    rng = np.random.default_rng(11)
    for c in (2, 3, 4):
        q = (rng.standard_normal((5000, c)) * 91.7).astype(dtype)
        assert np.array_equal(channel_sum(q), q.sum(axis=1))

"""bench/keyframes.py measures what it says, on pictures where the answer is known (no ../shared needed)."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import keyframes  # noqa: E402
from measures import psnr, quantize  # noqa: E402
from nn.inbetween.task import Blend  # noqa: E402

SIZE, SQUARE, SPEED, GAP, SUBSTEPS = (96, 160), 9, 6.0, 8, 4  # (H, W); a 19 px square moving 6 px per frame


def square_at(x: float, y: float = 48.0) -> np.ndarray:
    """(H, W, 3) a white square centred at (x, y) with a red corner, over black."""
    image = np.zeros((*SIZE, 3))
    x0, y0 = int(round(x)) - SQUARE, int(round(y)) - SQUARE
    image[y0:y0 + 2 * SQUARE + 1, x0:x0 + 2 * SQUARE + 1] = 255.0
    image[y0:y0 + 5, x0:x0 + 5] = (255.0, 0.0, 0.0)
    return image


def track(frames: int) -> dict:
    """The square's centre, x = 20 + SPEED * f, sampled SUBSTEPS times per frame."""
    return {"radius": 14, "path": [[20 + SPEED * s / SUBSTEPS, 48.0] for s in range(frames * SUBSTEPS + 1)]}


@pytest.mark.parametrize("late", [0.0, 1.0, -2.0, 3.5])
def test_timing_error_of_a_square_placed_late_or_early(late):
    """An inbetween drawn where the square is `late` frames later than the truth is late/GAP of the gap off."""
    time = 3  # frames after the first key at 0
    truth, frame = square_at(20 + SPEED * time), square_at(20 + SPEED * (time + late))
    error = keyframes.timing_error(frame, truth, [track(GAP)], SUBSTEPS, time, (0, GAP))
    assert error == pytest.approx(abs(late) / GAP, abs=1 / (SUBSTEPS * GAP))


def test_timing_error_ignores_tracks_that_do_not_move_and_frames_it_cannot_see():
    still = {"radius": 14, "path": [[80.0, 48.0]] * (GAP * SUBSTEPS + 1)}
    assert keyframes.timing_error(square_at(80), square_at(80), [still], SUBSTEPS, 3, (0, GAP)) is None
    outside = {"radius": 14, "path": [[5.0 + s, 48.0] for s in range(GAP * SUBSTEPS + 1)]}  # window off the frame
    assert keyframes.timing_error(square_at(80), square_at(80), [outside], SUBSTEPS, 0, (0, GAP)) is None


def test_timing_error_of_a_cross_fade_is_large():
    """Half of each key and no square at the true place: the search finds the nearer key, 3/8 of the gap away."""
    keys = square_at(20), square_at(20 + SPEED * GAP)
    error = keyframes.timing_error((keys[0] + keys[1]) / 2, square_at(20 + SPEED * 3), [track(GAP)], SUBSTEPS, 3,
                                   (0, GAP))
    assert error == pytest.approx(3 / 8, abs=1 / (SUBSTEPS * GAP))


def test_psnr_and_alpha_error_of_known_differences():
    image = np.random.default_rng(0).random((32, 48, 3))
    assert psnr(quantize(image), quantize(image)) == float("inf")
    brighter = quantize(image) + 1.0  # one 8-bit level everywhere: MSE 1
    assert psnr(brighter, quantize(image)) == pytest.approx(10 * np.log10(255.0**2), abs=1e-9)
    truth = torch.zeros(1, 4, 8, 8)
    frame = truth.clone()
    frame[:, 3, :4] = 0.5  # half the pixels half opaque
    assert keyframes.alpha_error(frame, truth) == pytest.approx(0.25 * 255)


def test_rgba_frames_are_scored_premultiplied():
    frame = torch.ones(1, 4, 2, 2)
    frame[:, 3] = torch.tensor([[0.0, 1.0], [0.5, 1.0]])
    assert torch.equal(keyframes.display(frame)[0, 0], torch.tensor([[0.0, 1.0], [0.5, 1.0]]))
    assert keyframes.display(frame[:, :3]).shape == (1, 3, 2, 2)


class EveryKeyModel:
    """A method that times all its gaps from every key: here it returns the mean of all keys, whatever t."""

    def __init__(self):
        self.seen = []

    def inbetween(self, keys, times, is_float):
        self.seen.append((len(keys), times))
        mean = sum(keys) / len(keys)
        return [[mean for _ in ts] for ts in times]


def test_models_with_inbetween_get_every_key_others_are_called_per_t():
    keys = [torch.full((1, 3, 4, 4), float(v)) for v in (0.0, 1.0, 3.0)]
    times = [[0.25, 0.5, 0.75]] * 2
    per_t = keyframes.inbetweens(Blend(), keys, times)
    assert [[float(f.mean()) for f in gap] for gap in per_t] == [[0.25, 0.5, 0.75], [1.5, 2.0, 2.5]]
    model = EveryKeyModel()
    together = keyframes.inbetweens(model, keys, times)
    assert model.seen == [(3, times)] and float(together[1][2].mean()) == pytest.approx(4 / 3)


def test_windows_keep_every_kth_frame_and_the_limit():
    clip = keyframes.CLIPS["objects"]
    assert keyframes.windows(clip, 0)[16] == [0, 16, 32, 48]
    assert keyframes.windows(clip, 0)[6] == list(range(0, 49, 6))
    assert keyframes.windows(clip, 1) == {6: [0, 6], 8: [0, 8], 12: [0, 12], 16: [0, 16]}


def test_separable_ssim_equals_the_11x11_window():
    import torch.nn.functional as F
    from measures import ssim

    rng = np.random.default_rng(1)
    a = np.round(rng.random((40, 56, 3)) * 255)
    b = np.clip(a + np.round(rng.normal(0, 15, a.shape)), 0, 255)
    x, y = (torch.from_numpy(v).permute(2, 0, 1)[:, None] for v in (a, b))
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5**2))
    blur = lambda t: F.conv2d(t, (g[:, None] * g[None, :] / g.sum() ** 2)[None, None])  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    direct = float((((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())
    assert abs(ssim(a, b) - direct) < 1e-12


def test_max_side_scales_frames_and_tracks_together():
    frame = torch.zeros(1, 4, 540, 960)
    assert keyframes.side_scale(frame, 480) == 0.5 and keyframes.side_scale(frame, 0) == 1.0
    assert keyframes.side_scale(torch.zeros(1, 3, 960, 540), 480) == 0.5  # portrait: the height is the longer side
    tracks = {"substeps": 8, "tracks": [{"name": "ball", "radius": 70, "path": [[100.0, 50.0], [110.0, 54.0]]}]}
    half = keyframes.scaled_tracks(tracks, 0.5)["tracks"][0]
    assert half["radius"] == 35 and half["path"] == [[50.0, 25.0], [55.0, 27.0]]
    assert tracks["tracks"][0]["radius"] == 70  # the loaded tracks are left as they were


def test_spacing_error_scores_progress_along_the_chord_on_a_curved_path():
    """On a path that bows 12 px off its chord, a square drawn evenly spaced on the chord has no spacing error
    (the issue's 't times the gap's motion') though the truth is off the chord; a hold scores t, a pop 1 - t."""
    bow = lambda s: (20 + 90 * s, 60 - 48 * s * (1 - s))  # noqa: E731  (x, y) at fraction s of the gap
    path = {"radius": 14, "path": [list(bow(step / (GAP * SUBSTEPS))) for step in range(GAP * SUBSTEPS + 1)]}
    time = 3
    t = time / GAP
    truth = square_at(*bow(t))
    chord = np.array(bow(0.0)) + t * (np.array(bow(1.0)) - np.array(bow(0.0)))
    for drawn, expected in ((square_at(*chord), 0.0), (square_at(*bow(0.0)), t), (square_at(*bow(1.0)), 1 - t)):
        error = keyframes.spacing_error(drawn, truth, [path], SUBSTEPS, time, (0, GAP))
        assert error == pytest.approx(expected, abs=1.5 / 90), (expected, error)
    late = keyframes.spacing_error(square_at(*(chord + [9.0, 0.0])), truth, [path], SUBSTEPS, time, (0, GAP))
    assert late == pytest.approx(9 / 90, abs=1.5 / 90)


def test_spacing_error_skips_paths_that_come_back_and_ones_too_short():
    swing = {"radius": 14, "path": [[40 + 60 * np.sin(np.pi * s / (GAP * SUBSTEPS)), 48.0]
                                    for s in range(GAP * SUBSTEPS + 1)]}  # out 60 px and back: chord 0
    still = {"radius": 14, "path": [[80.0, 48.0]] * (GAP * SUBSTEPS + 1)}
    for track in (swing, still):
        assert keyframes.spacing_error(square_at(80), square_at(80), [track], SUBSTEPS, 3, (0, GAP)) is None

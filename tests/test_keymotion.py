"""Key Motion (nn/inbetween/keymotion.py, nn/motion/trajectory.py): keys far apart, real RIFE v4.25 flow.

Shots are small and generated: a textured square (opaque, on a transparent or textured
background) moving between keys, so the true position of every inbetween is known.
"""
import dataclasses
import os

import numpy as np
import pytest
import torch

from conftest import FRAMEWEAVER, WEIGHTS_DIR, ensure_weights
from nn.imageio import ImageFormat, read_image, write_image
from nn.inbetween.__main__ import main as cli_main
from nn.motion.trajectory import hermite, key_velocity

H, W, SIDE = 96, 160, 24


def texture(height, width, seed):
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    noise = rng.random((height // 4 + 1, width // 4 + 1, 3)).repeat(4, 0).repeat(4, 1)[:height, :width]
    return (0.35 + 0.25 * np.sin(x[..., None] * 0.45 + y[..., None] * 0.3 + np.array([0, 1, 2])) + 0.3 * noise
            ).astype(np.float32)


def shot(x, y, background=None, height=H, width=W, side=SIDE):
    """(1, 4, H, W) RGBA: a textured square with its top-left corner at (x, y); transparent around it
    unless ``background`` (an RGB texture) is given."""
    image = np.zeros((height, width, 4), np.float32)
    if background is not None:
        image[..., :3], image[..., 3] = background, 1.0
    x0, y0 = int(round(x)), int(round(y))
    image[y0:y0 + side, x0:x0 + side, :3] = texture(side, side, 7)
    image[y0:y0 + side, x0:x0 + side, 3] = 1.0
    return torch.from_numpy(image).permute(2, 0, 1)[None]


def centre(frame):
    """x, y of the alpha-weighted centroid of a (1, 4, H, W) frame."""
    alpha = frame[0, 3].double()
    ys, xs = torch.meshgrid(torch.arange(alpha.shape[0]), torch.arange(alpha.shape[1]), indexing="ij")
    return np.array([(alpha * xs).sum() / alpha.sum(), (alpha * ys).sum() / alpha.sum()])


def partly_transparent(frame):
    alpha = frame[0, 3]
    return int(((alpha > 0.1) & (alpha < 0.9)).sum())


def test_key_velocity_is_the_derivative_of_the_parabola_through_three_keys():
    # Positions p(-3) = 5, p(0) = 0, p(5) = 12 of p(s) = a s^2 + b s: a = 13 / 120... solve exactly.
    a, b = np.linalg.solve([[9, -3], [25, 5]], [5, 12])
    flow_next, flow_previous = torch.full((1, 2, 1, 1), 12.0), torch.full((1, 2, 1, 1), 5.0)
    velocity = key_velocity(flow_next, flow_previous, frames_next=5, frames_previous=3)
    assert torch.allclose(velocity, torch.tensor(b, dtype=torch.float32))  # p'(0) = b
    # The Hermite path is the straight line when both tangents are the chord, and meets its ends.
    end = torch.tensor([[[[10.0]], [[-4.0]]]])
    for t in (0.0, 0.3, 1.0):
        assert torch.allclose(hermite(end, end, end, t), t * end)
    curved = hermite(end, torch.zeros_like(end), 2 * end, 0.5)
    assert not torch.allclose(curved, 0.5 * end) and torch.allclose(hermite(end, 0 * end, 2 * end, 1.0), end)


def project_model(name: str):
    """``name`` loaded on the CPU from the project's weights/ folder, offline."""
    from nn.inbetween.task import load_model
    from nn.worker import TaskContext

    ensure_weights()
    params = {"model": name, "hub": {"cache_dir": str(WEIGHTS_DIR / "no-cache"), "local_dir": str(WEIGHTS_DIR),
                                     "online": False}}
    return load_model(params, TaskContext(torch.device("cpu"), False))


@pytest.fixture(scope="module")
def keymotion():
    return project_model("keymotion")


@pytest.fixture(scope="module")
def rife():
    return project_model("rife-v4.25")


def test_inbetweens_are_evenly_timed_and_without_ghosts(keymotion, one_thread):
    start, end = np.array([20.0, 30.0]), np.array([100.0, 50.0])  # 80 px over an 8-frame gap
    keys = [shot(*start), shot(*end)]
    times = [j / 8 for j in range(1, 8)]
    frames = keymotion.inbetween(keys, [times], False)[0]
    key_edge = partly_transparent(keys[0])  # 0: the keys' squares sit on whole pixels
    for t, frame in zip(times, frames):
        where = centre(frame) - SIDE / 2 + 0.5
        expected = start + t * (end - start)
        assert np.abs(where - expected).max() < 0.05 * np.linalg.norm(end - start), (t, where, expected)
        # No ghost: the square stays opaque and the background clear; only its outline may be partial,
        # a quarter of what a cross-fade leaves (both squares half transparent: 2 * SIDE^2 pixels).
        fade = partly_transparent(keys[0] * (1 - t) + keys[1] * t)
        assert partly_transparent(frame) <= key_edge + fade / 4, (t, partly_transparent(frame), fade)
        # The square's alpha keeps its mass (splats widen it by up to a pixel each side: 26^2 / 24^2 = 1.17).
        assert frame[0, 3].sum() == pytest.approx(SIDE * SIDE, rel=0.25)


def test_the_network_at_t_runs_only_where_the_keys_disagree(keymotion, one_thread):
    """Where the motion explains both keys, the splats agree and RIFE at t is never run; where the colour
    changes as well, the splats disagree and the inbetween there is RIFE's at t, not their blend."""
    calls = []
    per_t = keymotion.per_t

    def counted(*args):
        calls.append(args[2])
        return per_t(*args)

    keymotion.per_t = counted
    try:
        keymotion.inbetween([shot(20, 30), shot(100, 50)], [[0.25, 0.5, 0.75]], False)
        assert calls == []
        background = texture(H, W, 3)
        keys = [shot(20, 36, background)[:, :3], shot(50, 36, background)[:, :3]]
        keys[1][..., 36:60, 50:74] *= 0.6  # the square 30 px on, and in shadow: its splats do not match
        sequence = keymotion.sequence(keys, [[0.5]], False)
        made = sequence.frame(0, 1, 0.5)
        assert calls == [0.5]
    finally:
        keymotion.per_t = per_t
    at_t = per_t(keys[0], keys[1], 0.5, False)
    motion = sequence.motion(0, 1)
    splats_only = keymotion.frame(keys[0], keys[1], dataclasses.replace(motion, guided=True), 0.5,
                                  (motion.forward, motion.forward), (-motion.backward, -motion.backward), False)
    square = np.s_[..., 38:58, 37:57]  # inside the square at t = 0.5 (x 35..58)
    assert (made - at_t)[square].abs().mean() < 0.015
    assert (splats_only - at_t)[square].abs().mean() > 0.03  # so the test tells the two apart


def test_the_network_at_t_estimates_its_motion_on_a_smaller_copy(keymotion, one_thread):
    """RIFE at t only hedges the splats, so its motion comes from a copy of at most AT_T_ESTIMATE_PIXELS
    (a third of its cost at 720p); its frame, and the gap's own motion, stay full size."""
    from nn.inbetween.keymotion import AT_T_ESTIMATE_PIXELS
    from nn.motion.rife import MAX_ESTIMATE_PIXELS

    shapes = []
    hook = keymotion.per_t.interpolator.net.register_forward_pre_hook(lambda _net, args: shapes.append(args[0].shape))
    try:
        key = torch.rand(1, 3, 540, 960)
        frame = keymotion.per_t(key, key.roll(8, -1), 0.5, False)
    finally:
        hook.remove()
    assert frame.shape == key.shape
    assert AT_T_ESTIMATE_PIXELS == 640 * 360
    assert shapes == [(1, 3, 384, 640)]  # 640x360, padded to the network's multiple of 128 (full size: 640x1024)
    assert keymotion.interpolator.max_estimate_pixels == MAX_ESTIMATE_PIXELS


def test_paths_are_smooth_through_a_key(keymotion, one_thread):
    """Three keys on a curve: the velocity just before the middle key matches the one just after it."""
    positions = [np.array([16.0, 60.0]), np.array([66.0, 20.0]), np.array([116.0, 60.0])]
    keys = [shot(*p) for p in positions]
    times = [[j / 6 for j in range(1, 6)]] * 2
    frames = keymotion.inbetween(keys, times, False)
    key, into, out_of = centre(keys[1]), [centre(f) for f in frames[0][-2:]], [centre(f) for f in frames[1][:2]]
    # Velocity at the key (px per frame) from each side, by second-order one-sided differences.
    before = (3 * key - 4 * into[1] + into[0]) / 2
    after = (-3 * key + 4 * out_of[0] - out_of[1]) / 2
    # Straight paths would turn at the key: the vertical velocity would jump from -40/6 to +40/6.
    assert np.linalg.norm(after - before) < 0.15 * 2 * 40 / 6, (before, after)
    assert before[0] > 5 and after[0] > 5  # still moving right through the key
    # The keys themselves are still hit: the first step out of key 0 heads for key 1.
    assert centre(frames[0][0])[0] > centre(keys[0])[0]


def test_large_displacement_is_found(keymotion, rife, one_thread):
    """A square jumps 100 px over a textured background: the middle frame has it halfway, where RIFE at t fails."""
    background = texture(H, 2 * W, 3)
    keys = [shot(20, 36, background, width=2 * W), shot(120, 36, background, width=2 * W)]
    truth = shot(70, 36, background, width=2 * W)
    ours = keymotion.inbetween(keys, [[0.5]], False)[0][0]
    theirs = rife(keys[0], keys[1], 0.5, False)
    square = np.s_[:, :3, 36:60, 70:94]  # where the square is at t = 0.5
    error = lambda frame: (frame - truth)[square].abs().mean().item()  # noqa: E731
    assert error(ours) < 0.1 < error(theirs), (error(ours), error(theirs))


def test_guides_move_what_the_flow_cannot_match(keymotion, one_thread):
    """The square changes colour between the keys, so no flow can match it; two guide points say where it went."""
    keys = [shot(20, 36), shot(110, 36)]
    keys[1][:, :3] = 1.0 - keys[1][:, :3]  # the same shape, another colour: brightness constancy fails
    guides = {0: [[20, 36, 110, 36], [43, 59, 133, 59]]}
    plain = keymotion.inbetween(keys, [[0.5]], False)[0][0]
    guided = keymotion.inbetween(keys, [[0.5]], False, guides=guides)[0][0]
    assert np.abs(centre(guided) - (65 + SIDE / 2 - 0.5, 36 + SIDE / 2 - 0.5)).max() < 3.0, centre(guided)
    assert partly_transparent(guided) < partly_transparent(plain)  # one square, not two faded ones


def test_cli_writes_every_gap_of_several_keys(tmp_path, one_thread):
    paths = []
    for index, x in enumerate((16, 56, 96)):
        path = str(tmp_path / f"key{index}.png")
        write_image(path, shot(x, 36)[0].permute(1, 2, 0).numpy(), ImageFormat(".png", "uint8", 4))
        paths.append(path)
    out = tmp_path / "out"
    args = paths + ["--count", "3", "--model", "keymotion", "--out", str(out), "--offline",
                    "--weights-dir", str(WEIGHTS_DIR), "--cache-dir", str(tmp_path / "cache")]
    assert cli_main(args) == 0
    assert sorted(os.listdir(out)) == [f"key{k}_t{t}.png" for k in (0, 1) for t in ("0.250", "0.500", "0.750")]
    frame, fmt = read_image(str(out / "key1_t0.500.png"))
    assert fmt == ImageFormat(".png", "uint8", 4)
    assert abs(centre(torch.from_numpy(frame).permute(2, 0, 1)[None])[0] - (76 + SIDE / 2 - 0.5)) < 2.0
    with pytest.raises(SystemExit, match="--times works with two keyframes"):
        cli_main(paths + ["--times", "0.5", "--out", str(tmp_path / "other")])
    assert not (tmp_path / "other").exists()


class Recorder:
    """A worker context that keeps progress messages (the real TaskContext, on the CPU)."""

    def __new__(cls):
        from nn.worker import TaskContext

        return TaskContext(torch.device("cpu"), False)


def run_task(tmp_path, keys, frames, **extra):
    from nn.inbetween import task

    paths = []
    for index, key in enumerate(keys):
        path = str(tmp_path / f"key{index}.png")
        write_image(path, key[0].permute(1, 2, 0).numpy(), ImageFormat(".png", "uint16", 4))
        paths.append(path)
    out = tmp_path / "out"
    out.mkdir()
    params = {"keys": paths, "frames": frames, "model": "keymotion", "output_dir": str(out),
              "hub": {"cache_dir": str(tmp_path / "cache"), "local_dir": str(WEIGHTS_DIR), "online": False},
              **extra}
    outputs, info = task.run(params, Recorder())
    return [torch.from_numpy(read_image(p)[0]).permute(2, 0, 1)[None] for p in outputs], info


def test_task_moves_every_gap_through_its_keys_and_honours_guides(tmp_path, one_thread):
    """The worker task with Key Motion: a plan over three keys (gaps of 3 and 1 frames), guides sent as JSON gives them."""
    keys = [shot(16, 36), shot(56, 36), shot(76, 36)]
    frames = [[0, 0, 0.0], [0, 1, 0.25], [0, 1, 0.5], [0, 1, 0.75], [1, 1, 0.0], [1, 2, 0.5], [2, 2, 0.0]]
    guides = {"1": [[56, 36, 76, 36], [79, 59, 99, 59]]}  # JSON: gap numbers are strings
    images, info = run_task(tmp_path, keys, frames, guides=guides)
    assert len(images) == 7 and info["all_identical"] is False and info["cuts"] == []
    xs = [centre(image)[0] - SIDE / 2 + 0.5 for image in images]
    # Keys stay exact; the first gap (40 px over 4 frames) eases into the second (20 px over 2 frames).
    assert torch.equal(images[0], read_as_saved(keys[0], tmp_path)) and abs(xs[4] - 56) < 0.5
    assert xs[0] < xs[1] < xs[2] < xs[3] < xs[4] < xs[5] < xs[6]
    assert abs(xs[2] - 36) < 2.0 and abs(xs[5] - 66) < 1.0, xs


def test_a_retimed_frame_depends_on_its_source_time_only(tmp_path, one_thread):
    """At 2.4x (25 to 60 fps) a gap gets 2 or 3 outputs, yet every source frame is one time step: the
    frame at source time 2.5 is the same as in a 2x retime, where every gap gets 1 (Skip Repeated Frames off)."""
    keys = [shot(8 + 16 * i + 2 * i * i, 36) for i in range(5)]  # accelerating, so the paths curve through keys
    plans = {ratio: FRAMEWEAVER.operators.inbetween.plan_retime(1, len(keys), ratio).frames for ratio in (2.4, 2.0)}
    assert [sum(a == gap and t > 0 for a, _, t in plans[2.4]) for gap in range(4)] == [2, 2, 3, 2]
    at_time_2_5 = {}
    for ratio, plan in plans.items():
        folder = tmp_path / f"x{ratio}"
        folder.mkdir()
        images, _ = run_task(folder, keys, plan, clip=True, dedupe=False)  # as Retime Clip sends it
        index = round(2.5 * ratio)  # output n shows source time n / ratio
        assert plan[index] == (2, 3, pytest.approx(0.5))
        at_time_2_5[ratio] = images[index]
    assert (at_time_2_5[2.4] - at_time_2_5[2.0]).abs().max() < 1e-3


def read_as_saved(key, tmp_path):
    path = str(tmp_path / "roundtrip.png")
    write_image(path, key[0].permute(1, 2, 0).numpy(), ImageFormat(".png", "uint16", 4))
    return torch.from_numpy(read_image(path)[0]).permute(2, 0, 1)[None]


def test_identical_keys_give_holds_and_say_so(tmp_path):
    keys = [shot(30, 30)] * 3
    frames = [[0, 0, 0.0], [0, 1, 0.5], [1, 1, 0.0], [1, 2, 0.5], [2, 2, 0.0]]
    images, info = run_task(tmp_path, keys, frames)
    assert info["all_identical"] is True
    assert all(torch.equal(image, images[0]) for image in images)


def test_the_global_search_finds_each_object_that_jumps_and_nothing_in_a_still_shot():
    """Two squares jump 150 px in opposite directions (far beyond the network's reach): each is one
    motion mode whose box holds the square, found from both keys; a shot that stands still has none."""
    from nn.motion.search import motion_modes, mutual_modes

    def frame(left_x, right_x):
        both = shot(left_x, 20, width=480, height=270, side=40) + shot(right_x, 180, width=480, height=270, side=40)
        return both[:, :3]

    modes = mutual_modes(frame(40, 400), frame(190, 250))
    assert len(modes) >= 2
    for shift, corner in (((150, 0), (40, 20)), ((-150, 0), (400, 180))):
        found = [m for m in modes if abs(m.shift[0] - shift[0]) <= 6 and abs(m.shift[1] - shift[1]) <= 6]
        assert found, (shift, modes)
        top, bottom, left, right = found[0].box
        assert top <= corner[1] and bottom >= corner[1] + 40 and left <= corner[0] and right >= corner[0] + 40
    assert motion_modes(frame(40, 400), frame(40, 400)) == []


def test_only_modes_found_from_both_keys_count():
    """Where a square left, key b is empty background, which matches the empty background beside the
    square in key a by short chance shifts: modes of b towards a that nothing from key a confirms.
    Only the square's own jump is found both ways."""
    from nn.motion.search import motion_modes, mutual_modes

    def frame(x):
        image = np.zeros((270, 480, 3), np.float32)
        image[20:60, x:x + 40] = texture(40, 40, 7)
        return torch.from_numpy(image).permute(2, 0, 1)[None]

    jump = lambda mode: abs(mode.shift[0] + 150) <= 6 and abs(mode.shift[1]) <= 6  # noqa: E731
    chance = [m for m in motion_modes(frame(190), frame(40)) if not jump(m)]
    assert chance, "the empty background should match by chance"
    kept = mutual_modes(frame(190), frame(40))
    assert len(kept) == 1 and jump(kept[0]), kept

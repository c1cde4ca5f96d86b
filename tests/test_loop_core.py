"""Loops from a still (nn/loop): small generated images, real field, real splatting, no mocks.

The still is 64x48: a textured "river" band (rows 16..35) between two flat banks; the mask is
the band, the hint an arrow pointing right.
"""
import gc
import json
import os
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from conftest import SHARED, needs_shared
from nn.imageio import ImageFormat, read_image, write_image
from nn.loop import endless, task
from nn.loop.__main__ import main as cli_main
from nn.loop.hints import all_arrows, rasterize_polygons, read_labelme, velocity_field
from nn.loop.synthesis import RESTORE_REACH, Loop, detail, local_mean, restore_detail
from nn.motion.splat import box_around
from nn.motion.particles import integrate, integrate_reversed
from nn.worker import TaskContext, TaskError

W, H = 64, 48
RIVER = (16, 36)  # rows of the moving band
ARROW = [[20, 25, 30, 25]]


def still(channels: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    texture = 0.5 + 0.2 * np.sin(x * 0.9) * np.cos(y * 1.3) + 0.1 * np.sin(x * 0.37 + y * 0.21)
    image = np.stack([0.3 + 0.2 * texture, 0.2 + 0.5 * texture, 0.8 * texture], -1)
    image[: RIVER[0]] = [0.8, 0.7, 0.3]
    image[RIVER[1]:] = [0.2, 0.6, 0.2]
    if channels == 4:
        image = np.concatenate([image, np.full((H, W, 1), 0.75, np.float32)], -1)
    return image.astype(np.float32)


def river_mask() -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[RIVER[0]:RIVER[1]] = True
    return mask


def tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None]


class Recorder(TaskContext):
    def __init__(self):
        super().__init__(torch.device("cpu"), False)
        self.events = []

    def progress(self, fraction, message, preview=None):
        self.events.append((fraction, message, preview))


@pytest.fixture
def inputs(tmp_path):
    image, mask = tmp_path / "still.png", tmp_path / "mask.png"
    write_image(str(image), still(4), ImageFormat(".png", "uint16", 4))
    write_image(str(mask), river_mask()[..., None].astype(np.float32), ImageFormat(".png", "uint8", 1))
    return {"image": str(image), "mask": str(mask), "mask_polygons": None, "hints": ARROW, "strokes": [],
            "frames": 8, "speed": 1.5, "appearance": None, "output_dir": str(tmp_path / "out"), "prefix": "loop"}


def test_field_is_zero_outside_the_mask_and_follows_the_hint_inside():
    mask = torch.from_numpy(river_mask())[None, None].float()
    field = velocity_field(tensor(still()), mask, all_arrows(ARROW, []), speed=2.0)[0]  # (2, H, W)
    assert field.shape == (2, H, W)
    assert field[:, ~river_mask()].abs().max() == 0
    inside = field[:, river_mask()]
    assert inside[0].mean() > 1.0  # rightwards, near the asked 2 px per frame
    assert inside[1].abs().mean() < 0.05 * inside[0].mean()
    assert abs(field[0, 25, 25].item() - 2.0) < 0.2  # at the hint itself


def test_motion_stops_at_an_image_edge():
    image = np.full((H, W, 3), 0.2, np.float32)
    image[:, W // 2:] = 0.8  # a hard vertical edge inside the mask
    mask = torch.ones(1, 1, H, W)
    field = velocity_field(tensor(image), mask, all_arrows([[5, 24, 15, 24]], []), speed=2.0)[0]
    left, right = field[0, :, : W // 2 - 2].mean(), field[0, :, W // 2 + 2:].mean()
    assert left > 1.0 and right < 0.05 * left


def test_strokes_give_local_arrows_and_polygons_fill_pixel_centres():
    arrows = all_arrows([], [[[0, 0], [3, 4], [3, 4], [6, 8]]])  # a repeated point is dropped
    assert arrows.shape == (2, 4)
    assert np.allclose(arrows[0], [0, 0, 6, 8]) and np.allclose(arrows[1], [3, 4, 9, 12])  # stroke-long
    mask = rasterize_polygons([[[2, 1], [6, 1], [6, 4], [2, 4]], [[10, 10], [12, 10], [11, 12]]], 16, 14)
    assert mask[1:4, 2:6].all() and mask.sum() == 12 + mask[10:12, 10:12].sum()
    assert mask[10, 10] and mask[10, 11] and not mask[0, 0]


def test_loop_keeps_static_pixels_exact_and_closes_seamlessly():
    image, frames = tensor(still(4)), 16
    mask = torch.from_numpy(river_mask())[None, None].float()
    field = velocity_field(image, mask, all_arrows(ARROW, []), speed=1.0)
    rendered = list(Loop(image, mask, field, frames))
    assert len(rendered) == frames and rendered[0].shape == image.shape
    outside = ~torch.from_numpy(river_mask())
    for frame in rendered:
        assert torch.equal(frame[..., outside], image[..., outside])
    steps = [(rendered[t + 1] - rendered[t]).abs().mean().item() for t in range(frames - 1)]
    seam = (rendered[0] - rendered[-1]).abs().mean().item()
    assert min(steps) > 0 and 0.9 < seam / np.mean(steps) < 1.05
    for frame in (rendered[0], rendered[-1]):  # half a step either side of the still
        assert 0.4 < (frame - image).abs().mean().item() / np.mean(steps) < 0.6
    assert (rendered[frames // 2] - image)[..., ~outside].abs().mean() > 0.01  # it moved


def test_task_writes_every_frame_in_the_still_format_with_alpha(inputs):
    ctx = Recorder()
    outputs, info = task.run(inputs, ctx)
    assert [p.rsplit("_", 1)[1] for p in outputs] == [f"{n:04d}.png" for n in range(1, 9)]
    pixels, fmt = read_image(outputs[3])
    assert fmt == ImageFormat(".png", "uint16", 4)
    original, _ = read_image(inputs["image"])
    assert np.array_equal(pixels[~river_mask()], original[~river_mask()])
    assert np.allclose(pixels[..., 3], 0.75, atol=1e-4)  # alpha rides along, unchanged where uniform
    assert (info["width"], info["height"]) == (W, H) and 1.0 < info["mean_speed"] < 2.0
    assert ctx.events[-1][0] == 1.0 and ctx.events[-1][2] == outputs[-1]


def test_light_change_returns_to_the_still_and_uses_a_polygon_region(inputs):
    polygon = [[0, RIVER[0]], [W, RIVER[0]], [W, RIVER[1]], [0, RIVER[1]]]
    params = {**inputs, "mask": None, "mask_polygons": [polygon], "frames": 6,
              "appearance": {"target_rgb": [0.4, 0.25, 0.3], "reference": None, "strength": 1.0}}
    outputs, _ = task.run(params, Recorder())
    first, middle = read_image(outputs[0])[0], read_image(outputs[3])[0]
    original = read_image(inputs["image"])[0]
    outside = ~river_mask()
    assert np.abs(first - original)[outside].max() < 1e-4  # sin^2 weight is 0 at frame 0
    assert np.abs(middle[:RIVER[0], :, :3] - original[:RIVER[0], :, :3]).mean() > 0.05  # whole image changes


@pytest.mark.parametrize("change, message", [
    ({"mask": None, "hints": []}, "a mask and a hint"),
    ({"hints": []}, "at least one arrow or stroke"),
    ({"hints": [[2, 2, 10, 2]]}, "outside the motion mask"),
    ({"frames": 1}, "at least 2 frames"),
])
def test_bad_inputs_are_explained(inputs, change, message):
    with pytest.raises(TaskError, match=message):
        task.run({**inputs, **change}, Recorder())
    assert not os.path.exists(inputs["output_dir"])  # nothing written


def test_tiny_images_and_masks_of_another_size_are_refused(inputs, tmp_path):
    small = tmp_path / "small.png"
    write_image(str(small), still()[:20, :40], ImageFormat(".png", "uint8", 3))
    with pytest.raises(TaskError, match="40x20"):
        task.run({**inputs, "image": str(small)}, Recorder())
    with pytest.raises(TaskError, match=r"40x20 but the image is 64x48: their shapes differ"):
        task.run({**inputs, "mask": str(small)}, Recorder())


def test_a_hint_crossing_into_the_mask_counts_and_one_wholly_outside_is_reported(inputs):
    crossing, outside = [20, 5, 20, 30], [2, 2, 12, 2]  # starts on the bank, ends in the river; all on the bank
    _, info = task.run({**inputs, "hints": [crossing, outside], "frames": 2}, Recorder())
    assert (info["hints"], info["hints_outside_mask"]) == (2, 1) and info["mean_speed"] > 0.5


def test_a_mask_of_the_same_shape_at_another_resolution_is_resampled(inputs, tmp_path):
    half = tmp_path / "half_mask.png"
    write_image(str(half), river_mask()[::2, ::2, None].astype(np.float32), ImageFormat(".png", "uint8", 1))
    outputs, _ = task.run({**inputs, "mask": str(half), "frames": 3}, Recorder())
    moved = np.abs(read_image(outputs[1])[0] - read_image(inputs["image"])[0]).max(-1) > 1e-4
    assert moved.any() and river_mask()[moved].all()  # only the river moves, as with the full-size mask


def test_labelme_hints_are_strokes_and_other_polygons_the_region(tmp_path):
    path = tmp_path / "image_polygons.json"
    path.write_text(json.dumps({"imageWidth": W, "imageHeight": H, "shapes": [
        {"label": "motion", "shape_type": "polygon", "points": [[0, 16], [64, 16], [64, 36], [0, 36]]},
        {"label": "hint0", "shape_type": "line", "points": [[20, 25], [30, 25]]},
    ]}))
    region, strokes, size = read_labelme(str(path))
    assert size == (W, H) and strokes == [[[20, 25], [30, 25]]]
    assert np.array_equal(rasterize_polygons(region, W, H), river_mask())


def test_command_line_writes_zero_based_frames_and_never_overwrites(inputs, tmp_path):
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps(ARROW))
    out = tmp_path / "cli"
    argv = [inputs["image"], "--mask", inputs["mask"], "--hints", str(hints), "--frames", "4", "--out", str(out)]
    assert cli_main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{n:04d}.png" for n in range(4)] + ["motion_field.png"]
    with pytest.raises(SystemExit, match="Refusing to overwrite"):
        cli_main(argv)


@needs_shared()
def test_labelme_region_of_a_real_scene_matches_its_mask():
    folder = SHARED / "data" / "loop" / "3dcine_demo0"
    region, strokes, (width, height) = read_labelme(str(folder / "image_polygons.json"))
    mask = read_image(str(folder / "mask.png"))[0][..., 0] > 0.5
    assert len(strokes) == 5 and (rasterize_polygons(region, width, height) == mask).mean() > 0.99


def test_transparent_pixels_lend_no_colour_to_their_moving_neighbours(inputs, tmp_path):
    """Alpha is splatted premultiplied: a cut-out's hidden colour (here red) never bleeds into what moves."""
    image = still(4)
    image[..., :3] = image[..., :3].mean(-1, keepdims=True)  # grey banks: any red below came from the hidden half
    image[RIVER[0]:RIVER[1], :, :3] = [0.9, 0.9, 0.9]  # opaque grey water...
    image[RIVER[0]:RIVER[1], :W // 2, :3] = [1.0, 0.0, 0.0]  # ...and a transparent left half hiding red
    image[RIVER[0]:RIVER[1], :W // 2, 3] = 0.0
    image[RIVER[0]:RIVER[1], W // 2:, 3] = 1.0
    path = tmp_path / "cutout.png"
    write_image(str(path), image, ImageFormat(".png", "uint16", 4))
    outputs, _ = task.run({**inputs, "image": str(path), "hints": [[10, 25, 40, 25]], "frames": 6}, Recorder())
    for output in outputs:
        pixels = read_image(output)[0][RIVER[0]:RIVER[1]]
        visible = pixels[..., 3] > 0.05
        assert visible.any() and np.abs(pixels[..., 0] - pixels[..., 1])[visible].max() < 0.02


@pytest.mark.parametrize("steps", [0, 1, 3, 15, 16, 17, 119])
def test_the_backward_path_is_replayed_in_reverse_exactly_from_checkpoints(steps):
    velocity = torch.randn(1, 2, 20, 30, generator=torch.Generator().manual_seed(steps)) * 0.7
    start = torch.rand(50, 2, generator=torch.Generator().manual_seed(1)) * torch.tensor([29.0, 19.0])
    whole = list(integrate(velocity, start, steps, -1.0))
    replayed = list(integrate_reversed(velocity, start, steps, -1.0))
    assert len(replayed) == steps + 1 and all(torch.equal(a, b) for a, b in zip(reversed(whole), replayed))


def noise_still(seed: int = 0) -> torch.Tensor:
    """(1, 3, H, W) fine random texture: what sub-pixel splats and blends blur first."""
    return torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(seed))


def laplacian_energy(frame: torch.Tensor, inside: torch.Tensor) -> float:
    grey = frame.mean(1, keepdim=True)
    kernel = grey.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return torch.nn.functional.conv2d(grey, kernel)[0, 0][inside[1:-1, 1:-1]].var().item()


def test_the_moving_region_keeps_the_stills_sharpness_at_half_pixel_offsets_and_mid_loop():
    """A uniform drift of 1 px/frame puts every particle half a pixel off the grid (frames sit at t + 1/2),
    which a bilinear splat averages away; mid-loop, two unrelated textures are blended half and half.
    White noise is the worst case (natural scenes keep 0.93-1.2): before the detail was restored by
    solving for its gain, this loop kept 0.49-0.58 of the noise's Laplacian variance."""
    image, frames = noise_still(), 24
    mask = torch.from_numpy(river_mask())[None, None].float()
    field = torch.zeros(1, 2, H, W)
    field[:, 0] = 1.0
    inside = torch.from_numpy(river_mask())
    inside[:, :12] = False  # away from where the particles enter and leave the band
    inside[:, -12:] = False
    reference = laplacian_energy(image, inside)
    rendered = list(Loop(image, mask, field, frames))
    for t in (0, frames // 4, frames // 2):
        assert 0.75 < laplacian_energy(rendered[t], inside) / reference < 1.3, t


def test_endless_clips_pass_through_the_still_each_window_and_never_repeat():
    image, frames = tensor(still()), 3 * endless.WINDOW
    mask = torch.from_numpy(river_mask())[None, None].float()
    base = velocity_field(image, mask, all_arrows(ARROW, []), speed=1.0)
    field, times, _ = endless.endless_motion(base, frames, seamless=False, seed=3)
    shortest, longest = (1 - endless.WINDOW_JITTER) * endless.WINDOW, (1 + endless.WINDOW_JITTER) * endless.WINDOW
    assert times[0] == 0 and times[-1] >= frames
    assert all(shortest - 1 <= b - a <= longest + 1 for a, b in zip(times, times[1:]))  # bounded travel
    rendered = list(Loop(image, mask, field, frames, times))
    assert len(rendered) == frames
    outside = ~torch.from_numpy(river_mask())
    steps = [(rendered[t + 1] - rendered[t]).abs().mean().item() for t in range(frames - 1)]
    for frame in rendered:
        assert torch.equal(frame[..., outside], image[..., outside])
    for anchor in times[1:-1]:  # half a step either side of the still, as a loop's ends are
        if anchor < frames:
            assert (rendered[anchor] - image).abs().mean().item() < np.mean(steps)
    assert max(steps) < 2 * np.median(steps)  # no jolt where windows meet
    # The field itself evolves: two windows apart, it is not the same field
    assert (field.extended(mask > 0, 8)(10) - field.extended(mask > 0, 8)(10 + 2 * endless.WINDOW)).abs().max() > 0.05


def most_live_tensor_bytes(frames: Iterator[torch.Tensor], count: int) -> int:
    """The most bytes held by live tensors while the next ``count`` frames render (every 8th frame and the last)."""
    most = 0
    for k in range(count):
        next(frames)
        if k % 8 == 7 or k == count - 1:
            gc.collect()
            most = max(most, sum(o.untyped_storage().nbytes() for o in gc.get_objects() if isinstance(o, torch.Tensor)))
    return most


def allocation_sizes(frames: Iterator[torch.Tensor], count: int) -> set[int]:
    """The sizes of the blocks that rendering the next ``count`` frames allocates."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as recorded:
        for _ in range(count):
            next(frames)
    return {event.cpu_memory_usage for event in recorded.events() if event.cpu_memory_usage > 0}


def test_endless_memory_does_not_grow_with_length():
    """The renderer holds O(window) state, and window after window it allocates blocks of the same sizes:
    a box around each frame's holes once changed size every frame, and its ever new block sizes
    fragmented the heap, so a 720p clip's peak memory grew by 17% from frame 120 to 600."""
    image, frames = tensor(still()), 5 * endless.WINDOW
    mask = torch.from_numpy(river_mask())[None, None].float()
    base = velocity_field(image, mask, all_arrows(ARROW, []), speed=1.0)
    field, times, _ = endless.endless_motion(base, frames, seamless=False, seed=3)
    positions = 8 * int(river_mask().sum())  # bytes of one set of particle positions
    with torch.inference_mode():
        clip = iter(Loop(image, mask, field, frames, times))
        first_window = allocation_sizes(clip, 8)  # recorded over a few frames: the profiler is slow
        early = most_live_tensor_bytes(clip, times[3] - 8)  # the rest of windows 1 to 3
        fourth_window = allocation_sizes(clip, 8)
        late = most_live_tensor_bytes(clip, frames - times[3] - 8)  # windows 4 and 5
    assert fourth_window <= first_window
    assert late <= early + 4 * positions  # windows differ in length, so in the checkpoints they hold, not more


def test_endless_seamless_clips_end_where_they_start():
    image, frames = tensor(still()), 2 * endless.WINDOW
    mask = torch.from_numpy(river_mask())[None, None].float()
    base = velocity_field(image, mask, all_arrows(ARROW, []), speed=1.0)
    field, times, light = endless.endless_motion(base, frames, seamless=True)
    assert times[0] == 0 and times[-1] == frames
    assert torch.allclose(field.codes(0), field.codes(frames)) and abs(light(0) - light(frames)) < 1e-6
    rendered = list(Loop(image, mask, field, frames, times))
    steps = [(rendered[t + 1] - rendered[t]).abs().mean().item() for t in range(frames - 1)]
    seam = (rendered[0] - rendered[-1]).abs().mean().item()
    assert 0.7 < seam / np.mean(steps) < 1.1


def test_motion_codes_follow_a_cubic_b_spline_with_no_jolt_at_control_points():
    controls = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    spacing, h = 10.0, 1e-2
    for periodic in (False, True):
        curve = lambda t: endless.bspline(controls, t, spacing, periodic)  # noqa: E731
        for knot in (20.0, 50.0):  # velocity and acceleration match on both sides of a knot
            left = (curve(knot) - curve(knot - h)) / h, (curve(knot) - 2 * curve(knot - h) + curve(knot - 2 * h)) / h ** 2
            right = (curve(knot + h) - curve(knot)) / h, (curve(knot + 2 * h) - 2 * curve(knot + h) + curve(knot)) / h ** 2
            assert torch.allclose(left[0], right[0], atol=0.02) and torch.allclose(left[1], right[1], atol=0.05)
    assert torch.allclose(endless.bspline(controls, 3.0, spacing, True), endless.bspline(controls, 123.0, spacing, True))
    assert not torch.allclose(endless.bspline(controls, 3.0, spacing, False), endless.bspline(controls, 53.0, spacing, False))


def test_layers_are_the_moving_region_with_feathered_alpha_and_composite_back_exactly(inputs, tmp_path):
    image = tmp_path / "opaque.png"
    write_image(str(image), still(3), ImageFormat(".png", "uint16", 3))
    outputs, info = task.run({**inputs, "image": str(image), "frames": 3, "layers": True}, Recorder())
    original = read_image(str(image))[0]
    assert len(info["layers"]) == 3
    for composite, layer in zip(outputs, info["layers"]):
        frame, (pixels, fmt) = read_image(composite)[0], read_image(layer)
        assert fmt == ImageFormat(".png", "uint16", 4)
        alpha = pixels[..., 3:]
        assert (alpha[river_mask()] == 1).all() and (alpha[:RIVER[0] - task.FEATHER - 1] == 0).all()
        assert 0 < alpha[RIVER[0] - 2, 5, 0] < 1  # feathered outside the region
        over = alpha * pixels[..., :3] + (1 - alpha) * original
        assert np.abs(over - frame).max() < 1 / 65535 + 1e-6


@pytest.mark.parametrize("change, message", [
    ({"endless": True, "frames": 20}, "An Endless clip needs at least 48 frames"),
    ({"layers": True, "mask": None, "hints": [], "motion_source": "learned"}, "so there is nothing to separate"),
    ({"layers": True, "appearance": {"target_rgb": [0.4, 0.3, 0.3], "reference": None, "strength": 0.5}},
     "a light change alters the whole picture"),
    ({"layers": True}, "Layers need an opaque still"),
])
def test_endless_and_layers_refusals_write_nothing(inputs, change, message):
    with pytest.raises(TaskError, match=message):
        task.run({**inputs, **change}, Recorder())
    assert not os.path.exists(inputs["output_dir"])


def test_the_detail_restore_on_the_region_box_equals_the_whole_frame_restore():
    """Loop.render restores detail only on the region's box grown by RESTORE_REACH: inside the region
    that must be exactly what the whole frame gives, wherever the box meets the frame's edge or not."""
    generator = torch.Generator().manual_seed(3)
    frame = torch.rand(1, 3, 60, 80, generator=generator)
    # Energy 1-2 times the frame's own, so the gains stay inside DETAIL_GAIN and depend on every neighbour.
    energy = local_mean(detail(frame).pow(2)) * (1 + torch.rand(1, 1, 60, 80, generator=generator))
    for top, left in ((20, 30), (0, 0), (50, 70)):  # inside, at the top-left corner, at the bottom-right
        inside = torch.zeros(1, 1, 60, 80, dtype=torch.bool)
        inside[..., top:top + 10, left:left + 10] = True
        box = box_around(inside, RESTORE_REACH)
        whole = restore_detail(frame, energy)[box]
        cropped = restore_detail(frame[box], energy[box])
        assert torch.equal(cropped[inside[box].expand_as(cropped)], whole[inside[box].expand_as(whole)])

"""Animate Loop end to end on real Blender: still strip + Mask datablock -> worker (real torch) -> one strip."""
import os

import bpy
import numpy as np
import pytest

from conftest import FRAMEWEAVER
from helpers import gradient_image, rasterized, render_mask, with_torch
from nn.imageio import ImageFormat, read_image, write_image

compat = FRAMEWEAVER.operators.compat
loop = FRAMEWEAVER.operators.loop
strip_io = FRAMEWEAVER.operators.strip_io
WIDTH, HEIGHT = 96, 64


def still(scene, folder):
    pixels = gradient_image(HEIGHT, WIDTH, channels=3)
    path = os.path.join(folder, "still.png")
    write_image(path, pixels, ImageFormat(".png", "uint16", 3))
    strip = compat.strips(scene.sequence_editor).new_image(name="still", filepath=path, channel=1, frame_start=1)
    strip.select = True
    return strip, pixels


def motion_mask(region=((0.1, 0.55), (0.9, 0.55), (0.9, 0.75), (0.1, 0.75)), stroke=((0.2, 0.65), (0.6, 0.65))):
    """A Mask datablock: one closed spline (what may move) and one open stroke (left to right)."""
    mask = bpy.data.masks.new("waves")
    layer = mask.layers.new()
    for points, cyclic in ((region, True), (stroke, False)):
        spline = layer.splines.new()
        spline.points.add(len(points) - 1)
        for point, co in zip(spline.points, points):
            point.co, point.handle_type = co, "VECTOR"
        spline.use_cyclic = cyclic
    return mask


def test_mask_splines_land_where_blender_renders_them(scene, tmp_path):
    """Our mask-space -> pixel mapping, checked against Blender's own render of the Mask."""
    mask = motion_mask()
    rendered = render_mask(scene, mask, WIDTH, HEIGHT, str(tmp_path)) > 0.5
    polygons, strokes = loop.mask_splines(mask, WIDTH, HEIGHT)
    ours = rasterized(polygons, WIDTH, HEIGHT) > 0.5
    assert (ours != rendered).mean() < 0.02 and ours.sum() > 200
    assert strokes[0][0][0] < strokes[0][1][0]  # drawn left to right, read left to right


def test_animate_loop_makes_one_looping_strip(scene, seq_ctx, tmp_path):
    source, pixels = still(scene, str(tmp_path))
    motion_mask()
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_animate_loop(mask="waves", frames=12, speed=1.5) == {"FINISHED"}
    strip = scene.sequence_editor.active_strip
    assert strip.name == "Loop still" and strip.channel == 2
    assert (compat.left_handle(strip), compat.right_handle(strip)) == (1, 13)
    folder = bpy.path.abspath(strip.directory)
    frames = [read_image(os.path.join(folder, e.filename))[0] for e in strip.elements]
    polygons, _ = loop.mask_splines(bpy.data.masks["waves"], WIDTH, HEIGHT)
    outside = rasterized(polygons, WIDTH, HEIGHT) == 0
    outside[1:] &= outside[:-1]  # keep clear of the mask's edge pixels, which may take splats
    outside[:-1] &= outside[1:]
    for frame in frames:
        np.testing.assert_allclose(frame[outside], pixels[outside], atol=1 / 65535 + 1e-6)  # still stays still
    steps = [np.abs(frames[i + 1] - frames[i]).mean() for i in range(len(frames) - 1)]
    seam = np.abs(frames[0] - frames[-1]).mean()
    # It moves, and the end flows into the start: without the symmetric splat the jump back would be
    # the whole loop's motion (about 11 steps here). The jump is the size of the steps next to it;
    # on this coarse texture mid-loop steps are smaller, so it is 1.28 times the mean (48-frame demos: 0.9-1.0).
    assert min(steps) > 0 and seam < 1.1 * max(steps[0], steps[-1]) and seam < 1.4 * np.mean(steps), (steps, seam)


@pytest.mark.parametrize("case, message", [
    ("no mask", "Draw the motion first"),
    ("no region", "Say what may move"),
    ("two strips", "Select the one image strip"),
])
def test_bad_input_is_explained(scene, seq_ctx, tmp_path, case, message):
    still(scene, str(tmp_path))
    options = {"mask": "waves"}
    if case == "no mask":
        options = {}
    elif case == "no region":
        mask = motion_mask()
        mask.layers[0].splines.remove(mask.layers[0].splines[0])
    else:
        motion_mask()
        other = compat.strips(scene.sequence_editor).new_image(name="other", filepath=str(tmp_path / "still.png"),
                                                               channel=3, frame_start=1)
        other.select = True
    with seq_ctx(scene), pytest.raises(RuntimeError, match=message):
        bpy.ops.sequencer.frameweaver_animate_loop(frames=4, **options)
    assert not any(s.name.startswith("Loop") for s in compat.all_strips(scene.sequence_editor))


def test_preview_motion_draws_arrows_and_makes_no_strip(scene, seq_ctx, tmp_path):
    _, pixels = still(scene, str(tmp_path))
    motion_mask()
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_preview_loop_motion(mask="waves", speed=2.0) == {"FINISHED"}
    arrows = read_image(scene.frameweaver.loop_motion_preview)[0]
    changed = np.abs(arrows - pixels * 0.6).max(-1) > 0.05  # arrow pixels, against the dimmed still
    polygons, _ = loop.mask_splines(bpy.data.masks["waves"], WIDTH, HEIGHT)
    region = rasterized(polygons, WIDTH, HEIGHT) > 0
    assert changed.any() and changed[region].sum() >= 0.8 * changed.sum()  # arrows only where things move
    assert [s.name for s in compat.all_strips(scene.sequence_editor)] == ["still"]


def test_a_mask_reaching_off_the_still_warns_and_one_wholly_off_it_is_refused(scene, tmp_path, capsys):
    """A Mask drawn over a wider picture: the part over the still is used and the rest reported."""
    still(scene, str(tmp_path))
    mask = motion_mask(region=((-0.3, 0.55), (1.3, 0.55), (1.3, 0.75), (-0.3, 0.75)))
    strip = loop.loop_still(scene, mask=mask, frames=2)
    assert strip.name == "Loop still" and len(strip.elements) == 2
    assert "4 point(s) of the Mask 'waves' lie outside the 96x64 still" in capsys.readouterr().err
    far = motion_mask(region=((2.0, 2.0), (3.0, 2.0), (3.0, 3.0)), stroke=((2.2, 2.5), (2.8, 2.5)))
    with pytest.raises(strip_io.StripInputError, match=r"Every point of the Mask 'waves.001' lies outside"):
        loop.loop_still(scene, mask=far, frames=2)
    assert len(compat.all_strips(scene.sequence_editor)) == 2  # the still and the first loop only


def test_hints_off_the_region_are_reported(scene, tmp_path, capsys):
    still(scene, str(tmp_path))
    mask = motion_mask()
    spline = mask.layers[0].splines.new()  # a second stroke, on the still but above the region
    spline.points.add(1)
    spline.points[0].co, spline.points[1].co = (0.2, 0.8), (0.6, 0.8)  # mask space: the still spans y 0.17..0.83
    loop.loop_still(scene, mask=mask, frames=2)
    err = capsys.readouterr().err
    assert "1 of 2 hint segments lie outside the region that may move" in err and "outside the 96x64" not in err


def test_learned_motion_needs_no_strokes_and_stays_in_the_region(scene, seq_ctx, tmp_path):
    _, pixels = still(scene, str(tmp_path))
    mask = motion_mask()
    mask.layers[0].splines.remove(mask.layers[0].splines[1])  # the region only: the model gives the motion
    with_torch("model_files.rightward_motion_model", str(tmp_path / "motion.safetensors"))
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_animate_loop(
            mask="waves", frames=3, speed=2.0, motion_source="LEARNED",
            motion_model=str(tmp_path / "motion.safetensors")) == {"FINISHED"}
    strip = scene.sequence_editor.active_strip
    frames = [read_image(os.path.join(bpy.path.abspath(strip.directory), e.filename))[0] for e in strip.elements]
    polygons, _ = loop.mask_splines(mask, WIDTH, HEIGHT)
    region = rasterized(polygons, WIDTH, HEIGHT) > 0
    far = ~region
    far[1:] &= far[:-1]
    far[:-1] &= far[1:]
    for frame in frames:
        assert np.abs(frame - pixels)[far].max() < 2 / 65535 and np.abs(frame - pixels)[region].mean() > 1e-3


def test_learned_motion_without_a_model_says_where_it_goes(scene, seq_ctx, tmp_path):
    still(scene, str(tmp_path))
    motion_mask()
    with seq_ctx(scene), pytest.raises(RuntimeError, match=r"not published.*nn\.loop\.train.*loop_motion\.safetensors"):
        bpy.ops.sequencer.frameweaver_animate_loop(mask="waves", frames=2, motion_source="LEARNED")
    with seq_ctx(scene), pytest.raises(RuntimeError, match="missing.safetensors does not exist"):
        bpy.ops.sequencer.frameweaver_animate_loop(mask="waves", frames=2, motion_source="LEARNED",
                                                   motion_model=str(tmp_path / "missing.safetensors"))
    assert [s.name for s in compat.all_strips(scene.sequence_editor)] == ["still"]


def test_the_light_moves_towards_a_reference_strip_and_back(scene, seq_ctx, tmp_path):
    _, pixels = still(scene, str(tmp_path))
    motion_mask()
    evening = np.zeros((HEIGHT, WIDTH, 3), np.float32)
    evening[:] = [0.45, 0.2, 0.35]  # a dim purple sky, far from the grey-green still
    evening[::2] *= 0.8  # some contrast, as a photo has
    write_image(str(tmp_path / "evening.png"), evening, ImageFormat(".png", "uint8", 3))
    reference = compat.strips(scene.sequence_editor).new_image(name="evening", channel=5, frame_start=1,
                                                               filepath=str(tmp_path / "evening.png"))
    reference.select = False
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_animate_loop(mask="waves", frames=8, dusk=1.0,
                                                          light_reference="evening") == {"FINISHED"}
    strip = scene.sequence_editor.active_strip
    frames = [read_image(os.path.join(bpy.path.abspath(strip.directory), e.filename))[0] for e in strip.elements]
    distance = [np.abs(f.mean((0, 1)) - evening.mean((0, 1))).sum() for f in frames]
    start = np.abs(pixels.mean((0, 1)) - evening.mean((0, 1))).sum()
    assert distance[4] < 0.3 * start and distance[0] == pytest.approx(start, abs=0.02)  # there mid-loop, back at 0
    with seq_ctx(scene), pytest.raises(RuntimeError, match="light reference 'nothing' must be an image strip"):
        bpy.ops.sequencer.frameweaver_animate_loop(mask="waves", frames=2, dusk=0.5, light_reference="nothing")


def test_a_motion_model_trained_in_blender_drives_the_loop(scene, seq_ctx, tmp_path, local_weights):
    """Train Motion Model on a folder of clips (RIFE targets), then Animate Loop with Learned motion."""
    clip = tmp_path / "clips" / "drift"
    clip.mkdir(parents=True)
    texture = np.random.default_rng(0).random((HEIGHT, WIDTH + 16, 3), dtype=np.float32)
    for t in range(4):  # the whole picture drifts right 2 px per frame
        write_image(str(clip / f"{t:03d}.png"), texture[:, 8 - 2 * t:8 - 2 * t + WIDTH], ImageFormat(".png", "uint8", 3))
    still(scene, str(tmp_path))
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_train_loop_motion(clips=str(tmp_path / "clips"), steps=3) == {"FINISHED"}
    settings = scene.frameweaver
    assert settings.loop_motion_source == "LEARNED" and os.path.isfile(settings.loop_motion_model)
    assert os.path.basename(settings.loop_motion_model) == "loop_motion.safetensors"
    mask = motion_mask()
    mask.layers[0].splines.remove(mask.layers[0].splines[1])  # the region only
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_animate_loop(mask="waves", frames=2, motion_source="LEARNED",
                                                          motion_model=settings.loop_motion_model) == {"FINISHED"}
    assert scene.sequence_editor.active_strip.name == "Loop still"


def test_training_without_a_folder_of_clips_is_refused(scene, seq_ctx, tmp_path):
    with seq_ctx(scene), pytest.raises(RuntimeError, match="Choose a folder of clips"):
        bpy.ops.sequencer.frameweaver_train_loop_motion(clips=str(tmp_path / "nowhere"))
    assert not (tmp_path / "frameweaver").exists()  # no job folder left behind


def render_sequencer(scene, folder, frames):
    """The sequencer's picture at ``frames`` (8-bit PNG, no view transform, no dither), as arrays."""
    render = scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = WIDTH, HEIGHT, 100
    render.use_sequencer, render.dither_intensity = True, 0.0
    scene.view_settings.view_transform = "Standard"
    render.image_settings.file_format, render.image_settings.color_mode = "PNG", "RGB"
    render.image_settings.color_depth = "8"
    scene.frame_start, scene.frame_end = frames[0], frames[-1]
    render.filepath = os.path.join(folder, "frame_")
    bpy.ops.render.render(animation=True, scene=scene.name)
    return [read_image(render.frame_path(frame=f))[0] for f in frames]


def test_layers_alpha_over_the_still_copy_equal_the_composite_in_the_vse(scene, seq_ctx, tmp_path):
    """Endless + Layers: the moving RGBA strip over the still's copy, rendered by Blender, is the composite."""
    source, _ = still(scene, str(tmp_path))
    motion_mask()
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_animate_loop(mask="waves", frames=48, speed=1.5, endless=True,
                                                          layers=True) == {"FINISHED"}
    strips = {s.name: s for s in compat.all_strips(scene.sequence_editor)}
    composite, background, moving = strips["Loop still"], strips["Loop still background"], strips["Loop still moving"]
    assert scene.sequence_editor.active_strip == composite and len(strips) == 4
    assert (composite.channel, background.channel, moving.channel) == (2, 3, 4)
    assert moving.blend_type == "ALPHA_OVER" and len(moving.elements) == len(composite.elements) == 48
    assert strip_io.key_image(background) == strip_io.key_image(source)
    assert compat.right_handle(background) == compat.right_handle(moving) == compat.right_handle(composite) == 49
    shown = [1, 24, 48]
    layered = render_sequencer(scene, str(tmp_path / "layered"), shown)
    background.mute = moving.mute = True
    single = render_sequencer(scene, str(tmp_path / "single"), shown)
    moved = 0.0
    for a, b in zip(layered, single):
        assert np.abs(a - b).max() <= 1 / 255 + 1e-6
        moved = max(moved, np.abs(b - layered[0]).max())
    assert moved > 0.05  # the render shows motion, so the comparison is of moving frames


@pytest.mark.parametrize("case, message", [
    ("short endless", "An Endless clip needs at least 48 frames"),
    ("layers without a region", "so there is nothing to separate"),
])
def test_endless_and_layers_refusals_leave_scene_and_files_as_they_were(scene, tmp_path, case, message):
    still(scene, str(tmp_path))
    original = read_image(str(tmp_path / "still.png"))[0]
    mask = motion_mask()
    options = {"frames": 20, "endless": True}
    if case == "layers without a region":
        mask.layers[0].splines.remove(mask.layers[0].splines[0])  # the stroke only, and the model moves things
        with_torch("model_files.rightward_motion_model", str(tmp_path / "motion.safetensors"))
        options = {"frames": 2, "layers": True, "motion_source": "LEARNED",
                   "motion_model": str(tmp_path / "motion.safetensors")}
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(Exception, match=message):
        loop.loop_still(scene, mask=mask, output_dir=str(tmp_path / "out"), **options)
    assert [s.name for s in compat.all_strips(scene.sequence_editor)] == ["still"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output folder was made
    assert np.array_equal(read_image(str(tmp_path / "still.png"))[0], original)

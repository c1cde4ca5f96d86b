"""Style tab end to end on real Blender: footage + painted keyframe strips -> worker (real torch) -> one strip.

The painted look here is a colour inversion of the footage, which a short
training run learns well enough to tell apart from the unstyled footage.
"""
import os

import bpy
import numpy as np
import pytest

from conftest import FRAMEWEAVER
from helpers import gradient_image
from nn.imageio import ImageFormat, read_image, write_image

compat = FRAMEWEAVER.operators.compat
stylize = FRAMEWEAVER.operators.stylize
jobs = FRAMEWEAVER.operators.jobs
SIZE = (48, 64)


def paint(pixels):
    return np.concatenate([1.0 - pixels[..., :3], pixels[..., 3:]], -1)


def footage(scene, folder, count=5, channels=3, start=1):
    os.makedirs(folder, exist_ok=True)
    frames = [gradient_image(*SIZE, channels=channels, shift=i * 2.0) for i in range(count)]
    paths = []
    for index, pixels in enumerate(frames):
        paths.append(os.path.join(folder, f"shot_{index:04d}.png"))
        write_image(paths[-1], pixels, ImageFormat(".png", "uint8", channels))
    strip = compat.strips(scene.sequence_editor).new_image(name="shot", filepath=paths[0], channel=1,
                                                             frame_start=start)
    for path in paths[1:]:
        strip.elements.append(os.path.basename(path))
    return strip, frames


def painted_key(scene, folder, pixels, frame, name="paint", channel=2, size=None):
    path = os.path.join(folder, f"{name}.png")
    image = paint(pixels)[..., :3]
    if size:
        image = np.resize(image, (*size, 3))
    write_image(path, np.ascontiguousarray(image, dtype=np.float32), ImageFormat(".png", "uint8", 3))
    return compat.strips(scene.sequence_editor).new_image(name=name, filepath=path, channel=channel,
                                                            frame_start=frame)


def run(seq_ctx, scene, **options):
    options = {"footage": "shot", "seconds": 4.0, **options}
    with seq_ctx(scene):
        return bpy.ops.sequencer.frameweaver_train_propagate(**options)


def styled(strip):
    folder = bpy.path.abspath(strip.directory)
    return [read_image(os.path.join(folder, e.filename)) for e in strip.elements]


def test_train_and_propagate_makes_one_aligned_strip(scene, seq_ctx, tmp_path):
    _, frames = footage(scene, str(tmp_path / "shot"), start=10)
    painted_key(scene, str(tmp_path), frames[0], frame=10)
    assert run(seq_ctx, scene, seconds=10.0) == {"FINISHED"}
    strip = scene.sequence_editor.active_strip
    assert strip.name == "Style shot" and strip.channel == 3
    assert (compat.left_handle(strip), compat.right_handle(strip)) == (10, 15)
    out = styled(strip)
    assert len(out) == 5 and out[0][1] == ImageFormat(".png", "uint8", 3)
    held_out = out[3][0]  # a frame nobody painted
    assert np.abs(held_out - paint(frames[3])).mean() < 0.5 * np.abs(frames[3] - paint(frames[3])).mean()
    model = scene.frameweaver.style_model
    assert os.path.isfile(model) and model.startswith(str(tmp_path / "frameweaver"))


def test_saved_model_applies_to_another_clip_without_training(scene, seq_ctx, tmp_path):
    _, frames = footage(scene, str(tmp_path / "shot"))
    painted_key(scene, str(tmp_path), frames[0], frame=1)
    run(seq_ctx, scene)
    first = styled(scene.sequence_editor.active_strip)
    for strip in list(compat.all_strips(scene.sequence_editor)):
        if strip.name != "shot":
            compat.strips(scene.sequence_editor).remove(strip)  # no keyframes left: the model alone must do
    assert run(seq_ctx, scene, model_file=scene.frameweaver.style_model) == {"FINISHED"}
    again = styled(scene.sequence_editor.active_strip)
    np.testing.assert_allclose(again[2][0], first[2][0], atol=1.5 / 255)


def test_stop_propagates_what_was_learned(scene, fw, tmp_path):
    _, frames = footage(scene, str(tmp_path / "shot"))
    painted_key(scene, str(tmp_path), frames[0], frame=1)
    scene_job = stylize.prepare(scene, footage="shot", seconds=600.0)
    while "Training" not in scene_job.job.message:
        assert scene_job.job.poll(), scene_job.job.error
    assert stylize.stop_training(scene_job.job)
    strip = FRAMEWEAVER.operators.job_runner.run_sync(scene_job)  # far sooner than 600 s
    assert len(strip.elements) == 5


def test_cancel_leaves_the_scene_unchanged(scene, tmp_path):
    _, frames = footage(scene, str(tmp_path / "shot"))
    painted_key(scene, str(tmp_path), frames[0], frame=1)
    scene_job = stylize.prepare(scene, footage="shot", seconds=600.0)
    scene_job.cancel()
    with pytest.raises(FRAMEWEAVER.operators.job_runner.JobFailed, match="cancelled"):
        scene_job.complete()
    assert sorted(s.name for s in compat.all_strips(scene.sequence_editor)) == ["paint", "shot"]
    assert not (tmp_path / "frameweaver").exists()  # not even the empty root the job made


def test_footage_alpha_is_kept(scene, seq_ctx, tmp_path):
    _, frames = footage(scene, str(tmp_path / "shot"), channels=4)
    painted_key(scene, str(tmp_path), frames[0], frame=1)
    run(seq_ctx, scene, seconds=2.0)
    pixels, fmt = styled(scene.sequence_editor.active_strip)[2]
    assert fmt.channels == 4
    np.testing.assert_allclose(pixels[..., 3], frames[2][..., 3], atol=1 / 255 + 1e-6)


def test_mask_keeps_the_original_outside(scene, seq_ctx, tmp_path):
    _, frames = footage(scene, str(tmp_path / "shot"))
    painted_key(scene, str(tmp_path), frames[0], frame=1)
    mask = np.zeros((*SIZE, 1), np.float32)
    mask[:, 32:] = 1.0
    write_image(str(tmp_path / "mask.png"), mask, ImageFormat(".png", "uint8", 1))
    compat.set_duration(compat.strips(scene.sequence_editor).new_image(
        name="matte", filepath=str(tmp_path / "mask.png"), channel=4, frame_start=1), 5)
    assert run(seq_ctx, scene, mask="matte", seconds=2.0) == {"FINISHED"}
    pixels = styled(scene.sequence_editor.active_strip)[2][0]
    np.testing.assert_allclose(pixels[:, :30], frames[2][:, :30], atol=1 / 255 + 1e-6)


@pytest.mark.parametrize("case, message", [
    ("no keys", "No painted keyframes above 'shot'"),
    ("key before footage", "sits on no footage frame"),
    ("key size", "Enable 'Fit Sizes'"),
    ("mask size", "but the footage is 64x48"),
    ("not footage", "'paint' is not footage"),
])
def test_bad_input_is_explained_and_changes_nothing(scene, seq_ctx, tmp_path, case, message):
    _, frames = footage(scene, str(tmp_path / "shot"), start=5)
    options = {}
    if case == "key before footage":
        painted_key(scene, str(tmp_path), frames[0], frame=3)
    elif case == "key size":
        painted_key(scene, str(tmp_path), frames[0], frame=5, size=(24, 32))
    elif case == "mask size":
        painted_key(scene, str(tmp_path), frames[0], frame=5)
        write_image(str(tmp_path / "mask.png"), np.ones((10, 10, 1), np.float32), ImageFormat(".png", "uint8", 1))
        compat.set_duration(compat.strips(scene.sequence_editor).new_image(
            name="matte", filepath=str(tmp_path / "mask.png"), channel=4, frame_start=5), 5)
        options["mask"] = "matte"
    elif case == "not footage":
        painted_key(scene, str(tmp_path), frames[0], frame=5)
        options["footage"] = "paint"
    before = sorted(s.name for s in compat.all_strips(scene.sequence_editor))
    with pytest.raises(RuntimeError, match=message):
        run(seq_ctx, scene, **options)
    assert sorted(s.name for s in compat.all_strips(scene.sequence_editor)) == before
    assert not (tmp_path / "frameweaver").exists() or os.listdir(tmp_path / "frameweaver") == []


def test_panel_lists_the_painted_keyframes(scene, tmp_path):
    source, frames = footage(scene, str(tmp_path / "shot"), start=5)
    painted_key(scene, str(tmp_path), frames[0], frame=5, name="first")
    painted_key(scene, str(tmp_path), frames[3], frame=8, name="later")
    painted_key(scene, str(tmp_path), frames[1], frame=6, name="elsewhere", channel=3)  # not on the key channel
    keys = stylize.painted_keys(scene, source)
    assert [(k.strip_name, k.index) for k in keys] == [("first", 0), ("later", 3)]

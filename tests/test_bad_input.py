"""Bad input, one case per kind: each is refused with a message that says why, and the scene and the
files are exactly as before (no strip, no result folder, no file touched)."""
import os

import bpy
import numpy as np
import pytest

from conftest import FRAMEWEAVER, MODULE
from helpers import (Unchanged, add_key_strips, colour_strip, gradient_image, render_movie, with_torch,
                     write_keyframes)
from nn.imageio import ImageFormat, write_image
from test_loop_operator import motion_mask, still
from test_retime import add_sequence, moving, write_clip
from test_stylize_operator import footage, painted_key

compat = FRAMEWEAVER.operators.compat


def inbetweens(**options):
    return lambda fw, scene: fw.generate_inbetweens(scene, model="blend", **options)


def retime(**options):
    return inbetweens(mode="RETIME", **options)


def style(**options):
    return lambda fw, scene: fw.stylize_clip(scene, **{"footage": "shot", "seconds": 1.0, **options})


def animate(**options):
    def run(fw, scene):
        with compat.sequencer_override(scene):
            bpy.ops.sequencer.frameweaver_animate_loop(**{"frames": 4, "mask": "waves", **options})
    return run


def keys(scene, tmp_path, starts=(1, 5), channel=1, **options):
    return add_key_strips(scene, write_keyframes(str(tmp_path), **options), starts=list(starts), channel=channel)


def deselect(scene):
    for strip in compat.all_strips(scene.sequence_editor):
        strip.select = False


def missing_key_file(scene, tmp_path):
    keys(scene, tmp_path)
    os.unlink(tmp_path / "key_01.png")


def corrupt_key_file(scene, tmp_path):
    keys(scene, tmp_path)
    (tmp_path / "key_01.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not the rest of a PNG")


def exr_key_holding(*values):
    """Two EXR keyframes, the second holding ``values`` (NaN, inf) in its first pixels."""
    def setup(scene, tmp_path):
        paths = write_keyframes(str(tmp_path), fmt=ImageFormat(".exr", "float", 4))
        pixels = gradient_image(48, 64)
        pixels.reshape(-1)[: len(values)] = values
        os.unlink(paths[1])
        write_image(paths[1], pixels, ImageFormat(".exr", "float", 4))
        add_key_strips(scene, paths, starts=[1, 5])
    return setup


def exr_footage_holding_nan(scene, tmp_path):
    strip = shot_with_key(scene, tmp_path)
    pixels = gradient_image(48, 64, channels=3)
    pixels[5, 5, 1] = np.nan
    write_image(str(tmp_path / "shot" / "shot_0002.exr"), pixels, ImageFormat(".exr", "half", 3))
    strip.elements[2].filename = "shot_0002.exr"


def keys_of_two_sizes(scene, tmp_path):
    first = write_keyframes(str(tmp_path), count=1)
    write_image(str(tmp_path / "small.png"), gradient_image(40, 50), ImageFormat(".png", "uint8", 4))
    add_key_strips(scene, [*first, str(tmp_path / "small.png")], starts=[1, 5])


def one_frame_clip(scene, tmp_path):
    add_sequence(scene, write_clip(str(tmp_path / "clip"), moving(1)))


def clip_with_a_missing_frame(scene, tmp_path):
    add_sequence(scene, write_clip(str(tmp_path / "clip"), moving(3)))
    os.unlink(tmp_path / "clip" / "clip_0001.png")


def missing_movie(scene, tmp_path):
    os.makedirs(tmp_path / "movie")
    path = render_movie(scene, str(tmp_path / "movie"), 3)
    strip = compat.strips(scene.sequence_editor).new_movie(name="shot.mp4", filepath=path, channel=1, frame_start=1)
    strip.select = True
    os.unlink(path)


def two_clips(scene, tmp_path):
    paths = write_clip(str(tmp_path / "clip"), moving(4))
    add_sequence(scene, paths[:2], start=1)
    add_sequence(scene, paths[2:], start=10)


def shot_with_key(scene, tmp_path, frame=1):
    strip, frames = footage(scene, str(tmp_path / "shot"))
    painted_key(scene, str(tmp_path), frames[0], frame=frame)
    return strip


def style_model_of_another_kind(scene, tmp_path):
    shot_with_key(scene, tmp_path)
    with_torch("model_files.weights_of_another_kind", str(tmp_path / "other.safetensors"))


def motion_model_holding_nan(scene, tmp_path):
    still_and_mask(scene, tmp_path)
    with_torch("model_files.motion_model_holding_nan", str(tmp_path / "nan_motion.safetensors"))


def style_model_holding_inf(scene, tmp_path):
    shot_with_key(scene, tmp_path)
    with_torch("model_files.style_model_holding_inf", str(tmp_path / "inf_look.safetensors"))


def still_and_mask(scene, tmp_path):
    still(scene, str(tmp_path))
    motion_mask()


def tiny_still(scene, tmp_path):
    path = str(tmp_path / "tiny.png")
    write_image(path, gradient_image(16, 16, channels=3), ImageFormat(".png", "uint8", 3))
    compat.strips(scene.sequence_editor).new_image(name="tiny", filepath=path, channel=1, frame_start=1).select = True
    motion_mask()


def no_pytorch(scene, tmp_path):
    keys(scene, tmp_path)
    bpy.context.preferences.addons[MODULE].preferences.python_path = "/usr/bin/python3"


CASES = {
    # Generate Inbetweens
    "no keyframe selected": (lambda s, t: (keys(s, t), deselect(s)), inbetweens(),
                             "Select at least two image strips as keyframes"),
    "one keyframe selected": (lambda s, t: keys(s, t)[1].__setattr__("select", False), inbetweens(),
                              "Select at least two image strips as keyframes"),
    "keyframe file missing": (missing_key_file, inbetweens(), r"The image of 'key_01.png' is missing"),
    "keyframe file corrupt": (corrupt_key_file, inbetweens(), r"failed: Cannot read image .*key_01.png"),
    "EXR keyframe holding NaN": (exr_key_holding(np.nan, np.nan, np.nan), inbetweens(),
                                 r"failed: .*key_01.exr holds 3 non-finite pixel values \(NaN or infinite\)"),
    "EXR keyframe holding infinity": (exr_key_holding(np.inf, -np.inf), inbetweens(),
                                      r"failed: .*key_01.exr holds 2 non-finite pixel values"),
    "keyframes touch": (lambda s, t: keys(s, t, starts=(1, 2)), inbetweens(), "No empty frames between"),
    "keyframes of two sizes": (keys_of_two_sizes, inbetweens(), "is 50x40 but the first is 64x48"),
    "no free channel": (lambda s, t: keys(s, t, channel=128), inbetweens(), "No free channel above"),
    "output folder is a file": (lambda s, t: (keys(s, t), (t / "taken").write_text("x")),
                                lambda fw, s: fw.generate_inbetweens(s, model="blend", output_dir=str(
                                    bpy.path.abspath("//taken") + "/sub")), "Cannot write generated frames to"),
    # Retime Clip
    "one-frame retime": (one_frame_clip, retime(), "shows a single frame; there is no motion to retime"),
    "missing frame in a sequence": (clip_with_a_missing_frame, retime(), r"has 1 missing images, first .*clip_0001"),
    "missing movie": (missing_movie, retime(), r"The movie of 'shot.mp4' is missing"),
    "colour strip retimed": (lambda s, t: colour_strip(s), retime(), "Only image sequences and movies can be retimed"),
    "two clips retimed": (two_clips, retime(), "exactly one image-sequence or movie strip"),
    "target fps equal to the scene's": (lambda s, t: add_sequence(s, write_clip(str(t / "clip"), moving(3))), retime(retime_rate="FPS", target_fps=24.0),
                                        "not above the scene's 24 fps"),
    # Style
    "style model missing": (shot_with_key, style(model_file="/no/such/model.safetensors"),
                            "The trained model is missing: /no/such/model.safetensors"),
    "style model of another kind": (style_model_of_another_kind,
                                    lambda fw, s: fw.stylize_clip(s, footage="shot", model_file=str(
                                        bpy.path.abspath("//other.safetensors"))), r"failed: .*other.safetensors.* not a Frameweaver style model"),
    "footage frame holding NaN": (exr_footage_holding_nan, style(), r"failed: .*shot_0002.exr holds 1 non-finite"),
    "style model holding infinity": (style_model_holding_inf, lambda fw, s: fw.stylize_clip(
        s, footage="shot", model_file=bpy.path.abspath("//inf_look.safetensors")),
        r"failed: Refused to use .*inf_look.safetensors: 2 of its values are not finite"),
    "style mask that does not exist": (shot_with_key, style(mask="nope"), "No mask strip named 'nope'"),
    "footage that does not exist": (shot_with_key, style(footage="nope"), "No strip named 'nope'"),
    "footage that is a single image": (shot_with_key, style(footage="paint"), "'paint' is not footage"),
    "no painted keyframes": (lambda s, t: footage(s, str(t / "shot")), style(), "No painted keyframes above 'shot'"),
    "keyframe outside the footage": (lambda s, t: shot_with_key(s, t, frame=40), style(),
                                     "Keyframe 'paint' starts at frame 40, outside the footage"),
    # Animate Loop
    "Mask name that does not exist": (still_and_mask, animate(mask="nope"), "No Mask named 'nope'"),
    "no still selected": (lambda s, t: (still_and_mask(s, t), deselect(s)), animate(),
                          "Select the one image strip to animate"),
    "motion model missing": (still_and_mask, animate(motion_source="LEARNED", motion_model="/no/model.safetensors"),
                             r"The motion model /no/model.safetensors does not exist"),
    "motion model holding NaN": (motion_model_holding_nan, lambda fw, s: fw.loop_still(
        s, mask=bpy.data.masks["waves"], motion_source="LEARNED", motion_model=bpy.path.abspath("//nan_motion.safetensors")),
        r"failed: Cannot load the motion model: Refused to use .*nan_motion.safetensors: 1 of its values are not "
        r"finite \(NaN or infinite\)$"),
    "mask strip that does not exist": (still_and_mask, animate(mask_strip="nope"),
                                       "The motion mask 'nope' must be an image strip"),
    "one-frame loop": (still_and_mask, lambda fw, s: fw.loop_still(s, mask=bpy.data.masks["waves"], frames=1),
                       "frames must be a whole number from 2 to 100000, got 1"),
    "still under 32 pixels": (tiny_still, animate(), "is 16x16; a loop needs at least 32 pixels on each side"),
    # Numbers (nn/values.py): the audit's own examples, through the scripting API
    "count 0": (keys, inbetweens(mode="COUNT", count=0), r"^count must be a whole number from 1 to 100000, got 0$"),
    "count -3": (keys, inbetweens(mode="COUNT", count=-3), r"^count must be a whole number from 1 to 100000, got -3$"),
    "target fps NaN": (lambda s, t: add_sequence(s, write_clip(str(t / "clip"), moving(3))),
                       retime(retime_rate="FPS", target_fps=float("nan")),
                       r"^target_fps must be a finite number from 1 to 1000, got nan$"),
    "timing curve with a NaN point": (keys, inbetweens(timing="CUSTOM", timing_curve=[(0, 0), (0.5, float("nan")),
                                                                                      (1, 1)]),
                                      r"^timing_curve must be \(x, y\) points, each a finite number from 0 to 1, "
                                      r"got \(0.5, nan\)$"),
    "loop speed NaN": (still_and_mask, lambda fw, s: fw.loop_still(s, mask=bpy.data.masks["waves"],
                                                                    speed=float("nan")),
                       r"^speed must be a finite number from 0.01 to 100, got nan$"),
    "loop speed 0": (still_and_mask, lambda fw, s: fw.loop_still(s, mask=bpy.data.masks["waves"], speed=0),
                     r"^speed must be a finite number from 0.01 to 100, got 0$"),
    "loop speed -3": (still_and_mask, animate(speed=-3.0), r"speed must be a finite number from 0.01 to 100, got -3.0"),
    "style seconds 0": (shot_with_key, style(seconds=0), r"^seconds must be a finite number above 0 and at most "
                                                         r"36000, got 0$"),
    "style seconds -5": (shot_with_key, style(seconds=-5), r"^seconds must be a finite number above 0 and at most "
                                                           r"36000, got -5$"),
    "style seconds NaN": (shot_with_key, style(seconds=float("nan")), r"^seconds must be a finite number above 0 and "
                                                                      r"at most 36000, got nan$"),
    # The worker
    "PyTorch missing": (no_pytorch, inbetweens(), "PyTorch is not installed for the Python that runs the worker"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_and_changes_nothing(fw, scene, tmp_path, case):
    setup, act, message = CASES[case]
    setup(scene, tmp_path)
    with Unchanged(scene, tmp_path), pytest.raises((ValueError, RuntimeError), match=message):
        act(fw, scene)
    assert bpy.context.scene == scene  # Blender goes on


def test_there_are_at_least_40_kinds():
    assert len(CASES) >= 40


def test_a_labelme_file_given_as_hints_says_what_hints_expects(tmp_path):
    import json
    import subprocess
    import sys
    from conftest import ROOT
    write_image(str(tmp_path / "still.png"), gradient_image(64, 96, channels=3), ImageFormat(".png", "uint8", 3))
    labelme = tmp_path / "labelme.json"
    labelme.write_text(json.dumps({"shapes": [{"label": "water", "points": [[1, 1], [50, 1], [50, 40]]}]}))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "nn.loop", str(tmp_path / "still.png"), "--hints", str(labelme),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"error: --hints expects a JSON list of arrows [[x0, y0, x1, y1], ...] in pixels; "
                                   f"{labelme} is a labelme file: pass it with --polygons")
    assert not out.exists()

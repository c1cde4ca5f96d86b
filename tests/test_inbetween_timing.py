"""Timing of the inbetweens (Even, eases, a custom curve; per gap or for all gaps) on real Blender.

The cross-fade model needs no weights and shows key_a * (1 - t) + key_b * t, so the t each
inbetween was made at can be read back from its pixels and compared with Blender's own curves.
"""
import os

import bpy
import numpy as np
import pytest

from conftest import FRAMEWEAVER
from helpers import add_key_strips, write_keyframes
from nn.imageio import read_image

compat = FRAMEWEAVER.operators.compat
timing = FRAMEWEAVER.operators.timing
inbetween = FRAMEWEAVER.operators.inbetween
GAP = 5  # empty frames between keys at frames 1, 7 (and 13): x = 1/6 ... 5/6


def blender_easing(easing: str, xs) -> list[float]:
    """Blender's quadratic F-curve easing, keyed from 0 to 1 over 100 frames, at the times ``xs``."""
    holder = bpy.data.objects.new("timing probe", None)
    bpy.context.scene.collection.objects.link(holder)
    try:
        for frame, value in ((0, 0.0), (100, 1.0)):
            holder.location.x = value
            holder.keyframe_insert("location", index=0, frame=frame)
        action = holder.animation_data.action
        if hasattr(action, "fcurves"):  # before 5.0
            curve = action.fcurves[0]
        else:
            from bpy_extras import anim_utils
            curve = anim_utils.action_get_channelbag_for_slot(action, holder.animation_data.action_slot).fcurves[0]
        key = curve.keyframe_points[0]
        key.interpolation, key.easing = "QUAD", easing
        return [curve.evaluate(100 * x) for x in xs]
    finally:
        bpy.data.objects.remove(holder)
        bpy.data.actions.remove(action)


def shown_times(strip, keys) -> list[float]:
    """Per inbetween of the strip, the t of the cross-fade it shows (least squares over all pixels)."""
    folder = bpy.path.abspath(strip.directory)
    frames = [read_image(os.path.join(folder, e.filename))[0] for e in strip.elements]
    images = [read_image(path)[0] for path in keys]
    times, key = [], 0
    for frame in frames:
        if key + 1 < len(images) and np.array_equal(frame, images[key + 1]):
            key += 1
        if key + 1 == len(images) or np.array_equal(frame, images[key]):
            continue
        a, b = images[key], images[key + 1]
        times.append(float(((frame - a) * (b - a)).sum() / ((b - a) ** 2).sum()))
    return times


def generate(seq_ctx, scene, **options):
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_generate_inbetweens(model="blend", **options) == {"FINISHED"}
    return scene.sequence_editor.active_strip


def xs():
    return [j / (GAP + 1) for j in range(1, GAP + 1)]


def test_eases_are_blenders_fcurve_easings(fw):
    x = np.linspace(0, 1, 21)
    for name in ("EASE_IN", "EASE_OUT", "EASE_IN_OUT"):
        np.testing.assert_allclose([timing.EASES[name](v) for v in x], blender_easing(name, x), atol=1e-5)
    assert [timing.EASES["EVEN"](v) for v in x] == list(x)


def test_a_custom_curve_runs_through_its_points_and_levels_off_beyond_them(fw):
    curve = timing.custom_curve([(0.2, 0.0), (0.5, 0.8), (0.8, 1.0)])
    assert [curve(x) for x in (0.0, 0.2, 0.35, 0.5, 0.65, 0.9)] == pytest.approx([0.0, 0.0, 0.4, 0.8, 0.9, 1.0])
    # dips as small as the curve widget's automatic handles make are levelled, not refused
    dipping = timing.custom_curve([(0, 0), (0.5, 0.6), (0.6, 0.598), (1, 1)])
    assert dipping(0.6) == pytest.approx(0.6) and dipping(0.55) == pytest.approx(0.6)


@pytest.mark.parametrize("points, message", [
    ([(0, 0), (0.5, 0.9), (0.7, 0.3), (1, 1)], r"runs backwards between x = 0.50 and x = 0.70 \(it falls from 0.90 "
                                                r"to 0.30\): the inbetweens would move back towards the first key"),
    ([(0, 0), (0.6, 0.5), (0.4, 0.7), (1, 1)], "must be in order of x"),
    ([(0, 0), (0.5, 1.3), (1, 1)], r"timing_curve must be \(x, y\) points, each a finite number from 0 to 1, "
                                   r"got \(0.5, 1.3\)"),
    ([(0, 0)], "at least two"),
])
def test_unusable_custom_curves_are_explained(fw, points, message):
    with pytest.raises(ValueError, match=message):  # TimingError, or the validation layer's InvalidValue
        timing.custom_curve(points)


def test_timing_that_reaches_a_key_shows_the_key(fw):
    plan = inbetween.plan_gaps([inbetween.Key(1, 2), inbetween.Key(6, 7)], ["a", "b"])
    hold_at_both_ends = timing.custom_curve([(0, 0), (0.3, 0.0), (0.7, 1.0), (1, 1)])
    timed = timing.retime_frames(plan.frames, [hold_at_both_ends])
    # x = 1/5 ... 4/5: held on key a, then 0.25 and 0.75 of the way, then key b itself
    assert timed == [(0, 0, 0.0), (0, 0, 0.0), (0, 1, pytest.approx(0.25)), (0, 1, pytest.approx(0.75)),
                     (1, 1, 0.0), (1, 1, 0.0)]


def test_timing_for_all_gaps_and_one_keys_own(scene, seq_ctx, tmp_path):
    keys = write_keyframes(str(tmp_path), count=3)
    strips = add_key_strips(scene, keys, starts=[1, 1 + GAP + 1, 1 + 2 * (GAP + 1)])
    strips[1].frameweaver.timing = "EVEN"  # the second gap keeps even spacing
    strip = generate(seq_ctx, scene, timing="EASE_IN_OUT")
    assert len(strip.elements) == 2 * GAP + 3
    times = shown_times(strip, keys)
    np.testing.assert_allclose(times[:GAP], blender_easing("EASE_IN_OUT", xs()), atol=5e-3)
    np.testing.assert_allclose(times[GAP:], xs(), atol=5e-3)


def test_each_ease_in_fixed_count_mode(scene, seq_ctx, tmp_path):
    keys = write_keyframes(str(tmp_path))
    strips = add_key_strips(scene, keys, starts=[1, 3])
    for name in ("EASE_IN", "EASE_OUT"):
        for key in strips:  # the last result took the selection
            key.select = True
        strip = generate(seq_ctx, scene, mode="COUNT", count=GAP, timing=name)
        np.testing.assert_allclose(shown_times(strip, keys), blender_easing(name, xs()), atol=5e-3)


def timing_curve(seq_ctx, scene, points):
    """The curve widget's node group, made by Add Timing Curve, with extra points."""
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_add_timing_curve() == {"FINISHED"}
    group = scene.frameweaver.inbetween_timing_curve
    mapping = timing.curve_node(group).mapping
    for x, y in points:
        mapping.curves[0].points.new(x, y)
    mapping.update()
    return group, mapping


def test_custom_curve_from_the_panels_curve_widget(scene, seq_ctx, tmp_path):
    keys = write_keyframes(str(tmp_path))
    add_key_strips(scene, keys, starts=[1, 1 + GAP + 1])
    group, mapping = timing_curve(seq_ctx, scene, [(0.5, 0.8)])
    strip = generate(seq_ctx, scene, timing="CUSTOM", timing_curve=group.name)
    expected = [mapping.evaluate(mapping.curves[0], x) for x in xs()]
    np.testing.assert_allclose(shown_times(strip, keys), expected, atol=5e-3)
    assert expected[2] > 0.7  # the curve really is not even


def test_custom_curve_as_points_in_a_script(fw, scene, tmp_path):
    keys = write_keyframes(str(tmp_path))
    strips = add_key_strips(scene, keys, starts=[1, 1 + GAP + 1])
    points = [(0, 0), (0.5, 0.2), (1, 1)]
    strip = fw.generate_inbetweens(scene, model="blend", strips=strips, timing="CUSTOM", timing_curve=points)
    np.testing.assert_allclose(shown_times(strip, keys), np.interp(xs(), *zip(*points)), atol=5e-3)


def scene_state(scene, tmp_path):
    root = tmp_path / "frameweaver"
    return (sorted(s.name for s in compat.all_strips(scene.sequence_editor)),
            sorted(str(p) for p in root.rglob("*")) if root.exists() else [])


def test_a_curve_that_runs_backwards_is_refused_and_nothing_is_written(scene, seq_ctx, tmp_path):
    keys = write_keyframes(str(tmp_path))
    add_key_strips(scene, keys, starts=[1, 1 + GAP + 1])
    group, mapping = timing_curve(seq_ctx, scene, [(0.4, 0.9), (0.6, 0.2)])
    curve_before = [tuple(p.location) for p in mapping.curves[0].points]
    before = scene_state(scene, tmp_path)
    with pytest.raises(RuntimeError, match=r"custom timing curve runs backwards between x = 0.[34]\d and x = 0.6\d "
                                           r"\(it falls from 0.9\d to 0.[12]\d\): the inbetweens would move back "
                                           "towards the first key. Make the curve rise"):
        generate(seq_ctx, scene, timing="CUSTOM", timing_curve=group.name)
    assert scene_state(scene, tmp_path) == before == (sorted(os.path.basename(k) for k in keys), [])
    assert [tuple(p.location) for p in mapping.curves[0].points] == curve_before
    # a backwards curve that no gap uses is no reason to refuse
    assert generate(seq_ctx, scene, timing="EVEN", timing_curve=group.name)


def test_custom_timing_without_a_curve_is_refused(scene, seq_ctx, tmp_path):
    strips = add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 1 + GAP + 1])
    strips[0].frameweaver.timing = "CUSTOM"
    before = scene_state(scene, tmp_path)
    with pytest.raises(RuntimeError, match="Custom timing needs a curve: press 'Add Timing Curve'"):
        generate(seq_ctx, scene)
    assert scene_state(scene, tmp_path) == before

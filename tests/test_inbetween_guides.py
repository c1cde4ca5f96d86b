"""Guide strokes for hard gaps on real Blender: one Guide Mask per key strip, whose same-named layers pair up.

What the Blender side owes the worker is params["guides"]: per gap, point pairs in pixels of the
first key (top-left pixel centre at 0, 0). The worker that follows them (Key Motion) is tested in
test_inbetween_keymotion.py; here the jobs are read before they run, or use the cross-fade.
"""
import bpy
import numpy as np
import pytest

from conftest import FRAMEWEAVER
from helpers import add_key_strips, guide_mask, rasterized, render_mask, write_keyframes

compat = FRAMEWEAVER.operators.compat
guides = FRAMEWEAVER.operators.guides
inbetween = FRAMEWEAVER.operators.inbetween
job_runner = FRAMEWEAVER.operators.job_runner
WIDTH, HEIGHT = 64, 48  # write_keyframes' size


def test_guide_splines_follow_the_curves_blender_renders(scene, tmp_path):
    """Splines are read as the Bezier curves Blender draws (handles included), not as their control polygons."""
    width, height = 96, 64
    diamond = [(48, 8), (80, 32), (48, 56), (16, 32)]
    mask = guide_mask("round", {"blob": [diamond]}, size=(width, height), handles="AUTO", cyclic=True)
    rendered = np.pad(render_mask(scene, mask, width, height, str(tmp_path)), 1, mode="edge")

    def clear(test):  # pixels whose 3x3 neighbourhood all passes: away from Blender's antialiased edge
        return np.all([test(rendered[1 + dy:height + 1 + dy, 1 + dx:width + 1 + dx])
                       for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)

    filled, empty = clear(lambda v: v > 0.9), clear(lambda v: v < 0.1)

    def misplaced(inside):  # pixels clearly filled by Blender that we leave out, or clearly empty that we fill
        return int((filled & ~inside).sum() + (empty & inside).sum())

    line = guides.spline_line(mask.layers["blob"].splines[0], width, height)
    assert misplaced(rasterized([line], width, height)) == 0
    assert misplaced(rasterized([diamond], width, height)) > 100  # the control polygon is far off


def keys_with_masks(scene, tmp_path, masks, starts=(1, 5, 9)):
    strips = add_key_strips(scene, write_keyframes(str(tmp_path), count=len(masks)), starts=starts[:len(masks)])
    for strip, mask in zip(strips, masks):
        strip.frameweaver.guide_mask = mask
    return strips


def prepared_params(scene, **options):
    """The worker spec of a job, read as it starts; the job is then cancelled, leaving nothing."""
    scene_job = inbetween.prepare(scene, **options)
    params = scene_job.job.params
    scene_job.cancel()
    with pytest.raises(job_runner.JobFailed, match="cancelled"):
        scene_job.complete()
    return params


def test_guides_reach_the_worker_as_point_pairs(scene, tmp_path):
    arm_a, arm_b = [(10, 10), (42, 10)], [(20, 30), (52, 30)]  # 32 px long: pairs every 8 px
    dot_a, dot_b = [(5, 40)], [(7, 41)]  # a spline of one point is a point
    keys_with_masks(scene, tmp_path, [
        guide_mask("on key 0", {"arm": [arm_a], "dot": [dot_a]}),
        guide_mask("on key 1", {"arm": [arm_b], "dot": [dot_b]}),
        None,  # the second gap has no guides, and key 1's strokes are matched on key 0
    ])
    params = prepared_params(scene, model="keymotion")
    assert set(params["guides"]) == {"0"}
    pairs = np.array(params["guides"]["0"])
    arm = np.array([[10 + 8 * j, 10, 20 + 8 * j, 30] for j in range(5)]) - 0.5  # corner to pixel-centre origin
    np.testing.assert_allclose(pairs, np.concatenate([arm, [[4.5, 39.5, 6.5, 40.5]]]), atol=1e-4)


def test_guides_on_a_key_of_another_size_are_placed_on_the_first_keys_pixels(scene, tmp_path):
    (tmp_path / "big").mkdir()
    strips = keys_with_masks(scene, tmp_path, [guide_mask("small", {"arm": [[(8, 8), (24, 8)]]})], starts=(1,))
    big = write_keyframes(str(tmp_path / "big"), count=1, size=(2 * HEIGHT, 2 * WIDTH))  # drawn at twice the size
    strips += add_key_strips(scene, big, starts=[5], channel=2)
    strips[1].frameweaver.guide_mask = guide_mask("big", {"arm": [[(32, 48), (64, 48)]]}, size=(2 * WIDTH, 2 * HEIGHT))
    pairs = np.array(prepared_params(scene, model="keymotion", fit_sizes=True)["guides"]["0"])
    np.testing.assert_allclose(pairs[[0, -1]], np.array([[8, 8, 16, 24], [24, 8, 32, 24]]) - 0.5, atol=1e-4)


def test_guides_with_a_model_that_ignores_them_say_so(fw, scene, tmp_path, capsys):
    strips = keys_with_masks(scene, tmp_path, [guide_mask("a", {"arm": [[(8, 8), (24, 8)]]}),
                                               guide_mask("b", {"arm": [[(9, 8), (25, 8)]]})])
    assert fw.generate_inbetweens(scene, model="blend", strips=strips)
    assert "Guide strokes are followed by Key Motion only; Cross-fade ignored them" in capsys.readouterr().err


def scene_state(scene, tmp_path):
    root = tmp_path / "frameweaver"
    masks = {m.name: [(layer.name, [[tuple(p.co) for p in s.points] for s in layer.splines]) for layer in m.layers]
             for m in bpy.data.masks}
    return (sorted(s.name for s in compat.all_strips(scene.sequence_editor)), masks,
            sorted(str(p) for p in root.rglob("*")) if root.exists() else [])


@pytest.mark.parametrize("case, message", [
    ("one key only", r"The guide stroke 'leg' is drawn only on 'key_00.png' \(Guide Mask 'a'\): draw a layer named "
                     r"'leg' in the Guide Mask of 'key_01.png' too, or delete it"),
    ("neighbour has no mask", r"The guide stroke 'arm' is drawn only on 'key_01.png' \(Guide Mask 'b'\): draw a layer "
                              r"named 'arm' in the Guide Mask of 'key_00.png' too"),
    ("spline counts differ", r"The guide stroke 'arm' has 2 spline\(s\) on 'key_00.png' but 1 on 'key_01.png'"),
    ("one mask for both", r"'key_00.png' and 'key_01.png' use the same Guide Mask 'a'; draw each key's guide strokes "
                          r"in a Mask of its own"),
])
def test_unmatched_guides_are_refused_and_nothing_is_written(scene, seq_ctx, tmp_path, case, message):
    arm = [(8, 8), (24, 8)]
    if case == "one key only":
        masks = [guide_mask("a", {"arm": [arm], "leg": [arm]}), guide_mask("b", {"arm": [arm]})]
    elif case == "neighbour has no mask":
        masks = [None, guide_mask("b", {"arm": [arm]})]
    elif case == "spline counts differ":
        masks = [guide_mask("a", {"arm": [arm, arm]}), guide_mask("b", {"arm": [arm]})]
    else:
        masks = [guide_mask("a", {"arm": [arm]})] * 2
    keys_with_masks(scene, tmp_path, masks)
    before = scene_state(scene, tmp_path)
    with seq_ctx(scene), pytest.raises(RuntimeError, match=message):
        bpy.ops.sequencer.frameweaver_generate_inbetweens(model="keymotion")
    assert scene_state(scene, tmp_path) == before and before[2] == []


def test_hidden_layers_are_not_guides(scene, tmp_path):
    hidden = guide_mask("a", {"arm": [[(8, 8), (24, 8)]], "sketch": [[(1, 1), (3, 3)]]})
    hidden.layers["sketch"].hide_render = True  # as the loop's strokes: a layer left out of renders is left out
    keys_with_masks(scene, tmp_path, [hidden, guide_mask("b", {"arm": [[(9, 8), (25, 8)]]})])
    assert len(prepared_params(scene, model="keymotion")["guides"]["0"]) == 3


def test_the_all_identical_report(fw):
    assert inbetween.cut_warning({"all_identical": True, "cuts": [], "repeated_frames": 0}, ["a", "b"]) == \
        "All keyframes are identical: wrote holds"

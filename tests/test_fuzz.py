"""Property-based fuzzing (Hypothesis) of the public numbers on every surface: the scripting API, the
operators and the command lines. Values include NaN, ±inf, 0, negatives, huge numbers and wrong types.

Each call either takes the value (the job starts with it; it is then cancelled, and nothing stays) or
refuses it with the validation layer's one message, the scene and the files unchanged. The oracle here
restates every range by hand, so a wrong rule in nn/values.py fails. Cases are counted, and the total is
printed in the test summary ("Fuzz cases: N"). Examples are derandomized, so CI runs the same cases.
"""
import math
import os

import bpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FRAMEWEAVER, FUZZ_CASES, FUZZ_KINDS
from helpers import Unchanged, add_key_strips, write_keyframes
from test_loop_operator import motion_mask, still
from test_stylize_operator import footage, painted_key
from nn import values as cli_values

compat = FRAMEWEAVER.operators.compat
job_runner = FRAMEWEAVER.operators.job_runner
values = FRAMEWEAVER.nn.values  # as Blender's side imports it; the command lines import the top-level nn

EDGES = [math.nan, math.inf, -math.inf, 0, 0.0, -0.0, -1, -3, 0.001, 0.5, 1, 1.0, 2, 24, 255, 1000, 1e308, -1e308,
         10**12, 2**63, True, False, None, "3", "nan", "", [], (), {}, b"1", 1 + 2j]
NUMBERS = st.one_of(st.sampled_from(EDGES), st.integers(-10**7, 10**7), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=4), st.integers(0, 300), st.floats(0, 2))  # the last two: often valid

FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def whole(low, high):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def real(low, high, above=False, below=False):
    def ok(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        return (v > low if above else v >= low) and (v < high if below else v <= high)
    return ok


# The ranges, restated independently of nn/values.py: (parameter, acceptable?).
ORACLE = {
    "count": whole(1, 100_000), "target_fps": real(1, 1000), "frames": whole(2, 100_000), "speed": real(0.01, 100),
    "dusk": real(0, 1), "seconds": real(0, 36_000, above=True), "steps": whole(1, 1_000_000),
    "seed": whole(0, 2**31 - 1), "batch": whole(1, 1024), "learning_rate": real(0, 1, above=True),
    "frame_step": whole(1, 1000), "threads": whole(0, 1024), "time": real(0, 1, above=True, below=True),
    "flow_scale": lambda v: real(0, 1)(v) and float(v) in (0.0, 0.25, 0.5, 1.0),
    "curve_point": real(0, 1), "denoising_steps": whole(1, 1000), "guidance": real(0, 30),
    "chunks": whole(0, 100_000), "retries": whole(0, 100),
}


def kind_of(value, key) -> str:
    """Which kind of bad value ``value`` is, for the count of kinds refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "wrong type"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "infinite"
    if isinstance(value, float) and key in WHOLE:
        return "fraction where a whole number goes"
    low = values.RULES[key].low if key in values.RULES else 0.0
    return "too small (0, negative)" if value <= low else "too large or between the allowed values"


WHOLE = {"count", "frames", "seed", "steps", "batch", "frame_step", "threads", "denoising_steps", "chunks", "retries"}


def refused_kind(surface, value, key):
    FUZZ_KINDS.add((surface, kind_of(value, key)))


def count_case(surface, taken=False):
    """One case run on ``surface``; ``taken``: the value was valid and a job started with it."""
    FUZZ_CASES[surface] = FUZZ_CASES.get(surface, 0) + 1
    if taken:
        FUZZ_CASES["taken"] = FUZZ_CASES.get("taken", 0) + 1


def attempt(scene, folder, surface, key, value, start, started_with=None, shown=None):
    """Start a job with ``value``; taken: it started with the value (then cancelled); refused: the layer's words.

    ``started_with(params, value)`` finds the value in the job (None: where the job turns it into frame times);
    ``shown``: what the refusal names when ``value`` is one part of it (a curve's point, a colour)."""
    count_case(surface, taken=ORACLE[key](value))
    with Unchanged(scene, folder):
        if ORACLE[key](value):
            scene_job = start(value)
            try:
                assert started_with is None or started_with(scene_job.job.params, value) == value
            finally:
                scene_job.cancel()
                with pytest.raises(job_runner.JobFailed, match="cancelled; nothing was changed"):
                    scene_job.complete()
        else:
            with pytest.raises(values.InvalidValue) as refused:
                start(value)
            assert str(refused.value).startswith(f"{surface.split('.')[-1]} must be ")
            assert str(refused.value).endswith(f", got {value if shown is None else shown(value)!r}")
            refused_kind(surface, value, key)


# --- The scripting API ---------------------------------------------------------------------------------------


@pytest.fixture
def keys_scene(scene, tmp_path):
    add_key_strips(scene, write_keyframes(str(tmp_path), size=(4, 4)), starts=[1, 5])
    return scene


@pytest.mark.parametrize("key, started_with", [
    ("count", lambda p, v: sum(1 for a, b, _ in p["frames"] if a != b)),  # two keys: one gap of ``count``
    ("target_fps", lambda p, v: v if len(p["frames"]) == 5 else None),  # checked always, used by Retime only
    ("flow_scale", lambda p, v: p["flow_scale"]),
    ("seed", lambda p, v: v),  # the generative model's three: checked for every model, used by that one
    ("denoising_steps", lambda p, v: v),
    ("guidance", lambda p, v: v),
])
def test_inbetween_numbers(fw, keys_scene, tmp_path, key, started_with):
    inbetween = FRAMEWEAVER.operators.inbetween
    name = "steps" if key == "denoising_steps" else key

    @FUZZ
    @given(NUMBERS)
    def run(value):
        attempt(keys_scene, tmp_path, f"generate_inbetweens.{name}", key, value,
                lambda v: inbetween.prepare(keys_scene, model="blend", mode="COUNT", **{name: v}), started_with)

    run()


def test_timing_curve_points(fw, keys_scene, tmp_path):
    inbetween = FRAMEWEAVER.operators.inbetween

    @FUZZ
    @given(NUMBERS)
    def run(value):
        attempt(keys_scene, tmp_path, "generate_inbetweens.timing_curve", "curve_point", value,
                lambda v: inbetween.prepare(keys_scene, model="blend", timing="CUSTOM",
                                            timing_curve=[(0, 0), (0.5, v), (1, 1)]),
                shown=lambda v: (0.5, v))

    run()


@pytest.fixture
def loop_scene(scene, tmp_path):
    still(scene, str(tmp_path))
    motion_mask()
    return scene


@pytest.mark.parametrize("key", ["frames", "speed", "dusk"])
def test_loop_numbers(fw, loop_scene, tmp_path, key):
    loop = FRAMEWEAVER.operators.loop

    @FUZZ
    @given(NUMBERS)
    def run(value):
        attempt(loop_scene, tmp_path, f"loop_still.{key}", key, value,
                lambda v: loop.prepare(loop_scene, mask=bpy.data.masks["waves"], **{key: v}),
                lambda p, v: p[key] if key != "dusk" else p["appearance"]["strength"] if p["appearance"] else 0.0)

    run()


def test_loop_light_colour(fw, loop_scene, tmp_path):
    loop = FRAMEWEAVER.operators.loop

    @FUZZ
    @given(NUMBERS)
    def run(value):
        attempt(loop_scene, tmp_path, "loop_still.dusk_colour", "dusk", value,
                lambda v: loop.prepare(loop_scene, mask=bpy.data.masks["waves"], dusk=0.5, dusk_colour=(0.2, v, 0.4)),
                lambda p, v: p["appearance"]["target_rgb"][1], shown=lambda v: (0.2, v, 0.4))

    run()


def test_style_seconds(fw, scene, tmp_path):
    stylize = FRAMEWEAVER.operators.stylize
    _, frames = footage(scene, str(tmp_path / "shot"))
    painted_key(scene, str(tmp_path), frames[0], frame=1)

    @FUZZ
    @given(NUMBERS)
    def run(value):
        attempt(scene, tmp_path, "stylize_clip.seconds", "seconds", value,
                lambda v: stylize.prepare(scene, footage="shot", seconds=v), lambda p, v: p["seconds"])

    run()


def test_training_steps(fw, scene, tmp_path):
    loop = FRAMEWEAVER.operators.loop
    (tmp_path / "clips" / "a").mkdir(parents=True)

    @FUZZ
    @given(NUMBERS)
    def run(value):
        attempt(scene, tmp_path, "train_motion_model.steps", "steps", value,
                lambda v: loop.prepare_training(scene, clips=str(tmp_path / "clips"), steps=v),
                lambda p, v: p["steps"])

    run()


# --- The operators: Blender converts the value to the property's type first, then the same layer decides -----


@pytest.mark.parametrize("operator, key, options", [
    ("frameweaver_generate_inbetweens", "count", {"model": "blend", "mode": "COUNT"}),
    ("frameweaver_generate_inbetweens", "target_fps", {"model": "blend", "mode": "RETIME", "retime_rate": "FPS"}),
    ("frameweaver_animate_loop", "frames", {"mask": "waves"}),
    ("frameweaver_animate_loop", "speed", {"mask": "waves"}),
    ("frameweaver_train_propagate", "seconds", {"footage": "shot"}),
    ("frameweaver_train_loop_motion", "steps", {}),
])
def test_operator_numbers_out_of_range_are_refused_in_the_same_words(loop_scene, tmp_path, operator, key, options):
    """Only values the property can hold (Blender refuses other types itself, with a TypeError); the valid ones
    are taken by the API tests above, so here every value drawn is out of range."""
    scene = loop_scene
    run_op = getattr(bpy.ops.sequencer, operator)
    prop = run_op.get_rna_type().properties[key]
    floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
    drawn = (st.integers(-2**31, 2**31 - 1) if prop.type == "INT" else floats).filter(lambda v: not ORACLE[key](v))

    @FUZZ
    @given(drawn)
    def run(value):
        count_case(f"operator {operator}.{key}")
        with Unchanged(scene, tmp_path), compat.sequencer_override(scene), pytest.raises(RuntimeError) as refused:
            run_op(**options, **{key: value})
        shown = float(value) if prop.type == "FLOAT" else value
        assert f"{key} must be " in str(refused.value)
        if not math.isnan(shown) and abs(shown) < 3e38:  # Blender keeps floats within its float32 range
            assert str(refused.value).rstrip().endswith(f", got {shown!r}")
        refused_kind(f"operator {operator}.{key}", value, key)

    run()


# --- The command lines: the same rule, read from the text, in argparse's frame ---------------------------------

TEXTS = st.one_of(st.sampled_from(["nan", "inf", "-inf", "0", "-0", "-3", "0.5", "1", "2", "1e308", "1e400", "3.5",
                                   "abc", "", "0x10", "1_000", " 7 "]),
                  st.integers(-10**7, 10**7).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr))


def parsers():
    from nn.inbetween.__main__ import parse_args as inbetween_args
    from nn.loop.__main__ import parse_args as loop_args
    from nn.loop.train import parse_args as train_args
    from nn.stylize.__main__ import parse_args as stylize_args
    return {
        # --option=TEXT, so a text starting with "-" is the option's value, not another option
        "nn.inbetween --count": (lambda t: inbetween_args(["a", "b", "--out=o", f"--count={t}"]).count, "count"),
        "nn.inbetween --times": (lambda t: inbetween_args(["a", "b", "--out=o", f"--times={t}"]).times[0], "time"),
        "nn.inbetween --steps": (lambda t: inbetween_args(["a", "b", "--out=o", f"--steps={t}"]).steps,
                                 "denoising_steps"),
        "nn.inbetween --guidance": (lambda t: inbetween_args(["a", "b", "--out=o", f"--guidance={t}"]).guidance,
                                    "guidance"),
        "nn.inbetween --chunks": (lambda t: inbetween_args(["a", "b", "--out=o", f"--chunks={t}"]).chunks, "chunks"),
        "nn.inbetween --retries": (lambda t: inbetween_args(["a", "b", "--out=o", f"--retries={t}"]).retries,
                                   "retries"),
        "nn.loop --frames": (lambda t: loop_args(["i", "--out=o", f"--frames={t}"]).frames, "frames"),
        "nn.loop --speed": (lambda t: loop_args(["i", "--out=o", f"--speed={t}"]).speed, "speed"),
        "nn.loop --seed": (lambda t: loop_args(["i", "--out=o", f"--seed={t}"]).seed, "seed"),
        "nn.stylize --seconds": (lambda t: stylize_args(["--frames=f", "--out=o", f"--seconds={t}"]).seconds,
                                 "seconds"),
        "nn.loop.train --steps": (lambda t: train_args(["c", "--out=o", f"--steps={t}"]).steps, "steps"),
        "nn.loop.train --batch": (lambda t: train_args(["c", "--out=o", f"--batch={t}"]).batch, "batch"),
        "nn.loop.train --lr": (lambda t: train_args(["c", "--out=o", f"--lr={t}"]).lr, "learning_rate"),
        "nn.loop.train --step": (lambda t: train_args(["c", "--out=o", f"--step={t}"]).frames_step, "frame_step"),
        "nn.loop.train --threads": (lambda t: train_args(["c", "--out=o", f"--threads={t}"]).threads, "threads"),
        "nn.loop.train --seed": (lambda t: train_args(["c", "--out=o", f"--seed={t}"]).seed, "seed"),
    }


def as_number(text, whole_number):
    try:
        return int(text) if whole_number else float(text)
    except ValueError:
        return text


@pytest.mark.parametrize("surface", list(parsers()))
def test_command_line_numbers(surface, tmp_path):
    parse, key = parsers()[surface]
    before = sorted(os.listdir(tmp_path))

    @settings(FUZZ, max_examples=300)
    @given(TEXTS)
    def run(text):
        count_case(surface)
        value = as_number(text, key in WHOLE)
        if ORACLE[key](value):
            assert parse(text) == value
            return
        with pytest.raises(cli_values.InvalidArgument) as refused:  # run_command prints it as "error: ..."
            parse(text)
        assert str(refused.value).startswith(f"{surface.split()[-1]} must be ")
        assert str(refused.value).endswith(f", got {value!r}")
        refused_kind(surface, value, key)

    run()
    assert sorted(os.listdir(tmp_path)) == before  # parsing writes nothing


def test_a_refused_option_is_one_line_and_writes_nothing(tmp_path):
    """The audit's `nn.loop --speed nan` (it left an empty output folder), through the real command."""
    import subprocess
    import sys
    from conftest import ROOT
    from helpers import gradient_image
    from nn.imageio import ImageFormat, write_image
    write_image(str(tmp_path / "still.png"), gradient_image(64, 96, channels=3), ImageFormat(".png", "uint8", 3))
    (tmp_path / "hints.json").write_text("[[10, 30, 40, 30]]")
    done = subprocess.run([sys.executable, "-m", "nn.loop", str(tmp_path / "still.png"), "--hints",
                           str(tmp_path / "hints.json"), "--speed", "nan", "--out", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: --speed must be a finite number from 0.01 to 100, got nan"
    assert sorted(os.listdir(tmp_path)) == ["hints.json", "still.png"]


def test_every_rule_is_fuzzed():
    assert set(values.RULES) - {"colour"} <= set(ORACLE)

"""The smaller rough edges an audit found (issue 26, Found 6), each made for real: the message, and that nothing
was written or changed."""
import os

import bpy
import numpy as np
import pytest

from helpers import Unchanged, add_key_strips, gradient_image, tree_state, write_keyframes
from nn.cli import run_command
from nn.imageio import ImageFormat, read_image, write_image
from test_faults import small_disk  # noqa: F401  (a fixture: a 64 KB tmpfs)

RGB, RGBA = ImageFormat(".png", "uint8", 3), ImageFormat(".png", "uint8", 4)


def command(main, *argv):
    """Run a command line's main as `python -m ...` would; returns its exit message ('' on success)."""
    try:
        run_command(lambda: main([str(a) for a in argv]))
    except SystemExit as ended:
        return "" if ended.code in (0, None) else str(ended.code)
    return ""


def inbetween_cli(*argv):
    from nn.inbetween.__main__ import main
    return command(main, *argv)


@pytest.mark.parametrize("times, shown", [(["0.5", "0.5"], "0.500"), (["0.25", "0.5", "0.5001"], "0.500")])
def test_a_time_given_twice_is_refused_before_anything_is_written(tmp_path, times, shown):
    keys = write_keyframes(str(tmp_path))
    before = tree_state(str(tmp_path))
    message = inbetween_cli(*keys, "--model", "blend", "--out", tmp_path / "out", "--times", *times)
    assert message == (f"--times gives {shown} more than once (to 3 decimals, the precision of the file names); "
                       "give each time once")
    assert tree_state(str(tmp_path)) == before


def loop_cli(tmp_path, out):
    from nn.loop.__main__ import main
    write_image(str(tmp_path / "still.png"), gradient_image(64, 96, channels=3), RGB)
    (tmp_path / "hints.json").write_text("[[10, 30, 40, 30]]")
    return command(main, tmp_path / "still.png", "--hints", tmp_path / "hints.json", "--frames", 4, "--out", out)


def stylize_cli(tmp_path, out, *extra):
    from nn.stylize.__main__ import main
    for index in range(3 if not (tmp_path / "frames").exists() else 0):
        (tmp_path / "frames").mkdir(exist_ok=True)
        write_image(str(tmp_path / "frames" / f"{index:03d}.png"), gradient_image(48, 64, 3, shift=index), RGB)
    return command(main, "--frames", tmp_path / "frames", "--seconds", 0.5, "--out", out, "--offline",
                   "--cache-dir", tmp_path / "cache", *extra)


@pytest.mark.parametrize("which", ["nn.inbetween", "nn.loop", "nn.stylize"])
def test_out_naming_an_existing_file_is_refused_by_name(tmp_path, which):
    out = tmp_path / "taken.txt"
    out.write_text("the user's file")
    keys = write_keyframes(str(tmp_path))
    write_image(str(tmp_path / "paint.png"), gradient_image(48, 64, 3), RGB)
    before = tree_state(str(tmp_path))
    if which == "nn.inbetween":
        message = inbetween_cli(*keys, "--model", "blend", "--out", out)
    elif which == "nn.loop":
        message = loop_cli(tmp_path, out)
        before = [e for e in tree_state(str(tmp_path)) if e[0] == "taken.txt"]
    else:
        message = stylize_cli(tmp_path, out, "--key", f"0={tmp_path / 'paint.png'}")
        before = [e for e in tree_state(str(tmp_path)) if e[0] == "taken.txt"]
    assert message == f"error: --out {out} is a file; give a folder for the outputs"
    after = tree_state(str(tmp_path))
    assert (after if which == "nn.inbetween" else [e for e in after if e[0] == "taken.txt"]) == before
    assert out.read_text() == "the user's file"


def test_an_rgb_key_beside_an_rgba_key_keeps_the_alpha(fw, scene, tmp_path):
    rgb, rgba = str(tmp_path / "a.png"), str(tmp_path / "b.png")
    write_image(rgb, gradient_image(48, 64, 3), RGB)
    b = gradient_image(48, 64, 4, shift=4)
    write_image(rgba, b, RGBA)
    add_key_strips(scene, [rgb, rgba], starts=[1, 5])
    strip = fw.generate_inbetweens(scene, model="blend")
    folder = bpy.path.abspath(strip.directory)
    middle, fmt = read_image(os.path.join(folder, strip.elements[2].filename))  # t = 0.5
    assert fmt.channels == 4
    b_alpha = read_image(rgba)[0][..., 3]
    np.testing.assert_allclose(middle[..., 3], 0.5 * 1.0 + 0.5 * b_alpha, atol=1.5 / 255)
    assert np.ptp(middle[..., 3]) > 0.2  # the alpha is the key's, not a flat opaque channel


@pytest.mark.parametrize("mode", ["GAPS", "COUNT"])
def test_the_same_strip_given_twice_is_refused(fw, scene, tmp_path, mode):
    first, second = add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 5])
    with Unchanged(scene, tmp_path), pytest.raises(ValueError) as refused:
        fw.generate_inbetweens(scene, model="blend", mode=mode, strips=[first, second, first])
    assert str(refused.value) == "'key_00.png' is given more than once; give each keyframe strip once"


def test_a_full_system_temp_folder_names_the_disk(fw, scene, tmp_path, small_disk, monkeypatch):  # noqa: F811
    import tempfile
    filler = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)  # fill the disk for real
    try:
        while os.write(filler, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(filler)
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))  # the system temp folder, as TMPDIR sets it
    add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 5])
    with Unchanged(scene, tmp_path), Unchanged(scene, small_disk), pytest.raises(RuntimeError) as failed:
        fw.generate_inbetweens(scene, model="blend")
    message = str(failed.value)
    assert message.startswith(f"The disk is full: the job's scratch files cannot be written in the system temp "
                              f"folder {small_disk} (0.0 MB free)")
    assert "TMPDIR" in message and "Worker Python" not in message


def test_stylize_counts_keys_from_0_as_its_command_line_does(tmp_path):
    write_image(str(tmp_path / "paint.png"), gradient_image(48, 64, 3), RGB)
    out = tmp_path / "out"
    message = stylize_cli(tmp_path, out, "--key", f"99={tmp_path / 'paint.png'}")
    assert message == ("error: Keyframe paint.png is for frame index 99 (counting from 0), but the footage has "
                       "3 frames (indices 0-2)")
    assert not out.exists()  # a failed run leaves no empty output folder


def test_stylize_on_the_command_line_offers_its_own_fit_sizes(tmp_path):
    write_image(str(tmp_path / "paint.png"), gradient_image(24, 32, 3), RGB)
    out = tmp_path / "out"
    message = stylize_cli(tmp_path, out, "--key", f"0={tmp_path / 'paint.png'}")
    assert message == "error: Keyframe paint.png is 32x24 but the footage is 64x48. Pass --fit-sizes to resize it."
    assert not out.exists()
    assert stylize_cli(tmp_path, out, "--key", f"0={tmp_path / 'paint.png'}", "--fit-sizes") == ""
    assert sorted(os.listdir(out)) == ["000.png", "001.png", "002.png", "model.safetensors"]


def test_missing_weights_without_weights_dir_say_how_to_give_one(tmp_path):
    keys = write_keyframes(str(tmp_path))
    message = inbetween_cli(*keys, "--model", "rife-v4.25", "--out", tmp_path / "out", "--offline",
                            "--cache-dir", tmp_path / "cache")
    assert message.startswith("error: Weights 'rife-v4.25' are not available: online access is off. Save flownet.pkl")
    assert message.endswith("as FOLDER/rife-v4.25/flownet.pkl and pass --weights-dir FOLDER, or run without "
                            "--offline to download it")
    assert "the folder given as --weights-dir" not in message and not (tmp_path / "out").exists()

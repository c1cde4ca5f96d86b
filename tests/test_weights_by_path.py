"""Weights given by path (`nn.inbetween --weights`, Apply Model's style model): a truncated, corrupt or unsafe
file gets one line that names it, never torch's advice to load with weights_only=False; nothing is written."""
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from conftest import ROOT
from helpers import Unchanged, tree_state, write_keyframes
from nn import hub
from nn.cli import run_command
from nn.inbetween.__main__ import main as inbetween_main


class Payload:
    """Pickled, it would open (create) ``marker`` when loaded without weights_only."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def truncated(path, keep=0.5):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: int(len(data) * keep)])
    return path


@pytest.fixture(scope="module")
def genuine():
    """The published RIFE v4.25 tensors (from the project's weights folder)."""
    from fetch_weights import WEIGHTS_DIR, ensure
    ensure()
    path = str(WEIGHTS_DIR / "rife-v4.25" / "flownet.pkl")
    return path, torch.load(path, map_location="cpu", weights_only=True)


def bad_file(kind, folder, genuine):
    folder = str(folder)
    if kind == "truncated safetensors":
        save_file({"w": torch.ones(4096)}, os.path.join(folder, "w.safetensors"))
        return truncated(os.path.join(folder, "w.safetensors")), "is not a complete safetensors file"
    if kind == "truncated checkpoint":
        torch.save({"w": torch.ones(4096)}, os.path.join(folder, "w.pkl"))
        return truncated(os.path.join(folder, "w.pkl")), "is not a complete checkpoint"
    if kind == "truncated legacy pickle":
        torch.save({"w": torch.ones(4096)}, os.path.join(folder, "w.pth"), _use_new_zipfile_serialization=False)
        return truncated(os.path.join(folder, "w.pth")), "is not a complete checkpoint"
    if kind == "empty file":
        open(os.path.join(folder, "w.pkl"), "wb").close()
        return os.path.join(folder, "w.pkl"), "is not a complete checkpoint"
    if kind == "pickle holding code":
        torch.save({"w": Payload(os.path.join(folder, "pwned"))}, os.path.join(folder, "w.pkl"))
        return os.path.join(folder, "w.pkl"), "it holds Python code (io.open), not only tensors"
    if kind == "other tensors":
        save_file({"w": torch.ones(4)}, os.path.join(folder, "w.safetensors"))
        return os.path.join(folder, "w.safetensors"), "Not a rife-v4.25 checkpoint: missing"
    if kind == "NaN weight":
        tensors = {k: v.clone().contiguous() for k, v in genuine[1].items()}
        next(v for v in tensors.values() if v.is_floating_point()).view(-1)[0] = float("nan")
        save_file(tensors, os.path.join(folder, "w.safetensors"))
        return os.path.join(folder, "w.safetensors"), "1 of its values are not finite"
    raise AssertionError(kind)


KINDS = ["truncated safetensors", "truncated checkpoint", "truncated legacy pickle", "empty file",
         "pickle holding code", "other tensors", "NaN weight"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_weights_file_on_the_command_line_is_one_line_naming_it(kind, tmp_path, genuine):
    (tmp_path / "keys").mkdir()
    keys = write_keyframes(str(tmp_path / "keys"))
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    path, expected = bad_file(kind, weights_dir, genuine)
    out = tmp_path / "out"
    before = tree_state(str(tmp_path))
    argv = [*keys, "--model", "rife-v4.25", "--weights", path, "--out", str(out), "--offline",
            "--cache-dir", str(tmp_path / "cache")]
    with pytest.raises(SystemExit) as ended:
        run_command(lambda: inbetween_main(argv))
    message = str(ended.value.code)
    assert message.startswith("error: ") and path in message and expected in message
    assert "\n" not in message and "weights_only" not in message and "safe_globals" not in message
    assert not (weights_dir / "pwned").exists()  # the pickle's code never ran
    after = [entry for entry in tree_state(str(tmp_path)) if not entry[0].startswith("cache")]
    assert after == before  # no output folder, the weights file as it was, nothing beside it


def test_a_truncated_safetensors_through_the_real_command_is_one_line(tmp_path, genuine):
    keys = write_keyframes(str(tmp_path))
    path, _ = bad_file("truncated safetensors", tmp_path, genuine)
    done = subprocess.run([sys.executable, "-m", "nn.inbetween", *keys, "--weights", path, "--out",
                           str(tmp_path / "out"), "--offline"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and not (tmp_path / "out").exists()
    assert done.stderr.strip() == (f"error: Cannot read {path}: it is not a complete safetensors file; it may be "
                                   "truncated or corrupt (Error while deserializing header: incomplete metadata, "
                                   "file not fully covered)")


def test_a_changed_checkpoint_is_used_with_a_note_and_the_published_one_without(tmp_path, genuine):
    keys = write_keyframes(str(tmp_path))
    tensors = {k: v.clone().contiguous() for k, v in genuine[1].items()}
    next(v for v in tensors.values() if v.is_floating_point()).view(-1)[0] += 0.01
    changed = str(tmp_path / "fine_tuned.safetensors")
    save_file(tensors, changed)
    done = subprocess.run([sys.executable, "-m", "nn.inbetween", *keys, "--weights", changed, "--out",
                           str(tmp_path / "out"), "--offline", "--cache-dir", str(tmp_path / "cache")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"note: {changed} is not byte for byte a published checkpoint" in done.stderr
    assert os.listdir(tmp_path / "out") == ["key_00_t0.500.png"]
    assert hub.published_as(genuine[0]) == "rife-v4.25" and hub.published_as(changed) is None


def test_apply_model_with_a_truncated_style_model_names_it_and_changes_nothing(scene, seq_ctx, tmp_path):
    from nn.stylize.train import StyleConfig, save_model
    from test_stylize_operator import footage, run

    footage(scene, str(tmp_path / "shot"))
    config = StyleConfig(guides=())
    model = str(tmp_path / "look.safetensors")
    save_model(model, config.generator(), config, steps=1)
    truncated(model, keep=0.7)
    with Unchanged(scene, tmp_path), pytest.raises(RuntimeError) as failed:
        run(seq_ctx, scene, model_file=model)
    message = str(failed.value)
    assert f"Cannot read {model}: it is not a complete safetensors file" in message
    assert "\n" not in message.strip() and "weights_only" not in message

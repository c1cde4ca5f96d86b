"""Secrets stay off disk: the Hub token preference is never written by Blender's preference saving, and
without it the worker uses the Hub's own login (the token file of `hf auth login`, or HF_TOKEN)."""
import json
import os

import bpy

from conftest import FRAMEWEAVER, MODULE
from test_faults import fake_python

jobs = FRAMEWEAVER.operators.jobs
job_runner = FRAMEWEAVER.operators.job_runner
SECRET = "hf_SECRETnotForDisk1234567890"


def test_the_hub_token_is_never_saved_with_the_preferences():
    prefs = bpy.context.preferences.addons[MODULE].preferences
    saved = os.path.join(bpy.utils.resource_path("USER"), "config", "userpref.blend")
    prefs.hf_token = SECRET
    try:
        assert bpy.ops.wm.save_userpref() == {"FINISHED"}
        with open(saved, "rb") as f:
            data = f.read()
        assert data.startswith(b"BLENDER") and SECRET.encode() not in data  # a plain .blend, and no token in it
        assert prefs.hf_token == SECRET  # still there for this session...
        assert job_runner.worker_runtime().token == SECRET  # ...and it reaches the worker (by environment)
    finally:
        prefs.hf_token = ""
    assert "never saved with the preferences" in prefs.bl_rna.properties["hf_token"].description


def test_without_a_token_preference_the_worker_uses_the_hubs_own_login(tmp_path, monkeypatch):
    hf_home, seen = tmp_path / "hf_home", tmp_path / "seen.json"
    hf_home.mkdir()
    (hf_home / "token").write_text("hf_fromTheLoginFile")  # where `hf auth login` keeps it
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    python = fake_python(tmp_path, f"""
        from huggingface_hub import get_token
        json.dump({{"token": get_token()}}, open({str(seen)!r}, "w"))
        print(done())
        """)
    job = jobs.Job("probe", {}, jobs.WorkerRuntime(python=python, online=True, token=None), "Login").run_to_end()
    assert job.state == jobs.Job.DONE, job.error
    assert json.loads(seen.read_text()) == {"token": "hf_fromTheLoginFile"}

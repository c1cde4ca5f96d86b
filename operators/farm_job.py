"""A job run on a Ray cluster (*Run on Farm*), with the face of ``jobs.Job``; and *Collect Farm Job*'s core.

The spec goes into the job folder, which every node must see; the job's driver on the cluster is
``python -m nn.farm SPEC --ray auto``, which prints "N of M frames" as chunks write them and ends
with ``{"outputs": [...], "info": {...}}``. Blender reads both from the job's logs over the REST
API. The job id, the cluster's address and what the strip needs are stored on the scene, so a
job that finishes while Blender is closed becomes its strip once the .blend is reopened.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import time

from ..nn import files
from . import jobs, strip_io
from .ray_jobs import RUNNING_STATES, FarmUnavailable, RayJobs

POLL_SECONDS = 1.0  # between two questions to the cluster
UNREACHABLE_TIMEOUT = 60.0  # a cluster silent this long fails the job (a batch run must end)
STOP_WAIT = 10.0  # after Cancel, how long to wait for the job's chunks to stop writing
FRAMES_DONE = re.compile(r"^(\d+) of (\d+) frames$")


class FarmJob:
    RUNNING, DONE, FAILED, CANCELLED = jobs.Job.RUNNING, jobs.Job.DONE, jobs.Job.FAILED, jobs.Job.CANCELLED

    def __init__(self, task: str, params: dict, runtime: jobs.WorkerRuntime, title: str, address: str, folder: str):
        self.task, self.params, self.title = task, params, title
        self.state, self.fraction, self.message, self.preview = self.RUNNING, 0.0, "Submitting to the farm…", None
        self.outputs, self.info, self.error, self.traceback, self.device = [], {}, None, None, "the farm"
        self.worker_pid = None
        self.client = RayJobs(address)
        os.makedirs(os.path.join(folder, strip_io.FARM_FOLDER), exist_ok=True)
        spec_path = os.path.join(folder, strip_io.FARM_FOLDER, "spec.json")  # every node sees the job folder
        files.write_new(spec_path, json.dumps({"task": task, "device": runtime.device, "half": runtime.half,
                                               "params": params}).encode())
        env = {"OMP_WAIT_POLICY": "PASSIVE", **({} if runtime.online else jobs.OFFLINE_ENVIRONMENT)}
        package = self.client.upload_package(jobs.EXTENSION_ROOT, "nn")
        self.job_id = self.client.submit(f"python -m nn.farm {shlex.quote(spec_path)} --ray auto",
                                         {"working_dir": package, "env_vars": env}, {"frameweaver": title})
        self._asked_at, self._heard_at = 0.0, time.monotonic()

    @property
    def finished(self) -> bool:
        return self.state != self.RUNNING

    def poll(self) -> bool:
        """Ask the cluster at most every POLL_SECONDS; True while the job runs. Never raises."""
        now = time.monotonic()
        if self.finished or now - self._asked_at < POLL_SECONDS:
            return not self.finished
        self._asked_at = now
        try:
            status = self.client.status(self.job_id)
            self.read(status.get("status", ""), self.client.logs(self.job_id), status.get("message") or "")
            self._heard_at = now
        except FarmUnavailable as error:
            if now - self._heard_at > UNREACHABLE_TIMEOUT:
                self.fail(f"Lost the farm for {UNREACHABLE_TIMEOUT:g} s: {error}. The job {self.job_id} may still "
                          "run there; Collect Farm Job fetches it later")
            else:
                self.message = f"Farm not answering: {error}"
        except Exception as error:  # a bug here must not leak into the modal operator
            self.fail(f"Internal error while following the farm job ({type(error).__name__}): {error}")
        return not self.finished

    run_to_end = jobs.Job.run_to_end

    def read(self, status: str, logs: str, note: str) -> None:
        lines = [line.strip() for line in logs.splitlines() if line.strip()]
        counts = [FRAMES_DONE.match(line) for line in lines]
        if done := next((m for m in reversed(counts) if m), None):
            count, total = int(done[1]), int(done[2])
            self.fraction, self.message = count / max(total, 1), f"Frame {count} of {total} on the farm"
        if status in RUNNING_STATES:
            if status == "PENDING":
                self.message = "Waiting for the farm"
            return
        if status == "SUCCEEDED":
            result = job_result(lines)
            self.outputs, self.info = result["outputs"], result["info"]
            self.fraction, self.message, self.state = 1.0, "Done", self.DONE
        elif status == "STOPPED":
            self.state, self.message = self.CANCELLED, "Stopped on the farm"
        else:
            said = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
            self.fail(said[-1] if said else f"The farm job {self.job_id} ended {status.lower()}: {note}")

    def fail(self, message: str) -> None:
        self.state, self.error, self.message = self.FAILED, message, message

    def cancel(self, message: str = "Cancelled") -> None:
        """Stop the job on the cluster, and wait a little for its chunks to stop writing."""
        if self.finished:
            return
        self.state, self.message = self.CANCELLED, message
        try:
            self.client.stop(self.job_id)
            deadline = time.monotonic() + STOP_WAIT
            while time.monotonic() < deadline and self.client.status(self.job_id).get("status") in RUNNING_STATES:
                time.sleep(0.2)
        except FarmUnavailable:
            pass  # the folder goes either way; a chunk that still writes finds no folder


def job_result(lines: list[str]) -> dict:
    """The driver's last line: {"outputs": [...], "info": {...}}."""
    for line in reversed(lines):
        if line.startswith("{"):
            result = json.loads(line)
            if isinstance(result.get("outputs"), list) and isinstance(result.get("info"), dict):
                return result
    raise ValueError("the farm job ended without listing its frames")


def remember(scene, job: FarmJob, folder: str, strip: dict) -> None:
    """Store on the scene what Collect Farm Job needs: the job, where it is, and the strip to make (no token)."""
    scene.frameweaver.farm_job = json.dumps({"id": job.job_id, "address": job.client.url, "title": job.title,
                                             "folder": folder, **strip})


def forget(scene) -> None:
    scene.frameweaver.farm_job = ""


def make_strip(scene, record: dict, outputs: list[str]):
    """The strip of a finished job: ``record["timeline"]`` picks an output per frame."""
    strip = strip_io.add_image_sequence(scene, record["title"], [outputs[i] for i in record["timeline"]],
                                        record["channel"], record["frame_start"])
    strip_io.discard_working_files(record["folder"])
    return strip


def collect(scene):
    """The strip of the scene's farm job if it finished; raises ``FarmUnavailable`` or ``RuntimeError`` saying why not."""
    record = json.loads(scene.frameweaver.farm_job)
    client = RayJobs(record["address"])
    status = client.status(record["id"])
    state = status.get("status", "")
    logs = client.logs(record["id"])
    if state in RUNNING_STATES:
        counts = [m for m in map(FRAMES_DONE.match, logs.splitlines()) if m]
        done = f": {counts[-1][1]} of {counts[-1][2]} frames" if counts else ""
        raise RuntimeError(f"'{record['title']}' is still running on the farm{done}. Collect it once it is done")
    if state != "SUCCEEDED":
        forget(scene)
        strip_io.discard_job_folder(record["folder"])
        said = [line.removeprefix("error: ") for line in logs.splitlines() if line.startswith("error: ")]
        raise RuntimeError(f"'{record['title']}' ended {state.lower()} on the farm"
                           + (f": {said[-1]}" if said else ""))
    strip = make_strip(scene, record, job_result([line.strip() for line in logs.splitlines()])["outputs"])
    forget(scene)
    return strip

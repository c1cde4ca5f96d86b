"""Preferences button: ask a worker which PyTorch and devices it sees."""
import bpy

from . import job_runner, jobs
from ..ui.preferences import addon_preferences


def summarize(job: jobs.Job) -> str:
    if job.state != jobs.Job.DONE:
        return f"Probe failed: {job.error}"
    info = job.info
    devices = ", ".join(info["gpus"]) or ("Apple MPS" if info["mps"] else "CPU only")
    cuda = f", CUDA {info['cuda_version']}" if info["cuda"] else ""
    return f"PyTorch {info['torch']}{cuda}: {devices}"


class FRAMEWEAVER_OT_probe_devices(bpy.types.Operator):
    bl_idname = "frameweaver.probe_devices"
    bl_label = "Probe Devices"
    bl_description = "Start a worker and report the PyTorch version and compute devices it can use"

    def execute(self, context):
        prefs = addon_preferences(context)
        job = jobs.Job("probe", {}, job_runner.worker_runtime(context), "Device probe")
        prefs.probe_result = "Probing…"

        def store(finished_job):
            prefs.probe_result = summarize(finished_job)

        job_runner.follow(job, store)
        return {"FINISHED"}

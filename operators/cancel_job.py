"""Cancel the scene's running job: the worker is killed and nothing is kept."""
import bpy

from . import compat
from .job_runner import running_job


class SEQUENCER_OT_frameweaver_cancel_job(bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_cancel_job"
    bl_label = "Cancel"
    bl_description = "Stop the running Frameweaver job; its partial frames are deleted"

    @classmethod
    def poll(cls, context):
        return running_job(compat.sequencer_scene(context)) is not None

    def execute(self, context):
        running_job(compat.sequencer_scene(context)).cancel()
        return {"FINISHED"}

"""Style tab > Stop & Propagate: end training now and stylize with what was learned."""
import bpy

from . import compat, stylize
from .job_runner import running_job


class SEQUENCER_OT_frameweaver_stop_training(bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_stop_training"
    bl_label = "Stop & Propagate"
    bl_description = "Stop training now, keep what was learned, and stylize the footage with it"

    @classmethod
    def poll(cls, context):
        job = running_job(compat.sequencer_scene(context))
        return job is not None and job.task == "stylize"

    def execute(self, context):
        if not stylize.stop_training(running_job(compat.sequencer_scene(context))):
            self.report({"WARNING"}, "No style training is running")
            return {"CANCELLED"}
        self.report({"INFO"}, "Stopping training; propagating what was learned")
        return {"FINISHED"}

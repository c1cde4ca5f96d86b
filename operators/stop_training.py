"""Style tab > Stop & Propagate: end training now and stylize with what was learned."""
import bpy

from . import compat, jobs, stylize


class SEQUENCER_OT_frameweaver_stop_training(bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_stop_training"
    bl_label = "Stop & Propagate"
    bl_description = "Stop training now, keep what was learned, and stylize the footage with it"

    @classmethod
    def poll(cls, context):
        scene = compat.sequencer_scene(context)
        job = jobs.active_job(scene.as_pointer()) if scene else None
        return job is not None and job.task == "stylize" and not job.finished

    def execute(self, context):
        job = jobs.active_job(compat.sequencer_scene(context).as_pointer())
        if not stylize.stop_training(job):
            self.report({"WARNING"}, "No style training is running")
            return {"CANCELLED"}
        self.report({"INFO"}, "Stopping training; propagating what was learned")
        return {"FINISHED"}

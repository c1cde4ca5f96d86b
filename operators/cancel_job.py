"""Cancel the scene's running job: the worker is killed and nothing is kept."""
import bpy

from . import compat, jobs


class SEQUENCER_OT_frameweaver_cancel_job(bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_cancel_job"
    bl_label = "Cancel"
    bl_description = "Stop the running Frameweaver job; its partial frames are deleted"

    @classmethod
    def poll(cls, context):
        scene = compat.sequencer_scene(context)
        job = jobs.active_job(scene.as_pointer()) if scene else None
        return job is not None and not job.finished

    def execute(self, context):
        jobs.active_job(compat.sequencer_scene(context).as_pointer()).cancel()
        return {"FINISHED"}

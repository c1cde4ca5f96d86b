"""Collect Farm Job: the strip of the scene's farm job, once it has finished (also after the .blend was reopened)."""
import bpy

from . import compat, farm_job
from .job_runner import running_job


class SEQUENCER_OT_frameweaver_collect_farm_job(bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_collect_farm_job"
    bl_label = "Collect Farm Job"
    bl_description = "Make the strip of the job this scene sent to the farm, if it has finished"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        scene = compat.sequencer_scene(context)
        return scene is not None and bool(scene.frameweaver.farm_job) and running_job(scene) is None

    def execute(self, context):
        try:
            strip = farm_job.collect(compat.sequencer_scene(context))
        except Exception as error:  # still running, failed there, or the cluster is gone: say which
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Created '{strip.name}' from the farm")
        return {"FINISHED"}

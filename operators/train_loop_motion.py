"""Loop panel > Train Motion Model: learn the loop's motion predictor from a folder of clips."""
import bpy

from . import compat, loop
from .job_runner import JobModalMixin


class SEQUENCER_OT_frameweaver_train_loop_motion(JobModalMixin, bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_train_loop_motion"
    bl_label = "Train Motion Model"
    bl_description = ("Learn how things move from a folder of clips (one sub-folder of frames per clip), "
                      "for Animate Loop's Learned motion")
    bl_options = {"REGISTER", "UNDO"}

    clips: bpy.props.StringProperty(name="Clips", subtype="DIR_PATH",
                                    description="Folder with one sub-folder of image frames per clip")
    steps: bpy.props.IntProperty(name="Training Steps", default=2000, soft_min=1, soft_max=1_000_000)

    def prepare(self, context):
        return loop.prepare_training(compat.sequencer_scene(context), clips=self.clips, steps=self.steps,
                                     context=context)

    def created_message(self, model, scene_job):
        return f"Motion model trained: {model}. The Loop panel now uses it (Motion: Learned)."

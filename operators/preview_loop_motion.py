"""Loop panel > Preview Motion: draw the motion field as arrows over the still, before rendering."""
import bpy

from . import compat, loop


class SEQUENCER_OT_frameweaver_preview_loop_motion(loop.LoopMotionProperties, bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_preview_loop_motion"
    bl_label = "Preview Motion"
    bl_description = "Make the motion field (from the Mask's strokes or the motion model) and show it as arrows over the still"

    @classmethod
    def poll(cls, context):
        return compat.has_sequencer(context)

    def execute(self, context):
        # A few seconds (the worker start and one field), so it runs in place rather than as a modal job.
        try:
            path = loop.preview_motion(compat.sequencer_scene(context), frames=2, context=context,
                                       **self.motion_options())
        except Exception as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Motion field: {path}")
        return {"FINISHED"}

"""Loop panel > Preview Motion: draw the motion field as arrows over the still, before rendering."""
import bpy

from . import compat, loop


class SEQUENCER_OT_frameweaver_preview_loop_motion(bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_preview_loop_motion"
    bl_label = "Preview Motion"
    bl_description = "Spread the Mask's strokes into the motion field and show it as arrows over the still"

    speed: bpy.props.FloatProperty(name="Speed", default=1.0, min=0.01, max=100.0)
    mask: bpy.props.StringProperty(name="Motion Mask")
    mask_strip: bpy.props.StringProperty(name="Mask Strip")

    @classmethod
    def poll(cls, context):
        scene = compat.sequencer_scene(context)
        return scene is not None and scene.sequence_editor is not None

    def execute(self, context):
        # A few seconds (the worker start and one field), so it runs in place rather than as a modal job.
        try:
            mask = bpy.data.masks.get(self.mask) if self.mask else None
            path = loop.preview_motion(compat.sequencer_scene(context), speed=self.speed, mask=mask,
                                       mask_strip=self.mask_strip, frames=2, context=context)
        except Exception as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Motion field: {path}")
        return {"FINISHED"}

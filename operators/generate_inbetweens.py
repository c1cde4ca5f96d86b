"""Sequencer > Strip > Generate Inbetweens."""
import bpy

from . import compat, inbetween
from .job_runner import JobModalMixin


class SEQUENCER_OT_frameweaver_generate_inbetweens(JobModalMixin, bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_generate_inbetweens"
    bl_label = "Generate Inbetweens"
    bl_description = "Generate the frames between the selected keyframe image strips, or retime one clip, as one new strip"
    bl_options = {"REGISTER", "UNDO"}

    model: bpy.props.EnumProperty(name="Model", items=inbetween.MODELS, default="rife-v4.25")
    mode: bpy.props.EnumProperty(name="Frames", items=inbetween.FRAME_MODES, default="GAPS")
    count: bpy.props.IntProperty(name="Inbetweens", description="Frames between each pair of keyframes",
                                 default=3, min=1, max=255)
    fit_sizes: bpy.props.BoolProperty(name="Fit to First Keyframe",
                                      description="Resize keyframes of another size to the first one's size")
    flow_scale: bpy.props.EnumProperty(name="Flow Scale", items=inbetween.FLOW_SCALES, default="0",
                                       description="Resolution motion is estimated at")
    high_quality: bpy.props.BoolProperty(name="High Quality",
                                         description="Average with a mirrored, time-reversed pass: sharper "
                                                     "motion, twice the time")
    cuts: bpy.props.EnumProperty(name="Scene Cuts", items=inbetween.CUT_MODES, default="HOLD")
    retime_rate: bpy.props.EnumProperty(name="Rate", items=inbetween.RETIME_RATES, default="2")
    target_fps: bpy.props.FloatProperty(name="Target FPS", default=60.0, min=1.0, max=1000.0,
                                        description="Frame rate the retimed strip is made for")
    dedupe: bpy.props.BoolProperty(name="Skip Repeated Frames", default=True,
                                   description="Time motion over frames that repeat (animation on twos, "
                                               "stutter) instead of copying them")

    def prepare(self, context):
        return inbetween.prepare(
            compat.sequencer_scene(context), model=self.model, mode=self.mode, count=self.count,
            fit_sizes=self.fit_sizes, flow_scale=float(self.flow_scale), high_quality=self.high_quality, cuts=self.cuts,
            retime_rate=self.retime_rate, target_fps=self.target_fps, dedupe=self.dedupe, context=context,
        )

"""Sequencer > Strip > Generate Inbetweens."""
import bpy

from . import compat, inbetween
from .generative import GenerativeProperties
from .timing import TIMINGS, TimingError
from .job_runner import JobModalMixin


class SEQUENCER_OT_frameweaver_generate_inbetweens(JobModalMixin, GenerativeProperties, bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_generate_inbetweens"
    bl_label = "Generate Inbetweens"
    bl_description = "Generate the frames between the selected keyframe image strips, or retime one clip, as one new strip"
    bl_options = {"REGISTER", "UNDO"}

    model: bpy.props.EnumProperty(name="Model", items=inbetween.MODELS, default="auto")
    mode: bpy.props.EnumProperty(name="Frames", items=inbetween.FRAME_MODES, default="GAPS")
    count: bpy.props.IntProperty(name="Inbetweens", description="Frames between each pair of keyframes",
                                 default=3, soft_min=1, soft_max=255)
    fit_sizes: bpy.props.BoolProperty(name="Fit to First Keyframe",
                                      description="Resize keyframes of another size to the first one's size")
    flow_scale: bpy.props.EnumProperty(name="Flow Scale", items=inbetween.FLOW_SCALES, default="0",
                                       description="Resolution motion is estimated at")
    high_quality: bpy.props.BoolProperty(name="High Quality",
                                         description="Average with a mirrored, time-reversed pass: sharper "
                                                     "motion, twice the time")
    cuts: bpy.props.EnumProperty(name="Scene Cuts", items=inbetween.CUT_MODES, default="HOLD")
    retime_rate: bpy.props.EnumProperty(name="Rate", items=inbetween.RETIME_RATES, default="2")
    target_fps: bpy.props.FloatProperty(name="Target FPS", default=60.0, soft_min=1.0, soft_max=1000.0,
                                        description="Frame rate the retimed strip is made for")
    dedupe: bpy.props.BoolProperty(name="Skip Repeated Frames", default=True,
                                   description="Time motion over frames that repeat (animation on twos, "
                                               "stutter) instead of copying them")
    timing: bpy.props.EnumProperty(name="Timing", items=TIMINGS, default="EVEN",
                                   description="Spacing of the inbetweens in every gap whose first key says "
                                               "'As All Gaps'")
    timing_curve: bpy.props.StringProperty(name="Timing Curve",
                                           description="Node group with the Custom timing's curve (Add Timing Curve)")
    farm: bpy.props.BoolProperty(name="Run on Farm", description="Run the frames as chunks on the Ray cluster set "
                                 "in Preferences > Add-ons > Frameweaver > Farm")

    def prepare(self, context):
        curve = bpy.data.node_groups.get(self.timing_curve) if self.timing_curve else None
        if self.timing_curve and curve is None:
            raise TimingError(f"No timing curve named '{self.timing_curve}'")
        return inbetween.prepare(
            compat.sequencer_scene(context), model=self.model, mode=self.mode, count=self.count,
            fit_sizes=self.fit_sizes, flow_scale=float(self.flow_scale), high_quality=self.high_quality, cuts=self.cuts,
            retime_rate=self.retime_rate, target_fps=self.target_fps, dedupe=self.dedupe, timing=self.timing,
            timing_curve=curve, farm=self.farm, context=context, **self.generative_options(),
        )

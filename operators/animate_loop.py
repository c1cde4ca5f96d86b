"""Sequencer > Strip > Animate Loop: a still image strip becomes a seamless looping strip."""
import bpy

from . import compat, loop
from .generative import GenerativeProperties
from .job_runner import JobModalMixin


class SEQUENCER_OT_frameweaver_animate_loop(JobModalMixin, loop.LoopMotionProperties, GenerativeProperties,
                                            bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_animate_loop"
    bl_label = "Animate Loop"
    bl_description = ("Animate the selected still along the motion drawn in a Mask (or predicted by a motion model), "
                      "as one seamlessly looping strip")
    bl_options = {"REGISTER", "UNDO"}

    frames: bpy.props.IntProperty(name="Duration", default=120, soft_min=2, soft_max=10000, description="Frames in the loop")
    dusk: bpy.props.FloatProperty(name="Light Change", default=0.0, soft_min=0.0, soft_max=1.0, subtype="FACTOR",
                                  description="How far the light shifts towards the colour mid-loop, then back")
    dusk_colour: bpy.props.FloatVectorProperty(name="Light Colour", subtype="COLOR", size=3, soft_min=0.0, soft_max=1.0,
                                               default=(1.0, 0.55, 0.3))
    light_reference: bpy.props.StringProperty(name="Light Reference",
                                              description="Optional image strip whose colours the light moves towards")
    endless: bpy.props.BoolProperty(name="Endless", description="A clip of any length whose motion never repeats "
                                    "(at least 48 frames), instead of a seamless loop")
    seamless: bpy.props.BoolProperty(name="Seamless", description="Endless: end where it starts, so the clip loops too")
    layers: bpy.props.BoolProperty(name="Layers", description="Also lay the moving region, as its own RGBA strip, over "
                                   "an untouched copy of the still, to grade or retime it alone")

    farm: bpy.props.BoolProperty(name="Run on Farm", description="Run the frames as chunks on the Ray cluster set "
                                 "in Preferences > Add-ons > Frameweaver > Farm")

    def prepare(self, context):
        return loop.prepare(compat.sequencer_scene(context), frames=self.frames, dusk=self.dusk,
                            dusk_colour=tuple(self.dusk_colour), light_reference=self.light_reference,
                            endless=self.endless, seamless=self.seamless, layers=self.layers,
                            farm=self.farm, context=context, **self.motion_options(), **self.generative_options())

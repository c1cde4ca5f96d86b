"""Per-scene options shown in the N-panel and passed to the operators."""
import bpy

from ..operators.inbetween import FLOW_SCALES, FRAME_MODES, MODELS


class FrameweaverSceneSettings(bpy.types.PropertyGroup):
    inbetween_model: bpy.props.EnumProperty(name="Model", items=MODELS, default="rife-v4.25")
    inbetween_mode: bpy.props.EnumProperty(name="Frames", items=FRAME_MODES, default="GAPS")
    inbetween_count: bpy.props.IntProperty(name="Inbetweens", default=3, min=1, max=255)
    fit_sizes: bpy.props.BoolProperty(name="Fit to First Keyframe")
    flow_scale: bpy.props.EnumProperty(name="Flow Scale", items=FLOW_SCALES, default="0")

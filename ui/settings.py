"""Per-scene and per-key-strip options shown in the N-panel and passed to the operators."""
import bpy

from ..operators.inbetween import CUT_MODES, FLOW_SCALES, FRAME_MODES, MODELS, RETIME_RATES
from ..operators.loop import MOTION_SOURCES
from ..operators.timing import TIMINGS


class FrameweaverStripSettings(bpy.types.PropertyGroup):
    """What one keyframe strip says about the gap after it: kept with the strip through moves, renames and copies."""

    timing: bpy.props.EnumProperty(
        name="Timing to Next Key", default="ALL",
        items=[("ALL", "As All Gaps", "The timing chosen for all gaps")] + TIMINGS)
    guide_mask: bpy.props.PointerProperty(
        name="Guide Mask", type=bpy.types.Mask,
        description="Guide strokes drawn over this key: a layer's splines match the same-named layer's on the "
                    "neighbouring keys (Key Motion follows them)")


class FrameweaverSceneSettings(bpy.types.PropertyGroup):
    inbetween_model: bpy.props.EnumProperty(name="Model", items=MODELS, default="auto")
    inbetween_mode: bpy.props.EnumProperty(name="Frames", items=FRAME_MODES, default="GAPS")
    inbetween_count: bpy.props.IntProperty(name="Inbetweens", default=3, min=1, max=255)
    fit_sizes: bpy.props.BoolProperty(name="Fit to First Keyframe")
    flow_scale: bpy.props.EnumProperty(name="Flow Scale", items=FLOW_SCALES, default="0")
    high_quality: bpy.props.BoolProperty(name="High Quality", description="Mirrored, time-reversed second pass (2x time)")
    cuts: bpy.props.EnumProperty(name="Scene Cuts", items=CUT_MODES, default="HOLD")
    retime_rate: bpy.props.EnumProperty(name="Rate", items=RETIME_RATES, default="2")
    target_fps: bpy.props.FloatProperty(name="Target FPS", default=60.0, min=1.0, max=1000.0)
    dedupe: bpy.props.BoolProperty(name="Skip Repeated Frames", default=True)
    inbetween_timing: bpy.props.EnumProperty(name="Timing", items=TIMINGS, default="EVEN",
                                             description="Spacing of the inbetweens in every gap (keys can override)")
    # No poll= filter: bpy 4.2 crashes at exit freeing a Python poll callback (SIGSEGV after the
    # interpreter is gone). A node group without a Float Curve node is refused by timing.curve_points.
    inbetween_timing_curve: bpy.props.PointerProperty(
        name="Timing Curve", type=bpy.types.NodeTree,
        description="Custom timing: time through the gap across, the part of the motion done up")
    style_footage: bpy.props.StringProperty(name="Footage", description="Image-sequence or movie strip to stylize")
    style_mask: bpy.props.StringProperty(name="Mask", description="Optional mask strip: stylize only inside it")
    style_seconds: bpy.props.FloatProperty(name="Training Time", default=120.0, min=1.0, max=36000.0,
                                           unit="TIME_ABSOLUTE")
    style_model: bpy.props.StringProperty(name="Trained Model", subtype="FILE_PATH",
                                          description="Model saved by the last run; apply it to other clips")
    style_fit_sizes: bpy.props.BoolProperty(name="Fit Keyframes")
    loop_frames: bpy.props.IntProperty(name="Duration", default=120, min=2, max=10000)
    loop_speed: bpy.props.FloatProperty(name="Speed", default=1.0, min=0.01, max=100.0)
    loop_mask: bpy.props.PointerProperty(name="Motion Mask", type=bpy.types.Mask,
                                         description="Open splines: motion strokes; closed splines: what may move")
    loop_mask_strip: bpy.props.StringProperty(name="Mask Strip", description="Optional image strip: white may move")
    loop_dusk: bpy.props.FloatProperty(name="Light Change", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    loop_dusk_colour: bpy.props.FloatVectorProperty(name="Light Colour", subtype="COLOR", size=3, min=0.0, max=1.0,
                                                    default=(1.0, 0.55, 0.3))
    loop_training_clips: bpy.props.StringProperty(name="Clips", subtype="DIR_PATH",
                                                  description="Folder with one sub-folder of image frames per clip")
    loop_training_steps: bpy.props.IntProperty(name="Training Steps", default=2000, min=1, max=1_000_000)
    loop_light_reference: bpy.props.StringProperty(
        name="Light Reference", description="Optional image strip whose colours the light moves towards")
    loop_motion_preview: bpy.props.StringProperty(name="Motion Preview", subtype="FILE_PATH")
    loop_motion_source: bpy.props.EnumProperty(name="Motion", items=MOTION_SOURCES, default="HINTS")
    loop_motion_model: bpy.props.StringProperty(name="Motion Model", subtype="FILE_PATH",
                                                description="Trained motion model; empty: the weights folder's own")
    loop_endless: bpy.props.BoolProperty(name="Endless", description="A clip of any length whose motion never repeats")
    loop_seamless: bpy.props.BoolProperty(name="Seamless", description="Endless: end where it starts, so it loops too")
    generative_prompt: bpy.props.StringProperty(name="Prompt", description="Generative model: what the frames show "
                                                 "(optional)")
    generative_seed: bpy.props.IntProperty(name="Seed", default=0, min=0,
                                           description="Generative model: the same seed gives the same frames")
    generative_steps: bpy.props.IntProperty(name="Steps", default=30, min=1, max=200,
                                            description="Generative model: denoising steps")
    generative_guidance: bpy.props.FloatProperty(name="Guidance", default=5.0, min=0.0, max=30.0,
                                                 description="Generative model: how closely to follow the prompt")
    loop_layers: bpy.props.BoolProperty(name="Layers", description="Also the moving region as its own RGBA strip, "
                                        "over an untouched copy of the still")

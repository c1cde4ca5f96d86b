"""The Sequencer sidebar tab and the status bar: job progress with Cancel, and feature options."""
import bpy

import os

from ..operators import compat, stylize
from ..operators.timing import curve_node
from ..operators.job_runner import running_job
from . import previews


def draw_job(layout, scene, preview: bool = False) -> bool:
    """Progress bar and Cancel for the scene's job (and its latest frame); True while one runs."""
    job = running_job(scene)
    if job is None:
        return False
    row = layout.row(align=True)
    row.progress(factor=job.fraction, type="BAR", text=f"{job.title}: {job.message}")
    row.operator("sequencer.frameweaver_cancel_job", text="", icon="CANCEL")
    if preview and job.preview and os.path.isfile(job.preview):
        layout.template_icon(icon_value=previews.icon_id(job.preview), scale=8.0)
    return True


class SidebarTab:
    """Where every Frameweaver panel lives: the Sequencer sidebar's Frameweaver tab."""

    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Frameweaver"


class SEQUENCER_PT_frameweaver(SidebarTab, bpy.types.Panel):
    bl_label = "Frameweaver"

    @classmethod
    def poll(cls, context):
        return context.space_data.view_type in {"SEQUENCER", "SEQUENCER_PREVIEW"}

    def draw(self, context):
        scene = compat.sequencer_scene(context)
        if not draw_job(self.layout, scene, preview=True):
            self.layout.label(text="No job running", icon="CHECKMARK")


OPERATOR_TO_SETTING = {"model": "inbetween_model", "mode": "inbetween_mode", "count": "inbetween_count",
                       "timing": "inbetween_timing"}


class SEQUENCER_PT_frameweaver_inbetween(SidebarTab, bpy.types.Panel):
    bl_label = "Inbetweens"
    bl_parent_id = "SEQUENCER_PT_frameweaver"

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        settings = compat.sequencer_scene(context).frameweaver
        layout.prop(settings, "inbetween_model")
        layout.prop(settings, "inbetween_mode")
        if settings.inbetween_mode == "COUNT":
            layout.prop(settings, "inbetween_count")
        if settings.inbetween_mode == "RETIME":
            layout.prop(settings, "retime_rate")
            if settings.retime_rate == "FPS":
                layout.prop(settings, "target_fps")
            layout.prop(settings, "dedupe")
        else:
            layout.prop(settings, "fit_sizes")
            self.draw_timing(layout, compat.sequencer_scene(context), settings)
        layout.prop(settings, "cuts")
        if settings.inbetween_model != "generative":
            layout.prop(settings, "flow_scale")
        if settings.inbetween_model in ("rife-v4.25", "rife-hdv3"):
            layout.prop(settings, "high_quality")
        if settings.inbetween_model in ("generative", "auto"):
            draw_generative(layout, settings)
        op = generative_options(layout.operator("sequencer.frameweaver_generate_inbetweens", icon="SEQUENCE"), settings)
        for name in ("model", "mode", "count", "fit_sizes", "flow_scale", "cuts", "retime_rate", "target_fps", "dedupe",
                     "high_quality", "timing"):
            setattr(op, name, getattr(settings, OPERATOR_TO_SETTING.get(name, name)))
        op.timing_curve = settings.inbetween_timing_curve.name if settings.inbetween_timing_curve else ""

    @staticmethod
    def draw_timing(layout, scene, settings):
        """Timing for all gaps, the active key's own gap timing and guide strokes, and the custom curve."""
        layout.prop(settings, "inbetween_timing")
        key = scene.sequence_editor.active_strip if scene.sequence_editor else None
        custom = settings.inbetween_timing == "CUSTOM"
        if key is not None and key.type == "IMAGE":
            box = layout.box()
            box.label(text=f"Key: {key.name}", icon="KEYFRAME")
            box.prop(key.frameweaver, "timing")
            box.prop(key.frameweaver, "guide_mask")
            custom = custom or key.frameweaver.timing == "CUSTOM"
        if not custom:
            return
        layout.prop(settings, "inbetween_timing_curve")
        node = curve_node(settings.inbetween_timing_curve) if settings.inbetween_timing_curve else None
        if node is None:
            layout.operator("sequencer.frameweaver_add_timing_curve", icon="FCURVE")
        else:
            layout.template_curve_mapping(node, "mapping")


class SEQUENCER_PT_frameweaver_style(SidebarTab, bpy.types.Panel):
    bl_label = "Style"
    bl_parent_id = "SEQUENCER_PT_frameweaver"

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        scene = compat.sequencer_scene(context)
        settings, editor = scene.frameweaver, scene.sequence_editor
        collection = compat.all_strips_attribute(editor)
        layout.prop_search(settings, "style_footage", editor, collection, icon="SEQUENCE")
        layout.prop_search(settings, "style_mask", editor, collection, icon="MOD_MASK")
        self.draw_keys(layout.box(), scene, settings)
        layout.prop(settings, "style_seconds")
        layout.prop(settings, "style_fit_sizes")
        job = running_job(scene)
        if job is not None and job.task == "stylize":
            layout.operator("sequencer.frameweaver_stop_training", icon="PAUSE")
            return
        self.add_operator(layout, settings, "Train & Propagate", "PLAY")
        layout.prop(settings, "style_model")
        if settings.style_model:
            row = layout.row(align=True)
            self.add_operator(row, settings, "Resume Training", "FILE_REFRESH", model=True, resume=True)
            self.add_operator(row, settings, "Apply Model", "BRUSH_DATA", model=True)

    @staticmethod
    def draw_keys(box, scene, settings):
        """The painted keyframes the job will learn from, or why there are none."""
        try:
            source = stylize.footage_strip(scene, settings.style_footage)
            keys = stylize.painted_keys(scene, source, exclude={settings.style_mask})
        except ValueError as error:
            box.label(text=str(error), icon="INFO")
            return
        if not keys:
            box.label(text=f"Put painted frames on channel {source.channel + 1}", icon="INFO")
        for key in keys:
            box.label(text=f"Frame {compat.left_handle(source) + key.index}: {key.strip_name}", icon="BRUSH_DATA")

    @staticmethod
    def add_operator(layout, settings, text, icon, model=False, resume=False):
        op = layout.operator("sequencer.frameweaver_train_propagate", text=text, icon=icon)
        op.footage, op.mask, op.seconds = settings.style_footage, settings.style_mask, settings.style_seconds
        op.fit_sizes, op.resume = settings.style_fit_sizes, resume
        op.model_file = settings.style_model if model else ""


class SEQUENCER_PT_frameweaver_loop(SidebarTab, bpy.types.Panel):
    bl_label = "Loop"
    bl_parent_id = "SEQUENCER_PT_frameweaver"

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        scene = compat.sequencer_scene(context)
        settings, editor = scene.frameweaver, scene.sequence_editor
        collection = compat.all_strips_attribute(editor)
        layout.prop(settings, "loop_motion_source", expand=True)
        if settings.loop_motion_source == "LEARNED":
            layout.prop(settings, "loop_motion_model")
            box = layout.box()
            box.prop(settings, "loop_training_clips")
            box.prop(settings, "loop_training_steps")
            train = box.operator("sequencer.frameweaver_train_loop_motion", icon="EXPERIMENTAL")
            train.clips, train.steps = settings.loop_training_clips, settings.loop_training_steps
        layout.prop(settings, "loop_mask")
        layout.prop_search(settings, "loop_mask_strip", editor, collection, icon="MOD_MASK")
        layout.prop(settings, "loop_frames")
        layout.prop(settings, "loop_endless")
        if settings.loop_endless:
            layout.prop(settings, "loop_seamless")
        layout.prop(settings, "loop_layers")
        if settings.loop_motion_source == "GENERATIVE":
            draw_generative(layout, settings)
        else:
            layout.prop(settings, "loop_speed")
        layout.prop(settings, "loop_dusk")
        if settings.loop_dusk > 0:
            layout.prop_search(settings, "loop_light_reference", editor, collection, icon="IMAGE_DATA")
            if not settings.loop_light_reference:
                layout.prop(settings, "loop_dusk_colour")
        if settings.loop_motion_source != "GENERATIVE":  # it makes no motion field to preview
            loop_motion_options(layout.operator("sequencer.frameweaver_preview_loop_motion", icon="FORWARD"), settings)
            if settings.loop_motion_preview and os.path.isfile(settings.loop_motion_preview):
                layout.template_icon(icon_value=previews.icon_id(settings.loop_motion_preview), scale=8.0)
        op = loop_motion_options(layout.operator("sequencer.frameweaver_animate_loop", icon="FILE_REFRESH"), settings)
        generative_options(op, settings)
        op.frames, op.dusk, op.dusk_colour = settings.loop_frames, settings.loop_dusk, settings.loop_dusk_colour
        op.light_reference = settings.loop_light_reference
        op.endless, op.seamless, op.layers = settings.loop_endless, settings.loop_seamless, settings.loop_layers


def draw_generative(layout, settings):
    """The generative model's options, and why it may refuse to run."""
    box = layout.box()
    box.prop(settings, "generative_prompt")
    row = box.row()
    row.prop(settings, "generative_seed")
    row.prop(settings, "generative_steps")
    box.prop(settings, "generative_guidance")
    box.label(text="Needs a CUDA GPU and the model's weights (Preferences)", icon="INFO")


def generative_options(op, settings):
    """Fill an operator's GenerativeProperties from the panel's settings."""
    op.prompt, op.seed = settings.generative_prompt, settings.generative_seed
    op.steps, op.guidance = settings.generative_steps, settings.generative_guidance
    return op


def loop_motion_options(op, settings):
    """Fill an operator's LoopMotionProperties from the Loop panel's settings."""
    op.speed, op.mask_strip = settings.loop_speed, settings.loop_mask_strip
    op.mask = settings.loop_mask.name if settings.loop_mask else ""
    op.motion_source, op.motion_model = settings.loop_motion_source, settings.loop_motion_model
    return op


def draw_status_bar(self, context):
    draw_job(self.layout, compat.sequencer_scene(context))

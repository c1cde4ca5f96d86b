"""The Sequencer sidebar tab and the status bar: job progress with Cancel, and feature options."""
import bpy

from ..operators import compat, jobs


def draw_job(layout, scene) -> bool:
    """Progress bar and Cancel for the scene's job; True while one runs."""
    job = jobs.active_job(scene.as_pointer()) if scene else None
    if job is None or job.finished:
        return False
    row = layout.row(align=True)
    row.progress(factor=job.fraction, type="BAR", text=f"{job.title}: {job.message}")
    row.operator("sequencer.frameweaver_cancel_job", text="", icon="CANCEL")
    return True


class SEQUENCER_PT_frameweaver(bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Frameweaver"
    bl_label = "Frameweaver"

    @classmethod
    def poll(cls, context):
        return context.space_data.view_type in {"SEQUENCER", "SEQUENCER_PREVIEW"}

    def draw(self, context):
        scene = compat.sequencer_scene(context)
        if not draw_job(self.layout, scene):
            self.layout.label(text="No job running", icon="CHECKMARK")


OPERATOR_TO_SETTING = {"model": "inbetween_model", "mode": "inbetween_mode", "count": "inbetween_count"}


class SEQUENCER_PT_frameweaver_inbetween(bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Frameweaver"
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
        layout.prop(settings, "cuts")
        layout.prop(settings, "flow_scale")
        op = layout.operator("sequencer.frameweaver_generate_inbetweens", icon="SEQUENCE")
        for name in ("model", "mode", "count", "fit_sizes", "flow_scale", "cuts", "retime_rate", "target_fps", "dedupe"):
            setattr(op, name, getattr(settings, OPERATOR_TO_SETTING.get(name, name)))


def draw_status_bar(self, context):
    draw_job(self.layout, compat.sequencer_scene(context))

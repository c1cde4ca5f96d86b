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
        layout.prop(settings, "fit_sizes")
        layout.prop(settings, "flow_scale")
        op = layout.operator("sequencer.frameweaver_generate_inbetweens", icon="SEQUENCE")
        op.model, op.mode, op.count = settings.inbetween_model, settings.inbetween_mode, settings.inbetween_count
        op.fit_sizes, op.flow_scale = settings.fit_sizes, settings.flow_scale


def draw_status_bar(self, context):
    draw_job(self.layout, compat.sequencer_scene(context))

"""Frameweaver: inbetweening, style propagation and looping for the Video Sequence Editor.

Scripting (for ``blender -b file.blend -P script.py``)::

    import bl_ext.user_default.frameweaver as frameweaver
    strip = frameweaver.generate_inbetweens(bpy.context.scene, model="rife-v4.25")
    strip = frameweaver.stylize_clip(bpy.context.scene, footage="shot", seconds=300)
    strip = frameweaver.loop_still(bpy.context.scene, mask=bpy.data.masks["waves"], frames=120)
    model = frameweaver.train_motion_model(bpy.context.scene, clips="/footage/skies", steps=2000)
"""
import bpy

from .operators import (add_timing_curve, animate_loop, cancel_job, collect_farm_job, compat, install_torch,
                        preview_loop_motion, probe_devices, stop_training, train_loop_motion, train_propagate)
from .operators import generate_inbetweens as inbetween_operator
from .operators import job_runner
from .operators.inbetween import generate_inbetweens  # noqa: F401  scripting API
from .operators.loop import loop_still, train_motion_model  # noqa: F401  scripting API
from .operators.stylize import stylize_clip  # noqa: F401  scripting API
from .ui import menus, panel, preferences, previews, settings

CLASSES = (
    preferences.FRAMEWEAVER_AddonPreferences,
    settings.FrameweaverSceneSettings,
    settings.FrameweaverStripSettings,
    probe_devices.FRAMEWEAVER_OT_probe_devices,
    install_torch.FRAMEWEAVER_OT_install_torch,
    cancel_job.SEQUENCER_OT_frameweaver_cancel_job,
    collect_farm_job.SEQUENCER_OT_frameweaver_collect_farm_job,
    inbetween_operator.SEQUENCER_OT_frameweaver_generate_inbetweens,
    add_timing_curve.SEQUENCER_OT_frameweaver_add_timing_curve,
    train_propagate.SEQUENCER_OT_frameweaver_train_propagate,
    stop_training.SEQUENCER_OT_frameweaver_stop_training,
    animate_loop.SEQUENCER_OT_frameweaver_animate_loop,
    preview_loop_motion.SEQUENCER_OT_frameweaver_preview_loop_motion,
    train_loop_motion.SEQUENCER_OT_frameweaver_train_loop_motion,
    panel.SEQUENCER_PT_frameweaver,
    panel.SEQUENCER_PT_frameweaver_inbetween,
    panel.SEQUENCER_PT_frameweaver_style,
    panel.SEQUENCER_PT_frameweaver_loop,
)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.frameweaver = bpy.props.PointerProperty(type=settings.FrameweaverSceneSettings)
    compat.strip_type().frameweaver = bpy.props.PointerProperty(type=settings.FrameweaverStripSettings)
    menus.register()
    bpy.types.STATUSBAR_HT_header.append(panel.draw_status_bar)
    job_runner.register()


def unregister():
    job_runner.unregister()
    bpy.types.STATUSBAR_HT_header.remove(panel.draw_status_bar)
    menus.unregister()
    previews.unregister()
    del bpy.types.Scene.frameweaver
    del compat.strip_type().frameweaver
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

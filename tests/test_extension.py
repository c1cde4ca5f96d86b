"""Registration, menus, preferences and panels on real Blender."""
import addon_utils
import bpy

from conftest import MODULE


def test_operators_and_panels_registered(fw):
    assert hasattr(bpy.ops.sequencer, "frameweaver_generate_inbetweens")
    assert hasattr(bpy.ops.sequencer, "frameweaver_cancel_job")
    assert hasattr(bpy.ops.frameweaver, "install_torch")
    assert hasattr(bpy.types, "SEQUENCER_PT_frameweaver_inbetween")
    assert bpy.context.scene.frameweaver.inbetween_model == "auto"


def test_strip_menu_and_context_menu_hooked(fw):
    for menu in ("SEQUENCER_MT_strip", "SEQUENCER_MT_context_menu"):
        draw_funcs = getattr(bpy.types, menu)._dyn_ui_initialize()
        assert fw.ui.menus.draw_strip_menu in draw_funcs


def test_preferences_defaults(fw):
    prefs = bpy.context.preferences.addons[MODULE].preferences
    assert prefs.device == "AUTO" and prefs.use_half
    assert fw.ui.preferences.addon_preferences(bpy.context) == prefs
    assert prefs.bl_rna.properties["hf_token"].subtype == "PASSWORD"


def test_disable_enable_cycles(fw):
    for _ in range(3):
        addon_utils.disable(MODULE, default_set=True)
        assert not hasattr(bpy.types, "SEQUENCER_PT_frameweaver")
        addon_utils.enable(MODULE, default_set=True, handle_error=None)
        assert hasattr(bpy.types, "SEQUENCER_PT_frameweaver")
    assert hasattr(bpy.types.Scene, "frameweaver")


def test_job_operators_need_a_sequencer_scene(scene, seq_ctx):
    names = ("generate_inbetweens", "train_propagate", "animate_loop", "train_loop_motion", "preview_loop_motion")
    with seq_ctx(scene):
        assert all(getattr(bpy.ops.sequencer, f"frameweaver_{name}").poll() for name in names)
    scene.sequence_editor_clear()
    with seq_ctx(scene):
        assert not any(getattr(bpy.ops.sequencer, f"frameweaver_{name}").poll() for name in names)

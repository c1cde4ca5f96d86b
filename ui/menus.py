"""Menu entries: Sequencer > Strip and the strip context menu."""
import bpy

MENUS = ("SEQUENCER_MT_strip", "SEQUENCER_MT_context_menu")


def draw_strip_menu(self, context):
    self.layout.separator()
    self.layout.operator("sequencer.frameweaver_generate_inbetweens", icon="SEQUENCE")
    self.layout.operator("sequencer.frameweaver_animate_loop", icon="FILE_REFRESH")


def register():
    for name in MENUS:
        getattr(bpy.types, name).append(draw_strip_menu)


def unregister():
    for name in MENUS:
        getattr(bpy.types, name).remove(draw_strip_menu)

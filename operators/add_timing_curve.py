"""Inbetweens panel > Add Timing Curve: the curve that Custom timing follows.

Blender keeps curve widgets (CurveMapping) only inside datablocks such as nodes, so the curve
lives in a Float Curve node of a small node group: saved with the file, undoable, edited with
Blender's own curve widget in the panel, and read the same way on 4.2 to 5.x.
"""
import bpy

from . import compat
from .timing import CURVE_NODE


class SEQUENCER_OT_frameweaver_add_timing_curve(bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_add_timing_curve"
    bl_label = "Add Timing Curve"
    bl_description = "Make a curve for Custom timing: time through the gap across, the part of the motion done up"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return compat.has_sequencer(context)

    def execute(self, context):
        group = bpy.data.node_groups.new("Frameweaver Timing", "ShaderNodeTree")
        group.use_fake_user = True  # kept in the file even while no scene points at it
        group.nodes.new(CURVE_NODE).label = "Timing: time across, motion done up"
        compat.sequencer_scene(context).frameweaver.inbetween_timing_curve = group
        return {"FINISHED"}

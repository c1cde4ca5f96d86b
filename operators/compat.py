"""Small shims over the Sequencer API changes between Blender 4.2 LTS and 5.x.

- 4.4 renamed ``sequences`` to ``strips`` (5.0 removed the old names).
- 5.0 added ``context.sequencer_scene`` (the workspace's scene; ``None`` headless).
- 5.1 added ``left_handle``/``right_handle``/``duration`` and deprecated ``frame_final_*``.
"""
import bpy


def sequencer_scene(context):
    """The scene the Sequencer edits: the workspace's on 5.0+, else the window's."""
    return getattr(context, "sequencer_scene", None) or context.scene


def has_sequencer(context) -> bool:
    """Whether there is a Sequencer scene with strips to work on: the poll of every strip operator."""
    scene = sequencer_scene(context)
    return scene is not None and scene.sequence_editor is not None


def strip_type():
    """The RNA base class of every strip (``Sequence`` before 4.4), for properties on strips."""
    return getattr(bpy.types, "Strip", None) or bpy.types.Sequence


def strips(editor):
    """Top-level strip collection (also used to create strips)."""
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def all_strips_attribute(editor) -> str:
    """Name of the every-strip collection, for ``layout.prop_search``."""
    return "strips_all" if hasattr(editor, "strips_all") else "sequences_all"


def all_strips(editor):
    """Every strip, including those inside meta strips."""
    return getattr(editor, all_strips_attribute(editor))


def selected_strips(scene):
    editor = scene.sequence_editor
    return [s for s in all_strips(editor) if s.select] if editor else []


def left_handle(strip) -> int:
    """First frame the strip shows."""
    return strip.left_handle if hasattr(strip, "left_handle") else strip.frame_final_start


def right_handle(strip) -> int:
    """One past the last frame the strip shows."""
    return strip.right_handle if hasattr(strip, "right_handle") else strip.frame_final_end


def content_start(strip) -> float:
    """Timeline frame of the strip's first source frame, shown or not (``frame_start`` goes in Blender 6.0)."""
    return strip.content_start if hasattr(strip, "content_start") else strip.frame_start


def set_duration(strip, frames: int) -> None:
    if hasattr(strip, "duration"):
        strip.duration = frames
    else:
        strip.frame_final_duration = frames


def sequencer_override(scene):
    """Context for ``bpy.ops.sequencer.*`` in background mode (no area, no sequencer scene)."""
    window = bpy.context.window_manager.windows[0]
    area = window.screen.areas[0]
    area.type = "SEQUENCE_EDITOR"
    area.spaces.active.view_type = "SEQUENCER"
    region = next(r for r in area.regions if r.type == "WINDOW")
    return bpy.context.temp_override(
        window=window, area=area, region=region, scene=scene, sequencer_scene=scene
    )

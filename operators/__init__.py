"""Blender operators and the Blender-side job machinery. Never imports torch."""

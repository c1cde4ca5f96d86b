"""Blender UI: preferences, the N-panel, menus. Never imports torch."""

"""Loops from a still: a static motion field from user hints, symmetric splatting, optional light change.

``hints`` (arrows, strokes, polygons -> velocity field), ``synthesis`` (the frames),
``appearance`` (light change), ``task`` (the worker task) and ``__main__`` (the command line).
"""

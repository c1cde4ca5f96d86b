"""Loops from a still: a static motion field (from user hints or a trained model), symmetric splatting,
optional light change.

``hints`` (arrows, strokes, polygons -> velocity field), ``motion_net`` (the learned motion
predictor), ``train`` (its training command), ``synthesis`` (the frames), ``appearance`` (light
change), ``task`` (the worker task) and ``__main__`` (the command line).
"""

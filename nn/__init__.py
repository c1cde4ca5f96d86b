"""Plain PyTorch side of Frameweaver: networks, weights, image files and the worker.

Nothing here imports bpy, so it runs in the worker process and from the command line.
"""

"""The job's latest preview frame as an icon the panel can draw (no image datablock is created)."""
import bpy.utils.previews

_collection = None


def icon_id(path: str) -> int:
    """Icon of the image at ``path``; only the latest preview is kept loaded."""
    global _collection
    if _collection is None:
        _collection = bpy.utils.previews.new()
    if path not in _collection:
        _collection.clear()
        _collection.load(path, path, "IMAGE")
    return _collection[path].icon_id


def unregister():
    global _collection
    if _collection is not None:
        bpy.utils.previews.remove(_collection)
        _collection = None

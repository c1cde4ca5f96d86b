"""Render the bundled sample keyframes (examples/keyframes/) with Blender itself.

Three poses of a bouncing, turning ball and a sliding box on a transparent
background (RGBA), so the demo shows motion and alpha handling. Run once:
``.venv/bin/python scripts/render_samples.py``.
"""
import math
import os
import sys
import tempfile

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="frameweaver-samples-"))
import bpy  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "keyframes")
POSES = [  # (ball x, ball z, ball turn, box x): about 35 px of motion per key at 480x270
    (-0.5, 0.6, 0.0, 0.6),
    (0.0, 0.95, 0.5, 0.3),
    (0.5, 0.6, 1.0, 0.0),
]


def material(name, colour):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (*colour, 1.0)
    return mat


def build_scene():
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples, scene.cycles.device = 16, "CPU"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 480, 270, 100
    scene.render.film_transparent = True
    scene.render.image_settings.file_format, scene.render.image_settings.color_mode = "PNG", "RGBA"
    scene.view_settings.view_transform = "Standard"

    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.6, segments=24, ring_count=12)
    ball = bpy.context.object
    ball.data.materials.append(material("ball", (0.9, 0.35, 0.1)))
    bpy.ops.object.shade_smooth()
    bpy.ops.mesh.primitive_cube_add(size=0.8, location=(0, -1.0, 0.4))
    box = bpy.context.object
    box.data.materials.append(material("box", (0.1, 0.4, 0.9)))
    bpy.ops.object.light_add(type="SUN", rotation=(0.6, 0.2, 0.8))
    bpy.context.object.data.energy = 4.0
    bpy.ops.object.camera_add(location=(0, -9, 2.2), rotation=(math.radians(84), 0, 0))
    scene.camera = bpy.context.object
    return scene, ball, box


def main():
    scene, ball, box = build_scene()
    os.makedirs(OUT, exist_ok=True)
    for index, (x, z, turn, box_x) in enumerate(POSES, start=1):
        ball.location, ball.rotation_euler = (x, 0, z), (0, turn, turn)
        box.location.x = box_x
        scene.render.filepath = os.path.join(OUT, f"key_{index:02d}.png")
        bpy.ops.render.render(write_still=True)
        print("wrote", scene.render.filepath, file=sys.stderr)


if __name__ == "__main__":
    main()

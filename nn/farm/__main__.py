"""Run a worker spec's chunks on a Ray cluster: ``python -m nn.farm SPEC.json --ray HOST:PORT``.

The spec is the one Blender's side writes for ``python -m nn.worker`` (an inbetween or Retime
job, a loop, a trained style model applied). Progress goes to stderr as "N of M frames"; the
last line on stdout is ``{"outputs": [...], "info": {...}}`` once every frame exists exactly once.
"""
import argparse
import json
import sys

from ..cli import add_farm_arguments, run_command, run_on_farm


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nn.farm", description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", metavar="SPEC.json")
    add_farm_arguments(parser)
    args = parser.parse_args(argv)
    if not args.ray:
        sys.exit("error: give the cluster's head with --ray HOST:PORT")
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    args.device, args.half = spec.get("device", "auto"), spec.get("half", False)
    outputs, info = run_on_farm(args, spec["task"], spec["params"])
    print(json.dumps({"outputs": outputs, "info": info}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))

"""The public numbers of every surface (scripting API, operators, command lines): one rule each, one wording.

Plain Python (no torch, no bpy). A value is refused unless it is a number of the right kind (a bool or
a string is not), finite, and in range; the message is the same everywhere, with the parameter named as
that surface names it: "count must be a whole number from 1 to 100000, got 0" from a script or an
operator, "error: --count must be a whole number from 1 to 100000, got 0" from a command line. Blender's
own sliders keep the common range (soft limits); a value typed or scripted outside it meets these rules.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .worker import TaskError


class InvalidValue(ValueError):
    """A public number out of its rule; the message says which rule, in the words every surface uses."""


class InvalidArgument(TaskError):
    """The same, for a command-line option. Not a ValueError on purpose: argparse would catch that and print
    its usage around the words; this one reaches ``run_command``, which prints the one line "error: ..."."""


@dataclass(frozen=True)
class Rule:
    whole: bool  # a whole number (an int, not a bool), else any finite real number
    low: float
    high: float
    above: bool = False  # strictly above ``low`` (0 itself refused)
    below: bool = False  # strictly below ``high``

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a finite number"
        if self.above and self.below:
            return f"{kind} strictly between {self.low:g} and {self.high:g}"
        low = f"above {self.low:g}" if self.above else f"from {self.low:g}"
        return f"{kind} {low} {'and at most' if self.above else 'to'} {self.high:g}"

    def fits(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral if self.whole else numbers.Real):
            return False
        number = float(value)
        if not math.isfinite(number) or number > self.high or (self.below and number == self.high):
            return False
        return number > self.low if self.above else number >= self.low


# The public numbers, by the name the scripting API and the operators give them.
RULES: dict[str, Rule] = {
    "count": Rule(True, 1, 100_000),  # inbetweens per gap (the slider stops at 255)
    "target_fps": Rule(False, 1, 1000),
    "time": Rule(False, 0, 1, above=True, below=True),  # an inbetween's time between two keys
    "frames": Rule(True, 2, 100_000),  # a loop's length
    "speed": Rule(False, 0.01, 100),  # a loop's pixels per frame
    "dusk": Rule(False, 0, 1),
    "colour": Rule(False, 0, 1),  # each of a colour's channels
    "seconds": Rule(False, 0, 36_000, above=True),  # a training budget
    "steps": Rule(True, 1, 1_000_000),  # training steps
    "denoising_steps": Rule(True, 1, 1000),  # the generative model's (the slider stops at 200)
    "guidance": Rule(False, 0, 30),
    "seed": Rule(True, 0, 2**31 - 1),
    "batch": Rule(True, 1, 1024),
    "learning_rate": Rule(False, 0, 1, above=True),
    "frame_step": Rule(True, 1, 1000),
    "threads": Rule(True, 0, 1024),
    "curve_point": Rule(False, 0, 1),  # each x and y of a timing curve
    "chunks": Rule(True, 0, 100_000),  # a farm job's chunks (0: one per GPU, or per CPU)
    "retries": Rule(True, 0, 100),  # a farm chunk's attempts after the first
}

FLOW_SCALES = (0.0, 1.0, 0.5, 0.25)  # 0: automatic


def problem(key: str, value) -> str:
    """What is wrong with ``value`` under ``key``'s rule, without the parameter's name ('' if nothing)."""
    rule = RULES[key]
    return "" if rule.fits(value) else f"must be {rule.describe()}, got {value!r}"


def check(key: str, value, name: str | None = None):
    """``value`` if it keeps ``key``'s rule, else InvalidValue naming ``name`` (default: ``key``)."""
    if wrong := problem(key, value):
        raise InvalidValue(f"{name or key} {wrong}")
    return value


def check_flow_scale(value, name: str = "flow_scale") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or float(value) not in FLOW_SCALES:
        raise InvalidValue(f"{name} must be one of 0 (automatic), 1, 0.5 or 0.25, got {value!r}")
    return float(value)


def check_colour(value, name: str = "dusk_colour") -> tuple[float, float, float]:
    try:
        channels = tuple(value)
    except TypeError:
        channels = ()
    if len(channels) != 3 or any(problem("colour", c) for c in channels):
        raise InvalidValue(f"{name} must be three finite numbers from 0 to 1 (red, green, blue), got {value!r}")
    return channels


def check_curve_points(points, name: str = "timing_curve") -> list[tuple[float, float]]:
    """(x, y) pairs of finite numbers from 0 to 1; their order and shape are the timing's own rules."""
    try:
        pairs = [tuple(point) for point in points]
    except TypeError:
        pairs = None
    bad = next((p for p in pairs if len(p) != 2 or any(problem("curve_point", v) for v in p)), None) \
        if pairs is not None else points
    if pairs is None or bad is not None:
        raise InvalidValue(f"{name} must be (x, y) points, each a finite number from 0 to 1, got {bad!r}")
    return [(float(x), float(y)) for x, y in pairs]


def check_generative(seed, steps, guidance) -> None:
    """The generative model's numbers, as the scripting API and the operators name them."""
    check("seed", seed)
    check("denoising_steps", steps, "steps")
    check("guidance", guidance)


def argument(key: str, option: str):
    """An argparse ``type`` for ``key`` given as ``option``: the text read as a number, then the same rule."""
    def parse(text: str):
        try:
            value = int(text) if RULES[key].whole else float(text)
        except ValueError:
            value = text
        if wrong := problem(key, value):
            raise InvalidArgument(f"{option} {wrong}")
        return value

    parse.__name__ = key  # argparse names the type in some messages
    return parse

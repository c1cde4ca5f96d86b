"""Model "auto", the default: Key Motion where motion explains the gap, the generative model where it
cannot, when that model can run (its weights already on disk, a CUDA GPU or the CPU allowed).

A gap counts as unexplained when, splatted to its middle, the two keys disagree in colour over more than
``UNEXPLAINED_LIMIT`` of its moving pixels (``KeyMotion.unexplained``): what turns, is occluded or is
redrawn. Each such gap is generated on its own, from its two keys. Key Motion's motion is what both use
to decide, so on a machine without the generative model Auto costs what Key Motion costs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..worker import TaskError

UNEXPLAINED_LIMIT = 0.3


@dataclass
class Auto:
    keymotion: object  # KeyMotion
    generative: object | None  # Generative, or None with ``why_not``
    why_not: str = ""
    shares: dict = field(default_factory=dict)  # (a, b) -> unexplained share, for the job's info
    measure: bool = True  # False: Key Motion throughout, nothing measured (a clip's neighbouring frames)


def load_auto(params: dict, ctx, load_model) -> Auto:
    """Key Motion, and the generative model if it can run without a download."""
    keymotion = load_model({**params, "model": "keymotion"}, ctx)
    if params.get("clip"):  # retiming: neighbouring frames, which motion explains
        return Auto(keymotion, None, "clips are retimed by motion", measure=False)
    if ctx.device.type != "cuda" and not params.get("allow_cpu"):
        return Auto(keymotion, None, "it needs a CUDA GPU")
    offline = {**params, "hub": {**params.get("hub", {}), "online": False}}  # never an implicit 18 GB download
    try:
        return Auto(keymotion, load_model({**offline, "model": "generative"}, ctx))
    except TaskError as error:
        return Auto(keymotion, None, f"it is not available ({error})")


class AutoSequence:
    """``frame(a, b, t)`` as Key Motion's ``KeySequence``, each gap decided when its first frame is asked for."""

    def __init__(self, auto: Auto, motion_sequence, make_generative, key, is_float: bool):
        self.auto, self.motion_sequence, self.make_generative = auto, motion_sequence, make_generative
        self.key, self.is_float = key, is_float
        self.generated = (None, None)  # (gap, its GenerativeSequence)

    def frame(self, a: int, b: int, t: float):
        if not self.auto.measure:
            return self.motion_sequence.frame(a, b, t)
        if (a, b) not in self.auto.shares:
            motion = self.motion_sequence.motion(a, b)
            self.auto.shares[a, b] = self.auto.keymotion.unexplained(self.key(a), self.key(b), motion, self.is_float)
        if self.auto.generative is None or self.auto.shares[a, b] <= UNEXPLAINED_LIMIT:
            return self.motion_sequence.frame(a, b, t)
        if self.generated[0] != (a, b):
            self.generated = ((a, b), self.make_generative((a, b)))
        return self.generated[1].frame(a, b, t)


def note(auto: Auto) -> str:
    """What the user should know about Auto's choices ('' when motion explained every gap)."""
    hard = sorted(gap for gap, share in auto.shares.items() if share > UNEXPLAINED_LIMIT)
    if not hard:
        return ""
    gaps = ", ".join(f"keys {a + 1}-{b + 1}" for a, b in hard[:5]) + (f" and {len(hard) - 5} more" if len(hard) > 5 else "")
    if auto.generative is not None:
        return f"Auto: the generative model drew the gaps between {gaps}, which motion does not explain; Key Motion the rest"
    return (f"Auto: motion does not explain the gaps between {gaps}; the generative model would draw them, but "
            f"{auto.why_not}. Key Motion made them")


def report(auto: Auto) -> dict:
    """For the job's info: which gaps the generative model made, and which it would have."""
    hard = sorted(gap for gap, share in auto.shares.items() if share > UNEXPLAINED_LIMIT)
    return {"unexplained": {f"{a}-{b}": round(share, 3) for (a, b), share in sorted(auto.shares.items())},
            "generated_gaps": hard if auto.generative is not None else [],
            "unexplained_gaps": hard, "generative_unavailable": auto.why_not}

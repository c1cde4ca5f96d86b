"""Run a job's chunks as tasks on a Ray cluster: ``--ray HOST:PORT`` on ``nn.inbetween``, ``nn.loop``, ``nn.stylize``.

Each chunk (``chunks.py``) is one Ray task that runs the worker task in the Ray worker process
itself, so killing that process stops the chunk's writing at once; Ray then runs the chunk
again (up to ``retries`` times), and the new attempt skips the frames already written. The
``nn`` package travels with the job (Ray's ``py_modules``); the output folder does not: every
node must see it at the same path, and a chunk on a node that does not fails saying so.

The cluster's token comes from Ray's own places (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
``~/.ray/auth_token``); nothing here reads it into a spec, a log or a file.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import socket
import sys
import tempfile
import uuid

from .. import files, values
from . import chunks

CONNECT_TIMEOUT = 10.0  # seconds for the head's port to answer
RETRIES = 3  # attempts after the first, for a chunk whose worker process died
POLL_SECONDS = 0.2
NN_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOT_INSTALLED = ("Ray is not installed for {python}. Install it with: pip install 'ray[default]==2.60.0' "
                 "(or tick Farm support under Install PyTorch in Blender's preferences)")


class FarmError(RuntimeError):
    """What went wrong with the cluster or a chunk, in one line for the user."""


def token_file() -> str:
    return os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.join(os.path.expanduser("~"), ".ray", "auth_token")


def token_available() -> bool:
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or os.path.isfile(token_file())


def split_address(address: str) -> tuple[str, int]:
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise FarmError(f"--ray takes the head node's HOST:PORT (for example 127.0.0.1:6379), not {address!r}")
    return host.strip("[]"), int(port)


def check_reachable(address: str) -> None:
    """Fail within CONNECT_TIMEOUT when nothing listens at ``address`` (Ray itself would retry for minutes)."""
    host, port = split_address(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as error:
        reason = "timed out" if isinstance(error, socket.timeout) else (error.strerror or str(error))
        raise FarmError(f"No Ray cluster answers at {address} ({reason}). Start its head with 'ray start --head "
                        "--port PORT' on that machine, or check the address.") from None


def connect(address: str):
    """The ``ray`` module, joined to the cluster at ``address`` as a driver ("auto": the cluster that runs this
    process, as a job submitted to it)."""
    # The package travels with the job; inside a submitted job it already does, as the job's working_dir.
    runtime_env = {"py_modules": [NN_PACKAGE], "env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}}
    if address == "auto":
        address, runtime_env = os.environ.get("RAY_ADDRESS", ""), None
        if not address:
            raise FarmError("--ray auto works inside a Ray job only (RAY_ADDRESS is not set); give HOST:PORT")
    check_reachable(address)
    if token_available():
        os.environ.setdefault("RAY_AUTH_MODE", "token")  # read by Ray when it is imported
    # A running head answers at once: a refused token need not be tried 20 times, a second each.
    os.environ.setdefault("RAY_NUM_REDIS_GET_RETRIES", "2")
    try:
        import ray
    except ImportError:
        raise FarmError(NOT_INSTALLED.format(python=sys.executable)) from None
    try:
        with quiet_stderr():  # Ray's C++ client logs each attempt there; the outcome is told in one line
            ray.init(address=address, logging_level="ERROR", log_to_driver=False, runtime_env=runtime_env)
    except Exception as error:
        if is_refused_token(error):
            where = "RAY_AUTH_TOKEN" if os.environ.get("RAY_AUTH_TOKEN") else token_file()
            found = f"the token in {where}" if token_available() else \
                f"no token (set RAY_AUTH_TOKEN, or put it in {token_file()})"
            raise FarmError(f"The Ray cluster at {address} refused {found}: use the token the cluster was started "
                            "with") from None
        raise FarmError(f"Cannot join the Ray cluster at {address}: {first_line(error)}") from None
    return ray


@contextlib.contextmanager
def quiet_stderr():
    """Send file descriptor 2 (C libraries write there directly) to a scratch file for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as scratch:
            os.dup2(scratch.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def is_refused_token(error: BaseException) -> bool:
    while error is not None:
        if type(error).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def run_chunk(task: str, params: dict, chunk: tuple[int, int], device: str, half: bool, marker: str):
    """One chunk, inside a Ray worker: (outputs, info). The marker file proves this node sees the output folder."""
    if not os.path.isfile(marker):
        raise FarmError(f"Node {socket.gethostname()} cannot see the output folder {os.path.dirname(marker)}: every "
                        "node must see it at the same path (a shared drive mounted alike on every node)")
    from ..device import pick_device, use_half
    from ..worker import TASKS, TaskContext

    class Silent(TaskContext):
        def progress(self, fraction, message, preview=None):
            pass  # the driver counts the frames on disk

    picked = pick_device(device)
    module = importlib.import_module(TASKS[task], "nn")
    return module.run({**params, "chunk": list(chunk)}, Silent(picked, use_half(picked, half)))


def chunk_failure(error: BaseException, ray) -> tuple[bool, str]:
    """(whether the worker died, what to tell the user) for what ``ray.get`` raised."""
    from ..worker import error_message

    cause = getattr(error, "cause", None)
    if isinstance(error, ray.exceptions.RayTaskError) and cause is not None:
        return False, error_message(cause, "its node")
    if isinstance(error, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                          ray.exceptions.LocalRayletDiedError)):
        return True, f"its worker process died ({first_line(error)})"
    return False, first_line(error)


def merged_info(infos: list[dict]) -> dict:
    """One job's info from its chunks': lists joined without repeats, flags true when every chunk's is."""
    merged: dict = {}
    for info in infos:
        for key, value in info.items():
            if key not in merged:
                merged[key] = value
            elif isinstance(value, list):
                merged[key] = merged[key] + [v for v in value if v not in merged[key]]
            elif isinstance(value, bool):
                merged[key] = merged[key] and value
    return merged


def new_files(folder: str, before: set[str]) -> int:
    try:
        return sum(1 for name in os.listdir(folder) if not name.startswith(".") and name not in before)
    except OSError:
        return 0


def run(task: str, params: dict, address: str, *, chunk_count: int = 0, retries: int = RETRIES,
        device: str = "auto", half: bool = False, progress=None) -> tuple[list[str], dict]:
    """Run the job on the cluster at ``address``; returns once every frame exists exactly once.

    ``chunk_count`` 0 picks one chunk per GPU (per CPU without GPUs): each chunk pays for a process, PyTorch's
    import and the model's load (bench/farm.py), and a retried chunk resumes from its frames anyway. ``progress(done, total)``
    is called as frames appear. Raises ``FarmError`` naming the chunk and its last error when a
    chunk fails; the frames already written stay, and a rerun resumes from them.
    """
    values.check("chunks", chunk_count, "chunk_count")
    values.check("retries", retries)
    total = chunks.frame_count(task, params)  # refuses what cannot be split before touching the cluster
    out_dir = params["output_dir"]
    ray = connect(address)
    marker = None
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        count = min(chunk_count or gpus or int(resources.get("CPU", 1)) or 1, max(total, 1))
        os.makedirs(out_dir, exist_ok=True)
        marker = os.path.join(out_dir, f".frameweaver-farm-{uuid.uuid4().hex}")
        files.write_new(marker, b"")
        before = set(os.listdir(out_dir))
        remote = ray.remote(run_chunk).options(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=retries,
                                               retry_exceptions=False)
        pending = {remote.remote(task, params, (index, count), device, half, marker): index
                   for index in range(1, count + 1)}
        results = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
            for ref in ready:
                index = pending.pop(ref)
                try:
                    results[index] = ray.get(ref)
                except Exception as error:
                    for other in pending:
                        ray.cancel(other, force=True)
                    died, message = chunk_failure(error, ray)
                    frames = chunks.frame_range(total, (index, count))
                    tries = f" after {retries + 1} attempts" if died else ""
                    raise FarmError(f"Chunk {index} of {count} (frames {frames.start + 1}-{frames.stop}) "
                                    f"failed{tries}: {message}") from None
            if progress:
                progress(min(new_files(out_dir, before), total), total)
        outputs = [path for index in sorted(results) for path in results[index][0]]
        check_complete(outputs, total, out_dir)
        return outputs, merged_info([results[index][1] for index in sorted(results)])
    finally:
        if marker and os.path.lexists(marker):
            os.unlink(marker)
        ray.shutdown()


def check_complete(outputs: list[str], total: int, out_dir: str) -> None:
    """Every frame once, each a complete file, and no partial file left by a killed attempt."""
    missing = [path for path in outputs if not os.path.isfile(path)]
    partial = [name for name in os.listdir(out_dir) if name.startswith(".") and ".partial-" in name]
    if len(outputs) != total or len(set(outputs)) != total or missing or partial:
        raise FarmError(f"The farm job ended with {len(set(outputs)) - len(missing)} of {total} frames"
                        + (f"; a partial file remains: {partial[0]}" if partial else ""))

"""A Ray cluster of several nodes on this machine, on 127.0.0.1 with token authentication.

For the tests and ``bench/farm.py`` (and for trying the farm on one workstation). Every node is
a ``ray start --block`` process in its own process group, so stopping the cluster ends exactly
the processes it started, never another Ray on the machine.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

START_TIMEOUT = 60.0  # seconds for every node to join


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalCluster:
    """``with LocalCluster(nodes=2) as cluster:`` a head and ``nodes - 1`` workers, each with ``cpus_per_node`` CPUs.

    ``cluster.address`` is the head's host:port and ``cluster.environment`` the variables a driver
    needs (the token). ``dashboard=True`` also starts the head's dashboard (the Jobs REST API) on
    127.0.0.1:``cluster.dashboard_port``.
    """

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, dashboard: bool = False,
                 hidden_from_last_node: str | None = None):
        self.nodes, self.cpus_per_node, self.dashboard = nodes, cpus_per_node, dashboard
        # A folder the last node cannot see: an empty tmpfs over it in a mount namespace of that node's
        # own (Linux, as root), as on a farm whose machines do not share every drive.
        self.hidden_from_last_node = hidden_from_last_node
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.dashboard_port = free_port() if dashboard else None
        self.address = f"127.0.0.1:{self.port}"
        self.environment = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}
        # Short: Ray puts unix sockets in it, and their paths are limited to about 100 bytes.
        self.temp_dir = tempfile.mkdtemp(prefix="fwray-", dir="/tmp")
        self.processes: list[subprocess.Popen] = []

    def ray_command(self) -> str:
        return os.path.join(os.path.dirname(sys.executable), "ray")

    def start(self) -> "LocalCluster":
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus_per_node), "--num-gpus", "0",
                  "--disable-usage-stats", "--temp-dir", self.temp_dir, "--block"]
        head = ["--head", "--port", str(self.port)]
        head += (["--include-dashboard=true", "--dashboard-host", "127.0.0.1", "--dashboard-port",
                  str(self.dashboard_port)] if self.dashboard else ["--include-dashboard=false"])
        try:
            self._start_node(head + common, "head")
            self._wait_for_port(self.port)
            for index in range(1, self.nodes):
                hide = self.hidden_from_last_node if index == self.nodes - 1 else None
                self._start_node(["--address", self.address] + common, f"node{index}", hide)
            self._wait_for_nodes()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, arguments: list[str], name: str, hidden: str | None = None) -> None:
        # Each node's dashboard agent takes Ray's fixed default port (52365) otherwise: a second node, or
        # another cluster on this machine, then has none, and the head answers "No available agent".
        command = [self.ray_command(), "start", *arguments, "--dashboard-agent-listen-port", str(free_port())]
        if hidden:
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       'mount -t tmpfs frameweaver-hidden "$0" && exec "$@"', hidden, *command]
        # A submitted job's entrypoint runs "python" from the head's PATH: this Python, with torch and Ray.
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
        with open(os.path.join(self.temp_dir, f"{name}.log"), "wb") as log:
            self.processes.append(subprocess.Popen(
                command, env={**os.environ, **self.environment, "PATH": path},
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def _wait_for_port(self, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"A Ray node did not start: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"The Ray head did not open port {port} within {START_TIMEOUT:g} s")

    def _wait_for_nodes(self) -> None:
        """Until ``ray status`` (run with the cluster's token) counts every node."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"A Ray node stopped: {self.log_tail()}")
            status = subprocess.run([self.ray_command(), "status", "--address", self.address],
                                    env={**os.environ, **self.environment}, capture_output=True, text=True)
            if status.returncode == 0 and status.stdout.count(" node_") >= self.nodes:
                return
            time.sleep(0.5)
        raise TimeoutError(f"Not every Ray node joined within {START_TIMEOUT:g} s")

    def log_tail(self, chars: int = 1500) -> str:
        text = ""
        for name in sorted(os.listdir(self.temp_dir)):
            if name.endswith(".log"):
                with open(os.path.join(self.temp_dir, name), "rb") as log:
                    text += f"[{name}] " + log.read()[-chars:].decode("utf-8", "replace")
        return text

    def own_processes(self, title: str = "") -> list[int]:
        """Pids of the live processes this cluster started (they carry its token; Ray's workers start
        sessions of their own, so the nodes' process groups do not hold them), whose command line
        (a Ray worker's is its title, ``ray::<function>``) starts with ``title``."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if f"RAY_AUTH_TOKEN={self.token}".encode() not in f.read().split(b"\0"):
                        continue
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue  # gone meanwhile, or not ours to read
            if command.startswith(title) and int(entry) != os.getpid():
                found.append(int(entry))
        return found

    def stop(self) -> None:
        """End every process this cluster started (TERM, then KILL after a few seconds) and remove its files."""
        for process in self.processes:
            signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for process in self.processes:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            signal_group(process, signal.SIGKILL)  # what did not stop by itself; the group outlives its leader
            process.wait()
        for pid in self.own_processes():  # workers in sessions of their own
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.processes.clear()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass

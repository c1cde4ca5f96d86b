"""A client of the Ray Jobs REST API (the head's dashboard), with Python's standard library only.

Blender's Python has no Ray; a farm job is submitted to the head over HTTP. The job's
entrypoint, ``python -m nn.farm SPEC --ray auto``, then runs on the cluster as its driver. The
code travels as a package uploaded to the cluster (Ray's ``gcs://_ray_pkg_<hash>.zip``); the
spec and the frames live in the job folder, which every node must see.

The token comes from Ray's own places (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``,
``~/.ray/auth_token``) and goes only into the Authorization header.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
import urllib.error
import urllib.request
import zipfile

TIMEOUT = 10.0  # seconds per request
SUBMIT_TIMEOUT = 60.0  # a submission starts the job's supervisor on the head: slower, more so on a busy head
# What the Jobs API reports while a job may still change, and once it cannot.
RUNNING_STATES = {"PENDING", "RUNNING"}


class FarmUnavailable(RuntimeError):
    """The cluster could not be reached or refused the request: one line for the user."""


def token_file() -> str:
    return os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.join(os.path.expanduser("~"), ".ray", "auth_token")


def token() -> str | None:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    try:
        with open(token_file(), encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def base_url(address: str) -> str:
    """``http://host:port`` from what a user types: with or without the scheme."""
    address = address.strip().rstrip("/")
    if not address:
        raise FarmUnavailable("Set the Ray address (the head's dashboard, e.g. http://127.0.0.1:8265) in "
                              "Preferences > Add-ons > Frameweaver > Farm")
    return address if "://" in address else f"http://{address}"


class RayJobs:
    def __init__(self, address: str):
        self.url = base_url(address)

    def request(self, method: str, path: str, body: bytes | dict | None = None, timeout: float = TIMEOUT) -> dict:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        headers = {"Content-Type": "application/json"} if isinstance(body, dict) else {}
        if secret := token():
            headers["Authorization"] = f"Bearer {secret}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                text = response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace").strip().splitlines()
            if error.code in (401, 403):
                found = "the token in RAY_AUTH_TOKEN" if os.environ.get("RAY_AUTH_TOKEN") else (
                    f"the token in {token_file()}" if token() else
                    f"no token (set RAY_AUTH_TOKEN, or put it in {token_file()})")
                raise FarmUnavailable(f"The Ray cluster at {self.url} refused {found}") from None
            raise FarmUnavailable(f"The Ray cluster at {self.url} answered {error.code}: "
                                  f"{detail[-1] if detail else error.reason}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise FarmUnavailable(f"No Ray dashboard answers at {self.url} ({reason}). Start the head with its "
                                  "dashboard, or check the Ray address in Preferences > Add-ons > Frameweaver") from None
        return json.loads(text) if text.strip() else {}

    def upload_package(self, root: str, folder: str) -> str:
        """Zip ``root/folder`` (``folder/...`` inside) unless the cluster has it already; its ``gcs://`` URI."""
        data = package_zip(root, folder)
        name = f"_ray_pkg_{hashlib.sha256(data).hexdigest()[:32]}.zip"
        try:
            self.request("GET", f"/api/packages/gcs/{name}")
        except FarmUnavailable as error:
            if " answered 404" not in str(error):
                raise
            self.request("PUT", f"/api/packages/gcs/{name}", data, SUBMIT_TIMEOUT)
        return f"gcs://{name}"

    def submit(self, entrypoint: str, runtime_env: dict, metadata: dict) -> str:
        """The job's id. A head that has just started answers "No available agent ... try again later" for a
        few seconds: that is asked again until SUBMIT_TIMEOUT."""
        body = {"entrypoint": entrypoint, "runtime_env": runtime_env, "metadata": metadata}
        deadline = time.monotonic() + SUBMIT_TIMEOUT
        while True:
            try:
                return self.request("POST", "/api/jobs/", body, SUBMIT_TIMEOUT)["submission_id"]
            except FarmUnavailable as error:
                if "try again later" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(1.0)

    def status(self, job_id: str) -> dict:
        return self.request("GET", f"/api/jobs/{job_id}")

    def logs(self, job_id: str) -> str:
        return self.request("GET", f"/api/jobs/{job_id}/logs").get("logs", "")

    def stop(self, job_id: str) -> None:
        self.request("POST", f"/api/jobs/{job_id}/stop")


def package_zip(root: str, folder: str) -> bytes:
    """The ``.py`` files under ``root/folder``, in a stable order (same files, same bytes, same name)."""
    paths = sorted(os.path.join(parent, name) for parent, _, names in os.walk(os.path.join(root, folder))
                   for name in names if name.endswith(".py"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            with open(path, "rb") as f:
                archive.writestr(zipfile.ZipInfo(os.path.relpath(path, root), date_time=(1980, 1, 1, 0, 0, 0)),
                                 f.read(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()

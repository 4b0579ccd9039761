"""The "api" target of benchmarks/fuzz_media.py: every fuzz file uploaded to a running `synclip serve`.

A video or photo goes up as the presenter (with a healthy voice), an audio file as the voice (with a healthy
presenter video), each under its own file name, the way a browser sends bytes (links are read through;
fifos, folders and other things that are not files are not uploads, and are skipped). Every answer must be
JSON: a refusal (4xx) whose one-line ``error`` names the file, or a job (202) that ends done or failed with
such an error, within the time limit; after each file the server must still answer /health.

Outcomes as fuzz_media's: ok, error (one line naming the file), internal (a job failed with the server's
last-resort "internal error": a bug), unclear (anything else answered: not JSON, a message without the file's
name), hang (no end within the limit), crash (the server stopped answering; it is restarted for the next file).

    python benchmarks/fuzz_media.py --targets api --out benchmarks/results/fuzz_api.json
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

CALL_TIMEOUT_S = 90  # one file: upload, the job, its end
STARTUP_S = 120


class StudioProcess:
    """`synclip serve` in its own process, on a free loopback port, with the fuzz run's tiny generator."""

    def __init__(self, work: Path, generator: Path):
        self.work, self.generator, self.proc, self.url = work, generator, None, ""
        self.log = work / "serve.log"

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS="1")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "synclip", "serve", "--port", str(port), "--data-dir", str(self.work / "studio"),
                 "--checkpoint", str(self.generator), "--score-checkpoint", str(self.generator), "--device", "cpu",
                 "--max-seconds", "120", "--queue", "4"], stdout=log, stderr=log, env=env)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"synclip serve exited at start; see {self.log}")
            if self.alive():
                return
            time.sleep(0.2)
        raise RuntimeError(f"synclip serve did not answer in {STARTUP_S} s; see {self.log}")

    def alive(self) -> bool:
        import httpx

        try:
            return httpx.get(self.url + "/health", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _uploadable(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)  # follows links, as a browser reading the file would
    except OSError:
        return False


def _names_file(message: str, path: Path) -> bool:
    from synclip.server import _display  # the name as the server shows it (control characters dropped)

    return "\n" not in message and (path.name in message or _display(path.name) in message)


def upload(client, case, ctx) -> tuple[str, str]:
    """(outcome, message) of one file through the API."""
    import httpx

    face = case.path if case.role in ("video", "image") else ctx.good_video
    audio = case.path if case.role == "audio" else ctx.good_audio
    deadline = time.monotonic() + CALL_TIMEOUT_S
    try:
        with open(face, "rb") as f, open(audio, "rb") as a:
            r = client.post("/jobs", files={"face": (face.name, f), "audio": (audio.name, a)},
                            timeout=CALL_TIMEOUT_S)
        body = r.json()
    except httpx.TimeoutException:
        return "hang", "no answer to the upload"
    except httpx.TransportError as e:
        return "crash", f"no answer ({type(e).__name__})"
    except ValueError:
        return "unclear", f"HTTP {r.status_code} answered without JSON"
    if r.status_code != 202:
        err = str(body.get("error", body))
        return ("error" if 400 <= r.status_code < 500 and _names_file(err, case.path) else "unclear"), \
            f"HTTP {r.status_code}: {err}"
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{body['id']}").json()
        if job["status"] == "done":
            return "ok", f"{job['kind']} done"
        if job["status"] in ("failed", "cancelled"):
            err = job.get("error") or job["status"]
            if err.startswith("internal error"):  # caught by the server's last resort: a bug to fix
                return "internal", err
            return ("error" if _names_file(err, case.path) else "unclear"), err
        time.sleep(0.1)
    client.post(f"/jobs/{body['id']}/cancel")
    return "hang", f"the job did not end in {CALL_TIMEOUT_S} s"


class ApiTarget:
    """fuzz_media's target protocol: ``name`` and ``run(cases, ctx)``; ``result`` builds its Result rows."""

    name = "api"

    def __init__(self, result):
        self.result = result

    def run(self, cases, ctx) -> list:
        import httpx

        server = StudioProcess(ctx.work / "api", ctx.generator)
        server.start()
        rows = []
        try:
            with httpx.Client(base_url=server.url, timeout=CALL_TIMEOUT_S) as client:
                for case in cases:
                    if not _uploadable(case.path):
                        continue
                    t0 = time.perf_counter()
                    outcome, msg = upload(client, case, ctx)
                    if not server.alive():
                        outcome, msg = "crash", f"the server stopped answering after this file ({msg})"
                        server.stop()
                        server.start()
                    secs = time.perf_counter() - t0
                    rows.append(self.result("api", case.name, case.kind, case.role, outcome, round(secs, 2), msg))
                    print(f"  api      {outcome:9s} {secs:5.1f}s {case.name}: {msg[:150]}", flush=True)
        finally:
            server.stop()
        return rows

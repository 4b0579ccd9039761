"""The studio's HTTP API through a real HTTP client (httpx) against a server the test starts on loopback:
whole dub and score jobs with tiny untrained models, the progress stream, the limits (413/422 naming the
limit), hostile file names and job ids, the bounded queue (503), a crashing job, cancel, delete, restart."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from synclip import media  # noqa: E402
from synclip.server import BackgroundServer  # noqa: E402
from synclip.studio import StudioSettings  # noqa: E402

FINISHED = ("done", "failed", "cancelled")


def settings(tmp_path: Path, gen: Path, **kw) -> StudioSettings:
    return StudioSettings(data_dir=tmp_path / "studio", generator_checkpoint=gen, score_checkpoint=str(gen),
                          device="cpu", **kw)


def dub(client, clips, face=("talk.mp4", "video"), audio=("voice.wav", "audio"), **form):
    files = {"face": (face[0], clips[face[1]])}
    if audio:
        files["audio"] = (audio[0], clips[audio[1]])
    return client.post("/jobs", files=files, data=form)


def wait(client, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in FINISHED:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def events(client, job_id: str) -> list[dict]:
    """Every server-sent 'progress' event of a job until its stream ends."""
    out = []
    with client.stream("GET", f"/jobs/{job_id}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
    return out


class Gate:
    """Work that holds each job until released (reporting progress meanwhile), or crashes when the
    presenter's file name starts with 'crash'."""

    def __init__(self):
        self.release, self.running = threading.Event(), threading.Event()

    def plan(self, job):
        return [("dub", 1.0)]

    def run(self, job, folder, progress):
        progress.stage("dub")
        if job.params["source_name"].startswith("crash"):
            raise RuntimeError("the model fell over")
        self.running.set()
        while not self.release.wait(0.02):
            progress.fraction(1, 2)
        return {}


# ---- whole jobs through the real studio --------------------------------------------------------------------
def test_dub_job_streams_progress_and_gives_a_playable_result_and_report(tmp_path, tiny_generator, clips):
    with BackgroundServer(settings(tmp_path, tiny_generator)) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = dub(c, clips)
        assert r.status_code == 202, r.text
        job = r.json()
        assert re.fullmatch(r"[0-9a-f]{32}", job["id"]) and job["params"]["source"] == "source.mp4"
        seen = events(c, job["id"])
        assert seen[-1]["status"] == "done", seen[-1]
        stages = [e["stage"] for e in seen if e["status"] == "running"]
        order = ["starting", "load", "dub", "score"]
        assert [order.index(x) for x in stages] == sorted(order.index(x) for x in stages)  # only forward
        assert {"dub", "score"} <= set(stages)  # a subscriber on a busy machine may come after the short load
        pct = [e["percent"] for e in seen]
        assert pct == sorted(pct) and pct[-1] == 100.0
        assert any(e["eta_s"] is not None for e in seen)

        out = tmp_path / "result.mp4"
        out.write_bytes(c.get(f"/jobs/{job['id']}/files/result").content)
        info = media.probe_video(out)
        assert info.num_frames == 50 and info.has_audio  # as long as the 2-s voice
        report = c.get(f"/jobs/{job['id']}/files/report").json()
        assert 0.0 <= report["score"] <= 1.0 and isinstance(report["offset_frames"], int)
        assert len(report["curve"]["offsets"]) == 31 == len(report["curve"]["distances"])
        assert len(report["per_second"]) == 2
        assert c.get(f"/jobs/{job['id']}/files/source").content == clips["video"]


def test_photo_and_text_job_speaks_through_tts(tmp_path, tiny_generator, clips, monkeypatch):
    calls = []

    def fake_speak(text, lang, out_wav, voice=None, rate=1.0):
        calls.append((text, lang, Path(out_wav).name, voice, rate))
        Path(out_wav).write_bytes(clips["audio"])
        return Path(out_wav)

    try:
        import synclip.tts as tts
    except ImportError:  # written in parallel: the server only needs its speak()
        tts = types.ModuleType("synclip.tts")
        monkeypatch.setitem(sys.modules, "synclip.tts", tts)
    monkeypatch.setattr(tts, "speak", fake_speak, raising=False)
    with BackgroundServer(settings(tmp_path, tiny_generator, score_results=False)) as url, \
            httpx.Client(base_url=url, timeout=60) as c:
        r = dub(c, clips, face=("me.png", "photo"), audio=None, text="你好，世界。", lang="zh", rate="1.2")
        assert r.status_code == 202, r.text
        job = wait(c, r.json()["id"])
        assert job["status"] == "done", job
        assert calls == [("你好，世界。", "zh", "speech.wav", None, 1.2)]
        assert set(job["files"]) == {"source", "speech", "result"}
        out = tmp_path / "photo.mp4"
        out.write_bytes(c.get(job["files"]["result"]).content)
        assert media.probe_video(out).num_frames == 50


def test_score_endpoint_reports_offset_curve_and_seconds(tmp_path, tiny_generator, clips):
    with BackgroundServer(settings(tmp_path, tiny_generator)) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/score", files={"video": ("clip.mp4", clips["video"])})
        assert r.status_code == 202, r.text
        job = wait(c, r.json()["id"])
        assert job["status"] == "done" and set(job["files"]) == {"source", "report"}
        report = c.get(job["files"]["report"]).json()
        best = report["curve"]["offsets"][int(np.nanargmin(
            [np.nan if d is None else d for d in report["curve"]["distances"]]))]
        assert report["offset_frames"] == best and report["offset_ms"] == best * 40
        assert len(report["per_second"]) == 2


# ---- limits -------------------------------------------------------------------------------------------------
def test_limits_answer_413_and_422_naming_the_limit(tmp_path, tiny_generator, clips):
    s = settings(tmp_path, tiny_generator, max_upload_mb=0.05, max_media_s=1.0, max_text_chars=10)
    with BackgroundServer(s, work=Gate()) as url, httpx.Client(base_url=url, timeout=60) as c:
        big = c.post("/jobs", files={"face": ("big.mp4", b"\0" * 200_000)}, data={"text": "hi"})
        assert big.status_code == 413 and "0.05 MB" in big.json()["error"]

        def chunked():  # no Content-Length: counted as it arrives
            yield b'--x\r\nContent-Disposition: form-data; name="face"; filename="a.mp4"\r\n\r\n'
            for _ in range(20):
                yield b"\0" * 10_000
            yield b"\r\n--x--\r\n"

        streamed = c.post("/jobs", content=chunked(), headers={"content-type": "multipart/form-data; boundary=x"})
        assert streamed.status_code == 413 and "0.05 MB" in streamed.json()["error"]
        assert c.get("/health").status_code == 200
    s = settings(tmp_path, tiny_generator, max_media_s=1.0, max_text_chars=10)
    with BackgroundServer(s, work=Gate()) as url, httpx.Client(base_url=url, timeout=60) as c:
        long = dub(c, clips)
        assert long.status_code == 422 and "2.0 s; the limit is 1 s" in long.json()["error"]
        assert "talk.mp4" in long.json()["error"]
        text = dub(c, clips, face=("me.png", "photo"), audio=None, text="x" * 11)
        assert text.status_code == 422 and "limit is 10" in text.json()["error"]
        none = c.post("/jobs", files={"face": ("me.png", clips["photo"])})
        assert none.status_code == 422 and "neither" in none.json()["error"]
        missing = c.post("/jobs", data={"text": "hi"})
        assert missing.status_code == 422 and "face" in missing.json()["error"]
        junk = c.post("/jobs", files={"face": ("me.mp4", b"not a video at all")}, data={"text": "hi"})
        assert junk.status_code == 422 and junk.json()["error"].startswith("me.mp4: ")
        assert str(tmp_path) not in junk.json()["error"]  # the server's copy is never named
        assert list((tmp_path / "studio" / "jobs").iterdir()) == []  # refused uploads leave nothing


# ---- names and paths from the client -----------------------------------------------------------------------
HOSTILE_NAMES = ["../../../escape.png", "/tmp/absolute.png", "..\\..\\win.png", "link -> /etc/passwd.png",
                 "a/../../b.png", "\u202egnp.exe.png", "ｆａｃｅ.ｐｎｇ", "nul\x00byte.png", "😀 脸.PNG", ".png",
                 "CON.png", "a" * 300 + ".png"]


def test_client_names_never_reach_the_filesystem(tmp_path, tiny_generator, clips):
    gate = Gate()
    gate.release.set()
    with BackgroundServer(settings(tmp_path, tiny_generator, max_waiting=50), work=gate) as url, \
            httpx.Client(base_url=url, timeout=60) as c:
        for name in HOSTILE_NAMES:
            r = c.post("/jobs", files={"face": (name, clips["photo"])}, data={"text": "hi"})
            body = r.json()
            if name == "ｆａｃｅ.ｐｎｇ":  # a full-width extension is no allowed extension
                assert r.status_code == 422 and body["error"].startswith("face ｆａｃｅ.ｐｎｇ: file type")
                continue
            assert r.status_code == 202, (name, r.text)
            assert body["params"]["source"] == "source.png"
            assert "/" not in body["params"]["source_name"] and "\\" not in body["params"]["source_name"]
            assert len(body["params"]["source_name"]) <= 120
        for bad_id in ["..", "..%2F..%2Fetc", "%2e%2e", "0" * 31 + "g", "../" + "0" * 32]:
            r = c.get(f"/jobs/{bad_id}/files/source")
            assert r.status_code in (404, 422) and "error" in r.json()
        assert c.get("/static/..%2Fserver.py").status_code == 404
        assert c.get("/static/../server.py").status_code == 404
    root = tmp_path / "studio" / "jobs"
    made = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    assert all(re.fullmatch(r"[0-9a-f]{32}(/(job\.json|source\.png))?", m) for m in made), made
    assert not any(p.exists() for p in (tmp_path / "escape.png", Path("/tmp/absolute.png"), tmp_path / "b.png"))


# ---- the queue, failures, cancel, delete, restart -----------------------------------------------------------
def test_full_queue_answers_503_and_crash_marks_only_that_job_failed(tmp_path, tiny_generator, clips):
    gate = Gate()
    with BackgroundServer(settings(tmp_path, tiny_generator, max_waiting=1), work=gate) as url, \
            httpx.Client(base_url=url, timeout=60) as c:
        crash = dub(c, clips, face=("crash.png", "photo"), audio=None, text="hi").json()
        assert wait(c, crash["id"])["status"] == "failed"
        assert "the model fell over" in c.get(f"/jobs/{crash['id']}").json()["error"]
        first = dub(c, clips, face=("a.png", "photo"), audio=None, text="hi").json()
        assert gate.running.wait(30)
        second = dub(c, clips, face=("b.png", "photo"), audio=None, text="hi")
        assert second.status_code == 202
        full = dub(c, clips, face=("c.png", "photo"), audio=None, text="hi")
        assert full.status_code == 503 and "queue is full" in full.json()["error"]
        assert full.headers["retry-after"]
        gate.release.set()
        assert wait(c, first["id"])["status"] == "done" and wait(c, second.json()["id"])["status"] == "done"
        assert c.get("/health").json()["queue"]["waiting"] == 0


def test_cancel_running_and_queued_jobs_then_delete(tmp_path, tiny_generator, clips):
    gate = Gate()
    with BackgroundServer(settings(tmp_path, tiny_generator), work=gate) as url, \
            httpx.Client(base_url=url, timeout=60) as c:
        running = dub(c, clips, face=("a.png", "photo"), audio=None, text="hi").json()
        queued = dub(c, clips, face=("b.png", "photo"), audio=None, text="hi").json()
        assert gate.running.wait(30)
        assert c.delete(f"/jobs/{running['id']}").status_code == 409
        assert c.post(f"/jobs/{queued['id']}/cancel").json()["status"] == "cancelled"
        c.post(f"/jobs/{running['id']}/cancel")
        assert wait(c, running["id"])["status"] == "cancelled"
        assert c.delete(f"/jobs/{running['id']}").status_code == 204
        assert c.get(f"/jobs/{running['id']}").status_code == 404
        assert not (tmp_path / "studio" / "jobs" / running["id"]).exists()
        assert [j["id"] for j in c.get("/jobs").json()["jobs"]] == [queued["id"]]


def test_restart_keeps_finished_results_and_fails_cut_off_jobs(tmp_path, tiny_generator, clips):
    gate = Gate()
    s = settings(tmp_path, tiny_generator, score_results=False)
    with BackgroundServer(s) as url, httpx.Client(base_url=url, timeout=60) as c:
        done = wait(c, dub(c, clips).json()["id"])
        assert done["status"] == "done"
        result = c.get(done["files"]["result"]).content
    with BackgroundServer(s, work=gate) as url, httpx.Client(base_url=url, timeout=60) as c:
        cut = dub(c, clips, face=("a.png", "photo"), audio=None, text="hi").json()
        assert gate.running.wait(30)
    with BackgroundServer(s, work=gate) as url, httpx.Client(base_url=url, timeout=60) as c:
        jobs = {j["id"]: j for j in c.get("/jobs").json()["jobs"]}
        assert jobs[done["id"]]["status"] == "done"
        assert c.get(done["files"]["result"]).content == result and len(result) > 1000
        assert jobs[cut["id"]]["status"] == "failed" and "server stopped" in jobs[cut["id"]]["error"]


def test_openapi_page_and_static_files_are_served_without_cdn(tmp_path, tiny_generator):
    with BackgroundServer(settings(tmp_path, tiny_generator), work=Gate()) as url, \
            httpx.Client(base_url=url, timeout=60) as c:
        api = c.get("/openapi.json").json()
        assert {"/jobs", "/score", "/jobs/{job_id}/events", "/jobs/{job_id}/files/{role}"} <= set(api["paths"])
        page = c.get("/").text
        assets = [c.get(f"/static/{n}") for n in ("studio.js", "studio.css", "icon.svg")]
        assert all(a.status_code == 200 for a in assets)
        for text in [page] + [a.text for a in assets]:
            assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import""", text)
        assert "/static/studio.js" in page and "/static/studio.css" in page
        voices = c.get("/voices").json()["voices"]
        if c.get("/health").json()["text_ready"]:  # espeak-ng (inside its wheel) is the floor for both
            assert {"zh", "en"} == {v["lang"] for v in voices} and all(":" in v["id"] for v in voices)
        health = c.get("/health").json()
        assert health["dub_ready"] and health["limits"]["max_upload_mb"] == 200.0


def test_synclip_serve_command_starts_with_its_limits(tmp_path, tiny_generator):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "synclip", "serve", "--port", str(port), "--data-dir",
                             str(tmp_path / "studio"), "--checkpoint", str(tiny_generator), "--max-upload-mb", "3",
                             "--queue", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        deadline, health = time.monotonic() + 120, None
        while health is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None, proc.stdout.read().decode() if proc.poll() is not None else "no answer"
        assert health["limits"]["max_upload_mb"] == 3.0 and health["queue"]["max_waiting"] == 2
        assert health["dub_ready"] and (tmp_path / "studio" / "jobs").is_dir()
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl+C: a clean stop
        try:
            assert proc.wait(30) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    out = proc.stdout.read().decode()
    assert f"http://127.0.0.1:{port}/" in out and "studio stopped" in out


def test_a_result_that_cannot_be_scored_is_still_delivered(tmp_path, tiny_generator, clips):
    from synclip.errors import NoFaceError
    from synclip.studio import Studio

    class Blind:
        def compute_sync_score(self, video, audio=None):
            raise NoFaceError("no face found in the video", path=video)

    studio = Studio(settings(tmp_path, tiny_generator))
    studio._scorer = lambda: Blind()
    with BackgroundServer(studio.settings, work=studio) as url, httpx.Client(base_url=url, timeout=60) as c:
        job = wait(c, dub(c, clips).json()["id"])
        assert job["status"] == "done" and {"result", "report"} <= set(job["files"])
        report = c.get(job["files"]["report"]).json()
        assert report["score"] is None and report["error"].endswith("no face found in the video")

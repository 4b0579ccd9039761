"""Benchmark the studio server's overhead: the same dubbing through `synclip serve` and through the CLI.

Cases: a 10-s photo dub and a 30-s video dub (synthetic presenter, 25 fps, with new synthetic speech). Server:
`synclip serve` in its own process; the clock starts when the upload starts. Figures: upload answered,
first progress event (the job running), each stage, total (dub + the sync report), for the first job (models
loaded in it) and the same job again (models kept). CLI: `synclip dub` then `synclip score` of its output, each
a fresh process, as a user runs them. JSON to benchmarks/results/studio.json.

    python benchmarks/studio.py [--checkpoint demo/checkpoints/generator/best_model.pth] [--device cpu]

Without a trained generator an untrained one of the benchmark shape is timed (speed does not depend on
what the weights learnt).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, RESULTS, save_result  # (puts the project on sys.path)

CASES = {"photo_10s": ("image", 10.0), "video_30s": ("video", 30.0)}


def inputs(work: Path) -> dict[str, tuple[Path, Path]]:
    """(presenter file, speech wav) per case: a 30-s synthetic clip, its first frame, new speech of each length."""
    import cv2

    from synclip import media, synth

    synth.make_clip(work, "presenter", seconds=30.0, seed=3)
    video = work / "videos" / "presenter.mp4"
    photo = work / "presenter.png"
    cv2.imwrite(str(photo), next(media.iter_frames(video))[:, :, ::-1])
    out = {}
    for name, (kind, seconds) in CASES.items():
        speech = work / f"speech_{name}.wav"
        media.write_wav(speech, synth.make_audio(sentence_seed=77, seconds=seconds)[0])
        out[name] = (photo if kind == "image" else video, speech)
    return out


def cli_run(checkpoint: Path, face: Path, speech: Path, out: Path, device: str) -> dict:
    """`synclip dub` then `synclip score`, each timed from process start to exit."""
    flag = "--image" if face.suffix == ".png" else "--video"
    times = {}
    for step, cmd in (("dub", ["dub", flag, str(face), "--audio", str(speech), "--out", str(out),
                               "--checkpoint", str(checkpoint)]),
                      ("score", ["score", str(out), "--json"])):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "synclip", *cmd, "--quiet", "--device", device], check=True,
                       capture_output=True, env=_env())
        times[f"{step}_s"] = round(time.perf_counter() - t0, 2)
    times["total_s"] = round(times["dub_s"] + times["score_s"], 2)
    return times


def server_run(client, face: Path, speech: Path) -> dict:
    """Upload, then follow the job's event stream; seconds since the upload started."""
    t0 = time.perf_counter()
    with open(face, "rb") as f, open(speech, "rb") as s:
        r = client.post("/jobs", files={"face": (face.name, f), "audio": (speech.name, s)})
    r.raise_for_status()
    out = {"upload_answered_s": time.perf_counter() - t0}
    with client.stream("GET", f"/jobs/{r.json()['id']}/events") as events:
        for line in events.iter_lines():
            if not line.startswith("data: "):
                continue
            job, now = json.loads(line[6:]), time.perf_counter() - t0
            if job["status"] == "running":
                out.setdefault("first_progress_s", now)
                out.setdefault(f"stage_{job['stage']}_at_s", now)
            if job["status"] in ("done", "failed", "cancelled"):
                if job["status"] != "done":
                    raise RuntimeError(f"the server's job ended {job['status']}: {job.get('error')}")
                out["total_s"] = now
    return {k: round(v, 2) for k, v in out.items()}


def _env() -> dict:
    return dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))


def start_server(checkpoint: Path, data_dir: Path, device: str) -> tuple[subprocess.Popen, str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "synclip", "serve", "--port", str(port), "--data-dir",
                             str(data_dir), "--checkpoint", str(checkpoint), "--device", device],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    url = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"synclip serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url, round(time.perf_counter() - t0, 2)
        except httpx.HTTPError:
            time.sleep(0.1)


def main() -> None:
    import httpx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(ROOT / "demo" / "checkpoints" / "generator" / "best_model.pth"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(RESULTS / "studio.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="synclip_studio_bench_") as tmp:
        work = Path(tmp)
        checkpoint = Path(args.checkpoint)
        trained = checkpoint.is_file()
        if not trained:
            from dub import untrained_checkpoint

            checkpoint = untrained_checkpoint(96, work / "untrained.pth")
        cases = inputs(work)
        result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "device": args.device},
                  "generator": str(args.checkpoint) if trained else "untrained, benchmark shape (96 px, base 16)",
                  "presenter": "synthetic, 320x320 px, 25 fps", "cases": {}}
        for name, (face, speech) in cases.items():
            result["cases"][name] = {"cli": cli_run(checkpoint, face, speech, work / f"cli_{name}.mp4", args.device)}
            print(name, "cli", result["cases"][name]["cli"], flush=True)
        proc, url, ready_s = start_server(checkpoint, work / "studio", args.device)
        result["server_ready_s"] = ready_s
        try:
            with httpx.Client(base_url=url, timeout=600) as client:
                for name, (face, speech) in cases.items():
                    first = server_run(client, face, speech)
                    again = server_run(client, face, speech)
                    result["cases"][name].update(server_first=first, server_again=again)
                    print(name, "server", first, again, flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    print_table(result)
    save_result(args.out, result)


def print_table(result: dict) -> None:
    print(f"\n{'case':10s} {'CLI dub+score':>14s} {'server 1st job':>15s} {'server again':>13s} "
          f"{'upload->1st event':>18s}")
    for name, c in result["cases"].items():
        print(f"{name:10s} {c['cli']['total_s']:13.1f}s {c['server_first']['total_s']:14.1f}s "
              f"{c['server_again']['total_s']:12.1f}s {c['server_again']['first_progress_s']:17.2f}s")


if __name__ == "__main__":
    main()

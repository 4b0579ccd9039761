"""Damaged media never crash anything: a few hundred hostile files through prepare, score, dub and batch.

    python benchmarks/fuzz_media.py                    # the whole corpus, every target (about 10 min, 1 core)
    python benchmarks/fuzz_media.py --targets score --limit 20

Each file (made by ``fuzz_corpus.py``, never committed) goes through each target the way users call it: the
``synclip`` command line, run in a worker process that imports synclip once (``cli.main(argv)``, stdout and
stderr captured) and is killed and restarted when a call outlives its time limit. Every call must end in a
correct result or one ``error: ...`` line naming the file, with no traceback and no hang; batch and prepare
take the whole folder in one call and must go on past every bad file, reporting each.

Outcomes: ok (a result), error (one line naming the file), internal (one line, but it admits a bug: the CLI's
and batch's last-resort catch), unclear (failed without such a line), traceback,
hang (killed at the time limit), crash (the process died), missing (a folder command skipped the file).
Targets are pluggable: ``TARGETS["api"] = MyTarget()``, any object with ``name`` and ``run(cases, ctx)``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, save_result  # noqa: E402
from fuzz_corpus import Case, make_corpus, tiny_generator  # noqa: E402

OUTCOMES = ("ok", "error", "internal", "unclear", "traceback", "hang", "crash", "missing")
CALL_TIMEOUT_S = 90  # one file through one command (a 2-s clip takes a few seconds; more means stuck)
FOLDER_TIMEOUT_PER_FILE_S = 20  # batch and prepare over the whole folder


@dataclass
class Result:
    target: str
    case: str
    kind: str
    role: str
    outcome: str
    seconds: float
    message: str  # the error line, or the traceback's last line, or the result's first line


@dataclass
class Context:
    work: Path  # scratch space for outputs
    good_video: Path  # a healthy talking head (2 s) for cases that damage only the audio or photo
    good_audio: Path
    generator: Path  # a tiny untrained generator checkpoint (dub's plumbing, not its quality)
    worker: "Worker"


class Target(Protocol):
    name: str

    def run(self, cases: list[Case], ctx: Context) -> list[Result]:
        """One Result per case it takes (it may skip roles it does not take)."""


# ------------------------------------------------------------------------------------------------ worker


class Worker:
    """A python process that runs ``synclip.cli.main(argv)`` per request, so synclip is imported once."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                     cwd=ROOT)

    def call(self, argv: list[str], timeout_s: float) -> tuple[int | None, str, str, float]:
        """-> (exit code, or None after a hang, or -signal after a crash; stdout; stderr; seconds)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        t0 = time.perf_counter()
        self.proc.stdin.write(json.dumps(argv) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            self.close()
            return None, "", "", time.perf_counter() - t0
        line = self.proc.stdout.readline()
        if not line:  # died mid-call (a segfault in a decoder, the OOM killer)
            code = self.proc.wait()
            self.proc = None
            return code if code < 0 else -1, "", "", time.perf_counter() - t0
        reply = json.loads(line)
        return reply["rc"], reply["out"], reply["err"], time.perf_counter() - t0

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def worker_loop() -> None:
    """The worker's side: argv (JSON) per line in, {rc, out, err} (JSON) per line out."""
    import logging

    from synclip import cli

    real_stdout = sys.stdout
    for line in sys.stdin:
        argv = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        logging.root.handlers.clear()  # cli.main's basicConfig binds a handler to this call's stderr
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(argv)
            except SystemExit as e:  # argparse
                rc = e.code if isinstance(e.code, int) else 1
            except BaseException:  # what a user would see: python's own traceback print
                traceback.print_exc()
                rc = 1
        real_stdout.write(json.dumps({"rc": rc, "out": out.getvalue(), "err": err.getvalue()}) + "\n")
        real_stdout.flush()


# ------------------------------------------------------------------------------------------------ judging


def judge(rc: int | None, out: str, err: str, names: list[str]) -> tuple[str, str]:
    """(outcome, message) of one call about a file called one of ``names``."""
    if rc is None:
        return "hang", ""
    if rc < 0:
        return "crash", f"died with signal {-rc}"
    text = out + err
    if "Traceback (most recent call last)" in text:
        return "traceback", (err.strip().splitlines() or [""])[-1]
    if rc == 0:
        return "ok", (out.strip().splitlines() or [""])[-1]
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    if len(errors) == 1 and any(n in errors[0] for n in names):
        return ("internal" if _admits_bug(errors[0]) else "error"), errors[0]
    return "unclear", (err.strip().splitlines() or out.strip().splitlines() or [f"exit code {rc}"])[-1]


def _admits_bug(message: str) -> bool:
    return "internal error" in message or "unexpected error" in message


def _names(path: Path) -> list[str]:
    return [str(path), path.name]


class CommandTarget:
    """One ``synclip`` call per file; ``argv(case, ctx, out_dir)`` builds it, or None to skip the case."""

    def __init__(self, name: str, argv):
        self.name, self.argv = name, argv

    def run(self, cases: list[Case], ctx: Context) -> list[Result]:
        results = []
        for case in cases:
            out_dir = ctx.work / self.name / case.name
            out_dir.mkdir(parents=True, exist_ok=True)
            argv = self.argv(case, ctx, out_dir)
            if argv is None:
                continue
            rc, out, err, secs = ctx.worker.call(argv, CALL_TIMEOUT_S)
            outcome, msg = judge(rc, out, err, _names(case.path))
            results.append(Result(self.name, case.name, case.kind, case.role, outcome, round(secs, 2), msg))
            print(f"  {self.name:8s} {outcome:9s} {secs:5.1f}s {case.name}: {msg[:150]}", flush=True)
        return results


def _score_argv(case: Case, ctx: Context, out_dir: Path) -> list[str]:
    if case.role == "audio":
        return ["score", str(ctx.good_video), "--audio", str(case.path), "--quiet"]
    return ["score", str(case.path), "--quiet"]


def _dub_argv(case: Case, ctx: Context, out_dir: Path) -> list[str]:
    source = ["--image", str(case.path)] if case.role == "image" else ["--video", str(ctx.good_video if
                                                                                    case.role == "audio" else case.path)]
    audio = str(case.path if case.role == "audio" else ctx.good_audio)
    return ["dub", *source, "--audio", audio, "--out", str(out_dir / "out.mp4"), "--checkpoint", str(ctx.generator),
            "--quiet"]


class FolderTarget:
    """One call over a folder of all the cases (batch, prepare); each file's verdict read from the report."""

    def __init__(self, name: str):
        self.name = name

    def run(self, cases: list[Case], ctx: Context) -> list[Result]:
        results = []
        for role in ("video", "audio"):
            group = [c for c in cases if c.role == role]
            if group:
                results += self._run_group(group, role, ctx)
        return results

    def _run_group(self, group: list[Case], role: str, ctx: Context) -> list[Result]:
        work = ctx.work / self.name / role
        shutil.rmtree(work, ignore_errors=True)
        videos, audios, out = work / "videos", work / "audios", work / "out"
        for d in (videos, audios, out):
            d.mkdir(parents=True)
        if role == "video":  # the corpus's own videos folder, in place (links, fifos and folders as they are)
            src_videos = group[0].path.parent
        else:  # a healthy video paired by name with each damaged audio file
            src_videos = videos
            for c in group:
                os.link(ctx.good_video, videos / f"{c.path.stem}.mp4")
        if self.name == "batch":
            if role == "video":
                argv = ["batch", str(src_videos), "--out", str(out), "--quiet"]
            else:
                argv = ["batch", *[f"{videos / (c.path.stem + '.mp4')}:{c.path}" for c in group], "--out", str(out),
                        "--quiet"]
        else:
            argv = ["prepare", "--videos", str(src_videos), "--audios", str(group[0].path.parent if role == "audio"
                                                                             else audios),
                    "--out", str(out), "--workers", "1", "--quiet"]
        files = len(list(src_videos.iterdir()))  # the whole folder is read, however few cases were picked
        rc, text_out, err, secs = ctx.worker.call(argv, FOLDER_TIMEOUT_PER_FILE_S * files + 60)
        whole, whole_msg = judge(rc, text_out, err, [str(src_videos)])
        print(f"  {self.name:8s} {role} folder of {len(group)}: exit {rc}, {whole} in {secs:.0f}s {whole_msg[:150]}",
              flush=True)
        verdicts = self._verdicts(out, role)
        results = []
        for c in group:
            key = c.path.stem
            if whole in ("hang", "crash", "traceback"):
                outcome, msg = whole, whole_msg
            else:
                outcome, msg = verdicts.get(key, ("missing", "not in the report"))
            results.append(Result(f"{self.name}", c.name, c.kind, c.role, outcome, round(secs / len(group), 2), msg))
        return results

    def _verdicts(self, out: Path, role: str) -> dict[str, tuple[str, str]]:
        """stem -> (outcome, message) from batch's report.json or prepare's index.json and rejects.log."""
        found: dict[str, tuple[str, str]] = {}
        if self.name == "batch":
            report = out / "report.json"
            rows = json.loads(report.read_text()) if report.is_file() else []
            for r in rows:
                path = Path(r["audio"] if role == "audio" else r["video"])
                if r.get("ok"):
                    found[path.stem] = ("ok", f"score {r.get('score')}")
                else:
                    e = r.get("error", "")
                    named = str(path) in e or path.name in e
                    verdict = ("internal" if _admits_bug(e) else "error") if named and "\n" not in e else "unclear"
                    found[path.stem] = (verdict, e)
            return found
        index = out / "index.json"
        clips = json.loads(index.read_text()).get("clips", {}) if index.is_file() else {}
        for name in clips:
            found[name] = ("ok", "processed")
        rejects = out / "rejects.log"
        for line in (rejects.read_text(encoding="utf-8").splitlines() if rejects.is_file() else []):
            video, _, reason = line.partition("\t")
            stem = Path(video).stem
            verdict = ("internal" if _admits_bug(reason) else "error") if "\n" not in reason else "unclear"
            found[stem] = (verdict, f"{video}: {reason}")
        return found


TARGETS: dict[str, Target] = {
    "prepare": FolderTarget("prepare"),
    "score": CommandTarget("score", _score_argv),
    "dub": CommandTarget("dub", _dub_argv),
    "batch": FolderTarget("batch"),
}

from fuzz_api import ApiTarget  # noqa: E402  (the studio server's HTTP API, in a module of its own)

TARGETS["api"] = ApiTarget(Result)


# ------------------------------------------------------------------------------------------------ the run


def summarise(results: list[Result], cases: list[Case], seconds: float) -> dict:
    by_target = {t: dict(collections.Counter(r.outcome for r in results if r.target == t))
                 for t in dict.fromkeys(r.target for r in results)}
    by_kind: dict = collections.defaultdict(lambda: collections.Counter())
    for r in results:
        by_kind[r.kind][r.outcome] += 1
    bad = [asdict(r) for r in results if r.outcome not in ("ok", "error")]
    return {"files": len(cases), "by_role": dict(collections.Counter(c.role for c in cases)),
            "calls": len(results), "outcomes": dict(collections.Counter(r.outcome for r in results)),
            "by_target": by_target, "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
            "not_clean": bad, "seconds": round(seconds), "results": [asdict(r) for r in results]}


def print_table(summary: dict) -> None:
    cols = [o for o in OUTCOMES if any(o in v for v in summary["by_target"].values())]
    print(f"\n{summary['files']} files ({summary['by_role']}), {summary['calls']} calls, {summary['seconds']} s")
    print("| target | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for t, counts in summary["by_target"].items():
        print(f"| {t} | " + " | ".join(str(counts.get(o, 0)) for o in cols) + " |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, of {', '.join(TARGETS)}")
    p.add_argument("--limit", type=int, help="only the first N cases of each role (a quick look)")
    p.add_argument("--only", help="only cases whose name contains one of these (comma-separated)")
    p.add_argument("--keep", help="build the corpus and outputs in this folder and keep them")
    p.add_argument("--out", help=f"results JSON (default: {RESULTS / 'fuzz_media.json'} for a whole run, "
                                  "none for --limit or --only)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker_loop()
        return 0
    names = [t for t in args.targets.split(",") if t]
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        p.error(f"unknown target(s) {unknown}; known: {', '.join(TARGETS)}")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="synclip_fuzz_"))
    t0 = time.perf_counter()
    try:
        cases = make_corpus(root / "corpus")
        if args.only:
            cases = [c for c in cases if any(part in c.name for part in args.only.split(","))]
        if args.limit:
            per_role = collections.Counter()
            cases = [c for c in cases if (per_role.update([c.role]) or per_role[c.role] <= args.limit)]
        print(f"corpus: {len(cases)} files in {root / 'corpus'}")
        ctx = Context(root / "out", root / "corpus" / "base" / "videos" / "face.mp4",
                      root / "corpus" / "base" / "audios" / "face.wav", tiny_generator(root / "tiny_gen.pth"),
                      Worker())
        results: list[Result] = []
        try:
            for name in names:
                print(f"== {name}", flush=True)
                results += TARGETS[name].run(cases, ctx)
        finally:
            ctx.worker.close()
        summary = summarise(results, cases, time.perf_counter() - t0)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print_table(summary)
    for r in summary["not_clean"]:
        print(f"  {r['target']} {r['outcome']}: {r['case']}: {r['message'][:200]}")
    if args.out or not (args.limit or args.only):
        save_result(args.out or RESULTS / "fuzz_media.json", summary)
    return 0 if not summary["not_clean"] else 1


if __name__ == "__main__":
    sys.exit(main())

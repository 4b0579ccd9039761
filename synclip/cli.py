"""The ``synclip`` command: the only module that parses argv, prints and exits.

Every mode has the same shape: ``synclip MODE [inputs] [--config config.yaml] [--set key=value ...]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from .config import Config, dump_yaml, load_config, setup_directories
from .errors import InputError, SynclipError

DEFAULT_CONFIG = "config.yaml"


def _config(args: argparse.Namespace) -> Config:
    path = args.config
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = DEFAULT_CONFIG
    return load_config(path, args.set)


def cmd_setup(args: argparse.Namespace) -> int:
    for path in setup_directories(_config(args)):
        print(f"  {path}/")
    print("Directories ready.")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    print(dump_yaml(_config(args)), end="")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import synth

    out = Path(args.out)
    with tqdm(total=args.clips, desc="synth", unit="clip", disable=args.quiet) as bar:
        truths = synth.make_dataset(out, args.clips, seconds=args.seconds, offset_frames=args.offset_frames,
                                    faces=args.faces, seed=args.seed,
                                    progress=lambda done, total: bar.update(done - bar.n))
    print(f"Wrote {len(truths)} synthetic clips to {out}/videos, {out}/audios (truth in {out}/truth)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, report=print, progress=not args.quiet, quick=args.quick, generator=not args.no_generator)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .prepare import prepare
    from .store import REJECTS_NAME

    overrides = list(args.set)
    if args.videos:
        overrides.append(f"data.videos_dir={args.videos}")
    if args.audios:
        overrides.append(f"data.audios_dir={args.audios}")
    if args.out:
        overrides.append(f"data.processed_dir={args.out}")
    args.set = overrides
    cfg = _config(args)
    t0 = time.perf_counter()
    bar = tqdm(desc="prepare", unit="clip", disable=args.quiet)

    def on_done(o) -> None:
        bar.update(1)
        if o.status == "rejected":
            bar.write(f"rejected {o.video}: {o.reason}")

    outcomes = prepare(cfg, force=args.force, workers=args.workers, on_done=on_done)
    bar.close()
    done = [o for o in outcomes if o.status == "processed"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    rejected = [o for o in outcomes if o.status == "rejected"]
    frames = sum(o.entry.get("num_frames", 0) for o in done + skipped)
    out = Path(cfg.data.processed_dir)
    print(f"Found {len(outcomes)} videos in {cfg.data.videos_dir}")
    print(f"Processed {len(done)} samples, skipped {len(skipped)} unchanged, rejected {len(rejected)} "
          f"({frames} frames usable, {time.perf_counter() - t0:.1f} s)")
    print(f"Processed data saved to {out}/ (index: {out}/index.json)")
    if rejected:
        print(f"Rejected clips and why: {out}/{REJECTS_NAME}")
    return 0 if done or skipped or not outcomes else 1


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="YAML config (default: ./config.yaml when present)")
    common.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set training.batch_size=8 (repeatable)")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")

    p = argparse.ArgumentParser(prog="synclip", description="Offline lip-sync: prepare, train, score, dub.")
    sub = p.add_subparsers(dest="mode", required=True, metavar="MODE")

    s = sub.add_parser("setup", parents=[common], help="create data/, checkpoints/, logs/, outputs/")
    s.set_defaults(func=cmd_setup)

    s = sub.add_parser("config", parents=[common], help="print the effective config as commented YAML")
    s.add_argument("action", choices=["show"])
    s.set_defaults(func=cmd_config)

    s = sub.add_parser("synth", parents=[common], help="make synthetic talking-head clips with ground truth")
    s.add_argument("--out", required=True, help="folder for videos/, audios/ and truth/")
    s.add_argument("--clips", type=int, default=8)
    s.add_argument("--seconds", type=float, default=4.0)
    s.add_argument("--offset-frames", type=int, default=0,
                   help="audio leads the video by this many frames (negative: lags)")
    s.add_argument("--faces", type=int, choices=[1, 2], default=1)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("prepare", parents=[common], help="raw videos -> face crops + audio features + index")
    s.add_argument("--videos", help="folder of videos (default: data.videos_dir)")
    s.add_argument("--audios", help="folder of audio files paired by name (default: data.audios_dir)")
    s.add_argument("--out", help="output folder (default: data.processed_dir)")
    s.add_argument("--force", action="store_true", help="redo clips already processed and unchanged")
    s.add_argument("--workers", type=int, help="clips processed in parallel (default: data.workers)")
    s.set_defaults(func=cmd_prepare)

    _add_model_commands(sub, common)
    _add_serve_command(sub, common)

    s = sub.add_parser("demo", parents=[common], help="the whole job on built-in synthetic data")
    s.add_argument("--out", default="demo", help="folder for everything the demo makes")
    s.add_argument("--quick", action="store_true", help="tiny schedules: checks the plumbing, learns little")
    s.add_argument("--no-generator", action="store_true", help="stop after scoring")
    s.set_defaults(func=cmd_demo)
    return p


def _add_model_commands(sub, common) -> None:
    s = sub.add_parser("train", parents=[common], help="train the sync expert, then (stage) the generator")
    s.add_argument("--stage", choices=["sync", "generator", "both"], help="default: training.stage")
    s.add_argument("--resume", action="store_true", help="continue from last.pth of the stage")
    s.add_argument("--data", help="prepared data folder (default: data.processed_dir)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("tune-expert", parents=[common],
                       help="fine-tune the shipped real-footage expert on one person's own videos")
    s.add_argument("--videos", help="folder of that person's clips (default: data.videos_dir)")
    s.add_argument("--out", help="the tuned expert (default: <checkpoints_dir>/lip_expert.pth)")
    s.add_argument("--init", default="pretrained", help="expert to start from (default: the shipped one)")
    s.add_argument("--steps", type=int, default=400, help="training steps of 32 one-second chunks")
    s.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    s.set_defaults(func=cmd_tune_expert)

    ck = argparse.ArgumentParser(add_help=False)
    ck.add_argument("--checkpoint", default=None,
                    help="model checkpoint (default: the real-footage expert that ships with synclip; "
                         "dub: checkpoints/generator/best_model.pth, or 'presenter' for the shipped presenter)")
    ck.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")

    s = sub.add_parser("score", parents=[common, ck], help="lip-sync score, offset and confidence of a video")
    s.add_argument("video")
    s.add_argument("--audio", help="score against this audio instead of the video's own track")
    s.add_argument("--json", action="store_true", help="print the full details as JSON")
    s.set_defaults(func=cmd_score)

    s = sub.add_parser("fix-offset", parents=[common, ck], help="write a copy whose audio is shifted onto the lips")
    s.add_argument("video")
    s.add_argument("--audio")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_fix_offset)

    s = sub.add_parser("dub", parents=[common, ck], help="make a video's or a photo's face say new audio")
    s.add_argument("--audio", required=True, help="the new speech (wav, mp3, m4a, flac, or a video's track)")
    _add_dub_options(s)
    _add_motion_option(s)
    s.set_defaults(func=cmd_dub)

    s = sub.add_parser("stream", parents=[common, ck],
                       help="dub in real time: frames drawn as the audio arrives, into an mp4 that grows")
    s.add_argument("--audio", required=True,
                   help="a file (read at real-time pace) or - for raw 16 kHz mono s16le PCM on stdin")
    _add_dub_options(s)
    s.add_argument("--chunk-ms", type=float, default=20.0, help="audio taken per read (default 20 ms)")
    s.add_argument("--fast", action="store_true", help="read a file as fast as frames are drawn, not in real time")
    s.add_argument("--threads", type=int, default=1,
                   help="CPU threads for the generator (default 1: a one-frame batch gains little from more, "
                        "and on shared cores several threads wait on each other)")
    s.set_defaults(func=cmd_stream)

    s = sub.add_parser("say", parents=[common, ck], help="speak a text offline, then dub a video or photo to it")
    text = s.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="what the presenter says; punctuation makes pauses")
    text.add_argument("--text-file", help="a UTF-8 text file with the script")
    text.add_argument("--list-voices", action="store_true", help="list the installed voices and stop")
    s.add_argument("--lang", choices=["zh", "en"], help="language of the text (required to speak)")
    s.add_argument("--voice", help="voice id, e.g. espeak:cmn or piper:en_US-joe-medium (default: the best "
                                   "installed for --lang)")
    s.add_argument("--rate", type=float, default=1.0, help="speaking rate, 0.5-2 (default 1: the voice's pace)")
    _add_dub_options(s, required=False)
    _add_motion_option(s)
    s.set_defaults(func=cmd_say)

    s = sub.add_parser("batch", parents=[common, ck], help="score or fix many videos; CSV + JSON report")
    s.add_argument("inputs", nargs="+", help="a folder of videos, or VIDEO[:AUDIO] items")
    s.add_argument("--mode", choices=["score", "shift", "generate"], default="score")
    s.add_argument("--out", help="output folder (videos and report)")
    s.set_defaults(func=cmd_batch)

    s = sub.add_parser("export", parents=[common],
                       help="write a checkpoint as ONNX or TorchScript (optionally int8 / fp16) for score and dub")
    s.add_argument("checkpoint", help="a sync expert or generator .pth ('pretrained': the shipped expert)")
    s.add_argument("--format", choices=["onnx", "torchscript"], help="default: from --out (.onnx or .pt)")
    s.add_argument("--quantize", choices=["int8", "fp16"], help="int8 weights (CPU), or fp16 (meant for GPUs)")
    s.add_argument("--out", required=True, help="the file: .onnx for onnx, .pt or .pth for torchscript")
    s.set_defaults(func=cmd_export)


def _add_dub_options(s: argparse.ArgumentParser, required: bool = True) -> None:
    """The face source, output and Wav2Lip options that `dub` and `say` share."""
    src = s.add_mutually_exclusive_group(required=required)
    src.add_argument("--video", help="the face video to dub")
    src.add_argument("--image", help="a photo of the face to animate")
    s.add_argument("--out", required=required, help="output .mp4 (its folder must exist)")
    s.add_argument("--pads", type=int, nargs=4, default=None, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                   help="pixels added to the face box (default: the model's own; the one-stage generator "
                        "0 10 0 0, to include the chin; a presenter model none)")
    s.add_argument("--resize-factor", type=int, default=1, help="shrink the video by this factor first")
    s.add_argument("--nosmooth", action="store_true", help="do not smooth the face box over time")
    s.add_argument("--static", action="store_true", help="use only the first frame of the video")
    s.add_argument("--box", type=int, nargs=4, metavar=("X0", "Y0", "X1", "Y1"), help="fixed face box; no detection")
    s.add_argument("--allow-silence", action="store_true", help="dub a silent track (mouth stays closed)")


def _add_motion_option(s: argparse.ArgumentParser) -> None:
    s.add_argument("--mouth-motion", type=float, default=1.0, metavar="SHARE",
                   help="presenter models: how far the mouth moves, as a share of how far it moves in the "
                        "presenter's footage (default 1; e.g. 1.3 for a livelier mouth, 0.8 for a calmer one)")


def _inference(args: argparse.Namespace, cfg: Config):
    """The scoring model of --checkpoint (default: the pretrained real-footage expert), with the config's
    detector and offset range."""
    from .infer import LipSyncInference

    return LipSyncInference(args.checkpoint, device=args.device, detector=cfg.data.detector,
                            max_offset=cfg.training.max_offset_frames)


def cmd_dub(args: argparse.Namespace) -> int:
    return _dub(args, args.audio)


def cmd_say(args: argparse.Namespace) -> int:
    """Speak the text into a wav beside the output (O.mp4 -> O.wav), then dub through the same door as `dub`."""
    from . import tts

    if args.list_voices:
        for v in tts.list_voices():
            print(f"{v.id:28s} {v.lang}  {v.description}  [{v.licence}]")
        for e in tts.list_engines():
            if not e["available"]:
                print(f"(engine {e['name']} not installed: {e['missing']})")
        return 0
    missing = [flag for flag, value in (("--lang", args.lang), ("--out", args.out),
                                        ("--video or --image", args.video or args.image)) if not value]
    if missing:
        raise InputError(f"say needs {', '.join(missing)}", fix="see synclip say --help")
    if args.text_file:
        path = Path(args.text_file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{path}: cannot read the text file ({e})", fix="give a UTF-8 text file") from e
    else:
        text = args.text
    wav = tts.speak(text, args.lang, Path(args.out).with_suffix(".wav"), voice=args.voice, rate=args.rate)
    print(f"spoke {wav}")
    return _dub(args, str(wav))


def _dub(args: argparse.Namespace, audio: str) -> int:
    """Load the dubbing model, then the one dubbing door, dub_video, with the settings it was trained with."""
    from dataclasses import replace

    from tqdm import tqdm

    from .dub import dub_video

    source = args.video if args.video is not None else args.image
    for flag, value in (("--video" if args.video is not None else "--image", source), ("--audio", audio),
                        ("--out", args.out)):
        if not value:  # an empty string (an unset shell variable) would read as the current folder
            raise InputError(f"{flag} is empty", fix=f"give {flag} the path of a file")
    cfg = _config(args)
    model, trained_on = _dub_model(args, cfg)
    bar = tqdm(desc="dub", unit="frame", disable=args.quiet)

    def on_progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    ok, msg = dub_video(model, source, audio, args.out,
                        data=replace(trained_on, detector=cfg.data.detector), opts=_dub_options(args),
                        progress=on_progress)
    bar.close()
    print(msg)
    return 0 if ok else 1


def _dub_model(args: argparse.Namespace, cfg: Config):
    """--checkpoint (a presenter, a generator, or "presenter": the shipped one), else the model `synclip train
    --stage generator` wrote -> (the model on --device, the data settings it crops faces by)."""
    from .checkpoint import select_device
    from .presenter import load_dub_model

    path = args.checkpoint or Path(cfg.paths.checkpoints_dir) / "generator" / "best_model.pth"
    return load_dub_model(path, select_device(args.device, setting="--device"))


def _dub_options(args: argparse.Namespace):
    from .dub import DubOptions

    return DubOptions(pads=tuple(args.pads) if args.pads else None, resize_factor=max(1, args.resize_factor),
                      smooth=not args.nosmooth, static=args.static, box=tuple(args.box) if args.box else None,
                      allow_silence=args.allow_silence, mouth_motion=getattr(args, "mouth_motion", 1.0))


def cmd_stream(args: argparse.Namespace) -> int:
    """Dub as the audio arrives (a file at real-time pace, or PCM on stdin) into a growing mp4. A stream never
    refuses silence: a pause in live speech is not an error."""
    from dataclasses import replace

    from .checkpoint import load_generator, select_device
    from .media import read_audio
    from .background import BackgroundSink
    from .presenter import read_presenter
    from .stream import LOOKAHEAD_MS, Streamer, arriving, paced, pcm_chunks, run_stream
    from .writer import GrowingWriter

    import torch

    cfg = _config(args)
    torch.set_num_threads(max(1, args.threads))
    path = args.checkpoint or str(Path(cfg.paths.checkpoints_dir) / "generator" / "best_model.pth")
    if read_presenter(Path(path)) is not None:
        raise InputError(f"{path} is a presenter model: it dubs whole files (it meshes the source first), it "
                         f"cannot stream", fix="use `synclip dub`, or stream with a generator trained with "
                                               "--set model.generator=unet")
    generator, trained_on = load_generator(path, select_device(args.device, setting="--device"))
    chunk = max(1, round(args.chunk_ms * 16))  # samples at 16 kHz
    if args.audio == "-":
        timed = arriving(pcm_chunks(sys.stdin.buffer, chunk))
    else:
        wav = read_audio(args.audio)
        timed = paced(wav, chunk) if not args.fast else arriving(wav[i:i + chunk] for i in range(0, len(wav), chunk))
    streamer = Streamer(generator, args.video or args.image, data=replace(trained_on, detector=cfg.data.detector),
                        opts=_dub_options(args))
    print(f"streaming to {args.out} (look-ahead: {LOOKAHEAD_MS} ms of audio after each frame's centre; Ctrl+C "
          f"stops and keeps what was drawn)", file=sys.stderr)
    with GrowingWriter(args.out, *streamer.size) as writer:
        try:  # frames are encoded on a thread of their own while the next ones are drawn
            with BackgroundSink(lambda f: writer.write(f.image, f.audio)) as sink:
                report = run_stream(streamer, timed, sink=sink)
        except KeyboardInterrupt:
            print(f"interrupted: {writer.frames_written} frames kept in {args.out}", file=sys.stderr)
            return 130
    r = report.summary()
    print(f"streamed {r['frames']} frames ({r['frames'] / 25:.1f} s) -> {args.out}: {r['fps']:.1f} frames/s; "
          f"audio arrival to frame: median {r['latency_median_ms']:.0f} ms, p95 {r['latency_p95_ms']:.0f} ms")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train one stage or both; under torchrun every process runs this, and rank 0 alone prints."""
    from .distributed import shutdown
    from .train import run_stage

    if args.data:
        args.set.append(f"data.processed_dir={args.data}")
    cfg = _config(args)
    stage = args.stage or cfg.training.stage
    say = print if os.environ.get("RANK", "0") == "0" else (lambda *a: None)
    try:
        for kind in (["sync", "generator"] if stage == "both" else [stage]):
            say(f"=== Training stage: {kind} ===")
            result = run_stage(cfg, kind, resume=args.resume, report=say, progress=not args.quiet)
            if result.interrupted:
                return 130
            say(f"Best model: {result.best_path}")
        return 0
    finally:
        shutdown()


def cmd_tune_expert(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .tune import tune_expert

    cfg = _config(args)
    out = Path(args.out or Path(cfg.paths.checkpoints_dir) / "lip_expert.pth")
    bar = tqdm(desc="face mesh", unit="clip", disable=args.quiet)

    def on_progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    r = tune_expert(Path(args.videos or cfg.data.videos_dir), out, init=args.init, steps=args.steps,
                    max_offset=cfg.training.max_offset_frames, workers=cfg.data.workers, device=args.device,
                    report=bar.write, progress=on_progress)
    bar.close()
    b, a = r.before.get("offset_acc_pm1", float("nan")), r.after.get("offset_acc_pm1", float("nan"))
    print(f"Tuned on {r.train_minutes:.1f} min; held-out offsets within +-1 frame: {b:.1%} before, {a:.1%} after"
          + ("" if r.kept_tuned else " (no better: the starting expert was kept)"))
    print(f"Expert: {r.out}  (use it with --checkpoint {r.out})")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    import json

    model = _inference(args, _config(args))
    score, d = model.compute_sync_score(args.video, args.audio)
    if args.json:
        print(json.dumps(d, indent=1))
        return 0
    print(f"{args.video}: sync score {score:.3f}, offset {d['offset_frames']:+d} frames ({d['offset_ms']:+d} ms, "
          f"+ = audio leads), confidence {d['confidence']:.3f}, min distance {d['min_distance']:.3f}, "
          f"face in {d['face_coverage']:.0%} of frames" + (f", speaker: face {d['speaker']} of {d['num_faces']}"
                                                           if d["num_faces"] > 1 else ""))
    return 0


def cmd_fix_offset(args: argparse.Namespace) -> int:
    model = _inference(args, _config(args))
    ok, msg = model.sync_video_audio(args.video, args.audio, args.out, mode="shift")
    print(msg)
    return 0 if ok else 1


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_model

    fmt = args.format or ("onnx" if Path(args.out).suffix.lower() == ".onnx" else "torchscript")
    out = export_model(args.checkpoint, args.out, fmt, args.quantize)
    size_mb = out.stat().st_size / 2**20
    print(f"Exported {args.checkpoint} as {fmt}{' ' + args.quantize if args.quantize else ''} -> {out} "
          f"({size_mb:.1f} MB); use it as --checkpoint {out}")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    cfg = _config(args)
    model = _inference(args, cfg)
    if len(args.inputs) == 1 and Path(args.inputs[0]).is_dir():
        pairs = args.inputs[0]
    else:
        pairs = [tuple(item.split(":", 1)) if ":" in item else (item, None) for item in args.inputs]
    out = args.out or cfg.paths.outputs_dir
    bar = tqdm(desc=f"batch {args.mode}", unit="file", disable=args.quiet)

    def on_item(done: int, total: int, error: str) -> None:
        bar.total = total
        bar.update(1)
        if error:
            bar.write(f"failed: {error}")

    rows = model.batch_process(pairs, out, mode=args.mode, report_path=Path(out) / "report", progress=on_item)
    bar.close()
    bad = [r for r in rows if not r["ok"]]
    print(f"{len(rows) - len(bad)} of {len(rows)} done; report: {Path(out) / 'report.csv'} and .json")
    return 0 if not bad else 1


def _add_serve_command(sub, common) -> None:
    # Defaults (None here) are StudioSettings' own, so they are written in one place.
    s = sub.add_parser("serve", parents=[common], help="the studio: HTTP API and web page for dubbing and scoring")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--data-dir", help="where jobs and their files are kept (default studio/)")
    s.add_argument("--checkpoint", default=None,
                   help="generator for dubbing (default: <checkpoints_dir>/generator/best_model.pth)")
    s.add_argument("--score-checkpoint", default=None, help="sync expert of the reports (default: the shipped one)")
    s.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    s.add_argument("--max-upload-mb", type=float, help="largest request body (default 200)")
    s.add_argument("--max-seconds", type=float, help="longest video or audio accepted (default 300)")
    s.add_argument("--max-text-chars", type=int, help="longest script accepted (default 5000)")
    s.add_argument("--workers", type=int, help="jobs run at once (default 1)")
    s.add_argument("--queue", type=int, help="jobs that may wait; one more is answered 503 (default 8)")
    s.add_argument("--no-score", action="store_true", help="do not score each dub's result (faster)")
    s.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve
    from .studio import StudioSettings

    cfg = _config(args)
    given = {"data_dir": args.data_dir and Path(args.data_dir), "max_upload_mb": args.max_upload_mb,
             "max_media_s": args.max_seconds, "max_text_chars": args.max_text_chars, "workers": args.workers,
             "max_waiting": args.queue}
    settings = StudioSettings(
        generator_checkpoint=Path(args.checkpoint or Path(cfg.paths.checkpoints_dir) / "generator" / "best_model.pth"),
        score_checkpoint=args.score_checkpoint, device=args.device, detector=cfg.data.detector,
        max_offset=cfg.training.max_offset_frames, score_results=not args.no_score,
        **{k: v for k, v in given.items() if v is not None})
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"synclip studio on http://{host}:{args.port}/  (jobs in {settings.data_dir}/jobs; Ctrl+C stops)")
    try:
        serve(settings, args.host, args.port, log_level="info" if args.debug else "warning")
    except KeyboardInterrupt:  # uvicorn stops cleanly on Ctrl+C, then raises it again
        pass
    print("studio stopped; finished jobs stay in " + str(settings.data_dir / "jobs"))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.debug:  # mediapipe's C++ side logs through glog/absl to stderr
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        return args.func(args)
    except SynclipError as e:
        if args.debug:
            raise
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; run the same command again to go on", file=sys.stderr)
        return 130
    except Exception as e:  # a bug met on odd input: still one line, naming the inputs; --debug shows where
        if args.debug:
            raise
        inputs = ", ".join(str(v) for k in ("video", "image", "audio", "inputs", "videos", "text_file")
                           if (v := getattr(args, k, None)))
        print(f"error: internal error on {inputs or 'these inputs'}: {type(e).__name__}: {_one_line(e)} "
              "(run again with --debug and report it)", file=sys.stderr)
        return 1


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).splitlines())


if __name__ == "__main__":
    sys.exit(main())

"""The presenter through the user's path (issue 10, items 2-7): `synclip dub` with a presenter model, on real footage.

    nice -n 10 python benchmarks/real_presenter.py [--grid-clips 10] [--minutes 12] [--only grid|little]

GRID presenter (the shipped presenter model, trained on grid_s1's training sentences): the first
``--grid-clips`` grid_s1 test sentences (never trained on) are each dubbed with ``dub.dub_video`` (detection,
face mesh, AudioToLips, renderer, paste-back into the 360x288 frames, H.264) to 3 s of another of his test
sentences (his voice, other words), to its own first 3 s (a redo, whose truth is the source), and to 3-s pieces
of ``musetalk_eng.wav`` and ``sadtalker_chinese_news.wav`` in turn (other people's speech). Per dub, from the
written mp4:
- sync by the shipped expert (``LipSyncInference``, +-15 search): offset and confidence, against the same
  clip's real footage with its own speech, and the undubbed clip (its video with the new speech);
- the seam: ``metrics.edge_flicker`` in a band around the paste mask's edge (where its weight is 0.1-0.9),
  dub against source over the frames both play forward, and the crop box's frame-to-frame move;
- colour: Delta E of the mean colour of the lower face box, dub against source; for the redo also lower-face
  SSIM and PSNR of the face crops at the model's input size;
- motion: how far AudioToLips moves the mouth for that speech, over the presenter's own footage's motion level,
  and the gain ``presenter.match_motion`` scales it by (``--no-motion-match``: dub without that scaling); and
  how far the drawn mouth moves, the dub meshed again, over the source clip's own;
- an independent judge: the model-free reference's offset (mouth opening of the meshed dub, or of the source
  for the undubbed, against the speech envelope);
- ``--judge CKPT``: a second expert (another design, or one that never saw ``grid_s1``) scores the real clip,
  the dub and the undubbed clip as the shipped one does.
The first dub to musetalk is kept as docs/grid_presenter_musetalk.mp4.

Little footage (the 20-s shared clips, latentsync_demo2_video and wav2lip_pr600_test): each is prepared
(`synclip prepare`) and the shipped presenter fine-tuned on its first 60% (the next 10% validates; together
the first 70%) for ``--minutes`` (`synclip train --stage generator`'s code, ``presenter_train.run_presenter``).
On the last 30%: lower-half SSIM, PSNR and mouth sharpness at 128 px, each frame redrawn from its own real
mouth and from the mouth AudioToLips hears in the clip's own speech, before and after the fine-tuning; then the
whole clip dubbed to 10 s of musetalk_eng.wav (from its first word) and judged by the expert as above. Times of each
step are recorded. ``--general R.pth`` also starts from a renderer trained on many faces (``real_render.py
--source lrc_ar``), measured before fine-tuning too; ``--paste-mask`` also starts from the shipped renderer
converted to blank only paste-back's mask (``render.with_input_mask``), for a shipped file that blanks the lower
half; ``--detail-weight`` sets ``training.presenter_detail_weight`` for every run. The SSIM and PSNR come twice:
of the drawn crop, and of it as paste-back shows it (blended into the truth through the paste mask).
Writes benchmarks/results/real_presenter.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import REAL, RESULTS, ROOT, save_result

from synclip import audio as A  # noqa: E402
from synclip import media  # noqa: E402
from synclip.writer import write_wav  # noqa: E402
from synclip.dub import DubOptions, dub_video, open_source  # noqa: E402
from synclip.face import FaceDetector, crop, lower_face_mask  # noqa: E402
from synclip.metrics import box_jitter, colour_difference, edge_flicker, psnr, ssim  # noqa: E402
from synclip.presenter import (PADS, PRETRAINED, load_presenter, match_motion, motion_level, rest_mouth,  # noqa: E402
                               speech_lips)

GRID = ROOT.parent / "shared" / "data" / "corpus" / "grid_s1"
SPEECH = ("musetalk_eng.wav", "sadtalker_chinese_news.wav")
PIECE_S = 3.0
SPEECH_START_S = {"musetalk_eng.wav": 3.0, "sadtalker_chinese_news.wav": 0.0}  # musetalk is silent before 3 s
OWN_VOICE = "grid_s1 (another of his test sentences)"
REDO = "grid_s1 (the clip's own sentence, redone)"
DOC_SENTENCE_S = (3.0, 9.0)  # musetalk_eng.wav's first sentence (a pause follows it)
LITTLE = ("latentsync_demo2_video.mp4", "wav2lip_pr600_test.mov")
DOC_VIDEO = ROOT / "docs" / "grid_presenter_musetalk.mp4"
DOC_VIDEO_MAX_BYTES = 2 * 1024 * 1024


def write_piece(wav: np.ndarray, start_s: float, seconds: float, path: Path) -> Path:
    a = int(start_s * A.SAMPLE_RATE_HZ)
    write_wav(path, wav[a:a + int(seconds * A.SAMPLE_RATE_HZ)])
    return path


def judge(expert, video: Path, audio: Path | None = None) -> dict:
    _, d = expert.compute_sync_score(video, audio)
    return {"offset": int(d["offset_frames"]), "confidence": round(float(d["confidence"]), 3),
            "score": round(float(d["score"]), 3)}


def judge_info(checkpoint: str) -> dict:
    """What a second judge is: its face input and the training run it records (``real_expert.py`` writes it)."""
    import json

    from synclip.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint, kind="sync")
    run = json.loads(ck["extra"].get("run", "{}")) if ck.get("extra") else {}
    return {"face_input": ck["dims"].get("face_input"),
            **{k: run[k] for k in ("sources", "train_minutes", "steps", "best_step") if k in run}}


def motion_of(presenter, speech: Path) -> dict:
    """How far AudioToLips moves the mouth for this speech (``presenter.motion_level`` of its shapes), against
    the presenter's own footage, and the gain ``presenter.match_motion`` applies to reach it."""
    raw = speech_lips(presenter, media.read_audio(speech), int(PIECE_S * A.VIDEO_FPS), match=False)
    level = motion_level(raw)
    matched = motion_level(match_motion(raw, presenter.motion_level))
    return {"speech_level": round(level, 4), "of_presenter": round(level / presenter.motion_level, 3)
            if presenter.motion_level else None, "gain": round(matched / level, 3) if level else None}


def meshed(video: Path, presenter, detector) -> tuple[float, np.ndarray]:
    """A video's mouth, meshed as `synclip score` meshes it (``lips.lip_track``): its ``presenter.motion_level``
    and its (T,) mouth opening (``mesh.mouth_opening``, NaN where no mesh)."""
    from synclip.lips import lip_track
    from synclip.mesh import FaceMesh, lip_features, mouth_opening

    track = lip_track(video, media.probe_video(video), detector, FaceMesh)
    return motion_level(lip_features(track.landmarks, presenter.template)), mouth_opening(track.landmarks)


def reference_offset(opening: np.ndarray, speech: Path) -> int:
    """The model-free reference's offset (``lips_eval.reference_cases``: mouth opening against the speech
    envelope, searched +-15 frames), a judge neither network was trained against."""
    from types import SimpleNamespace

    from synclip.lips_eval import reference_cases

    feats = A.normalize_mel(A.log_mel(media.read_audio(speech)))
    clip = SimpleNamespace(feats=feats, num_frames=len(opening), name=speech.stem, source="grid_s1")
    return reference_cases(opening, clip, (0,), 15)[0].found


def seam_and_colour(source: Path, dubbed: Path, presenter, detector, truth: bool = False) -> dict:
    """Edge flicker in the paste mask's edge band and the lower face's colour, dub against source, over the
    frames both play forward (the dub's face squares are the source's: same detection, same options).
    ``truth``: the dub redoes the source's own speech, so the source is its truth: lower-face SSIM and PSNR of
    the face crops at the model's input size, dub against source."""
    src = open_source(source, DubOptions(pads=PADS), presenter.data, detector)
    size = presenter.input_size
    mask = lower_face_mask(size)
    band_crop = (mask > 0.1) & (mask < 0.9)
    a = np.stack(list(media.iter_frames(source)))
    b = np.stack(list(media.iter_frames(dubbed)))
    n = min(len(a), len(b))
    a, b, squares = a[:n], b[:n], src.squares[:n]
    ok = ~np.isnan(squares[:, 0])
    sq = np.nanmedian(squares[ok], axis=0)  # the band where the mask's edge lies most of the time
    h, w = a.shape[1:3]
    band = np.zeros((h, w), bool)
    ys, xs = np.nonzero(band_crop)
    fx = np.clip(np.round(sq[0] - sq[2] / 2 + (xs + 0.5) * sq[2] / size).astype(int), 0, w - 1)
    fy = np.clip(np.round(sq[1] - sq[2] / 2 + (ys + 0.5) * sq[2] / size).astype(int), 0, h - 1)
    band[fy, fx] = True
    low = [crop(f, s, size)[size // 2:] for f, s in zip(b[ok], squares[ok])]
    low_src = [crop(f, s, size)[size // 2:] for f, s in zip(a[ok], squares[ok])]
    out = {"edge_flicker_dub": round(edge_flicker(b, band), 3), "edge_flicker_source": round(edge_flicker(a, band), 3),
           "box_jitter": round(box_jitter(squares), 4),
           "colour_difference_lower": round(colour_difference(np.stack(low), np.stack(low_src)), 2)}
    if truth:
        d, t = (torch.from_numpy(np.stack(x)).permute(0, 3, 1, 2).float() / 255 for x in (low, low_src))
        out.update(ssim_lower=round(float(ssim(d, t).mean()), 4), psnr_lower_db=round(float(psnr(d, t).mean()), 2))
    return out


def run_grid(args, expert, presenter, detector, work: Path, second=None) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from real_expert import split_names

    test = split_names("grid_s1", [p.stem for p in GRID.glob("*.mp4")])["test"][:args.grid_clips]
    speech = {s: media.read_audio(REAL / "audio" / s) for s in SPEECH}
    rows, seconds = [], []
    for k, name in enumerate(test):
        video = GRID / f"{name}.mp4"
        real = judge(expert, video)
        real_second = judge(second, video) if second else None
        real_level, real_opening = meshed(video, presenter, detector)
        own = test[(k + 1) % len(test)] if len(test) > 1 else name  # his voice, another sentence
        voices = {REDO: media.read_audio(video), OWN_VOICE: media.read_audio(GRID / f"{own}.mp4"), **speech}
        for s, wav in voices.items():
            first = SPEECH_START_S.get(s, 0.0)
            start = first + (k * PIECE_S) % max(len(wav) / A.SAMPLE_RATE_HZ - first - PIECE_S, 1e-6)
            if s == REDO:
                start = 0.0
            piece = write_piece(wav, start, PIECE_S, work / f"{name}_{Path(s).stem}.wav")
            out = work / f"{name}_{Path(s).stem}.mp4"
            t0 = time.perf_counter()
            dub_video(presenter, video, piece, out, data=presenter.data, detector=detector)
            seconds.append(time.perf_counter() - t0)
            level, opening = meshed(out, presenter, detector)
            row = {"clip": name, "speech": s, "source": own if s == OWN_VOICE else s, "start_s": round(start, 2),
                   "real": real,
                   "motion": {**motion_of(presenter, piece), "drawn_of_real": round(level / real_level, 3)},
                   "reference": {"dub": reference_offset(opening, piece),
                                 "undubbed": reference_offset(real_opening, piece)},
                   "dub": judge(expert, out), "undubbed": judge(expert, video, piece),
                   **seam_and_colour(video, out, presenter, detector, truth=s == REDO)}
            if second:
                row["judge"] = {"real": real_second, "dub": judge(second, out), "undubbed": judge(second, video, piece)}
            rows.append(row)
            print(f"{name} {s}: real {real} dub {row['dub']} undubbed {row['undubbed']} "
                  f"flicker {row['edge_flicker_dub']}/{row['edge_flicker_source']} dE {row['colour_difference_lower']}",
                  flush=True)
            if k == 0 and s == SPEECH[0] and not args.no_motion_match:  # the README's picture: a whole sentence
                a, b = DOC_SENTENCE_S
                sentence = write_piece(wav, a, b - a, work / "sentence.wav")
                dub_video(presenter, video, sentence, work / "doc.mp4", data=presenter.data, detector=detector)
                DOC_VIDEO.parent.mkdir(parents=True, exist_ok=True)
                DOC_VIDEO.write_bytes((work / "doc.mp4").read_bytes())
                assert DOC_VIDEO.stat().st_size <= DOC_VIDEO_MAX_BYTES
    return {"clips": test, "rows": rows, "summary": summarise(rows),
            "dub_seconds_per_3s": round(float(np.mean(seconds)), 2)}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for s in sorted({r["speech"] for r in rows}):
        rs = [r for r in rows if r["speech"] == s]
        real_conf = np.mean([r["real"]["confidence"] for r in rs])
        out[s] = {"cases": len(rs),
                  "dub_offset_within_1": round(np.mean([abs(r["dub"]["offset"]) <= 1 for r in rs]), 3),
                  "undubbed_offset_within_1": round(np.mean([abs(r["undubbed"]["offset"]) <= 1 for r in rs]), 3),
                  "real_confidence": round(float(real_conf), 3),
                  "dub_confidence_of_real": round(float(np.mean([r["dub"]["confidence"] for r in rs]) / real_conf), 3),
                  "undubbed_confidence_of_real": round(float(np.mean([r["undubbed"]["confidence"] for r in rs])
                                                             / real_conf), 3),
                  "dub_score": round(float(np.mean([r["dub"]["score"] for r in rs])), 3),
                  "undubbed_score": round(float(np.mean([r["undubbed"]["score"] for r in rs])), 3),
                  "edge_flicker_dub": round(float(np.mean([r["edge_flicker_dub"] for r in rs])), 3),
                  "edge_flicker_source": round(float(np.mean([r["edge_flicker_source"] for r in rs])), 3),
                  "colour_difference_lower": round(float(np.mean([r["colour_difference_lower"] for r in rs])), 2),
                  "box_jitter": round(float(np.mean([r["box_jitter"] for r in rs])), 4)}
        out[s]["drawn_motion_of_real"] = round(float(np.mean([r["motion"]["drawn_of_real"] for r in rs])), 3)
        for k in ("dub", "undubbed"):
            out[s][f"reference_{k}_within_1"] = round(float(np.mean([abs(r["reference"][k]) <= 1 for r in rs])), 3)
        if "judge" in rs[0]:  # the second expert's figures, read like the shipped one's
            conf = np.mean([r["judge"]["real"]["confidence"] for r in rs])
            out[s]["judge"] = {"real_confidence": round(float(conf), 3), **{
                f"{k}_{f}": v for k in ("dub", "undubbed") for f, v in (
                    ("offset_within_1", round(float(np.mean([abs(r["judge"][k]["offset"]) <= 1 for r in rs])), 3)),
                    ("confidence_of_real", round(float(np.mean([r["judge"][k]["confidence"] for r in rs]) / conf), 3)),
                    ("score", round(float(np.mean([r["judge"][k]["score"] for r in rs])), 3)))}}
        if rs[0]["motion"]["of_presenter"] is not None:
            out[s].update(motion_of_presenter=round(float(np.mean([r["motion"]["of_presenter"] for r in rs])), 3),
                          motion_gain=round(float(np.mean([r["motion"]["gain"] for r in rs])), 3))
        if "ssim_lower" in rs[0]:
            out[s].update(ssim_lower=round(float(np.mean([r["ssim_lower"] for r in rs])), 4),
                          psnr_lower_db=round(float(np.mean([r["psnr_lower_db"] for r in rs])), 2))
    return out


def redraw_test(p, frames, wav: np.ndarray, part: slice) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The test part's frames with a face (indices) and, for each, the truth and two redrawings: from its own
    real mouth, and from the mouth AudioToLips hears in the clip's own speech (on the frame's pose); each
    from a reference frame of the clip at least 10 frames away (a dub's reference is its first frame)."""
    from synclip.render import draw, mouth_from_features

    lips = speech_lips(p, wav, len(frames.crops))
    marks = mouth_from_features(frames.landmarks, lips, p.template, rest=rest_mouth(frames.landmarks, p.template))
    rng = np.random.default_rng(7)
    idx = np.array([i for i in range(part.start, part.stop) if frames.present[i]])
    refs = np.array([frames.reference(rng, int(i)) for i in idx])
    return idx, {"truth": frames.crops[idx],
                 "real_mouth": draw(p.renderer, frames.crops[idx], frames.crops[refs], frames.landmarks[idx]),
                 "speech_mouth": draw(p.renderer, frames.crops[idx], frames.crops[refs], marks[idx])}


def figures_of(drawn: dict[str, np.ndarray], landmarks: np.ndarray) -> dict:
    from synclip.presenter_train import lower_face_figures

    return {kind: lower_face_figures(drawn[kind], drawn["truth"], landmarks) for kind in ("real_mouth", "speech_mouth")}


def sheet(path: Path, drawn: dict[str, dict[str, np.ndarray]], count: int = 8) -> None:
    """Contact sheet: truth, then each model's redrawing and its difference from the truth (x3)."""
    from real_render import contact_sheet

    truth = next(iter(drawn.values()))["truth"]
    pick = np.linspace(0, len(truth) - 1, count).round().astype(int)
    rows = [("truth", truth[pick])]
    for label, d in drawn.items():
        for kind in ("real_mouth", "speech_mouth"):
            rows.append((f"{label}:\n{kind.replace('_', ' ')}", d[kind][pick]))
        diff = np.abs(d["speech_mouth"][pick].astype(np.int16) - truth[pick])
        rows.append(("|truth -\nabove| x3", np.clip(diff * 3, 0, 255).astype(np.uint8)))
    contact_sheet(path, rows)


def run_little(args, expert, detector, work: Path) -> dict:
    from common import bench_config

    from synclip.models.renderer import Renderer
    from synclip.prepare import prepare
    from synclip.presenter import save_presenter
    from synclip.presenter_train import presenter_faces, run_presenter, source_videos
    from synclip.render import load_renderer, with_input_mask
    from synclip.render_data import Frames

    out = {}
    musetalk = write_piece(media.read_audio(REAL / "audio" / "musetalk_eng.wav"), SPEECH_START_S["musetalk_eng.wav"],
                           10.0, work / "muse10.wav")
    for video_name in args.little:
        video = REAL / "video" / video_name
        if not video.is_file():
            continue
        stem = Path(video_name).stem
        home = work / stem
        (home / "videos").mkdir(parents=True)
        (home / "videos" / video_name).symlink_to(video)
        cfg = bench_config(home, **{"training.presenter_minutes": args.minutes, "training.presenter_steps": args.steps,
                                    "training.presenter_detail_weight": args.detail_weight})
        t0 = time.perf_counter()
        prepare(cfg)
        t_prepare = time.perf_counter() - t0
        split = {"by": "time", "seed": 0, "train": [[stem, 0.0, 0.6]], "val": [[stem, 0.6, 0.7]],
                 "test": [[stem, 0.7, 1.0]]}
        processed = Path(cfg.data.processed_dir)
        shipped = load_presenter(PRETRAINED)
        t0 = time.perf_counter()
        clip = presenter_faces(source_videos(processed), processed, shipped.input_size, 1, False)[stem]
        t_mesh = time.perf_counter() - t0
        frames = Frames([clip])
        test = slice(round(0.7 * len(clip.crops)), len(clip.crops))
        wav = A.fit_to_frames(media.read_audio(video), len(clip.crops))
        idx, drawn_before = redraw_test(shipped, frames, wav, test)
        out[stem] = {"frames": len(clip.crops), "train_frames": round(0.6 * len(clip.crops)), "test_frames": len(idx),
                     "before_fine_tuning": figures_of(drawn_before, frames.landmarks[idx]),
                     "sync": {"real": judge(expert, video), "undubbed": judge(expert, video, musetalk)},
                     "seconds": {"prepare": round(t_prepare), "mesh_128": round(t_mesh)}, "fine_tuned": {}}
        sheets = {"shipped": drawn_before}
        starts = {} if args.no_plain else {"shipped model": (PRETRAINED, False)}
        if args.augment:  # the same start, the training frames jittered (render_data.jitter)
            starts["shipped model, jittered frames"] = (PRETRAINED, True)
        if args.paste_mask:  # the same start, the renderer blanking only paste-back's part of the target
            pasted = replace(shipped, renderer=with_input_mask(shipped.renderer, "paste"),
                             meta={"init": "shipped renderer, input_mask paste"})
            save_presenter(work / "paste.pth", pasted)
            starts["shipped model, paste mask"] = (work / "paste.pth", False)
        if args.scratch:  # the same renderer with fresh weights: what the GRID speaker's training is worth
            torch.manual_seed(0)
            fresh = replace(shipped, renderer=Renderer(shipped.renderer.dims), meta={"init": "random"})
            save_presenter(work / "fresh.pth", fresh)
            starts["random weights"] = (work / "fresh.pth", False)
        if args.general:  # a renderer trained on many faces (real_render.py --source lrc_ar) as the start
            general = replace(shipped, renderer=load_renderer(Path(args.general)),
                              meta={"init": f"general renderer {Path(args.general).name}"})
            save_presenter(work / "general.pth", general)
            _, sheets["general"] = redraw_test(general, frames, wav, test)
            out[stem]["general_before_fine_tuning"] = figures_of(sheets["general"], frames.landmarks[idx])
            starts["general model"] = (work / "general.pth", False)
        for k, (label, (init, augment)) in enumerate(starts.items()):
            run_cfg = cfg.replace(**{"training.init_checkpoint": str(init), "training.presenter_augment": augment,
                                     "paths.checkpoints_dir": str(home / "checkpoints" / str(k))})
            t0 = time.perf_counter()
            result = run_presenter(run_cfg, Path(run_cfg.paths.checkpoints_dir) / "generator", split=split,
                                   report=lambda s: print(f"{stem} {label}: {s}", flush=True))
            t_train = time.perf_counter() - t0
            tuned = load_presenter(result.best_path)
            _, drawn = redraw_test(tuned, frames, wav, test)
            sheets[f"from {label.split()[0]}{''.join(', ' + w.split()[0] for w in label.split(', ')[1:])}"] = drawn
            dubbed = work / f"{stem}_muse.mp4"
            t0 = time.perf_counter()
            dub_video(tuned, video, musetalk, dubbed, data=tuned.data, detector=detector)
            t_dub = time.perf_counter() - t0
            out[stem]["fine_tuned"][label] = {
                "figures": figures_of(drawn, frames.landmarks[idx]), "dub_musetalk_10s": judge(expert, dubbed),
                "seconds": {"train": round(t_train), "dub_10s": round(t_dub)}, "steps": result.steps,
                "curve": result.curve}
        # Without the plain run, a sheet of its own.
        runs = (("jitter", args.augment), ("general", args.general), ("paste", args.paste_mask))
        tag = "".join(f"_{t}" for t, on in runs if on and args.no_plain)
        sheet(ROOT / "docs" / f"contact_sheet_{stem}_presenter{tag}.jpg", sheets)
        print(f"{stem}: {out[stem]}", flush=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid-clips", type=int, default=10)
    p.add_argument("--minutes", type=float, default=12.0, help="fine-tuning budget per little-footage clip")
    p.add_argument("--steps", type=int, default=10**6,
                   help="little footage: stop fine-tuning after this many steps (to compare runs on CPUs of other speeds)")
    p.add_argument("--only", choices=["grid", "little"])
    p.add_argument("--scratch", action="store_true", help="little footage: also fine-tune from random weights")
    p.add_argument("--augment", action="store_true", help="little footage: also fine-tune on jittered frames")
    p.add_argument("--detail-weight", type=float, default=1.0,
                   help="little footage: training.presenter_detail_weight of every fine-tuning run")
    p.add_argument("--paste-mask", action="store_true",
                   help="little footage: also fine-tune the shipped model blanking only paste-back's mask")
    p.add_argument("--no-plain", action="store_true", help="little footage: skip the plain fine-tuning run")
    p.add_argument("--general", default="", metavar="RENDERER",
                   help="little footage: also start from this renderer (real_render.py --source lrc_ar --save ...)")
    p.add_argument("--little", nargs="+", default=list(LITTLE), help="the little-footage clips (shared real videos)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--no-motion-match", action="store_true",
                   help="dub with AudioToLips' shapes as predicted (the presenter's motion level set to 0)")
    p.add_argument("--judge", default="", metavar="CKPT",
                   help="grid: a second expert's checkpoint to score the dubs too (e.g. one that never saw grid_s1)")
    p.add_argument("--presenter", default="", metavar="PTH",
                   help="grid: dub with this presenter file instead of the shipped one (a candidate, measured first)")
    p.add_argument("--out", default=str(RESULTS / "real_presenter.json"))
    args = p.parse_args()
    if not GRID.is_dir() or not (REAL / "audio").is_dir():
        print(f"skipped: needs {GRID} and {REAL} (the shared real data)")
        return 0
    from synclip.infer import LipSyncInference

    torch.set_num_threads(args.threads)
    expert = LipSyncInference()
    presenter = load_presenter(args.presenter or PRETRAINED)
    if args.no_motion_match:
        presenter.motion_level = 0.0
    result = {"model": {"file": args.presenter or str(PRETRAINED.relative_to(ROOT)), **presenter.meta}}
    second = LipSyncInference(args.judge) if args.judge else None
    if second:
        result["judge"] = {"checkpoint": args.judge, **judge_info(args.judge)}
    detector = FaceDetector("mediapipe")
    try:
        with tempfile.TemporaryDirectory(prefix="synclip_presenter_") as tmp:
            if args.only != "little":
                result["grid"] = run_grid(args, expert, presenter, detector, Path(tmp), second)
            if args.only != "grid":
                result["little_footage"] = run_little(args, expert, detector, Path(tmp))
    finally:
        detector.close()
    previous = Path(args.out)
    if args.only and previous.is_file():  # keep the other half of an earlier (or a parallel) run
        import json

        kept = json.loads(previous.read_text())
        if "grid" in result and "judge" not in result:  # the earlier judge judged dubs that are gone
            kept.pop("judge", None)
        result = {**kept, **result}
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

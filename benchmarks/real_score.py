"""The shipped expert through the whole scoring path, on the 8 shared real clips it never saw.

    python benchmarks/real_score.py [--checkpoint pretrained] [--skip-speed]

What `synclip score` / `fix-offset` do for a user, each case a fresh video + audio pair:
- offsets: every clip with its own audio, and with the audio leading or lagging by 5 and 10 frames (+-15
  searched); found offset within +-1 of the truth, and the sync score as the shifted clip plays;
- another voice: every clip against another clip's speech or one of the shared speech recordings: the score;
- fix-offset: the +-5 and +-10 shifted clips with their audio moved by the found offset, as
  `sync_video_audio(mode="shift")` writes it, scored again: back to 0 +-1;
- active speaker: two clips side by side (same height), one's sound: the face whose sound it is is found;
- speed: 60 s of 720p (the wav2lip clip repeated): the whole score, the one-pass scan in it, and decode,
  detection and the face mesh each timed alone.
Writes benchmarks/results/real_score.json.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import REAL, RESULTS, machine, save_result

from synclip import audio as A  # noqa: E402
from synclip import media  # noqa: E402
from synclip.infer import LipSyncInference, shift_audio  # noqa: E402

SHIFTS = (0, 5, -5, 10, -10)


def leading(wav: np.ndarray, k: int) -> np.ndarray:
    """The track whose audio leads the video by k frames (k < 0: lags)."""
    return shift_audio(wav, -k)


def offsets_and_fix(model: LipSyncInference, clips: list[Path], tmp: Path) -> tuple[list[dict], list[dict]]:
    rows, fixes = [], []
    for clip in clips:
        info = media.probe_video(clip)
        wav = A.fit_to_frames(media.read_audio(clip), info.num_frames)
        for k in SHIFTS:
            audio = tmp / f"{clip.stem}_{k:+d}.wav"
            media.write_wav(audio, leading(wav, k))
            score, d = model.compute_sync_score(clip, audio)
            rows.append({"clip": clip.stem, "shift": k, "found": d["offset_frames"], "score": round(score, 4),
                         "confidence": round(d["confidence"], 4)})
            print(f"{clip.stem:40s} shift {k:+3d}: found {d['offset_frames']:+3d}, score {score:.3f}, "
                  f"confidence {d['confidence']:.3f}")
            if k:  # what fix-offset writes: the audio moved by the found offset (the picture is untouched)
                fixed = tmp / f"{clip.stem}_{k:+d}_fixed.wav"
                media.write_wav(fixed, shift_audio(leading(wav, k), d["offset_frames"]))
                _, d2 = model.compute_sync_score(clip, fixed)
                fixes.append({"clip": clip.stem, "shift": k, "after_fix": d2["offset_frames"]})
    return rows, fixes


def other_voices(model: LipSyncInference, clips: list[Path], tmp: Path) -> list[dict]:
    speech = [media.read_audio(c) for c in clips] + [media.read_audio(p) for p in sorted((REAL / "audio").glob("*.wav"))]
    rows = []
    for i, clip in enumerate(clips):
        info = media.probe_video(clip)
        for j in ((i + 1) % len(clips),) if i % 2 else (len(clips) + i // 2 % (len(speech) - len(clips)),):
            wav = np.tile(speech[j], 1 + A.frames_to_samples(info.num_frames) // len(speech[j]))
            audio = tmp / f"{clip.stem}_voice{j}.wav"
            media.write_wav(audio, A.fit_to_frames(wav, info.num_frames))
            score, _ = model.compute_sync_score(clip, audio)
            rows.append({"clip": clip.stem, "voice": j, "score": round(score, 4)})
    return rows


HEIGHT = 480  # both halves are scaled to this height


def _scaled_width(width: int, height: int) -> int:
    return round(width * HEIGHT / height) // 2 * 2


def side_by_side(a: Path, b: Path, out: Path, seconds: float = 5.0) -> tuple[Path, int]:
    """a | b, each scaled to HEIGHT, `seconds` long and silent; returns (video, width of a's half)."""
    ia, ib = media.probe_video(a), media.probe_video(b)
    wa, wb = _scaled_width(ia.width, ia.height), _scaled_width(ib.width, ib.height)
    n = int(seconds * A.VIDEO_FPS)
    with media.VideoWriter(out, wa + wb, HEIGHT) as w:
        for _, x, y in zip(range(n), media.iter_frames(a), media.iter_frames(b)):
            w.write(np.concatenate([cv2.resize(x, (wa, HEIGHT)), cv2.resize(y, (wb, HEIGHT))], 1))
        w.close(np.zeros(A.frames_to_samples(n), np.float32))
    return out, wa


def active_speaker(model: LipSyncInference, clips: list[Path], tmp: Path) -> list[dict]:
    rows = []
    usable = [c for c in clips if media.probe_video(c).duration_s >= 5.0 and "wav2lip" not in c.stem]
    for a, b in itertools.combinations(usable, 2):
        video, split_x = side_by_side(a, b, tmp / f"pair_{a.stem}_{b.stem}.mp4")
        for speaker, src in (("left", a), ("right", b)):
            audio = tmp / f"pair_{a.stem}_{b.stem}_{speaker}.wav"
            media.write_wav(audio, A.fit_to_frames(media.read_audio(src), int(5.0 * A.VIDEO_FPS)))
            _, d = model.compute_sync_score(video, audio)
            box = d["speaker_box"]
            found = "left" if (box[0] + box[2]) / 2 < split_x else "right"
            rows.append({"pair": [a.stem, b.stem], "speaker": speaker, "found": found, "faces": d["num_faces"]})
            print(f"{a.stem} | {b.stem}: sound of the {speaker} face -> {found} ({d['num_faces']} faces)")
    return rows


def speed(model: LipSyncInference, tmp: Path) -> dict:
    """Where the time of scoring 60 s of 720p goes. Scoring decodes once (``lips.scan_faces``): one thread
    decodes and detects (every SCAN_DETECT_EVERY-th frame), the other runs the mesh on every frame; each part
    is also timed alone, one after the other, so the parts add up to more than the overlapped scan."""
    from prepare import make_long_video

    from synclip.face import crop, subject_squares
    from synclip.lips import SCAN_DETECT_EVERY, SCAN_MAX_SIDE_PX, scan_faces
    from synclip.mesh import MESH_INPUT_PX, FaceMesh

    src = REAL / "video" / "wav2lip_pr600_test.mov"
    video = make_long_video(src, 1.0, tmp / "sixty.mp4")
    info = media.probe_video(video)
    assert max(info.width, info.height) <= SCAN_MAX_SIDE_PX  # decoded at its own size, as timed below
    t0 = time.perf_counter()
    model.compute_sync_score(video)
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    tracks = scan_faces(video, info, model.detector, FaceMesh, model.data_cfg.face_pad)
    t_scan = time.perf_counter() - t0
    t0 = time.perf_counter()
    n = sum(1 for _ in media.iter_frames(video))
    t_decode = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i, frame in enumerate(media.iter_frames(video)):
        if i % SCAN_DETECT_EVERY == 0:
            model.detector.detect(frame)
    t_detect = time.perf_counter() - t0 - t_decode
    squares = subject_squares(tracks[0], model.data_cfg)[2]
    with FaceMesh() as mesh:
        t0 = time.perf_counter()
        for frame, sq in zip(media.iter_frames(video), squares):
            if not np.isnan(sq[0]):
                mesh.run(crop(frame, sq, MESH_INPUT_PX))
        t_mesh = time.perf_counter() - t0 - t_decode
    return {"machine": machine(), "video_s": 60.0, "frames": n, "total_s": round(total, 2),
            "realtime_factor": round(60.0 / total, 2),
            "scan_s (2 threads)": round(t_scan, 2), "model_and_rest_s": round(total - t_scan, 2),
            "alone: decode_s": round(t_decode, 2),
            f"alone: detection_s (every {SCAN_DETECT_EVERY}. frame)": round(t_detect, 2),
            "alone: mesh_s (crop + mesh, every frame)": round(t_mesh, 2), "tracks": len(tracks)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="pretrained")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--only-speed", action="store_true", help="time scoring 60 s of 720p, nothing else")
    p.add_argument("--out", default=str(RESULTS / "real_score.json"))
    args = p.parse_args()
    if not (REAL / "video").is_dir():
        print(f"skipped: real test media not found at {REAL}")
        return 0
    model = LipSyncInference(args.checkpoint, device="cpu")
    clips = sorted((REAL / "video").iterdir())
    result = {"checkpoint": str(model.checkpoint_path)}
    if args.only_speed:
        with tempfile.TemporaryDirectory() as tmp:
            result["speed_60s_720p"] = speed(model, Path(tmp))
        print(f"speed: {result['speed_60s_720p']}")
        save_result(args.out, result)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows, fixes = offsets_and_fix(model, clips, tmp)
        hits = [abs(r["found"] - r["shift"]) <= 1 for r in rows]
        result["offsets"] = {"cases": len(rows), "within_1": round(float(np.mean(hits)), 4), "rows": rows,
                             "score_insync": round(float(np.mean([r["score"] for r in rows if r["shift"] == 0])), 4),
                             "score_shifted": round(float(np.mean([r["score"] for r in rows if r["shift"]])), 4)}
        # Whatever a clip's own sync, a shift of k frames must move the found offset by k (+-1).
        zero = {r["clip"]: r["found"] for r in rows if r["shift"] == 0}
        moved = [abs(r["found"] - zero[r["clip"]] - r["shift"]) <= 1 for r in rows if r["shift"]]
        result["offsets"]["shift_tracked_within_1"] = round(float(np.mean(moved)), 4)
        result["fix_offset"] = {"cases": len(fixes), "rows": fixes,
                                "back_to_0_pm1": round(float(np.mean([abs(f["after_fix"]) <= 1 for f in fixes])), 4)}
        voices = other_voices(model, clips, tmp)
        result["other_voice"] = {"cases": len(voices), "rows": voices,
                                 "score": round(float(np.mean([v["score"] for v in voices])), 4)}
        pairs = active_speaker(model, clips, tmp)
        result["active_speaker"] = {"cases": len(pairs), "rows": pairs,
                                    "right_face": round(float(np.mean([r["found"] == r["speaker"] for r in pairs])), 4)}
        if not args.skip_speed:
            result["speed_60s_720p"] = speed(model, tmp)
    o, f, v, s = result["offsets"], result["fix_offset"], result["other_voice"], result["active_speaker"]
    print(f"offsets within +-1: {o['within_1']:.1%} of {o['cases']} (shift moved the offset by the shift +-1: "
          f"{o['shift_tracked_within_1']:.1%}); score in sync {o['score_insync']:.3f}, "
          f"shifted {o['score_shifted']:.3f}, another voice {v['score']:.3f}")
    print(f"fix-offset back to 0+-1: {f['back_to_0_pm1']:.1%} of {f['cases']}; active speaker: "
          f"{s['right_face']:.1%} of {s['cases']}")
    if "speed_60s_720p" in result:
        print(f"speed: {result['speed_60s_720p']}")
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Exported and quantised models against their checkpoints, on the same clips: speed and the figures that matter.

    python benchmarks/export.py --expert E.pth --generator G.pth --work W [--real-clips 8] [--pairs 3]
    (each part can run on its own, e.g. --real-clips 8 alone; the parts not run are kept in the JSON)
    python benchmarks/export.py --speed-only --expert E.pth --generator G.pth   # the timings, in turns

Each model is exported as ONNX and TorchScript, in float, int8 and fp16 (fp16 is meant for GPUs: here it
runs on the CPU, so its speed is not its GPU speed), and every variant is loaded the way users load it
(``LipSyncInference(file)``) and measured on identical inputs:
- pixel sync expert (E, trained on synthetic faces; W holds the held-out clips of benchmarks/sync_quality.py):
  binary accuracy and offsets within +-1 frame on held-out 2-s segments shifted by -10..+10, the in-sync
  score of whole held-out clips, and the model's time for 10 s of video (frame features + windows + audio);
- the shipped face-mesh expert on the 8 shared real clips (../shared/data/real), each with its audio moved by
  0, +-5, +-10 frames (real_score.py's cases): the face mesh is run once per clip and shared by every
  variant (it does not depend on the model), then each variant scores every case as `synclip score` does;
- generator (G, its expert inside): held-out synthetic pairs dubbed end to end (dub_video), SSIM / PSNR of a
  clip redone from its own audio against the truth, the carried expert's confidence (LSE-C) on the dub, and
  the generator's time for a 32-frame batch.
A quantised variant that loses more than 1 point of offset accuracy or 0.01 SSIM is flagged, not shipped as
the default. Timings are the best of 10 runs on one thread of a shared, loaded CPU (noisy: compare the
larger ones).
Writes benchmarks/results/export.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import REAL, RESULTS, save_result  # noqa: E402 (puts the project on sys.path)

from synclip import audio as A  # noqa: E402
from synclip import media  # noqa: E402
from synclip.export import export_model  # noqa: E402
from synclip.infer import LipSyncInference, candidate_tracks, score_track, shift_audio  # noqa: E402

VARIANTS = [("checkpoint", None, None), ("onnx", "onnx", None), ("onnx-int8", "onnx", "int8"),
            ("onnx-fp16", "onnx", "fp16"), ("torchscript", "torchscript", None),
            ("torchscript-int8", "torchscript", "int8"), ("torchscript-fp16", "torchscript", "fp16")]
SHIFTS = (0, 5, -5, 10, -10)
MAX_ACC_DROP, MAX_SSIM_DROP = 0.01, 0.01  # the limits the issue sets for a quantised default


def variant_files(checkpoint: Path, out_dir: Path, tag: str) -> dict[str, Path]:
    files = {"checkpoint": checkpoint}
    for name, fmt, q in VARIANTS[1:]:
        files[name] = export_model(checkpoint, out_dir / f"{tag}-{name}{'.onnx' if fmt == 'onnx' else '.pt'}", fmt, q)
    return files


def best_seconds(fn, repeats: int = 10) -> float:
    fn()  # warm-up (kernel caches, onnxruntime's first-run allocations)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@torch.no_grad()
def pixel_expert(files: dict[str, Path], work: Path) -> dict:
    from sync_quality import held_out_features

    from synclip.datasets import load_clips
    from synclip.sync import audio_embeddings, face_embeddings

    rows, clips = {}, None
    for name, path in files.items():
        model = LipSyncInference(path, device="cpu")
        row = held_out_features(model, work)  # prepares W/held (once) into W/held/processed
        clips = clips or list(load_clips(work / "held" / "processed", 96).values())
        scores = []
        for clip in clips:
            face = face_embeddings(model.expert, clip.crops, model.device)
            scores.append(score_track(model.expert, face, clip.present.numpy(), clip.feats, 15, model.device)[1])
        row["score_in_sync"] = float(np.mean(scores))
        crops, feats = torch.rand(1, 250, 3, 96, 96), clips[0].feats
        row["model_s_per_10s"] = best_seconds(lambda: (model.expert.window_embed(model.expert.frame_features(crops)),
                                                       audio_embeddings(model.expert, feats, 0, 246, model.device)))
        rows[name] = row
        print(f"pixel expert {name:18s} offsets+-1 {row['segment_offset_acc_pm1']:.4f} binary {row['binary_acc']:.4f} "
              f"score {row['score_in_sync']:.3f} model {row['model_s_per_10s']:.3f} s/10 s")
    return rows


def real_cases(n_clips: int) -> list[dict]:
    """The shared real clips: subject squares, lip features (face mesh, once) and the audio of each shift."""
    from synclip.checkpoint import expert_from, load_checkpoint
    from synclip.face import FaceDetector, detection_size
    from synclip.infer import decode_scale
    from synclip.lips import mesh_tracks
    from synclip.mesh import MESH_INPUT_PX, FaceMesh, lip_features
    from synclip.config import DataConfig

    template = expert_from(load_checkpoint("pretrained"), None, torch.device("cpu")).template.numpy()
    cases = []
    detector = FaceDetector("mediapipe", 0.5)
    for clip in sorted((REAL / "video").iterdir())[:n_clips]:
        info = media.probe_video(clip)
        tracks, squares = candidate_tracks(clip, info, detector, DataConfig())
        if not tracks:
            continue
        n = len(squares[0])
        scale = decode_scale(info, squares[:1], MESH_INPUT_PX, oversample=1.0)
        size = detection_size(info.width, info.height)[1] if scale < 1 else None
        track = mesh_tracks(clip, squares[:1], FaceMesh, None, size, scale)[0]
        lips = lip_features(track.landmarks, template)
        wav = A.fit_to_frames(media.read_audio(clip), n)
        cases.append({"clip": clip.stem, "lips": torch.from_numpy(np.nan_to_num(lips, nan=0.0))[None],
                      "present": ~np.isnan(lips[:, 0]),
                      "feats": {k: A.features_for(shift_audio(wav, -k), "mel") for k in SHIFTS}})
    detector.close()
    return cases


@torch.no_grad()
def real_expert(files: dict[str, Path], cases: list[dict]) -> dict:
    rows = {}
    for name, path in files.items():
        model = LipSyncInference(path, device="cpu")
        found, scores = [], {"in_sync": [], "shifted": []}
        for c in cases:
            face = model.expert.face_embed({"lips": c["lips"]})[0]
            for k in SHIFTS:
                res, score, _, _ = score_track(model.expert, face, c["present"], c["feats"][k], 15, model.device)
                found.append((c["clip"], k, res.offset_frames))
                scores["shifted" if k else "in_sync"].append(score)
        at0 = {clip: f for clip, k, f in found if k == 0}
        c0 = cases[0]
        row = {"cases": len(found),
               "offset_acc_pm1": float(np.mean([abs(f - k) <= 1 for _, k, f in found])),
               "shift_tracked_pm1": float(np.mean([abs(f - at0[clip] - k) <= 1 for clip, k, f in found])),
               "score_in_sync": float(np.mean(scores["in_sync"])), "score_shifted": float(np.mean(scores["shifted"])),
               "found": [f for _, _, f in found],
               "model_s_per_10s": best_seconds(lambda: (
                   model.expert.face_embed({"lips": c0["lips"][:, :250]}),
                   model.expert.audio_embed(A.window_feats(c0["feats"][0], 0, 246)[None])))}
        rows[name] = row
        print(f"mesh expert  {name:18s} offsets+-1 {row['offset_acc_pm1']:.4f} tracked {row['shift_tracked_pm1']:.4f} "
              f"score {row['score_in_sync']:.3f}/{row['score_shifted']:.3f} model {row['model_s_per_10s']:.4f} s/10 s")
    return rows


@torch.no_grad()
def generator(files: dict[str, Path], work: Path, pairs: int) -> dict:
    from gen_quality import HELD, crops_of

    from synclip import synth
    from synclip.metrics import psnr, ssim

    held = work / "export_gen_held"
    for i in range(pairs):
        look = HELD + i
        synth.make_clip(held, f"a{i}", seconds=3.0, appearance_index=look, sentence_seed=look)
        synth.make_clip(held, f"b{i}", seconds=3.0, appearance_index=look, sentence_seed=look + 500)
    rows = {}
    for name, path in files.items():
        model = LipSyncInference(path, device="cpu")
        conf, recon = [], []
        for i in range(pairs):
            va, vb = held / "videos" / f"a{i}.mp4", held / "videos" / f"b{i}.mp4"
            audio_b = held / "audios" / f"b{i}.wav"
            dubbed = held / f"{name}_dub{i}.mp4"
            model.sync_video_audio(va, audio_b, dubbed)
            conf.append(model.compute_sync_score(dubbed)[1]["confidence"])
            redo = held / f"{name}_redo{i}.mp4"
            model.sync_video_audio(vb, audio_b, redo)
            gt, squares = crops_of(model, vb)
            gen, _ = crops_of(model, redo, squares)
            n = min(len(gt), len(gen))
            tg, tt = (torch.from_numpy(x[:n]).permute(0, 3, 1, 2).float() / 255 for x in (gen, gt))
            recon.append((float(ssim(tg, tt).mean()), float(psnr(tg, tt).mean())))
        faces, aud = torch.rand(32, 6, 96, 96), torch.rand(32, A.MEL_WINDOW, A.N_MELS)
        rows[name] = {"pairs": pairs, "confidence_dubbed": float(np.mean(conf)),
                      "ssim": float(np.mean([r[0] for r in recon])), "psnr": float(np.mean([r[1] for r in recon])),
                      "model_s_per_32_frames": best_seconds(lambda: model.generator(faces, aud))}
        r = rows[name]
        print(f"generator    {name:18s} SSIM {r['ssim']:.4f} PSNR {r['psnr']:.2f} "
              f"confidence {r['confidence_dubbed']:.3f} "
              f"model {r['model_s_per_32_frames']:.3f} s/32 frames")
    return rows


@torch.no_grad()
def paired_speed(groups: dict[str, dict[str, Path]], rounds: int = 7) -> dict:
    """Every variant's model time measured in turns (round after round over all of them), so a machine whose
    load changes by the minute slows them alike: seconds per 10 s of video (experts) or per 32 frames."""
    calls = {}
    for group, files in groups.items():
        for name, path in files.items():
            m = LipSyncInference(path, device="cpu")
            e, g = m.expert, m.generator
            aud = torch.rand(1, 246, A.MEL_WINDOW, e.dims.audio_bins)
            if group == "generator":
                x, a = torch.rand(32, 6, 96, 96), torch.rand(32, A.MEL_WINDOW, A.N_MELS)
                calls[(group, name)] = lambda g=g, x=x, a=a: g(x, a)
            elif group == "real_expert":
                lips = torch.randn(1, 250, e.dims.lip_features)
                calls[(group, name)] = lambda e=e, x=lips, aud=aud: (e.face_embed({"lips": x}), e.audio_embed(aud))
            else:
                crops = torch.rand(1, 250, 3, 96, 96)
                calls[(group, name)] = lambda e=e, c=crops, aud=aud: (e.face_embed(c), e.audio_embed(aud))
    best = {key: float("inf") for key in calls}
    for fn in calls.values():
        fn()  # warm-up
    for _ in range(rounds):
        for key, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - t0)
    out: dict = {}
    for (group, name), sec in best.items():
        out.setdefault(group, {})[name] = round(sec, 4)
    return out


def verdicts(result: dict) -> dict:
    """Speed-up over the checkpoint and whether each variant stays within the limits."""
    out = {}
    for model, key, limit in (("pixel_expert", "segment_offset_acc_pm1", MAX_ACC_DROP),
                              ("real_expert", "offset_acc_pm1", MAX_ACC_DROP), ("generator", "ssim", MAX_SSIM_DROP)):
        rows = result.get(model)
        if not rows:
            continue
        speed = "model_s_per_32_frames" if model == "generator" else "model_s_per_10s"
        paired = result.get("paired_speed", {}).get(model)
        secs = paired or {name: r[speed] for name, r in rows.items()}
        base = rows["checkpoint"]
        out[model] = {name: {"speedup": round(secs["checkpoint"] / secs[name], 2),
                             f"{key}_change": round(r[key] - base[key], 4),
                             "within_limits": r[key] >= base[key] - limit} for name, r in rows.items()}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--expert", help="pixel sync expert trained on synthetic faces")
    p.add_argument("--generator", help="generator checkpoint (its expert inside)")
    p.add_argument("--work", default="/tmp/synclip_temporal", help="holds held/ (sync_quality's held-out clips)")
    p.add_argument("--real-clips", type=int, default=8)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS / "export.json"))
    p.add_argument("--speed-only", action="store_true", help="export again and time every variant in turns")
    args = p.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    old = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    result: dict = {**old, "threads": 1, "variants": [v[0] for v in VARIANTS]}  # sections not run are kept
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.speed_only:
            groups = {"real_expert": variant_files(Path("pretrained"), tmp, "mesh")}
            if args.expert:
                groups["pixel_expert"] = variant_files(Path(args.expert), tmp, "pixel")
            if args.generator:
                groups["generator"] = variant_files(Path(args.generator), tmp, "gen")
            result["paired_speed"] = paired_speed(groups)
            print(result["paired_speed"])
        elif args.expert:
            result["pixel_expert"] = pixel_expert(variant_files(Path(args.expert), tmp, "pixel"), work)
        if args.real_clips and (REAL / "video").is_dir() and not args.speed_only:
            cases = real_cases(args.real_clips)
            result["real_expert"] = real_expert(variant_files(Path("pretrained"), tmp, "mesh"), cases)
        if args.generator and not args.speed_only:
            result["generator"] = generator(variant_files(Path(args.generator), tmp, "gen"), work, args.pairs)
        result["sizes_bytes"] = {**result.get("sizes_bytes", {}), **{f.name: f.stat().st_size for f in tmp.iterdir()}}
    result["verdicts"] = verdicts(result)
    for model, rows in result["verdicts"].items():
        for name, v in rows.items():
            print(f"{model:13s} {name:18s} x{v['speedup']:.2f} {v}")
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

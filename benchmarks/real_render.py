"""The landmark-conditioned renderer on the GRID presenter (issue 10, stage b): train, measure, show.

    nice -n 10 python benchmarks/real_render.py --extract     # once: 128-px crops + mesh (24 min here, 2 workers)
    nice -n 10 python benchmarks/real_render.py --minutes 62  # train on train sentences, measure on test ones
        [--lips A2L.pth]    # also draw shapes AudioToLips predicts (benchmarks/audio_to_lips.py --save A2L.pth)
    nice -n 10 python benchmarks/real_render.py --init R.pth --detail-weight 1 --lr 3e-4 --minutes 22 \
        --save R_sharp.pth  # fine-tune a saved renderer with render.detail_loss added (sharper mouths)

The figures in results/real_render.json are those of the fine-tuned renderer_grid_128_sharp.pth (made with the
last command from renderer_grid_128.pth, the first one's output); --eval-only needs --save pointing at it.

Split: grid_s1 by sentence, exactly as benchmarks/real_expert.py (60% train, 20% val, 20% test); only train
and test sentences are extracted. Each test frame is redrawn from a reference frame of the same clip (at least
REF_MIN_GAP frames away) and a shape: (i) its own real landmarks (the design's upper bound), (ii) the mouth
AudioToLips predicts from the clip's speech, put on the frame's pose. The baseline pastes the reference's
lower half unchanged (what "no mouth motion" scores). Figures: lower-half SSIM and PSNR at 128 px, and on the
mouth box (around the real lips) sharpness (variance of the Laplacian, over the real frames') and colour
difference (Delta E of the mean colour); also on the pause frames (real mouth closed).
Writes benchmarks/results/real_render.json and docs/contact_sheet_grid_render.png.

``--shape-weight W`` adds ``render.shape_loss``: a lip reader (``models.lip_reader``; trained first on the
jittered training frames and kept at ``--reader`` when that file is missing) reads the mouth points of every
drawn crop, and each step also draws half a batch in another frame's mouth (``Frames.swap_sampler``), judged
by the reader alone. Whether a renderer follows the map is measured by benchmarks/render_follow.py.

``--source lrc_ar``: the same on the Arabic news presenters (many faces, split by blocks of clip numbers as
the expert's), a general renderer to start a new presenter from (``real_presenter.py --general``); it writes
real_render_lrc_ar.json, docs/contact_sheet_lrc_ar_render.jpg and renderer_lrc_ar_128.pth.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from common import RESULTS, ROOT, save_result

from synclip.mesh import mouth_opening  # noqa: E402
from synclip.metrics import colour_difference, psnr, sharpness_ratio, ssim  # noqa: E402
from synclip.render import mouth_boxes  # noqa: E402
from synclip.render_data import Frames  # noqa: E402

CORPUS_HOME = ROOT.parent / "shared" / "data" / "corpus"
CORPUS = CORPUS_HOME / "grid_s1"
# Caches and trained models live outside the project: ~/.cache/synclip, or $SYNCLIP_CACHE when set.
CACHE_HOME = Path(os.environ.get("SYNCLIP_CACHE", Path.home() / ".cache" / "synclip"))
CACHE = CACHE_HOME / "render" / "grid_s1_128.npz"
EXPERT_CACHE = CACHE_HOME / "corpus" / "grid_s1.npz"  # the expert's corpus cache: audio for AudioToLips
RENDERER = CACHE_HOME / "models" / "renderer_grid_128.pth"
CROP_PX = 128
REF_MIN_GAP = 10  # frames between a test frame and its reference (so the reference's mouth is another one)
EVAL_STRIDE = 3  # every 3rd test frame is measured
CURVE_CLIPS, CURVE_FRAMES = 48, 4  # the curve's quick test set: 4 frames of each of 48 test clips
INTACT_PSNR_DB = 18.0  # a test frame's lower half this far from its clip's median: a broken source frame
CLOSED_OPENING = 0.03  # inner-lip gap over mouth width below this: a closed mouth (a pause)


def source_split(source: str) -> dict[str, list[str]]:
    """A corpus source's clip names by part, exactly as the expert splits them (real_expert.split_names)."""
    from real_expert import split_names

    return split_names(source, [p.stem for p in (CORPUS_HOME / source).glob("*.mp4")])


def grid_split() -> dict[str, list[str]]:
    return source_split("grid_s1")


def run_extract(args) -> None:
    from synclip.render_data import extract

    parts = source_split(args.source)
    names = sorted(parts["train"] + parts["test"])
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 20 == 0 or done == total:
            print(f"extract {done}/{total} clips {time.perf_counter() - t0:.0f} s", flush=True)

    index = extract([CORPUS_HOME / args.source / f"{n}.mp4" for n in names], Path(args.cache), CROP_PX, workers=2,
                    progress=progress)
    print(f"{len(index['names'])} clips, {index['num_frames']} frames, {len(index['rejects'])} left out, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)


def eval_frames(test: Frames, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(test frame indices, their reference indices): every EVAL_STRIDE-th frame with a face."""
    rng = np.random.default_rng(seed)
    idx = np.array([i for i in range(len(test.crops)) if test.present[i] and (i - test.starts[test.clip_of[i]])
                    % EVAL_STRIDE == 0])
    return idx, np.array([test.reference(rng, int(i)) for i in idx])


def figures(generated: np.ndarray, truth: np.ndarray, landmarks: np.ndarray, box: tuple[int, int]) -> dict:
    from synclip.presenter_train import lower_halves

    g, t, pasted = lower_halves(generated, truth)
    gm, tm = mouth_boxes(generated, landmarks, box), mouth_boxes(truth, landmarks, box)
    gb, tb = (torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255 for x in (gm, tm))
    return {"frames": len(generated), "ssim_lower": round(float(ssim(g, t).mean()), 4),
            "ssim_mouth": round(float(ssim(gb, tb).mean()), 4),
            "psnr_lower_db": round(float(psnr(g, t).mean()), 2),
            "ssim_lower_pasted": round(float(ssim(pasted, t).mean()), 4),
            "psnr_lower_pasted_db": round(float(psnr(pasted, t).mean()), 2),
            "sharpness_ratio_mouth": round(sharpness_ratio(gm, tm), 3),
            "colour_difference_mouth": round(colour_difference(gm, tm), 2)}


def box_size(landmarks: np.ndarray) -> tuple[int, int]:
    """The mouth box: 1.5 mouth widths wide, 1.1 tall (median over frames), in crop pixels, even sides."""
    width = np.nanmedian(np.linalg.norm(landmarks[:, 61, :2] - landmarks[:, 291, :2], axis=1)) * CROP_PX
    return 2 * round(0.55 * width), 2 * round(0.75 * width)


def load_audio_to_lips(path: Path) -> tuple:
    """An AudioToLips saved by ``audio_to_lips.py --save`` -> (model in eval mode, the template its features use)."""
    from synclip.lips_audio import AudioToLips

    data = torch.load(path, map_location="cpu", weights_only=True)
    model = AudioToLips()
    model.load_state_dict(data["state_dict"], strict=True)
    return model.eval(), data["template"].numpy()


def predicted_mouth(a2l, template: np.ndarray, landmarks: np.ndarray, feats: torch.Tensor) -> np.ndarray:
    """A clip's landmarks (T, 468, 3) with the mouth AudioToLips predicts from ``feats`` on each frame's pose."""
    from synclip.lips_audio import centred, predict
    from synclip.render import mouth_from_features

    present = torch.from_numpy(~np.isnan(landmarks[:, 0, 0]))
    lips = centred(predict(a2l, feats, len(landmarks)), present).numpy()
    return mouth_from_features(landmarks, lips, template)


def predicted_landmarks(path: Path, test: Frames, source: str = "grid_s1") -> np.ndarray:
    """Every test frame's landmarks with the mouth AudioToLips predicts from its clip's own speech."""
    from synclip import audio as A
    from synclip.corpus import load_cache

    model, template = load_audio_to_lips(path)
    wavs = {c.name: c.wav for c in load_cache(EXPERT_CACHE.with_name(f"{source}.npz")) if c.name in set(test.names)}
    out = test.landmarks.copy()
    for k, name in enumerate(test.names):
        a, b = test.starts[k], test.starts[k + 1]
        out[a:b] = predicted_mouth(model, template, test.landmarks[a:b], A.normalize_mel(A.log_mel(wavs[name])))
    return out


def contact_sheet(path: Path, rows: list[tuple[str, np.ndarray]]) -> None:
    """Rows of crops (label, (K, S, S, 3)) -> one PNG, a label strip left of each row."""
    label_w = 110
    lines = []
    for label, imgs in rows:
        strip = np.full((imgs.shape[1], label_w, 3), 255, np.uint8)
        for k, word in enumerate(label.split("\n")):
            cv2.putText(strip, word, (4, 20 + 18 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        lines.append(np.concatenate([strip] + list(imgs), axis=1))
    sheet = np.concatenate(lines, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    from synclip.store import atomic_path

    with atomic_path(path) as tmp:
        jpeg = path.suffix.lower() in (".jpg", ".jpeg")  # JPEG for the big sheets: a tenth of the PNG's size
        ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 90] if jpeg else [])
        tmp.write_bytes(buf.tobytes())
    print(f"wrote {path}")


def sheet_frames(test: Frames, idx: np.ndarray, intact: np.ndarray) -> np.ndarray:
    """Positions in idx for the sheet, each from another clip: the two most closed mouths (pauses), then
    mouths open at the 30th to 100th percentile of the test frames' opening; ``intact`` frames only."""
    opening = mouth_opening(test.landmarks[idx])
    clips = test.clip_of[idx]
    chosen: list[int] = []

    def take(order: np.ndarray, n: int) -> None:
        for k in order:
            if n == 0:
                return
            if intact[k] and clips[k] not in clips[chosen]:
                chosen.append(int(k))
                n -= 1

    take(np.argsort(opening), 2)
    for q in (0.3, 0.5, 0.7, 0.85, 0.95, 1.0):
        take(np.argsort(np.abs(opening - np.quantile(opening, q))), 1)
    return np.array(chosen)


def run(args) -> int:
    from synclip.models.renderer import Renderer, RendererDims
    from synclip.render import FitSettings, draw, fit, load_renderer, save_renderer, with_input_mask
    from synclip.render_data import load_faces

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    parts = source_split(args.source)
    t0 = time.perf_counter()
    faces = load_faces(Path(args.cache))
    train = Frames([faces[n] for n in parts["train"] if n in faces][:args.max_train_clips], REF_MIN_GAP)
    test = Frames([faces[n] for n in parts["test"] if n in faces][:args.max_test_clips], REF_MIN_GAP)
    del faces
    print(f"train {len(train.names)} clips {int(train.present.sum())} frames, test {len(test.names)} clips, "
          f"loaded in {time.perf_counter() - t0:.0f} s", flush=True)
    idx, refs = eval_frames(test)
    rng = np.random.default_rng(2)
    quick_clips = rng.choice(len(test.names), min(CURVE_CLIPS, len(test.names)), replace=False)
    quick = np.array([k for k in range(len(idx)) if test.clip_of[idx[k]] in quick_clips])
    quick = quick[np.linspace(0, len(quick) - 1, len(quick_clips) * CURVE_FRAMES).round().astype(int)]
    box = box_size(test.landmarks[idx])

    def evaluate(model) -> dict:
        q, r = idx[quick], refs[quick]
        out = draw(model, test.crops[q], test.crops[r], test.landmarks[q])
        f = figures(out, test.crops[q], test.landmarks[q], box)
        return {"test_ssim": f["ssim_lower"], "test_psnr": f["psnr_lower_db"], "test_sharp": f["sharpness_ratio_mouth"],
                "test_ssim_pasted": f["ssim_lower_pasted"]}

    if args.eval_only:  # measure a saved renderer again; its training record comes from the last results file
        model = load_renderer(Path(args.save))
        previous = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
        training, curve = previous.get("training", {}), previous.get("curve", [])
    else:
        if args.init:  # fine-tuning: the curve starts with the saved renderer's own figures
            model = load_renderer(Path(args.init))
            if args.input_mask and args.input_mask != model.dims.input_mask:
                model = with_input_mask(model, args.input_mask)
            start = [{"step": 0, **evaluate(model)}]
            print(f"init {args.init}: {start[0]}", flush=True)
        else:
            model, start = Renderer(RendererDims(input_size=CROP_PX, base_channels=args.base,
                                                 input_mask=args.input_mask or "lower_half")), []
        settings = FitSettings(minutes=args.minutes, max_steps=args.steps, batch=args.batch, lr=args.lr,
                               eval_every=args.eval_every, detail_weight=args.detail_weight,
                               shape_weight=args.shape_weight)
        reader, reader_record = (lip_reader(args, train, test, idx) if args.shape_weight else (None, None))
        t0 = time.perf_counter()
        curve = start + fit(model, train.sampler(), settings, evaluate, report=lambda s: print(s, flush=True),
                            reader=reader, swap=train.swap_sampler() if args.shape_weight else None)
        training = {"seconds": round(time.perf_counter() - t0), "steps": curve[-1]["step"] if curve else 0,
                    "minutes_budget": args.minutes, "batch": args.batch, "lr": args.lr, "threads": args.threads,
                    "init": args.init, "input_mask": model.dims.input_mask, "detail_weight": args.detail_weight,
                    "loss": "L1 + gradient L1 + 0.2 (1 - SSIM), lips weighted"
                            + (f" + {args.detail_weight} render.detail_loss" if args.detail_weight else "")
                            + (f" + {args.shape_weight} render.shape_loss (own and swapped mouths)"
                               if args.shape_weight else ""),
                    "shape_weight": args.shape_weight, "lip_reader": reader_record}
        if args.init:  # what the fine-tuned renderer had behind it
            training["init_training"] = json.loads(Path(args.init_record).read_text()).get("training", {}) \
                if args.init_record and Path(args.init_record).is_file() else None
        save_renderer(Path(args.save), model, training["steps"])
    table, pick, closed = measure(model, test, idx, refs, box, args)
    split = {"grid_s1": "by sentence (60/20/20)", "lrc_ar": "by blocks of clip numbers (16/2/2 of 20)"}[args.source]
    result = {"data": {"source": args.source, "split": f"{split}, as real_expert.split_names",
                       "train_clips": len(train.names), "train_frames": int(train.present.sum()),
                       "test_clips": len(test.names), "test_frames_measured": len(idx),
                       "pause_frames_measured": int(closed.sum()), "crop_px": CROP_PX,
                       "mouth_box_px": list(box), "reference_min_gap_frames": REF_MIN_GAP},
              "model": {**model.dims.to_dict(), "parameters": sum(p.numel() for p in model.parameters())},
              "training": training, "figures": table, "curve": curve,
              "sheet_columns": [f"{test.names[test.clip_of[idx[k]]]}:{idx[k] - test.starts[test.clip_of[idx[k]]]}"
                                for k in pick]}
    save_result(args.out, result)
    return 0


def lip_reader(args, train: Frames, test: Frames, idx: np.ndarray) -> tuple:
    """The lip reader the shape term reads drawn mouths with: loaded from --reader if that file exists, else
    trained on the training frames (jittered) for --reader-steps and saved there. -> (reader, its record)."""
    from synclip.models.lip_reader import LipReader
    from synclip.render import fit_reader, reader_error

    path, reader = Path(args.reader), LipReader(CROP_PX)
    held = idx[:: max(1, len(idx) // 1000)]
    if path.is_file():
        data = torch.load(path, map_location="cpu", weights_only=True)
        reader.load_state_dict(data["state_dict"])
        record = json.loads(data.get("record") or "{}")
    else:
        t0 = time.perf_counter()
        curve = fit_reader(reader, train.sampler(augment=True), args.reader_steps,
                           test=(test.crops[held], test.landmarks[held]), report=lambda s: print(s, flush=True))
        record = {"file": path.name, "steps": args.reader_steps, "seconds": round(time.perf_counter() - t0),
                  "trained_on": "the training frames, jittered (render_data.jitter)", "curve": curve}
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": reader.state_dict(), "record": json.dumps(record)}, path)
    record["test_error_px"] = round(reader_error(reader, test.crops[held], test.landmarks[held]), 3)
    print(f"lip reader {path}: {record['test_error_px']} px on {len(held)} test frames", flush=True)
    return reader.eval(), record


def measure(model, test: Frames, idx: np.ndarray, refs: np.ndarray, box: tuple[int, int], args
            ) -> tuple[dict, np.ndarray, np.ndarray]:
    """The figures of each way of drawing the test frames, and the contact sheet. Returns the table, the
    sheet's frames (positions in idx) and which measured frames are pauses."""
    from synclip.render import draw

    truth = test.crops[idx]
    closed = mouth_opening(test.landmarks[idx]) < CLOSED_OPENING
    baseline = truth.copy()
    baseline[:, CROP_PX // 2:] = test.crops[refs][:, CROP_PX // 2:]
    rows = {"no motion (reference's lower half pasted)": baseline,
            "renderer, real landmarks": draw(model, truth, test.crops[refs], test.landmarks[idx])}
    if args.lips:
        pred = predicted_landmarks(Path(args.lips), test, args.source)
        rows["renderer, AudioToLips shapes from the clip's speech"] = draw(model, truth, test.crops[refs], pred[idx])
    table = {}
    for name, out in rows.items():
        table[name] = {"all": figures(out, truth, test.landmarks[idx], box),
                       "pauses": figures(out[closed], truth[closed], test.landmarks[idx][closed], box)}
        a, p = table[name]["all"], table[name]["pauses"]
        print(f"{name:52s} SSIM {a['ssim_lower']:.4f} (pasted {a['ssim_lower_pasted']:.4f}, mouth "
              f"{a['ssim_mouth']:.4f}) PSNR {a['psnr_lower_db']:.2f} (pasted {a['psnr_lower_pasted_db']:.2f}) "
              f"sharp {a['sharpness_ratio_mouth']:.3f} dE {a['colour_difference_mouth']:.2f} | pauses SSIM "
              f"{p['ssim_lower']:.4f} sharp {p['sharpness_ratio_mouth']:.3f}", flush=True)
    # A few source frames are broken by the video's decoder (blocks of another picture over the face, often
    # for several frames running): their lower half is far from the clip's median one. Kept out of the sheet.
    half = CROP_PX // 2
    medians = np.stack([np.median(test.crops[a:b, half:], axis=0) for a, b in zip(test.starts, test.starts[1:])])
    intact = psnr(*(torch.from_numpy(np.asarray(x, np.float32)).permute(0, 3, 1, 2) / 255
                    for x in (medians[test.clip_of[idx]], truth[:, half:]))).numpy() >= INTACT_PSNR_DB
    table["broken_source_frames"] = int((~intact).sum())
    pick = sheet_frames(test, idx, intact)
    sheet = [("truth", truth[pick])]
    for name, label in (("renderer, real landmarks", "renderer:\nreal\nlandmarks"),
                        ("renderer, AudioToLips shapes from the clip's speech", "renderer:\nshapes from\nspeech")):
        if name in rows:
            sheet.append((label, rows[name][pick]))
            diff = np.abs(rows[name][pick].astype(np.int16) - truth[pick])
            sheet.append(("|truth -\nabove| x3", np.clip(diff * 3, 0, 255).astype(np.uint8)))
    sheet.append(("no motion\n(reference)", baseline[pick]))
    contact_sheet(Path(args.sheet), sheet)
    return table, pick, closed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--extract", action="store_true", help="build the 128-px cache of train and test clips")
    p.add_argument("--source", default="grid_s1", choices=["grid_s1", "lrc_ar"],
                   help="the presenter (grid_s1) or many news presenters (lrc_ar: a general renderer)")
    p.add_argument("--cache", default=None, help="default: ~/.cache/synclip/render/SOURCE_128.npz")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--steps", type=int, default=10**9)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--base", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--max-train-clips", type=int, default=None)
    p.add_argument("--max-test-clips", type=int, default=None, help="fewer test clips (a quick look)")
    p.add_argument("--eval-only", action="store_true", help="measure the renderer saved at --save again")
    p.add_argument("--lips", default=None, help="an AudioToLips saved by audio_to_lips.py --save")
    p.add_argument("--save", default=None, help=f"default: {RENDERER} (grid_s1), renderer_lrc_ar_128.pth beside it")
    p.add_argument("--init", default=None, help="fine-tune this saved renderer instead of training a new one")
    p.add_argument("--init-record", default=None, help="the results JSON of the --init renderer (its training "
                   "record is kept in the new one)")
    p.add_argument("--input-mask", default=None, choices=["lower_half", "paste"],
                   help="what of the target the renderer does not see (models.renderer.RendererDims; default: "
                        "the --init renderer's, else lower_half)")
    p.add_argument("--detail-weight", type=float, default=0.0, help="weight of render.detail_loss (0: off)")
    p.add_argument("--shape-weight", type=float, default=0.0,
                   help="weight of render.shape_loss per pixel of mouth-point error (0: off); needs a lip reader")
    p.add_argument("--reader", default=str(RENDERER.with_name("lip_reader_128.pth")),
                   help="the lip reader of the shape term (trained here first when the file is missing)")
    p.add_argument("--reader-steps", type=int, default=1500)
    p.add_argument("--out", default=None, help="default: results/real_render.json (grid_s1), real_render_lrc_ar.json")
    p.add_argument("--sheet", default=None,
                   help="default: docs/contact_sheet_grid_render.png (grid_s1), contact_sheet_lrc_ar_render.jpg")
    args = p.parse_args()
    grid = args.source == "grid_s1"
    args.cache = args.cache or str(CACHE if grid else CACHE.with_name(f"{args.source}_{CROP_PX}.npz"))
    args.save = args.save or str(RENDERER if grid else RENDERER.with_name(f"renderer_{args.source}_{CROP_PX}.pth"))
    args.out = args.out or str(RESULTS / ("real_render.json" if grid else f"real_render_{args.source}.json"))
    args.sheet = args.sheet or str(ROOT / "docs" / ("contact_sheet_grid_render.png" if grid
                                                     else f"contact_sheet_{args.source}_render.jpg"))
    if args.init and Path(args.init).resolve() == Path(args.save).resolve():
        p.error("--save is the --init renderer: give the fine-tuned one another path")
    if args.extract:
        run_extract(args)
        return 0
    if not Path(args.cache).is_file():
        print(f"skipped: no renderer cache at {args.cache} (run with --extract first)")
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

"""The two-stage presenter: speech -> mouth shapes (``lips_audio.AudioToLips``) -> the presenter's own face drawn
in those shapes (``models.renderer``). One file holds both (format ``synclip-presenter-1``): `synclip dub` draws
with it, `synclip train --stage generator` fine-tunes its renderer on one presenter's footage
(``presenter_train``).

Dubbing a video: a first pass meshes the source frames the output will show, on the face square dubbing crops
by (each frame's pose and the person's rest mouth come from the footage itself); AudioToLips turns the new speech into lip features
for every output frame; each output frame's mouth points are those features on its source frame's pose
(``render.mouth_from_features``); the renderer redraws the crop's lower half from the masked crop, the first
face crop as reference, and the shape map; paste-back is the generator's (colour-matched, feathered mask).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from . import audio as A
from .config import DataConfig
from .dub import colour_match, pingpong
from .errors import CheckpointError, NoFaceError
from .face import crop, lower_face_mask, paste
from .lips_audio import AudioToLips, centred, predict
from .mesh import MESH_INPUT_PX, MOUTH_POINTS, NUM_LANDMARKS, lip_features
from .models.renderer import Renderer, RendererDims
from .render import model_inputs, mouth_from_features, rest_mouth, to_images
from .store import atomic_path

FORMAT = "synclip-presenter-1"
PRETRAINED = Path(__file__).parent / "pretrained" / "presenter.pth"
# The renderer was trained on the crop squares of `synclip prepare` / lips.lip_track: no extra pad below.
PADS = (0, 0, 0, 0)
MOTION_PERCENTILE = 90  # a clip's motion level: this percentile of its frames' distance from the median mouth
MOTION_GAIN_LIMITS = (0.5, 3.0)  # how far match_motion may scale speech's mouth shapes


@dataclass
class Presenter:
    renderer: Renderer
    lips: AudioToLips
    template: np.ndarray  # (len(STABLE), 3): the head template the lip features are measured on
    data: DataConfig = field(default_factory=DataConfig)  # how faces were found and cropped in training
    meta: dict = field(default_factory=dict)  # what it was trained on, how long, its figures
    motion_level: float = 0.0  # how far the presenter's mouth moves in their footage (motion_level); 0: unknown

    pads = PADS  # what dubbing adds to the face box unless told otherwise

    @property
    def input_size(self) -> int:
        return self.renderer.dims.input_size

    def painter(self, src, wav: np.ndarray, total: int, motion: float = 1.0) -> "PresenterPainter":
        """What ``dub.dub_video`` paints ``total`` output frames of ``src`` (a ``dub.FrameSource``) with;
        ``motion``: how far the mouth moves, as a share of the presenter's own (``speech_lips``)."""
        return PresenterPainter(self, src, wav, total, motion)

    def to(self, device: torch.device) -> "Presenter":
        self.renderer.to(device)
        self.lips.to(device)
        return self


def save_presenter(path: Path, p: Presenter, half: bool = False) -> None:
    """A plain dict (torch.load(weights_only=True) reads it), to a temp file then renamed. ``half``: weights
    stored as float16 (half the size; loaded back as float32), for the copy that ships."""
    def state(module: torch.nn.Module) -> dict:
        return {k: (v.half() if half and v.is_floating_point() else v).cpu() for k, v in module.state_dict().items()}

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "renderer": {"dims": p.renderer.dims.to_dict(), "state_dict": state(p.renderer)},
                    "lips": {"width": p.lips.head.in_channels, "state_dict": state(p.lips),
                             "template": torch.from_numpy(p.template.astype(np.float32))},
                    "data": {k: getattr(p.data, k) for k in ("face_pad", "max_gap_frames", "smooth_frames")},
                    "meta": p.meta, "motion_level": float(p.motion_level)}, tmp)


def read_presenter(path: Path) -> dict | None:
    """The stored dict when ``path`` is a presenter file, else None (another kind of model, or not one)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many kinds on other files (an exported TorchScript, bad bytes): not ours
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def load_presenter(path: Path | str, device: torch.device = torch.device("cpu"), data: dict | None = None
                   ) -> Presenter:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("presenter model not found", path=path,
                              fix="train one with `synclip train --stage generator`, or reinstall synclip")
    data = read_presenter(path) if data is None else data
    if data is None:
        raise CheckpointError("not a synclip presenter model", path=path,
                              fix="use a model written by `synclip train --stage generator`")
    def float32(state: dict) -> dict:  # the shipped copy stores float16
        return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}

    renderer = Renderer(RendererDims(**data["renderer"]["dims"]))
    renderer.load_state_dict(float32(data["renderer"]["state_dict"]), strict=True)
    lips = AudioToLips(width=int(data["lips"].get("width", 192)))
    lips.load_state_dict(float32(data["lips"]["state_dict"]), strict=True)
    p = Presenter(renderer.eval(), lips.eval(), data["lips"]["template"].numpy().astype(np.float64),
                  DataConfig(**data.get("data", {})), data.get("meta", {}), float(data.get("motion_level", 0.0)))
    return p.to(device)


def load_dub_model(path: Path | str, device: torch.device = torch.device("cpu")):
    """What dubbing draws with: a presenter file, or a one-stage generator checkpoint (also an exported one) ->
    (the model on ``device``, the data settings it crops faces by). "presenter" names the one that ships."""
    from .checkpoint import load_generator

    path = PRETRAINED if str(path) == "presenter" else Path(path)
    if not path.is_file():
        raise CheckpointError("no dubbing model here", path=path,
                              fix="fit one to your presenter: `synclip prepare` on their videos, then `synclip train "
                                  "--stage generator` (it starts from the presenter model that ships with synclip); "
                                  "or pass --checkpoint presenter to dub with that shipped model as it is (trained "
                                  "on one GRID speaker: other faces come out poorly)")
    stored = read_presenter(path)
    if stored is not None:
        p = load_presenter(path, device, stored)
        return p, p.data
    return load_generator(path, device)


@torch.no_grad()
def speech_lips(p: Presenter, wav: np.ndarray, num_frames: int, match: bool = True, motion: float = 1.0
                ) -> np.ndarray:
    """(T, LIP_FEATURES) mouth shapes for ``num_frames`` video frames of 16 kHz speech, around its median
    shape (as ``mesh.lip_features`` measures a clip against its own rest mouth), moving ``motion`` times as far
    as the presenter's own mouth does (``match_motion``; ``match=False``: as AudioToLips predicts them). A
    presenter without a measured level takes AudioToLips' own as the presenter's."""
    device = next(p.lips.parameters()).device
    mel = A.normalize_mel(A.log_mel(wav)).to(device)
    lips = centred(predict(p.lips, mel, num_frames).cpu(), torch.ones(num_frames, dtype=torch.bool)).numpy()
    if not match:
        return lips
    return match_motion(lips, (p.motion_level or motion_level(lips)) * motion)


def motion_level(lips: np.ndarray) -> float:
    """How far a clip's mouth moves: the MOTION_PERCENTILE-th percentile over its frames of the lip features'
    distance from their median (a percentile, so a clip's pauses do not dilute it as they would an RMS).
    ``lips``: (T, LIP_FEATURES), NaN rows ignored; 0 without a frame."""
    seen = lips[~np.isnan(lips[:, 0])]
    if not len(seen):
        return 0.0
    return float(np.percentile(np.linalg.norm(seen - np.median(seen, axis=0), axis=1), MOTION_PERCENTILE))


def footage_motion_level(clips: Iterable[np.ndarray], template: np.ndarray) -> float:
    """A presenter's own motion level: ``motion_level`` over the frames of their clips' landmarks (each (T, 468,
    3)), every clip measured against its own median mouth (``mesh.lip_features``)."""
    feats = [lip_features(lm, template) for lm in clips]
    return motion_level(np.concatenate(feats)) if feats else 0.0


def match_motion(lips: np.ndarray, level: float) -> np.ndarray:
    """Speech's mouth shapes (T, LIP_FEATURES) scaled to move as far as the presenter's own mouth (``level``,
    ``motion_level`` of their footage); unchanged when ``level`` is 0 (unknown).

    AudioToLips, like any regression to the mean, moves the mouth less than real speech does, and much less for
    voices unlike those it was trained on: on the GRID presenter its shapes reach 0.77 of his own footage's
    motion level for his voice and about 0.4 for other people's (benchmarks/real_presenter.py). The shapes are
    scaled about the clip's most closed mouth (the mean of its 10% of frames with the smallest lip gap), so
    pauses keep the closed lips they had and only the opening grows. The gain stays within MOTION_GAIN_LIMITS."""
    own = motion_level(lips)
    if level <= 0 or own <= 0 or len(lips) < 2:
        return lips
    gain = float(np.clip(level / own, *MOTION_GAIN_LIMITS))
    pts = lips.reshape(len(lips), -1, 3)
    gap = pts[:, MOUTH_POINTS.index(14), 1] - pts[:, MOUTH_POINTS.index(13), 1]  # frontal y grows downwards
    closed = lips[gap <= np.percentile(gap, 10)].mean(axis=0)
    return (closed + gain * (lips - closed)).astype(lips.dtype)


def source_landmarks(frames: Iterator[np.ndarray], squares: np.ndarray, path: Path) -> np.ndarray:
    """Face mesh of the first n = len(squares) source frames, each on its square: (n, 468, 3) in units of the
    square. Frames whose mesh fails (or that have no square) take the nearest meshed frame's landmarks, so every
    frame has a mouth pose; raises NoFaceError when no frame can be meshed. ``frames`` is closed at the end
    (a source's decoding thread stops there, not when the iterator is collected)."""
    from .mesh import FaceMesh

    n = len(squares)
    out = np.full((n, NUM_LANDMARKS, 3), np.nan, np.float32)
    mesh = FaceMesh()
    try:
        for i, frame in enumerate(frames):
            if i >= n:
                break
            if not np.isnan(squares[i, 0]):
                found = mesh.run(crop(frame, squares[i], MESH_INPUT_PX))
                if found is not None:
                    out[i] = found
    finally:
        mesh.close()
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    present = ~np.isnan(out[:, 0, 0])
    if not present.any():
        raise NoFaceError("the face mesh found no face to shape a mouth on", path=path,
                          fix="use footage with a clear frontal face, or give --box around it")
    return out[nearest_present(present)]


def nearest_present(present: np.ndarray) -> np.ndarray:
    """(n,) bool with at least one True -> (n,) the index of the nearest True to each position (a tie: the
    later one), in O(n log n) whatever the gaps."""
    seen = np.flatnonzero(present)
    t = np.arange(len(present))
    after = seen[np.clip(np.searchsorted(seen, t), 0, len(seen) - 1)]  # first True at or after t (or the last)
    before = seen[np.clip(np.searchsorted(seen, t, side="right") - 1, 0, len(seen) - 1)]  # last at or before
    return np.where(np.abs(after - t) <= np.abs(t - before), after, before)


class PresenterPainter:
    """Draws output frames in order, as ``dub.FramePainter`` does for the generator: each frame with a face
    gets the mouth the new speech asks for, on that frame's own pose."""

    def __init__(self, p: Presenter, src, wav: np.ndarray, total: int, motion: float = 1.0):
        self.p = p
        # Output frame t shows source frame pingpong(t, n): a short audio needs only the source's first frames.
        self.landmarks = source_landmarks(src.frames(), src.squares[:min(src.n, total)], src.path)
        self.rest = rest_mouth(self.landmarks, p.template)
        self.lips = speech_lips(p, wav, total, motion=motion)
        self.source_of = np.array([pingpong(t, src.n) for t in range(total)])
        self.frames = src.ordered(total)
        self.mask = lower_face_mask(p.input_size)
        self.reference: np.ndarray | None = None  # the first face crop, for every frame (as the generator)
        self.done = 0

    @torch.no_grad()
    def paint(self, frame_ids: torch.Tensor, batch_frames: int) -> list[tuple[np.ndarray, bool]]:
        ids = frame_ids.numpy()
        batch = [next(self.frames) for _ in ids]
        out = [f for f, _ in batch]
        face = [k for k, (_, sq) in enumerate(batch) if not np.isnan(sq[0])]
        if face:
            size = self.p.input_size
            crops = np.stack([crop(batch[k][0], batch[k][1], size) for k in face])
            if self.reference is None:
                self.reference = crops[0]
            marks = mouth_from_features(self.landmarks[self.source_of[ids[face]]], self.lips[ids[face]],
                                        self.p.template, rest=self.rest)
            faces, shapes = model_inputs(crops, np.broadcast_to(self.reference, crops.shape), marks,
                                         self.p.renderer.dims.input_mask)
            device = next(self.p.renderer.parameters()).device
            pad = batch_frames - len(face)
            if pad > 0:  # one batch shape always, as the generator's (one oneDNN kernel cache entry)
                faces = torch.cat([faces, faces[:1].expand(pad, -1, -1, -1)])
                shapes = torch.cat([shapes, shapes[:1].expand(pad, -1, -1, -1)])
            drawn = to_images(self.p.renderer(faces.to(device), shapes.to(device))[:len(face)])
            for k, g, c in zip(face, drawn, crops):
                out[k] = paste(out[k], colour_match(g, c, self.mask), batch[k][1], self.mask)
        self.done += len(batch)
        return [(f, k in face) for k, f in enumerate(out)]

"""Reading exported models (ONNX, TorchScript; written by ``synclip.export``): adapters that score and dub
through the same methods as the checkpoint's models. ``checkpoint.load_checkpoint`` calls ``read_export`` for a
file that ``is_exported`` names (.onnx, or a TorchScript .pt/.pth/.ts whose extra file "synclip.json" marks it).

A TorchScript file is read with ``torch.jit.load``, which runs code from the file: load only files you exported
yourself, as with any TorchScript file (a checkpoint, by contrast, is read with ``weights_only=True``). An ONNX
file's graphs sit side by side (names prefixed "part/") and get one onnxruntime session each.
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import torch

from .errors import CheckpointError
from .models.generator import GeneratorDims
from .models.lipsync import LipSyncDims, calibrated_curve_score
from .models.syncnet import SyncDims

log = logging.getLogger(__name__)

EXPORT_FORMAT = "synclip-export-1"
META_KEY = "synclip"  # ONNX metadata entry
SCRIPT_META = "synclip.json"  # TorchScript extra file, also what marks a .pt/.pth archive as an export
SCRIPT_SUFFIXES = (".pt", ".pth", ".ts")
EXPERT_PARTS = ("frame_features", "window_embed", "audio_embed")
GENERATOR_PART = "generate"
# ONNX frame_features take (1, FRAME_CHUNK, ...) pieces: the TorchScript-based ONNX exporter cannot pool
# (AdaptiveAvgPool2d) a map whose size it lost to a reshape over free batch and time, and frames are encoded
# one by one anyway, so pieces (the last one padded) give the same features. Scoring sends 64 at a time.
FRAME_CHUNK = 32


def face_inputs(dims: SyncDims | LipSyncDims) -> list[str]:
    """The frame_features graph's inputs, in order: crops (pixel expert), or lips and/or pixels (face mesh)."""
    if not isinstance(dims, LipSyncDims):
        return ["crops"]
    return [name for name, used in (("lips", dims.face_input in ("landmarks", "both")),
                                    ("pixels", dims.face_input in ("pixels", "both"))) if used]


def is_exported(path: str | Path) -> bool:
    """True for a .onnx file, or a TorchScript archive (.pt/.pth/.ts) that carries synclip's header."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return True
    if path.suffix.lower() not in SCRIPT_SUFFIXES or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith(f"/extra/{SCRIPT_META}") for n in z.namelist())


def read_export(path: str | Path) -> dict:
    """An exported file -> a checkpoint-like dict (less "format", which the caller sets): kind, config, dims,
    metrics (what loading looks at) and
    ``exported``, which builds the expert and the generator on a device (``checkpoint.expert_from`` calls it)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".onnx":
            import onnx

            model = onnx.load(str(path))
            raw = {p.key: p.value for p in model.metadata_props}.get(META_KEY)
            source: object = model
        else:
            files = {SCRIPT_META: ""}
            source = torch.jit.load(str(path), map_location="cpu", _extra_files=files)  # our own file: see above
            raw = files[SCRIPT_META]
        header = json.loads(raw) if raw else None
    except Exception as e:  # onnx and the TorchScript reader raise many kinds on bad bytes
        raise CheckpointError(f"not a readable exported model ({type(e).__name__}: {str(e).splitlines()[0][:120]})",
                              path=path, fix="export it again with `synclip export`") from e
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise CheckpointError("not a synclip export (no synclip header)", path=path,
                              fix="export the checkpoint with `synclip export CHECKPOINT --format ... --out FILE`")
    return {"kind": header["kind"], "config": header.get("config", {}), "dims": header["dims"],
            "epoch": header.get("epoch", 0), "step": header.get("step", 0), "metrics": header.get("metrics", {}),
            "extra": {}, "exported": ExportedFile(path, header, source)}


class ExportedFile:
    """A read export: builds its expert and generator adapters on a device."""

    def __init__(self, path: Path, header: dict, source):
        self.path, self.header, self.source = path, header, source
        self.quantize = header["export"]["quantize"]

    def _runner(self, parts: list[str], device: torch.device):
        if isinstance(self.source, torch.jit.ScriptModule):
            return ScriptRunner(self.source, device, half=self.quantize == "fp16")
        return OnnxRunner(self.source, parts, device, self.path)

    def expert(self, device: torch.device) -> "ExportedExpert":
        return ExportedExpert(self._runner(list(EXPERT_PARTS), device), self.header["expert"], device)

    def generator(self, device: torch.device) -> "ExportedGenerator":
        if self.header["kind"] != "generator":
            raise CheckpointError("this export holds a sync expert, not a generator", path=self.path,
                                  fix="export a generator checkpoint (checkpoints/generator/best_model.pth)")
        return ExportedGenerator(self._runner([GENERATOR_PART], device), self.header["dims"], device)


class ScriptRunner:
    """Runs a graph of a loaded TorchScript export: float32 in and out (halved inside for fp16)."""

    def __init__(self, module: torch.jit.ScriptModule, device: torch.device, half: bool):
        self.module = module.to(device).eval()
        self.device, self.dtype = device, torch.float16 if half else torch.float32

    @torch.no_grad()
    def run(self, part: str, *xs: torch.Tensor) -> torch.Tensor:
        return getattr(self.module, part)(*(x.to(self.device, self.dtype) for x in xs)).float()


class OnnxRunner:
    """Runs a graph of a loaded ONNX export, one onnxruntime session per graph (CUDA when the device is a GPU
    and onnxruntime has it, else CPU)."""

    def __init__(self, model, parts: list[str], device: torch.device, path: Path):
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            else:
                log.warning("onnxruntime here has no CUDA provider (install onnxruntime-gpu): %s runs on the CPU",
                            path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()  # as many threads as torch is allowed
        opts.log_severity_level = 3
        self.device, self.frame_chunk = device, FRAME_CHUNK
        try:
            self.sessions = {p: ort.InferenceSession(_graph_of(model, p), opts, providers=providers) for p in parts}
        except Exception as e:  # e.g. fp16 kernels this build of onnxruntime lacks on this device
            raise CheckpointError(f"onnxruntime cannot run this export here ({str(e).splitlines()[0][:160]})",
                                  path=path, fix="export without --quantize fp16 for CPUs, or run on a GPU") from e
        self.inputs = {p: [i.name for i in s.get_inputs()] for p, s in self.sessions.items()}

    def run(self, part: str, *xs: torch.Tensor) -> torch.Tensor:
        feeds = {n: x.detach().to("cpu", torch.float32).contiguous().numpy() for n, x in zip(self.inputs[part], xs)}
        return torch.from_numpy(self.sessions[part].run(None, feeds)[0]).to(self.device)


def _graph_of(model, part: str) -> bytes:
    """The graph ``part`` of a side-by-side model, as a model of its own (serialised)."""
    from onnx import helper

    pre = f"{part}/"
    g = model.graph
    sub = helper.make_graph([n for n in g.node if any(o.startswith(pre) for o in n.output)], part,
                            [i for i in g.input if i.name.startswith(pre)],
                            [o for o in g.output if o.name.startswith(pre)],
                            initializer=[t for t in g.initializer if t.name.startswith(pre)],
                            value_info=[v for v in g.value_info if v.name.startswith(pre)])
    one = helper.make_model(sub, opset_imports=list(model.opset_import))
    one.ir_version = model.ir_version
    one.functions.extend(model.functions)
    return one.SerializeToString()


class ExportedExpert:
    """An exported sync expert with the methods scoring calls on ``SyncExpert`` / ``LipSyncExpert``:
    frame_features, window_embed, face_embed, audio_embed, logits, pair_logits, curve_score; ``dims``
    (a SyncDims or LipSyncDims, as the checkpoint's), and the face-mesh expert's ``template``. Inference only."""

    def __init__(self, runner, head: dict, device: torch.device):
        dims = head["dims"]
        self.dims = LipSyncDims(**dims) if "face_input" in dims else SyncDims(**dims)
        self.runner, self.device = runner, device
        self.logit_scale, self.logit_bias = head["logit_scale"], head["logit_bias"]
        self.curve_calibration = torch.tensor(head.get("curve_calibration", [0.0, 0.0]))
        if "template" in head:
            self.template = torch.tensor(head["template"], dtype=torch.float32)

    @property
    def uses_landmarks(self) -> bool:
        return "lips" in face_inputs(self.dims)

    @property
    def uses_pixels(self) -> bool:
        return "pixels" in face_inputs(self.dims)

    def eval(self) -> "ExportedExpert":
        return self

    def parameters(self):
        """Where the inference code looks for the model's device."""
        yield torch.empty(0, device=self.device)

    def frame_features(self, face: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, ...) crops, or {"lips", "pixels"} -> (B, T, D); in FRAME_CHUNK pieces where the graph wants."""
        xs = [face[n] for n in face_inputs(self.dims)] if isinstance(face, dict) else [face]
        chunk = getattr(self.runner, "frame_chunk", None)
        if chunk is None:
            return self.runner.run("frame_features", *xs)
        b, t = xs[0].shape[:2]
        frames = [x.flatten(0, 1) for x in xs]  # (B*T, ...): each frame is encoded on its own
        out = []
        for i in range(0, b * t, chunk):
            piece = [f[i:i + chunk] for f in frames]
            k = len(piece[0])
            piece = [torch.cat([p, p[-1:].expand(chunk - k, *p.shape[1:])]) for p in piece]  # pad the last one
            out.append(self.runner.run("frame_features", *(p[None] for p in piece))[0, :k])
        return torch.cat(out).view(b, t, -1)

    def window_embed(self, feats: torch.Tensor) -> torch.Tensor:
        return self.runner.run("window_embed", feats)

    def face_embed(self, face: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        return self.window_embed(self.frame_features(face))

    def audio_embed(self, windows: torch.Tensor) -> torch.Tensor:
        return self.runner.run("audio_embed", windows)

    def logits(self, face: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * (face * audio).sum(-1) + self.logit_bias

    def pair_logits(self, face: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * face @ audio.T + self.logit_bias

    def curve_score(self, distances, at: int) -> float | None:
        """As ``LipSyncExpert.curve_score``: None when the expert was not calibrated (always, for pixels)."""
        if not isinstance(self.dims, LipSyncDims):
            return None
        return calibrated_curve_score(self.curve_calibration, distances, at, self.dims.curve_input)


class ExportedGenerator:
    """An exported generator, called like ``Generator``: (faces (B, 6, S, S), audio (B, M, F)) -> (B, 3, S, S)."""

    def __init__(self, runner, dims: dict, device: torch.device):
        self.dims = GeneratorDims(**dims)
        self.runner, self.device = runner, device

    def eval(self) -> "ExportedGenerator":
        return self

    def parameters(self):
        """Where the dubbing code looks for the model's device."""
        yield torch.empty(0, device=self.device)

    def __call__(self, faces: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.runner.run(GENERATOR_PART, faces, audio)

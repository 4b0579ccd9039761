"""Exported models: a checkpoint's networks as an ONNX or a TorchScript file, optionally quantised, that scores
and dubs through the same API as the checkpoint (``checkpoint.load_checkpoint`` reads them by their file).

What a file holds (``synclip export`` writes it):
- the sync expert's three graphs: ``frame_features`` (face crops or lip features -> per-frame features),
  ``window_embed`` (5-frame windows) and ``audio_embed`` (audio windows); a generator's export adds its own,
  ``generate``, and carries its expert, so one file dubs and scores as the checkpoint did;
- a JSON header (ONNX: the metadata entry "synclip"; TorchScript: the extra file "synclip.json"): the
  checkpoint's kind, config and dims, the expert's logit scale and bias, calibration and template, and how the
  file was exported. The cheap heads (the in-sync logit of two embeddings, the calibrated curve score) run in
  Python from the header; every network runs in onnxruntime or in the TorchScript interpreter.

ONNX: one .onnx file whose graphs sit side by side (names prefixed "part/"), split into one onnxruntime
session each when loaded. TorchScript: a .pt (or .pth) archive marked as ours by its extra file; it is read
with ``torch.jit.load``, which runs code from the file: load only files you exported yourself, as with any
TorchScript file (a checkpoint, by contrast, is read with ``weights_only=True``).

Quantisation: ``int8`` ONNX is onnxruntime's dynamic quantisation of MatMul and Conv weights (uint8 weights:
its CPU ConvInteger takes no int8); ``int8`` TorchScript is torch.ao's dynamic quantisation, which covers
nn.Linear only (the convolutions stay float: static conv quantisation needs calibration data and a rewrite of
the traced graph); ``fp16`` halves the weights (ONNX keeps float32 inputs and outputs) and is meant for GPUs.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from . import audio as A
from .errors import CheckpointError, InputError
from .models.generator import Generator, GeneratorDims
from .models.lipsync import LipSyncDims, LipSyncExpert
from .models.syncnet import SyncDims, SyncExpert

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
QUANTIZE = ("int8", "fp16")
EXPORT_FORMAT = "synclip-export-1"
META_KEY = "synclip"  # ONNX metadata entry
SCRIPT_META = "synclip.json"  # TorchScript extra file, also what marks a .pt/.pth archive as an export
SCRIPT_SUFFIXES = (".pt", ".pth", ".ts")
EXPERT_PARTS = ("frame_features", "window_embed", "audio_embed")
GENERATOR_PART = "generate"
ONNX_OPSET = 17
EXAMPLE_BATCH, EXAMPLE_FRAMES = 2, 9  # what the graphs are traced with; batch and time stay free
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


class Graphs(nn.Module):
    """The networks of an export as methods with tensor arguments only (what tracing and ONNX take)."""

    def __init__(self, expert: SyncExpert | LipSyncExpert, generator: Generator | None = None):
        super().__init__()
        self.expert, self.generator = expert, generator
        self.face_names = face_inputs(expert.dims)

    def frame_features(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        if isinstance(self.expert, LipSyncExpert):
            return self.expert.frame_features(dict(zip(self.face_names, (a, b))))
        return self.expert.frame_features(a)

    def window_embed(self, feats: torch.Tensor) -> torch.Tensor:
        return self.expert.window_embed(feats)

    def audio_embed(self, windows: torch.Tensor) -> torch.Tensor:
        return self.expert.audio_embed(windows)

    def generate(self, faces: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.generator(faces, audio)

    def examples(self, frame_pieces: bool = False) -> dict[str, tuple[torch.Tensor, ...]]:
        """Example inputs per graph: (B, T, ...) for the expert's, (B, ...) for the generator's;
        ``frame_pieces``: frame_features take (1, FRAME_CHUNK, ...), the ONNX graph's fixed shape."""
        d, b, t = self.expert.dims, EXAMPLE_BATCH, EXAMPLE_FRAMES
        s = d.input_size
        fb, ft = (1, FRAME_CHUNK) if frame_pieces else (b, t)
        shapes = {"crops": (fb, ft, 3, s, s), "pixels": (fb, ft, 3, s - s // 2, s),
                  "lips": (fb, ft, getattr(d, "lip_features", 0))}
        out = {"frame_features": tuple(torch.rand(shapes[n]) for n in self.face_names),
               "window_embed": (torch.randn(b, t, d.hidden_dim),),
               "audio_embed": (torch.rand(b, t, A.MEL_WINDOW, d.audio_bins),)}
        if self.generator is not None:
            g = self.generator.dims
            out[GENERATOR_PART] = (torch.rand(b, 6, g.input_size, g.input_size), torch.rand(b, A.MEL_WINDOW, g.audio_bins))
        return out

    def input_names(self, part: str) -> list[str]:
        return {"frame_features": self.face_names, "window_embed": ["feats"], "audio_embed": ["windows"],
                GENERATOR_PART: ["faces", "audio"]}[part]


class _Method(nn.Module):
    """One graph of ``Graphs`` as a forward (what torch.onnx.export takes)."""

    def __init__(self, graphs: Graphs, part: str):
        super().__init__()
        self.graphs, self.part = graphs, part

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return getattr(self.graphs, self.part)(*xs)


# --- writing -------------------------------------------------------------------------------------------------


def export_model(checkpoint: str | Path, out: str | Path, fmt: str, quantize: str | None = None) -> Path:
    """Write ``out``: the networks of ``checkpoint`` (a sync expert or a generator with its expert) as ``fmt``
    ("onnx" -> .onnx, "torchscript" -> .pt/.pth), ``quantize`` None, "int8" or "fp16". Returns ``out``."""
    from .checkpoint import expert_from, generator_from, load_checkpoint, with_feature_kind

    out = Path(out)
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if quantize not in (None, "none", *QUANTIZE):
        raise InputError(f"quantize must be int8 or fp16 (or left out), not {quantize!r}")
    quantize = None if quantize == "none" else quantize
    want = (".onnx",) if fmt == "onnx" else SCRIPT_SUFFIXES
    if out.suffix.lower() not in want:
        raise InputError(f"a {fmt} export is loaded by its extension, so {out} must end in {' or '.join(want)}")
    if not out.parent.is_dir():
        raise InputError(f"output folder {out.parent} does not exist: create it first")
    data = load_checkpoint(checkpoint)
    if "exported" in data:
        raise InputError(f"{checkpoint} is already an export: export from the .pth checkpoint it came from")
    cpu = torch.device("cpu")
    expert = expert_from(data, checkpoint, cpu)
    generator = generator_from(data, checkpoint, cpu) if data["kind"] == "generator" else None
    graphs = Graphs(expert, generator).eval()
    header = {"format": EXPORT_FORMAT, "kind": data["kind"], "config": data.get("config", {}),
              "dims": with_feature_kind(data["dims"]), "epoch": data.get("epoch", 0), "step": data.get("step", 0),
              "metrics": data.get("metrics", {}), "expert": _expert_header(expert),
              "export": {"format": fmt, "quantize": quantize or "none", "source": str(checkpoint),
                         "torch": torch.__version__}}
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with torch.no_grad():
            if fmt == "onnx":
                _write_onnx(graphs, header, quantize, tmp)
            else:
                _write_script(graphs, header, quantize, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _expert_header(expert: SyncExpert | LipSyncExpert) -> dict:
    head = {"dims": expert.dims.to_dict(), "logit_scale": float(expert.logit_scale.detach()),
            "logit_bias": float(expert.logit_bias.detach())}
    if isinstance(expert, LipSyncExpert):
        head["curve_calibration"] = expert.curve_calibration.tolist()
        head["template"] = expert.template.tolist()
    return head


def _parts(graphs: Graphs) -> list[str]:
    return list(EXPERT_PARTS) + ([GENERATOR_PART] if graphs.generator is not None else [])


def _write_script(graphs: Graphs, header: dict, quantize: str | None, path: Path) -> None:
    examples = graphs.examples()
    if quantize == "int8":
        with warnings.catch_warnings():  # torch.ao's eager quantisation warns that it will move to torchao
            warnings.simplefilter("ignore")
            graphs = torch.ao.quantization.quantize_dynamic(graphs, {nn.Linear, nn.LSTM}, dtype=torch.qint8)
    elif quantize == "fp16":
        graphs = graphs.half()
        examples = {k: tuple(x.half() for x in v) for k, v in examples.items()}
    with warnings.catch_warnings():  # tracer warnings about shape arithmetic: checked by the round-trip tests
        warnings.simplefilter("ignore")
        traced = torch.jit.trace_module(graphs, {p: examples[p] for p in _parts(graphs)}, check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={SCRIPT_META: json.dumps(header)})


def _write_onnx(graphs: Graphs, header: dict, quantize: str | None, path: Path) -> None:
    import onnx

    examples = graphs.examples(frame_pieces=True)
    with tempfile.TemporaryDirectory() as tmp:
        parts = {p: _onnx_part(graphs, p, examples[p], quantize, Path(tmp)) for p in _parts(graphs)}
    model = _side_by_side(parts)
    onnx.helper.set_model_props(model, {META_KEY: json.dumps(header)})
    onnx.save(model, str(path))


def _onnx_part(graphs: Graphs, part: str, example: tuple, quantize: str | None, tmp: Path):
    """One graph as an ONNX model, quantised if asked, its names prefixed with "part/"."""
    import onnx
    from onnx.compose import add_prefix

    names = graphs.input_names(part)
    free = {"frame_features": {}, GENERATOR_PART: {0: "batch"}}.get(part, {0: "batch", 1: "time"})
    path = tmp / f"{part}.onnx"
    with warnings.catch_warnings():  # the TorchScript-based exporter is deprecated in favour of dynamo=True,
        warnings.simplefilter("ignore")  # which took 20x longer here (tens of seconds a graph) for the same file
        torch.onnx.export(_Method(graphs, part), example, str(path), dynamo=False, input_names=names,
                          output_names=["out"], dynamic_axes={**{n: free for n in names}, "out": free},
                          opset_version=ONNX_OPSET)
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(path), str(tmp / f"{part}.int8.onnx"), weight_type=QuantType.QUInt8)
        path = tmp / f"{part}.int8.onnx"
    model = onnx.load(str(path))
    if quantize == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(model, keep_io_types=True)
        _sort_nodes(model.graph)  # the converter appends its input casts after the nodes that read them
    return add_prefix(model, f"{part}/")


def _sort_nodes(graph) -> None:
    """Put a graph's nodes in an order where every input is made before it is read (ONNX requires it)."""
    from onnx import NodeProto

    made = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = [NodeProto.FromString(n.SerializeToString()) for n in graph.node], []
    while pending:
        ready = [n for n in pending if all(i in made for i in n.input)]
        if not ready:
            raise InputError("the exported graph has a cycle or an input nothing makes; please report it")
        for n in ready:
            made.update(n.output)
        ordered += ready
        done = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in done]
    del graph.node[:]
    graph.node.extend(ordered)


def _side_by_side(parts: dict):
    """Prefixed ONNX models -> one model holding every graph (disconnected) with the union of their opsets."""
    import onnx
    from onnx import helper

    graphs = [m.graph for m in parts.values()]
    graph = helper.make_graph([n for g in graphs for n in g.node], "synclip",
                              [i for g in graphs for i in g.input], [o for g in graphs for o in g.output],
                              initializer=[t for g in graphs for t in g.initializer],
                              value_info=[v for g in graphs for v in g.value_info])
    opsets: dict[str, int] = {}
    for m in parts.values():
        for o in m.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                              producer_name="synclip")
    model.ir_version = max(m.ir_version for m in parts.values())
    for m in parts.values():
        model.functions.extend(m.functions)
    onnx.checker.check_model(model)
    return model


# --- reading -------------------------------------------------------------------------------------------------


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
    """An exported file -> a checkpoint-like dict: kind, config, dims, metrics (what loading looks at) and
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
    from .checkpoint import FORMAT

    return {"format": FORMAT, "kind": header["kind"], "config": header.get("config", {}), "dims": header["dims"],
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

    def curve_score(self, margin: float) -> float | None:
        """As ``LipSyncExpert.curve_score``: None when the expert was not calibrated (always, for pixels)."""
        a, b = (float(v) for v in self.curve_calibration)
        if a == 0.0:
            return None
        return float(torch.sigmoid(torch.tensor(a * margin + b)))


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

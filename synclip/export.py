"""Exporting models: a checkpoint's networks as an ONNX or a TorchScript file, optionally quantised, that
scores and dubs through the same API as the checkpoint (``synclip.exported`` reads them back;
``checkpoint.load_checkpoint`` does so by the file).

What a file holds (``synclip export`` writes it):
- the sync expert's three graphs: ``frame_features`` (face crops or lip features -> per-frame features),
  ``window_embed`` (5-frame windows) and ``audio_embed`` (audio windows); a generator's export adds its own,
  ``generate``, and carries its expert, so one file dubs and scores as the checkpoint did;
- a JSON header (ONNX: the metadata entry "synclip"; TorchScript: the extra file "synclip.json"): the
  checkpoint's kind, config and dims, the expert's logit scale and bias, calibration and template, and how the
  file was exported. The cheap heads (the in-sync logit of two embeddings, the calibrated curve score) run in
  Python from the header; every network runs in onnxruntime or in the TorchScript interpreter.

ONNX: one .onnx file whose graphs sit side by side (names prefixed "part/"). TorchScript: a .pt (or .pth)
archive from ``torch.jit.trace_module``, marked as ours by its extra file.

Quantisation: ``int8`` ONNX is onnxruntime's dynamic quantisation of MatMul and Conv weights (uint8 weights:
its CPU ConvInteger takes no int8); ``int8`` TorchScript is torch.ao's dynamic quantisation, which covers
nn.Linear only (the convolutions stay float: static conv quantisation needs calibration data and a rewrite of
the traced graph); ``fp16`` halves the weights (ONNX keeps float32 inputs and outputs) and is meant for GPUs.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from . import audio as A
from .checkpoint import expert_from, generator_from, load_checkpoint, with_feature_kind
from .errors import InputError
from .exported import (EXPERT_PARTS, EXPORT_FORMAT, FRAME_CHUNK, GENERATOR_PART, META_KEY, SCRIPT_META,
                       SCRIPT_SUFFIXES, face_inputs)
from .models.generator import Generator
from .models.lipsync import LipSyncExpert
from .models.syncnet import SyncExpert

FORMATS = ("onnx", "torchscript")
QUANTIZE = ("int8", "fp16")
ONNX_OPSET = 17
EXAMPLE_BATCH, EXAMPLE_FRAMES = 2, 9  # what the graphs are traced with; batch and time stay free


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
            out[GENERATOR_PART] = (torch.rand(b, 6, g.input_size, g.input_size),
                                   torch.rand(b, A.MEL_WINDOW, g.audio_bins))
        return out

    def input_names(self, part: str) -> list[str]:
        return {"frame_features": self.face_names, "window_embed": ["feats"], "audio_embed": ["windows"],
                GENERATOR_PART: ["faces", "audio"]}[part]


class FixedAdaptivePool(nn.Module):
    """``nn.AdaptiveAvgPool2d`` for one input size, as two averaging matrices: the same numbers, and what the
    ONNX exporter can write when the output size does not divide the input's (3 x 6 -> 2 x 4 at input 96)."""

    def __init__(self, size_in: tuple[int, int], size_out: tuple[int, int]):
        super().__init__()
        self.register_buffer("rows", _bins(size_in[0], size_out[0]))  # (oh, h)
        self.register_buffer("cols", _bins(size_in[1], size_out[1]).T.contiguous())  # (w, ow)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) -> (N, C, oh, ow)."""
        return self.rows @ x @ self.cols


def _bins(n: int, k: int) -> torch.Tensor:
    """(k, n): row i averages PyTorch's adaptive bin i, inputs floor(i n / k) .. ceil((i + 1) n / k) - 1."""
    m = torch.zeros(k, n)
    for i in range(k):
        start, end = i * n // k, -(-(i + 1) * n // k)
        m[i, start:end] = 1.0 / (end - start)
    return m


def fix_pooling(expert: SyncExpert | LipSyncExpert) -> None:
    """Swap the face CNN's adaptive pooling for ``FixedAdaptivePool`` at the map size the crops give."""
    if not hasattr(expert, "face_pool"):
        return
    s = expert.dims.input_size
    with torch.no_grad():
        size_in = tuple(expert.face_cnn(torch.zeros(1, 3, s - s // 2, s)).shape[-2:])
    expert.face_pool = FixedAdaptivePool(size_in, tuple(expert.face_pool.output_size))


class _Method(nn.Module):
    """One graph of ``Graphs`` as a forward (what torch.onnx.export takes)."""

    def __init__(self, graphs: Graphs, part: str):
        super().__init__()
        self.graphs, self.part = graphs, part

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return getattr(self.graphs, self.part)(*xs)


# --- writing-------------------------------------------------------------------------------------------------


def export_model(checkpoint: str | Path, out: str | Path, fmt: str, quantize: str | None = None) -> Path:
    """Write ``out``: the networks of ``checkpoint`` (a sync expert or a generator with its expert) as ``fmt``
    ("onnx" -> .onnx, "torchscript" -> .pt/.pth), ``quantize`` None, "int8" or "fp16". Returns ``out``."""
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
    fix_pooling(graphs.expert)  # a fresh copy, loaded for this export
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

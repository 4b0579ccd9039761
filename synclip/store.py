"""The processed-clip store: what `synclip prepare` writes and training reads, and atomic file writes.

A processed folder holds one ``NAME.npz`` per clip (arrays only, no pickles: ``jpeg`` holds every face crop
as JPEG bytes back to back, ``jpeg_offsets`` (T+1,) where each frame's bytes start, ``present``, ``boxes``,
``squares``, ``keypoints``, ``mel``, ``mfcc``), ``index.json`` (one entry per clip) and ``rejects.log``.
Every file is written to a temp file in the same folder and renamed over the target, so a crash or Ctrl+C
never leaves a torn file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import DataError

INDEX_NAME = "index.json"
REJECTS_NAME = "rejects.log"
FORMAT_VERSION = 1  # bump when the npz layout changes: clips of another version are redone by prepare
JPEG_QUALITY = 95
COPY_CHUNK_BYTES = 1 << 20


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temp path beside ``path`` to write to; renamed over ``path`` when the block ends without error,
    removed when it fails. The name is unique, so two writers never share a temp file; it is not made with
    mkstemp, whose 0600 mode would survive the rename and hide the file from the user's group."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_json_atomic(path: Path, data: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def read_index(root: Path) -> dict:
    """``root/index.json`` as {"format", "clips": {name: entry}}; an empty index when there is none yet."""
    path = root / INDEX_NAME
    if not path.is_file():
        return {"format": FORMAT_VERSION, "clips": {}}
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"index is unreadable: {e}", path=path, fix="run `synclip prepare --force`") from e
    if not isinstance(index, dict) or "clips" not in index:
        raise DataError("not a synclip index", path=path, fix="run `synclip prepare --force`")
    return index


def write_index(root: Path, clips: dict) -> None:
    write_json_atomic(root / INDEX_NAME, {"format": FORMAT_VERSION, "clips": clips})


def encode_crop(rgb: np.ndarray) -> bytes:
    """(S, S, 3) uint8 RGB -> JPEG bytes (empty when the encoder fails, which reads back as no face)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return buf.tobytes() if ok else b""


def decode_crop(clip: dict[str, np.ndarray], i: int, size: int | None = None) -> np.ndarray | None:
    """Frame i's face crop as (S, S, 3) uint8 RGB (resized to ``size``), or None where there was no face."""
    a, b = clip["jpeg_offsets"][i], clip["jpeg_offsets"][i + 1]
    if a == b:
        return None
    img = cv2.cvtColor(cv2.imdecode(clip["jpeg"][a:b], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if size is not None and img.shape[0] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img


def write_npz(path: Path, jpeg_spool: Path, **arrays: np.ndarray) -> None:
    """An .npz that np.load reads like np.savez's: ``arrays`` plus ``jpeg``, the spool file's bytes as uint8.

    The spool is copied into the archive in 1 MiB pieces (np.savez would need it in memory, and a memmap
    of it counts every page read towards the process's memory). Written atomically.
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED,
                                                   allowZip64=True) as zf:
        _add_arrays(zf, arrays)
        header = np.lib.format.header_data_from_array_1_0(np.zeros(0, np.uint8))
        header["shape"] = (jpeg_spool.stat().st_size,)
        with zf.open("jpeg.npy", "w", force_zip64=True) as fh, open(jpeg_spool, "rb") as src:
            np.lib.format.write_array_header_2_0(fh, header)
            shutil.copyfileobj(src, fh, COPY_CHUNK_BYTES)


def write_arrays(path: Path, **arrays: np.ndarray) -> None:
    """An uncompressed .npz of ``arrays`` (no pickles; over 4 GiB allowed), written atomically."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED,
                                                   allowZip64=True) as zf:
        _add_arrays(zf, arrays)


def _add_arrays(zf: zipfile.ZipFile, arrays: dict[str, np.ndarray]) -> None:
    for name, arr in arrays.items():
        with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False)


def load_clip(path: Path) -> dict[str, np.ndarray]:
    """A processed clip's arrays (no pickles allowed)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DataError(f"processed clip is unreadable: {e}", path=path, fix="run `synclip prepare --force`") from e

"""Build the real-footage cache the pretrained sync expert is trained from (step 1 of its recipe).

    python benchmarks/corpus_extract.py [--corpus ../shared/data/corpus] [--out ~/.cache/synclip/corpus]

For each source folder of the corpus (grid_s1, lrc_ar) and the shared real clips' ``video/`` folder
(``../shared/data/real/video``: source ``video``, test only), every clip's face is tracked, meshed and cropped
(see synclip.corpus) into ``OUT/SOURCE.npz`` + ``OUT/SOURCE.json``. About 15 minutes for the 80-minute corpus
on 2 cores (2026-12-01, Intel Xeon, another extraction beside it: grid_s1 7 min, lrc_ar 9, video 1).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import REAL
from tqdm import tqdm

from synclip.corpus import extract  # noqa: E402

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    p.add_argument("--out", default=str(Path.home() / ".cache" / "synclip" / "corpus"))
    p.add_argument("--sources", nargs="+", default=["grid_s1", "lrc_ar", "video"],
                   help="folders of the corpus; `video` is the shared real clips' folder")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="at most this many clips per source (a quick look)")
    args = p.parse_args()
    corpus, out = Path(args.corpus), Path(args.out)
    if not corpus.is_dir():
        print(f"skipped: corpus not found at {corpus}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for source in args.sources:
        t0 = time.perf_counter()
        bar = tqdm(desc=source, unit="clip")

        def on_progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        src = REAL / "video" if source == "video" and not (corpus / source).is_dir() else corpus / source
        if not src.is_dir():
            print(f"skipped {source}: no folder {src}")
            continue
        index = extract(src, out / f"{source}.npz", workers=args.workers, limit=args.limit,
                        progress=on_progress)
        bar.close()
        print(f"{source}: {len(index['names'])} clips, {index['num_frames']} frames, {len(index['rejects'])} "
              f"left out, {time.perf_counter() - t0:.0f} s")
        for r in index["rejects"][:10]:
            print(f"  left out: {r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

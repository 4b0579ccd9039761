"""Do several landmark experts, trained alike from other seeds, find real offsets better together than alone?

    python benchmarks/real_expert.py --source-lead lrc_ar=1 --steps 1200 --seed S --checkpoint ens_S.pth  # each
    python benchmarks/real_expert_ensemble.py --source-lead lrc_ar=1 --members ens_0.pth ens_1.pth ens_2.pth ...

The same cases as real_expert.py (validation and test parts of the corpus, and the 8 shared clips: each clip in
sync and shifted; PLAN), judged by each member alone and by the first k members together: their distance
curves (``lips_eval.distance_curves``), each divided by its own median so that no member's scale outweighs the
others, averaged, and the offset taken at the minimum. Validation chooses; test reports. Writes
benchmarks/results/real_expert_ensemble.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, save_result
from real_expert import CACHE, PLAN, convert, corpus_data, load_run

from synclip.lips_eval import distance_curves  # noqa: E402


def curves(model, clips: list, source: str) -> list[tuple[int, np.ndarray]]:
    """(shift, the distance curve over its median) of every case, in a fixed order."""
    shifts, reach = PLAN[source]
    out = []
    for c in clips:
        out += [(k, dist / np.median(dist)) for k, _, _, dist in distance_curves(model, c, shifts, reach,
                                                                                   torch.device("cpu"))]
    return out


def within_1(members: list[list[tuple[int, np.ndarray]]], reach: int) -> float:
    """Offsets within +-1 of the shift, the members' curves averaged."""
    hits = []
    for case in zip(*members, strict=True):  # every member judged the same cases (clip, shift) in the same order
        shift = case[0][0]
        assert all(k == shift for k, _ in case), "members judged different cases"
        mean = np.mean([dist for _, dist in case], axis=0)
        hits.append(abs(int(np.argmin(mean)) - reach - shift) <= 1)
    return round(float(np.mean(hits)), 4)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default=str(CACHE))
    p.add_argument("--members", nargs="+", required=True, help="expert checkpoints written by real_expert.py")
    p.add_argument("--sources", nargs="+", default=["grid_s1", "lrc_ar"])
    p.add_argument("--source-lead", nargs="*", default=[], metavar="SOURCE=K")
    p.add_argument("--out", default=str(RESULTS / "real_expert_ensemble.json"))
    args = p.parse_args()
    loaded = corpus_data(args.cache, args.sources, args.source_lead)
    if loaded is None:
        return 0
    data, lead = loaded
    models = [load_run(Path(m))[0].eval() for m in args.members]
    parts = [("val", s) for s in args.sources] + [("test", s) for s in data]
    table = {f"{part} {s}": {} for part, s in parts}
    per_member = []
    converted = {}
    for m in models:  # members trained on the same clips share a template; convert once per template
        key = m.template.numpy().tobytes()
        if key not in converted:
            converted[key] = convert(data, m.template.numpy(), False)
        conv = converted[key]
        per_member.append({f"{part} {s}": curves(m, conv[s][part], s) for part, s in parts if conv[s].get(part)})
    for name in table:
        reach = PLAN[name.split()[1]][1]
        if name not in per_member[0]:
            continue
        table[name] = {"alone": [within_1([pm[name]], reach) for pm in per_member],
                       "first_k_together": [within_1([pm[name] for pm in per_member[:k]], reach)
                                            for k in range(1, len(models) + 1)],
                       "cases": len(per_member[0][name])}
    print(f"{'part':16s} {'cases':>5s}  alone -> first k together")
    for name, row in table.items():
        if row:
            print(f"{name:16s} {row['cases']:5d}  {row['alone']} -> {row['first_k_together']}")
    save_result(args.out, {"members": args.members, "shared_template": len(converted) == 1, "source_lead": lead,
                           "within_1": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())

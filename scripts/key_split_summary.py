"""Forward, backward and total medians of prefix_rows_add, key_split and auto per configuration of a
sweep's results.jsonl, auto's pick and predictions, and whether auto is within 1% of the faster."""
from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    by_config: dict[str, dict[str, dict]] = defaultdict(dict)
    for line in open(path):
        rec = json.loads(line)
        by_config[rec["config_id"]][rec["variant"]] = rec
    print(f"{'configuration':44s} {'variant':16s} {'fwd ms':>8s} {'bwd ms':>8s} {'total':>8s}  notes")
    for config, recs in by_config.items():
        totals = {}
        for name in ("prefix_rows_add", "key_split", "auto"):
            rec = recs.get(name)
            if rec is None or rec["status"] != "ok":
                print(f"{config:44s} {name:16s} {rec and rec['status']}")
                continue
            t = rec["timings_ms"]
            fwd, bwd = t["forward"]["median"], t["backward"]["median"]
            totals[name] = fwd + bwd
            note = ""
            choice = rec.get("notes", {}).get("auto_choice")
            if choice:
                pred = {k: float(f"{v['total']:.4g}") for k, v in choice["predicted_ms"].items()}
                note = f"ran {choice['variant']}; predicted totals {pred}"
            print(f"{config:44s} {name:16s} {fwd:8.3f} {bwd:8.3f} {fwd + bwd:8.3f}  {note}")
        if len(totals) == 3:
            best = min(totals["prefix_rows_add"], totals["key_split"])
            ratio = totals["auto"] / best
            ks = totals["key_split"] / totals["prefix_rows_add"]
            print(f"{'':44s} key_split/prefix_rows_add {ks:.3f}; auto/faster {ratio:.3f} "
                  f"({'within' if ratio <= 1.01 else 'NOT within'} 1%)")


if __name__ == "__main__":
    main(sys.argv[1])

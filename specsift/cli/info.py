"""``specsift info STORE``: what a store holds (counts, splits, classes, grid, masks, S/N)."""

from __future__ import annotations

import json

__all__ = ["register", "run", "format_summary"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "info", help="summarise an ingested store",
        description="Print counts per split and class, the wavelength grid, the masked fraction "
                    "and S/N distributions, and the rejects by reason.")
    parser.add_argument("store", help="store folder written by specsift ingest")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def _dist(d: dict, fmt: str) -> str:
    if not d.get("n"):
        return "n/a"
    return (f"median {d['p50']:{fmt}}  (5-95%: {d['p5']:{fmt}} - {d['p95']:{fmt}}, "
            f"mean {d['mean']:{fmt}})")


def format_summary(s: dict) -> str:
    """Human-readable text of :func:`specsift.store.summary.summarize`."""
    w = s["wave"]
    lines = [f"store      {s['path']}  ({s['survey']}, sample {s['sample']})",
             f"objects    {s['n_objects']} ingested + {s['n_rejected']} rejected = "
             f"{s['n_read']} read",
             "splits     " + "  ".join(f"{k} {v}" for k, v in s["splits"].items()),
             f"classes    ({s['class_column']})"]
    for name, count in s["classes"].items():
        per = "  ".join(f"{k} {v.get(name, 0)}" for k, v in s["classes_by_split"].items())
        lines.append(f"  {name or '(none)':<12} {count:>8}   [{per}]")
    lines += [f"grid       {w['n_pixels']} px, {w['min']:.1f}-{w['max']:.1f} A, "
              f"step {w['median_step']:.4g} A",
              f"masked     {_dist(s['masked_fraction'], '.3f')}",
              f"S/N/pixel  {_dist(s['snr'], '.2f')}"]
    if s["rejects_by_reason"]:
        lines.append("rejects")
        lines += [f"  {count:>8}  {reason}" for reason, count in s["rejects_by_reason"].items()]
    for problem in s["failed_files"].values():
        lines.append(f"FAILED     {problem}")
    return "\n".join(lines)


def run(args) -> int:
    from ..store import SpectraStore
    from ..store.summary import summarize

    summary = summarize(SpectraStore(args.store))
    print(json.dumps(summary, indent=1) if args.json else format_summary(summary))
    return 0

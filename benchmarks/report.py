"""Write latest.json, latest.md (a table per group with ratios) and chart.png."""

from __future__ import annotations

import json
import math
import os

LEGEND = (
    "Each cell: value, then its cost ratio to the group's floor (`F`) and to the best peer "
    "in that column (`P`); ratios are costs, so >1 means slower (for req/s: fewer), "
    "<1 faster. Rows in **bold** are ignite_cache; `—` = not measured / not supported."
)


PALETTE = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:olive", "tab:cyan"]


def fmt(v: float) -> str:
    a = abs(v)
    return f"{v:,.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 0.1 else f"{v:.3f}"


def cost_ratio(v, ref, better: str):
    if v is None or ref is None or ref <= 0 or v <= 0:
        return None
    return v / ref if better == "lower" else ref / v


def best_peer(group: dict, col: dict):
    vals = [r["values"].get(col["key"]) for r in group["rows"].values() if r["kind"] == "peer"]
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return min(vals) if col["better"] == "lower" else max(vals)


def floor_value(group: dict, col: dict):
    row = group["rows"].get(group["floor"] or "")
    return row["values"].get(col["key"]) if row else None


def cell(group: dict, row: dict, col: dict) -> str:
    v = row["values"].get(col["key"])
    if v is None:
        return "—"
    parts = []
    for tag, ref in (("F", floor_value(group, col)), ("P", best_peer(group, col))):
        r = cost_ratio(v, ref, col["better"])
        parts.append(f"{r:.2f}× {tag}" if r is not None else f"— {tag}")
    return f"{fmt(v)} ({', '.join(parts)})"


def markdown(results: dict) -> str:
    m = results["meta"]
    out = [
        f"# ignite_cache benchmarks ({'quick' if m['quick'] else 'full'} run)",
        "",
        f"{m['started']} · {m['seconds']:.0f} s · Python {m['python']} · {m['machine']}",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        LEGEND,
        "",
    ]
    for g in results["groups"]:
        out += [f"## {g['title']}", ""]
        if g["floor"]:
            out += [f"Floor: {g['floor']}.", ""]
        cols = g["columns"]
        out.append("| implementation | " + " | ".join(f"{c['label']} ({c['unit']})" for c in cols) + " |")
        out.append("|---|" + "---:|" * len(cols))
        for name, row in g["rows"].items():
            label = f"**{name}**" if row["kind"] == "ours" else name
            if "error" in row:
                label += f" (error: `{row['error'][:120]}`)"
            out.append(f"| {label} | " + " | ".join(cell(g, row, c) for c in cols) + " |")
        out.append("")
        out += [f"- {n}" for n in g["notes"]] + ([""] if g["notes"] else [])
    return "\n".join(out)


def chart(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    groups = [g for g in results["groups"] if g["rows"] and g["floor"]]
    if not groups:
        return
    ncols = 3
    nrows = math.ceil(len(groups) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7 * ncols, 4.6 * nrows), squeeze=False)
    for ax in axes.flat[len(groups) :]:
        ax.axis("off")
    for ax, g in zip(axes.flat, groups, strict=False):
        names = list(g["rows"])
        width = 0.8 / max(1, len(names))
        palette = iter(PALETTE)
        for i, name in enumerate(names):
            row = g["rows"][name]
            ys = [
                cost_ratio(row["values"].get(c["key"]), floor_value(g, c), c["better"]) for c in g["columns"]
            ]
            xs = [j + i * width for j in range(len(ys))]
            color = {"ours": "crimson", "floor": "dimgray", "ref": "darkgray"}.get(row["kind"])
            ax.bar(
                xs,
                [y or 0 for y in ys],
                width,
                label=name,
                color=color or next(palette),
                edgecolor="black" if row["kind"] == "ours" else None,
            )
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.axhline(1, color="grey", lw=0.8)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(g["columns"]))])
        ax.set_xticklabels([c["label"] for c in g["columns"]], rotation=30, ha="right", fontsize=7)
        ax.set_title(g["title"], fontsize=9)
        ax.set_ylabel("cost vs floor (×, log)", fontsize=8)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(results: dict, outdir: str) -> None:
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "latest.json"), "w") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)
    with open(os.path.join(outdir, "latest.md"), "w") as f:
        f.write(markdown(results) + "\n")
    chart(results, os.path.join(outdir, "chart.png"))

"""The evaluations' short report: a markdown table of system vs baselines (and ablations) plus a PNG bar chart.

    write_report(summary, "runs/eval-search", "Search evaluation", ["nDCG@10", "MRR", "recall@100"])

`summary["results"]` maps system name -> {metric: value}; an optional `summary["ablations"]`
maps group -> {metric: value, "delta_<metric>": change vs the full system}.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def write_report(summary: dict, directory: str | Path, title: str, metrics: list[str]) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    results = summary["results"]
    names = list(results)

    figure, axis = plt.subplots(figsize=(1.6 + 1.4 * len(names), 3.6))
    width = 0.8 / len(metrics)
    for i, metric in enumerate(metrics):
        values = [results[n][metric] for n in names]
        bars = axis.bar(np.arange(len(names)) + i * width, values, width, label=metric)
        axis.bar_label(bars, fmt="%.3f", fontsize=7)
    axis.set_xticks(np.arange(len(names)) + width * (len(metrics) - 1) / 2, names, rotation=15)
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(directory / "metrics.png", dpi=120)
    plt.close(figure)

    lines = [f"# {title}", ""]
    lines += [f"- {key}: {value}" for key, value in summary.items() if key not in ("results", "ablations")
              and not isinstance(value, (dict, list))]
    lines += ["", "| system | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    lines += [f"| {n} | " + " | ".join(f"{results[n][m]:.4f}" for m in metrics) + " |" for n in names]
    if summary.get("ablations"):
        lines += ["", "Ablations (retrained without the group; delta vs the full system):", "",
                  "| without | " + " | ".join(f"{m} | Δ{m}" for m in metrics) + " |",
                  "|---" * (2 * len(metrics) + 1) + "|"]
        for group, figures in summary["ablations"].items():
            lines.append(f"| {group} | " + " | ".join(f"{figures[m]:.4f} | {figures['delta_' + m]:+.4f}"
                                                     for m in metrics) + " |")
    lines += ["", "![metrics](metrics.png)", ""]
    path = directory / "report.md"
    path.write_text("\n".join(lines))
    return path


def publish(summary: dict, title: str, metrics: list[str], json_out: str | Path | None,
            report_dir: str | Path | None, default_dir: str) -> None:
    """Write the markdown + PNG report (beside json_out unless report_dir is given) and the JSON figures."""
    directory = Path(report_dir) if report_dir else (Path(json_out).parent if json_out else Path(default_dir))
    write_report(summary, directory, title, metrics)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(summary, indent=2))

"""One dashboard file per sweep or study: ``dashboard.html``, self-contained and offline.

    python -m lga.report <sweep>     # writes it beside report.md (lga.study: one per study)
    python -m lga.analysis.dashboard --wandb ENTITY/PROJECT --group SWEEP   # the W&B view instead

The page holds every chart a comparison needs, in plotly with its JavaScript inlined once (no
CDN, no fonts, no MathJax: it opens from a laptop, an e-mail or W&B without any network): each
cell's seeds with mean ± 95% CI; the forest plot of the paired differences with the margin; the
learning curves per cell (mean ± sd over seeds; a legend click hides a cell, a double click isolates
it); cost (parameters, GFLOPs, images/s) against the metric; the LGA blocks' learned weights per
epoch; and the jobs that did not finish ``ok`` with their messages. Two menus filter every chart
and the table by dataset and backbone.

The statistics come from :mod:`lga.analysis.cells` and :mod:`lga.analysis.comparisons`, exactly
as in report.md: the page draws them, it computes none. Imports no torch.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..utils import write_atomic
from .cells import FAILED_TO_TRAIN, cell_table, cell_values, labelled
from .convergence import VALIDATION_KEYS
from .figures import VERDICT_COLOURS
from .paper import METRIC_NAMES
from .results import history_frame
from .weights import weight_frame

DASHBOARD_FILE = "dashboard.html"
# matplotlib's C0..C9 (plotly's D3 palette): the page's colours are the report PNGs' colours
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]  # fmt: skip
FAILED_COLOUR, SEED_COLOUR = PALETTE[3], "#999999"
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
# the per-epoch keys drawn as learning curves, with their axis titles; metrics are fractions (drawn in points)
CURVE_KEYS = {"val/loss": "validation loss", "train/loss": "training loss"}

FILTER_SCRIPT = """
function applyFilters() {
  const dataset = document.getElementById("filter-dataset").value;
  const backbone = document.getElementById("filter-backbone").value;
  const shown = (axes) => !axes || ((!dataset || !axes.dataset || axes.dataset === dataset)
    && (!backbone || !axes.backbone || axes.backbone === backbone));
  document.querySelectorAll(".js-plotly-plot").forEach((plot) => {
    if (plot.data.length) Plotly.restyle(plot, {visible: plot.data.map((trace) => shown(trace.meta))});
  });
  document.querySelectorAll("tr[data-dataset]").forEach((row) => { row.hidden = !shown(row.dataset); });
}
document.querySelectorAll("select.filter").forEach((menu) => menu.addEventListener("change", applyFilters));
"""

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
.note { color: #555; font-size: 0.9em; max-width: 70em; }
.filters { position: sticky; top: 0; background: #fff; padding: 0.5em 0; z-index: 10; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ccc; padding: 0.2em 0.5em; }
td.error { max-width: 60em; white-space: pre-wrap; }
"""


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _verdict_colour(verdict: str) -> str:
    """The report's colour of a verdict (:data:`lga.analysis.figures.VERDICT_COLOURS`), grey without one."""
    code = next((c for word, c in VERDICT_COLOURS.items() if verdict.startswith(word)), "C7")
    return _colour(int(code[1:]))


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _figure(traces: list[dict[str, Any]], title: str, **layout: Any) -> dict[str, Any]:
    return {"data": traces, "layout": {"title": {"text": title}, "hovermode": "closest", **layout}}


def _subplot_axes(titles: list[str], y_title: str | list[str], x_titles: list[str], gap: float = 0.08) -> dict:
    """Side-by-side x/y axis pairs (``xaxis``, ``xaxis2``, ...) with a title over each: plotly's layout of
    ``make_subplots``, written out so that the figures stay plain JSON."""
    width = (1 - gap * (len(titles) - 1)) / len(titles)
    layout: dict[str, Any] = {"annotations": []}
    y_titles = y_title if isinstance(y_title, list) else [y_title] * len(titles)
    for i, (title, x_title, y) in enumerate(zip(titles, x_titles, y_titles)):
        suffix = "" if i == 0 else str(i + 1)
        start = i * (width + gap)
        layout[f"xaxis{suffix}"] = {
            "domain": [start, start + width],
            "anchor": f"y{suffix}",
            "title": {"text": x_title},
        }
        layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}", "title": {"text": y}}
        layout["annotations"].append(
            {"text": title, "x": start + width / 2, "y": 1.0, "xref": "paper", "yref": "paper", "showarrow": False,
             "xanchor": "center", "yanchor": "bottom"}
        )  # fmt: skip
    return layout


def _backbones(rows: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(dataset, cell label) -> the cell's backbone: every cell has one, so the backbone menu can filter it."""
    return {(r["dataset"], r["cell"]): r["backbone"] for r in labelled(rows)}


def _points(name: str, points: list[tuple[str, str, float, str]], axes: dict, **style: Any) -> dict[str, Any]:
    """A scatter trace of (dataset, cell, value, hover text) points on the cells' two-level category axis."""
    dataset, cell, value, text = (list(column) for column in zip(*points))
    return {"type": "scatter", "mode": "markers", "name": name, "legendgroup": name, "x": [dataset, cell], "y": value,
            "text": text, "hoverinfo": "text+y", "meta": axes, **style}  # fmt: skip


def _error_bars(means: pd.Series, lows: pd.Series, highs: pd.Series) -> dict[str, Any]:
    """plotly's asymmetric error bars of an interval [low, high] around each mean (none where it is missing)."""
    return {
        "type": "data", "visible": True,
        "array": [hi - m if _present(hi) else 0 for m, hi in zip(means, highs)],
        "arrayminus": [m - lo if _present(lo) else 0 for m, lo in zip(means, lows)],
    }  # fmt: skip


def cells_figure(rows: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """Per dataset and cell: the mean with its 95% CI (blue), every ok seed over it (grey), the seeds that did
    not learn or diverged (red), from :func:`lga.analysis.cells.cell_table` and :func:`cell_values`."""
    cells = cell_table(rows, metric)
    if cells.empty:
        return None
    values, failed = cell_values(rows, metric), cell_values(rows, metric, statuses=FAILED_TO_TRAIN)
    jobs = {(r["dataset"], r["cell"], r["seed"]): r["job"] for r in labelled(rows)}
    traces = []
    for (dataset, backbone), group in cells.groupby(["dataset", "backbone"], sort=False):
        axes = {"dataset": dataset, "backbone": backbone}
        means = [
            (dataset, r.cell, r.mean, f"{r.cell}: n={r.n}" + (f", sd {r.sd:.2f}" if _present(r.sd) else ""))
            for r in group.itertuples()
            if _present(r.mean)
        ]
        seeds = [
            (dataset, r.cell, value, f"seed {seed} ({jobs[(dataset, r.cell, seed)]})")
            for r in group.itertuples()
            for seed, value in sorted(values.get((dataset, r.cell), {}).items())
        ]
        failures = [
            (dataset, r.cell, value, f"seed {seed}: {r.failures}")
            for r in group.itertuples()
            for seed, value in sorted(failed.get((dataset, r.cell), {}).items())
        ]
        with_mean = group[group["mean"].notna()]
        if means:
            interval = _error_bars(with_mean["mean"], with_mean.ci_low, with_mean.ci_high)
            traces.append(
                _points("mean ± 95% CI", means, axes, marker={"color": PALETTE[0], "size": 10}, error_y=interval)
            )
        if seeds:  # drawn over the mean, so that every seed stays visible
            marker = {"color": SEED_COLOUR, "size": 7, "opacity": 0.8, "line": {"color": "#555", "width": 1}}
            traces.append(_points("seeds", seeds, axes, marker=marker))
        if failures:
            marker = {"color": FAILED_COLOUR, "symbol": "x", "size": 10}
            traces.append(_points("did not learn / diverged", failures, axes, marker=marker))
    shown = set()
    for trace in traces:  # one legend entry per kind of point
        trace["showlegend"] = trace["name"] not in shown
        shown.add(trace["name"])
    name = METRIC_NAMES.get(metric, metric)
    return _figure(traces, f"{name}: each cell's seeds, mean ± 95% CI", yaxis={"title": {"text": name}},
                   xaxis={"tickangle": -30, "automargin": True}, height=560)  # fmt: skip


def forest_figure(comparisons: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    """Each comparison's paired difference with its 95% CI, coloured by verdict (grey: inconclusive; hollow:
    exploratory), the ±margin shaded: the frame of :func:`lga.analysis.comparisons.evaluate`."""
    rows = comparisons[comparisons["diff"].notna()] if not comparisons.empty else comparisons
    if rows.empty:
        return None
    rows = rows.iloc[::-1]
    traces = []
    for dataset, group in rows.groupby("dataset", sort=False):
        labels = [f"{dataset}: {r.comparison} ({r.family}, n={int(r.n)})" for r in group.itertuples()]
        colours = [_verdict_colour(str(v)) for v in group.verdict]
        text = [
            f"{r.verdict or 'no verdict'}{' (' + r.robustness + ')' if r.robustness else ''}<br>{r.reason}"
            for r in group.itertuples()
        ]
        traces.append({
            "type": "scatter", "name": dataset, "x": list(group["diff"]), "y": labels, "text": text,
            "mode": "markers", "meta": {"dataset": dataset}, "hoverinfo": "text+x", "showlegend": False,
            "marker": {"color": colours, "size": 10, "line": {"color": colours, "width": 2},
                       "symbol": ["circle-open" if e else "circle" for e in group.exploratory]},
            "error_x": {**_error_bars(group["diff"], group.ci_low, group.ci_high), "color": "#555"},
        })  # fmt: skip
    margin = float(rows.margin.iloc[0])
    name = METRIC_NAMES.get(metric, metric)
    return _figure(
        traces,
        f"Paired differences (treated − baseline, by seed): mean and 95% CI; shaded: the margin ±{margin:g}",
        height=200 + 26 * len(rows),
        yaxis={"automargin": True},
        xaxis={"title": {"text": f"{name}: difference in points"}, "zeroline": True},
        shapes=[
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": -margin,
                "x1": margin,
                "y0": 0,
                "y1": 1,
                "fillcolor": PALETTE[0],
                "opacity": 0.12,
                "line": {"width": 0},
                "layer": "below",
            }
        ],  # fmt: skip
    )


def _band(x: list, mean: pd.Series, sd: pd.Series, colour: str, group: str, axes: dict, xy: str) -> dict[str, Any]:
    """mean ± sd as one closed, filled shape (hidden with its cell's legend entry)."""
    return {"type": "scatter", "x": x + x[::-1], "y": list(mean + sd) + list(mean - sd)[::-1], "fill": "toself",
            "fillcolor": colour, "opacity": 0.15, "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False,
            "legendgroup": group, "meta": axes, "xaxis": "x" + xy, "yaxis": "y" + xy}  # fmt: skip


def curves_figure(history: pd.DataFrame, rows: list[dict[str, Any]], task: str) -> dict[str, Any] | None:
    """Per cell, the mean over its ok seeds per epoch with a ±1 sd band, for the validation metric and the
    losses; runs that did not learn or diverged dashed red. One legend entry per cell hides all its lines."""
    metric_key = VALIDATION_KEYS.get(task, "val/top1")
    keys = {metric_key: f"{metric_key} (%)", **CURVE_KEYS}
    history = history[history.key.isin(keys)]
    if history.empty:
        return None
    labels = {r["job"]: r["cell"] for r in labelled(rows)}
    history = history.assign(cell=history.job.map(labels), value=history.value.astype(float))
    history.loc[history.key == metric_key, "value"] *= 100
    traces = []
    ok = history[history.status == "ok"]
    for i, ((dataset, backbone, cell), runs) in enumerate(ok.groupby(["dataset", "backbone", "cell"], sort=True)):
        group, colour, axes = f"{dataset}: {cell}", _colour(i), {"dataset": dataset, "backbone": backbone}
        for k, key in enumerate(keys):
            per_epoch = runs[runs.key == key].groupby("epoch").value
            if not per_epoch.ngroups:
                continue
            mean, sd = per_epoch.mean(), per_epoch.std().fillna(0)
            xy, epochs = "" if k == 0 else str(k + 1), [int(e) for e in mean.index]
            traces.append(_band(epochs, mean, sd, colour, group, axes, xy))
            traces.append({
                "type": "scatter", "mode": "lines+markers", "x": epochs, "y": list(mean), "name": group,
                "legendgroup": group, "showlegend": k == 0, "line": {"color": colour}, "meta": axes,
                "hovertemplate": f"{group} (n={runs.seed.nunique()})<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
                "xaxis": "x" + xy, "yaxis": "y" + xy,
            })  # fmt: skip
    for (dataset, backbone, cell, seed, status), run in history[history.status != "ok"].groupby(
        ["dataset", "backbone", "cell", "seed", "status"], sort=True
    ):
        name, axes = f"{dataset}: {cell} seed {seed}: {status}", {"dataset": dataset, "backbone": backbone}
        for k, key in enumerate(keys):
            points = run[run.key == key].sort_values("epoch")
            xy = "" if k == 0 else str(k + 1)
            traces.append({
                "type": "scatter", "mode": "lines", "x": list(points.epoch), "y": list(points.value), "name": name,
                "legendgroup": name, "showlegend": k == 0, "meta": axes, "xaxis": "x" + xy, "yaxis": "y" + xy,
                "line": {"color": FAILED_COLOUR, "dash": "dash"},
            })  # fmt: skip
    layout = _subplot_axes(list(keys.values()), list(keys.values()), ["epoch"] * len(keys))
    return _figure(traces, "Learning curves per cell: mean ± sd over seeds (click a legend entry to hide a cell, "
                   "double-click to isolate it)", height=480, **layout)  # fmt: skip


def cost_figure(rows: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """Each cell's mean metric (± 95% CI) against its parameters, GFLOPs and training images/s."""
    cells = cell_table(rows, metric)
    if cells.empty:
        return None
    cells = cells[cells["mean"].notna()]
    throughput: dict[tuple[str, str], list[float]] = {}
    for r in labelled(rows):
        if r["status"] == "ok" and r.get("train_img_s") is not None:
            throughput.setdefault((r["dataset"], r["cell"]), []).append(float(r["train_img_s"]))
    cells = cells.assign(train_img_s=[
        sum(v) / len(v) if (v := throughput.get((d, c))) else None for d, c in zip(cells.dataset, cells.cell)
    ])  # fmt: skip
    columns = {"params_M": "parameters (M)", "gflops": "GFLOPs per image", "train_img_s": "training images/s"}
    traces = []
    for i, ((dataset, backbone), group) in enumerate(cells.groupby(["dataset", "backbone"], sort=False)):
        for k, column in enumerate(columns):
            xy = "" if k == 0 else str(k + 1)
            traces.append({
                "type": "scatter", "mode": "markers", "name": f"{dataset} / {backbone}", "x": list(group[column]),
                "y": list(group["mean"]), "text": list(group.cell), "legendgroup": f"{dataset} / {backbone}",
                "showlegend": k == 0, "meta": {"dataset": dataset, "backbone": backbone},
                "marker": {"color": _colour(i), "size": 9}, "hovertemplate": "%{text}: %{y:.2f} at %{x:.4g}",
                "error_y": _error_bars(group["mean"], group.ci_low, group.ci_high),
                "xaxis": "x" + xy, "yaxis": "y" + xy,
            })  # fmt: skip
    name = METRIC_NAMES.get(metric, metric)
    layout = _subplot_axes(list(columns.values()), name, list(columns.values()))
    return _figure(traces, f"Cost against {name}: each cell's mean ± 95% CI", height=440, **layout)


def weights_figure(weights: pd.DataFrame, backbones: dict[tuple[str, str], str]) -> dict[str, Any] | None:
    """The LGA blocks' fusion weights, mean scale weights and scale-weight entropy per epoch, mean over seeds
    (:func:`lga.analysis.weights.weight_frame`); the dashed line is the entropy of uniform scale weights."""
    if weights.empty:
        return None
    panels = {"fusion weights": ("a_",), "mean scale weights": ("scale_w",), "scale-weight entropy": ("scale_ent",)}
    means = weights.groupby(["dataset", "cell", "block", "quantity", "epoch"], sort=True).value.mean().reset_index()
    several_blocks = means.block.nunique() > 1
    traces, shown = [], set()
    colours = {cell: _colour(i) for i, cell in enumerate(dict.fromkeys(zip(means.dataset, means.cell)))}
    groups = means.groupby(["dataset", "cell", "block", "quantity"])
    # a cell's legend entry is its first line: a solid one (a_global is dotted)
    for (dataset, cell, block, quantity), series in sorted(groups, key=lambda g: (*g[0][:3], g[0][3] == "a_global")):
        k = next((k for k, prefixes in enumerate(panels.values()) if quantity.startswith(prefixes)), None)
        if k is None:
            continue
        group = f"{dataset}: {cell}" + (f" {block}" if several_blocks else "")
        axes = {"dataset": dataset, "backbone": backbones.get((dataset, cell))}
        xy = "" if k == 0 else str(k + 1)
        traces.append({
            "type": "scatter", "mode": "lines+markers", "x": list(series.epoch), "y": list(series.value),
            "name": group, "legendgroup": group, "showlegend": group not in shown, "meta": axes, "xaxis": "x" + xy,
            "yaxis": "y" + xy, "hovertemplate": f"{group}: {quantity}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
            "line": {"color": colours[(dataset, cell)], "dash": "dot" if quantity == "a_global" else "solid"},
        })  # fmt: skip
        shown.add(group)
    scales = means[means.quantity.str.startswith("scale_w")].quantity.nunique()
    layout = _subplot_axes(list(panels), ["weight", "mean weight", "entropy (nats)"], ["epoch"] * len(panels))
    if scales:
        uniform = math.log(scales)
        layout["shapes"] = [{"type": "line", "xref": "x3 domain", "yref": "y3", "x0": 0, "x1": 1, "y0": uniform,
                             "y1": uniform, "line": {"dash": "dash", "color": "#888"}}]  # fmt: skip
    return _figure(traces, "LGA learned weights per epoch (mean over seeds; dotted: a_global)", height=480, **layout)


def status_table(rows: list[dict[str, Any]]) -> str:
    """The jobs that did not finish ``ok`` (failed, diverged, interrupted, not learned, ...) with their messages."""
    counts = pd.Series([r["status"] for r in rows]).value_counts()
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    bad = [r for r in labelled(rows) if r["status"] != "ok"]
    if not bad:
        return f"<p>{len(rows)} jobs: {summary}. Every job finished <code>ok</code>.</p>"
    columns = ["job", "dataset", "backbone", "cell", "seed", "status", "error"]
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join(
        f'<tr data-dataset="{html.escape(r["dataset"])}" data-backbone="{html.escape(r["backbone"])}">'
        + "".join(f"<td{' class=error' if c == 'error' else ''}>{html.escape(str(r[c]))}</td>" for c in columns)
        + "</tr>"
        for r in bad
    )
    return f"<p>{len(rows)} jobs: {summary}.</p><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _menu(name: str, options: Iterable[str]) -> str:
    items = "".join(f'<option value="{html.escape(o)}">{html.escape(o)}</option>' for o in options)
    return (
        f'<label>{name} <select class="filter" id="filter-{name}"><option value="">all</option>{items}</select></label>'
    )


def _plot(div_id: str, figure: dict[str, Any]) -> str:
    """A figure's div and the call that draws it (plotly.js is inlined once, in the page's head)."""
    # "</" escaped: a job or comparison name holding "</script>" must not end the script early
    data, layout = (
        json.dumps(_plain(figure[part]), allow_nan=False).replace("</", "<\\/") for part in ("data", "layout")
    )
    return (
        f'<div id="{div_id}" class="panel"></div>\n<script>Plotly.newPlot("{div_id}", {data}, {layout}, '
        f"{json.dumps(PLOT_CONFIG)});</script>"
    )


def _plain(value: Any) -> Any:
    """A figure as JSON takes it: numpy scalars as Python's, NaN and infinities as null (a gap in plotly)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def dashboard_html(
    directory: str | Path, rows: list[dict[str, Any]], comparisons: pd.DataFrame, metric: str, title: str
) -> str:
    """The page for the jobs of ``directory`` (``rows``: :func:`lga.analysis.results.sweep_rows`) and the
    judged ``comparisons`` of ``metric`` (:func:`lga.analysis.comparisons.evaluate`)."""
    from plotly.offline import get_plotlyjs

    directory = Path(directory)
    task = "detection" if {r["task"] for r in rows} == {"detection"} else "classification"
    ours = comparisons[comparisons.metric == metric] if "metric" in comparisons else comparisons
    sections = [
        ("cells", "Cells over seeds", cells_figure(rows, metric), "No cell finished with this metric."),
        ("forest", "Paired comparisons", forest_figure(ours, metric), "No comparison with paired seeds."),
        ("curves", "Learning curves", curves_figure(history_frame(directory), rows, task),
         "No per-epoch history in these records (written before it was kept)."),
        ("cost", "Cost against the metric", cost_figure(rows, metric), "No cell finished with this metric."),
        ("weights", "LGA learned weights", weights_figure(weight_frame(directory), _backbones(rows)),
         "No LGA block in these jobs (or no weights recorded)."),
    ]  # fmt: skip
    body = [f"<h1>{html.escape(title)}</h1>",
            f'<p class="note">{len(rows)} jobs of <code>{html.escape(directory.name)}</code>; metric: '
            f"{html.escape(METRIC_NAMES.get(metric, metric))}. Statistics as in the report (paired by seed, "
            "Holm within each family). This file needs no network: plotly.js is inside it.</p>",
            '<div class="filters">' + _menu("dataset", sorted({r["dataset"] for r in rows})) + " "
            + _menu("backbone", sorted({r["backbone"] for r in rows})) + "</div>"]  # fmt: skip
    for div_id, heading, figure, missing in sections:
        body.append(f"<h2>{heading}</h2>")
        body.append(_plot(div_id, figure) if figure is not None else f'<p class="note">{missing}</p>')
    body += ["<h2>Jobs that did not finish ok</h2>", status_table(rows)]
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n<script>{get_plotlyjs()}</script>\n</head>\n<body>\n" + "\n".join(body)
        + f"\n<script>{FILTER_SCRIPT}</script>\n</body>\n</html>\n"
    )  # fmt: skip


def write_dashboard(
    directory: str | Path, rows: list[dict[str, Any]], comparisons: pd.DataFrame, metric: str, title: str
) -> Path:
    """Write ``<directory>/dashboard.html`` (see the module docstring); returns its path."""
    path = Path(directory) / DASHBOARD_FILE
    write_atomic(path, dashboard_html(directory, rows, comparisons, metric, title))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wandb", required=True, metavar="ENTITY/PROJECT", help="where to save the W&B view")
    parser.add_argument("--group", required=True, help="the sweep's W&B group (its directory's name)")
    parser.add_argument("--metric", default="test/top1", help="the headline metric as logged (test/map50: detection)")
    args = parser.parse_args(argv)
    from .wandb_compare import save_workspace

    sys.exit(save_workspace(args.wandb, args.group, args.metric))


if __name__ == "__main__":
    main()

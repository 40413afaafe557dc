"""fig01: overview of the study, the workflow's rule graph beside the fine-tuning strategies."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from matplotlib.patches import FancyBboxPatch

from .rulegraph import DROPPED_RULES, FIGURE_RULES, collapse_graph, draw_graph, layered_layout, parse_dot, \
    render_dot, to_dot
from .style import STRATEGY_DESCRIPTIONS, STRATEGY_ORDER, mark_na, plt, save, strategy_style, style


def fig01_overview(rulegraph: str | Path, out_png: Path, out_pdf: Path, *,
                   strategies: Sequence[str] = STRATEGY_ORDER, use_graphviz: bool = True,
                   title: str | None = "Workflow rule graph",
                   collapse: Mapping[str, str] | None = None, drop: Iterable[str] | None = None) -> None:
    """Overview: the workflow's rule graph (DOT from ``snakemake --rulegraph``, as text or a file path)
    rendered with graphviz ``dot`` if available (else laid out by igraph and drawn with matplotlib,
    :mod:`.rulegraph`), beside the strategies.

    ``collapse`` (``{label regex: group label}``) and ``drop`` (labels) simplify the graph (see
    :func:`~.rulegraph.collapse_graph`); by default the figure rules become one node ``figures (n rules)``
    and the target rule ``all`` is dropped. Pass ``collapse={}``, ``drop=()`` for the graph as it is.
    """
    text = str(rulegraph)
    if "{" not in text and Path(text).exists():
        text = Path(text).read_text()
    nodes, edges = parse_dot(text)
    groups = {FIGURE_RULES: "figures ({n} rules)"} if collapse is None else collapse
    drop = DROPPED_RULES if drop is None else tuple(drop)
    if groups or drop:
        nodes, edges = collapse_graph(nodes, edges, groups=groups, drop=drop)
        text = to_dot(nodes, edges)
    img = render_dot(text) if use_graphviz and nodes else None
    with style():
        fig = plt.figure(figsize=(10, 5.2), layout="constrained")
        ax_g, ax_s = fig.subplots(1, 2, width_ratios=[1.5, 1])
        if img is not None:
            ax_g.imshow(img)
            ax_g.axis("off")
        elif nodes:
            draw_graph(ax_g, layered_layout(nodes, edges))
        else:
            ax_g.axis("off")
            mark_na(ax_g, "rule graph n/a")
        if title:
            ax_g.set_title(f"(a) {title}", loc="left")
        ax_s.axis("off")
        ax_s.set_title("(b) Fine-tuning strategies: what is trained", loc="left")
        ax_s.set_xlim(0, 1)
        ax_s.set_ylim(len(strategies) - 0.4, -0.6)
        for i, s in enumerate(strategies):
            label, color, _ = strategy_style(s)
            ax_s.add_patch(FancyBboxPatch((0.0, i - 0.18), 0.035, 0.36, boxstyle="round,pad=0.005",
                                          facecolor=color, edgecolor="none"))
            ax_s.text(0.055, i, label, va="center", ha="left", fontweight="bold", fontsize=8)
            ax_s.text(0.3, i, textwrap.fill(STRATEGY_DESCRIPTIONS.get(s, ""), 44), va="center", ha="left",
                      fontsize=7)
        save(fig, out_png, out_pdf)

"""The workflow's own rule graph, fig01's left panel.

:func:`write_rulegraph` runs ``snakemake --rulegraph`` in a child process and keeps its DOT text;
:func:`parse_dot` reads it (pydot), :func:`collapse_graph` merges the figure rules into one node, and the
graph is drawn by graphviz ``dot`` when it is installed (:func:`render_dot`), else placed by igraph's
layered (Sugiyama) layout and drawn with matplotlib (:func:`layered_layout`, :func:`draw_graph`).

In the matplotlib drawing no edge runs through a box: igraph gives every edge that spans several layers a
control point in each layer it crosses, placed like a node (so at a distance from the boxes of that
layer); the edge passes a layer vertically at that point and bends only between layers, where there are
no boxes.  Coordinates are in points (1/72 in) at the font size asked for; labels are drawn as text paths,
so the drawing scales as a whole with the panel.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import igraph
import numpy as np
import pydot
import yaml
from matplotlib.font_manager import FontProperties
from matplotlib.image import imread
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, PathPatch
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D

from ..io import atomic_path
from .registry import FIGURES

#: fig01's default simplification of the rule graph: every figure rule, the rule-graph rule and the
#: ``figures`` target become one node; the aggregating target rule ``all`` is dropped.
FIGURE_RULES = "^(" + "|".join(map(re.escape, [*FIGURES, "rulegraph", "figures"])) + ")$"
DROPPED_RULES = ("all",)


# ---- reading and simplifying ---------------------------------------------------------------------
def parse_dot(dot: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Nodes ``{id: label}`` and edges ``[(src, dst)]`` of a (Snakemake rule-graph) DOT text."""
    with warnings.catch_warnings():  # pydot 4.0.1's grammar uses names that pyparsing 3.3 deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        graphs = pydot.graph_from_dot_data(dot) if dot.strip() else None
    if not graphs:
        return {}, []
    graph = graphs[0]
    nodes: dict[str, str] = {}
    for node in graph.get_nodes():
        name = node.get_name().strip('"')
        if name not in ("node", "edge", "graph"):
            nodes[name] = str(node.get("label") or name).strip('"')
    edges = []
    for edge in graph.get_edges():
        a, b = str(edge.get_source()).strip('"'), str(edge.get_destination()).strip('"')
        edges.append((a, b))
        nodes.setdefault(a, a)
        nodes.setdefault(b, b)
    return nodes, edges


def collapse_graph(nodes: Mapping[str, str], edges: Sequence[tuple[str, str]], *,
                   groups: Mapping[str, str] | None = None,
                   drop: Iterable[str] = ()) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Merge the nodes whose *label* matches a regex of ``groups`` (``{regex: group label}``; ``{n}`` in
    the label is replaced by the number of merged rules) into one node each; drop the nodes labelled as
    in ``drop`` and their edges. Edges inside a group disappear, parallel edges are merged."""
    drop, groups = set(drop), dict(groups or {})
    rep: dict[str, str] = {}
    members: dict[str, int] = {}
    for n, lab in nodes.items():
        if lab in drop:
            continue
        k = next((k for k, rx in enumerate(groups) if re.match(rx, lab)), None)
        rep[n] = n if k is None else f"__group{k}"
        if k is not None:
            members[rep[n]] = members.get(rep[n], 0) + 1
    out_nodes = {n: lab for n, lab in nodes.items() if rep.get(n) == n}
    for k, glab in enumerate(groups.values()):
        if f"__group{k}" in members:
            out_nodes[f"__group{k}"] = glab.replace("{n}", str(members[f"__group{k}"]))
    out_edges: list[tuple[str, str]] = []
    for a, b in edges:
        if a in rep and b in rep and rep[a] != rep[b] and (rep[a], rep[b]) not in out_edges:
            out_edges.append((rep[a], rep[b]))
    return out_nodes, out_edges


def to_dot(nodes: Mapping[str, str], edges: Sequence[tuple[str, str]]) -> str:
    """A plain DOT text (Snakemake's rule-graph style) of ``nodes`` / ``edges``."""
    lines = ["digraph rulegraph {", "    graph[bgcolor=white, margin=0];",
             "    node[shape=box, style=rounded, fontname=sans, fontsize=10, penwidth=1.5, color=\"#4a6fa5\"];",
             "    edge[penwidth=1.2, color=grey];"]
    ids = {n: i for i, n in enumerate(nodes)}
    lines += [f'    {ids[n]}[label = "{lab}"];' for n, lab in nodes.items()]
    lines += [f"    {ids[a]} -> {ids[b]}" for a, b in edges if a in ids and b in ids]
    return "\n".join(lines + ["}"]) + "\n"


# ---- layout and drawing without graphviz ---------------------------------------------------------
_FONT = FontProperties(family=["sans-serif"])


@dataclass
class GraphLayout:
    """A drawn rule graph in points: boxes ``{node: (x, y, width, height)}`` (centre, size; y grows
    downward layer by layer) and each edge's polyline from its source's bottom to its target's top."""

    labels: dict[str, str]
    boxes: dict[str, tuple[float, float, float, float]]
    edges: list[tuple[str, str, list[tuple[float, float]]]]
    fontsize: float


def layered_layout(nodes: Mapping[str, str], edges: Sequence[tuple[str, str]], *,
                   fontsize: float = 7.0) -> GraphLayout:
    """Place ``nodes`` (``{id: label}``) of a directed acyclic graph in layers with igraph's Sugiyama layout
    (crossing reduction included) and route the edges through its control points; the horizontal scale keeps
    boxes and passing edges apart."""
    ids = list(nodes)
    index = {n: i for i, n in enumerate(ids)}
    pairs = list(dict.fromkeys((a, b) for a, b in edges if a in index and b in index and a != b))
    graph = igraph.Graph(n=len(ids), edges=[(index[a], index[b]) for a, b in pairs], directed=True)
    lay = graph.layout_sugiyama(maxiter=500)
    xy = np.asarray(lay.coords, dtype=float)[: len(ids)].reshape(len(ids), 2)
    height = 2.0 * fontsize
    width = {n: TextPath((0, 0), nodes[n], size=fontsize, prop=_FONT).get_extents().width + 1.2 * fontsize
             for n in ids}
    # per layer, what occupies it: boxes (half their width) and passing edges (a line)
    occupants: dict[float, list[tuple[float, float]]] = {}
    for n in ids:
        occupants.setdefault(xy[index[n], 1], []).append((xy[index[n], 0], width[n] / 2))
    for points in lay.edge_routing:
        for x, y in points:
            occupants.setdefault(y, []).append((x, 0.0))
    gap = fontsize
    unit = max([fontsize] + [(w1 + w2 + gap) / (x2 - x1) for row in occupants.values()
                             for (x1, w1), (x2, w2) in zip(sorted(row), sorted(row)[1:]) if x2 > x1])
    step = 3.2 * height  # layer to layer: the boxes take 1/3.2 of it, edges bend in the rest
    boxes = {n: (xy[index[n], 0] * unit, xy[index[n], 1] * step, width[n], height) for n in ids}
    lines = []
    for (a, b), points in zip(pairs, lay.edge_routing):
        line = []
        for x, y in points:  # pass each layer in between vertically, clear of its boxes
            line += [(x * unit, y * step - height / 2), (x * unit, y * step + height / 2)]
        lines.append(line)
    # where edges leave a box (bottom) and enter one (top): side by side, ordered by where they head
    def heading(e: int, leaving: bool) -> float:  # x of the next point along edge e, away from the box
        if lines[e]:
            return lines[e][0 if leaving else -1][0]
        return boxes[pairs[e][1 if leaving else 0]][0]

    ports = {}
    for n in ids:
        x, y, w, _ = boxes[n]
        for leaving in (True, False):
            own = sorted((e for e, pair in enumerate(pairs) if pair[0 if leaving else 1] == n),
                         key=lambda e: heading(e, leaving))
            spacing = min(w / (len(own) + 1), fontsize)
            for i, e in enumerate(own):
                ports[e, leaving] = (x + (i - (len(own) - 1) / 2) * spacing, y + (height if leaving else -height) / 2)
    routed = [(a, b, [ports[e, True], *lines[e], ports[e, False]]) for e, (a, b) in enumerate(pairs)]
    return GraphLayout(dict(nodes), boxes, routed, fontsize)


def draw_graph(ax, layout: GraphLayout) -> None:
    """Draw a :class:`GraphLayout` on ``ax`` (equal aspect; labels as paths, scaled with the drawing)."""
    fs = layout.fontsize
    for _, _, line in layout.edges:
        path = MplPath([(x, -y) for x, y in line])
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", color="#888888", lw=0.8, mutation_scale=8,
                                     shrinkA=0, shrinkB=0, zorder=2))
    for n, (x, y, w, h) in layout.boxes.items():
        ax.add_patch(FancyBboxPatch((x - w / 2, -y - h / 2), w, h, boxstyle=f"round,pad=0,rounding_size={fs / 2}",
                                    facecolor="#f2f6fb", edgecolor="#4a6fa5", lw=0.8, zorder=3))
        text = TextPath((0, 0), layout.labels[n], size=fs, prop=_FONT)
        ext = text.get_extents()
        shifted = text.transformed(Affine2D().translate(x - ext.x0 - ext.width / 2, -y - fs * 0.35))
        ax.add_patch(PathPatch(shifted, facecolor="black", edgecolor="none", zorder=4))
    xs = [x + s * w / 2 for x, _, w, _ in layout.boxes.values() for s in (-1, 1)]
    ys = [-y + s * h / 2 for _, y, _, h in layout.boxes.values() for s in (-1, 1)]
    xs += [x for _, _, line in layout.edges for x, _ in line]
    ax.set_xlim(min(xs) - fs, max(xs) + fs)
    ax.set_ylim(min(ys) - fs, max(ys) + fs)
    ax.set_aspect("equal")
    ax.axis("off")


def render_dot(dot: str) -> np.ndarray | None:
    """The graph drawn by graphviz ``dot`` as an image array; None when graphviz is not installed or fails."""
    exe = shutil.which("dot")
    if not exe:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "graph.png"
        try:
            subprocess.run([exe, "-Tpng", "-Gdpi=200", "-o", str(out)], input=dot.encode(), check=True,
                           capture_output=True, timeout=60)
            return imread(out)
        except (subprocess.SubprocessError, OSError, SyntaxError, ValueError) as exc:
            warnings.warn(f"graphviz dot failed ({exc}); drawing the rule graph with matplotlib")
            return None


# ---- the rule graph of a run ---------------------------------------------------------------------
def rulegraph_command(snakefile: str | Path, configfile: str | Path, workdir: str | Path = ".") -> list[str]:
    """The child ``snakemake --rulegraph`` command of :func:`write_rulegraph` (same interpreter)."""
    return [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir),
            "--configfile", str(configfile), "--rulegraph", "--nolock", "--workflow-profile", "none"]


def write_rulegraph(snakefile: str | Path, config: Mapping, out: str | Path, *, workdir: str | Path = ".",
                    log: str | Path | None = None, timeout: float = 1800) -> str:
    """Write the workflow's rule graph (DOT of ``snakemake --rulegraph``, default target) to ``out``.

    Runs Snakemake in a child process on ``snakefile`` with ``config`` (the run's *resolved* config,
    dumped to a temporary file, so ``--configfile``/``--config`` of the parent are reproduced exactly)
    and ``--nolock``: the parent that runs this job holds the lock of the same working directory.
    Raises ``RuntimeError`` (with the child's stderr in ``log``) if Snakemake fails.
    """
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(yaml.safe_dump(json.loads(json.dumps(dict(config))), sort_keys=False))
        cmd = rulegraph_command(snakefile, cfg, Path(workdir).resolve())
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if log is not None:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        Path(log).write_text(" ".join(cmd) + f"\nexit status {res.returncode}\n" + res.stderr)
    start, end = res.stdout.find("digraph"), res.stdout.rfind("}")
    if res.returncode != 0 or start < 0 or end < start:
        raise RuntimeError(f"snakemake --rulegraph failed (exit {res.returncode}): {res.stderr[-2000:]}")
    dot = res.stdout[start:end + 1] + "\n"
    with atomic_path(out) as tmp_out:
        Path(tmp_out).write_text(dot)
    return dot

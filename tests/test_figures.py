"""Figures (phononft.figures.*): every function draws a non-empty PNG and PDF from small synthetic inputs (incl.
NaN/missing); the loaders, table statistics, strategy style and the rule-graph layout."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phononft import layout
from phononft.figures import bandfiles, bands, budget, cost, data, dataset, deviations, overview, rulegraph, \
    style, validation

MATERIALS = ("Cu", "Cu3Au", "Cu_bcc", "Al")
BUDGETS = (1, 2, 5, 10, 20)
SEEDS = (0, 1)
SKILL = {"pretrained": 0.0, "scratch": 0.3, "naive": 0.8, "frozen": 0.2, "multihead": 0.7, "lora": 0.9,
         "equitrain": 1.0, "delta": 0.85, "l2sp": 0.85}
REF_PROPS = {"heat_capacity": ("J/K/mol", 24.0), "entropy": ("J/K/mol", 33.0), "free_energy": ("kJ/mol", -5.0),
             "bulk_modulus_eos": ("GPa", 140.0), "bulk_modulus_vrh": ("GPa", 138.0),
             "shear_modulus_vrh": ("GPa", 50.0), "kappa_slack": ("W/m/K", 300.0),
             "debye_temperature": ("K", 340.0), "min_frequency": ("THz", 0.0), "max_frequency": ("THz", 7.5)}


def synthetic_table(*, nan: bool = False, seed: int = 0) -> pd.DataFrame:
    """A tidy table shaped like results/summary/metrics.csv; ``nan``: failed jobs and missing blocks."""
    rng = np.random.default_rng(seed)
    rows = []
    for mi, mat in enumerate(MATERIALS):
        scale = 1.0 + 0.2 * mi
        for metric, (unit, v) in REF_PROPS.items():
            rows.append((mat, "reference", 0, 0, metric, v * scale, unit))
        rows.append((mat, "reference", 0, 0, "reference_calculations", [1, 3, 2, 1][mi % 4] * (1 + mi), "count"))
        for strat, skill in SKILL.items():
            budgets = (0,) if strat == "pretrained" else BUDGETS
            for b in budgets:
                for s in SEEDS:
                    gain = skill * np.log10(1 + b) / np.log10(21)
                    err = (0.45 * scale * (1 - 0.85 * gain) if strat != "scratch"
                           else 1.5 / np.sqrt(b) * scale) * rng.lognormal(0, 0.1)
                    def add(metric, value, unit):
                        rows.append((mat, strat, b, s, metric, value, unit))
                    add("rmse", err, "THz")
                    add("mae", 0.7 * err, "THz")
                    add("r2", 1 - err ** 2, "")
                    add("phonon_rmse", err, "THz")
                    add("energy_mae", 20 * err * rng.lognormal(0, 0.2), "meV/atom")
                    add("force_mae", 120 * err * rng.lognormal(0, 0.2), "meV/Å")
                    add("stress_mae", 0.5 * err * rng.lognormal(0, 0.2), "GPa")
                    for metric, (unit, v) in REF_PROPS.items():
                        dev = rng.normal(0, 0.08) * err / 0.45
                        add(metric, v * scale * (1 + dev), unit)
                        add(f"benchmark_{metric}", v * scale, unit)
                    add("new_phase", float(mat == "Cu_bcc" and strat == "pretrained"), "")
                    add("train_seconds", 0 if strat == "pretrained" else 10 * b, "s")
                    add("eval_seconds", 30.0, "s")
                    add("reference_calculations", b, "count")
    df = pd.DataFrame(rows, columns=["material", "strategy", "budget", "seed", "metric", "value", "unit"])
    if nan:
        # a failed job per strategy here and there, a strategy that failed everywhere, a missing reference
        df.loc[df.sample(frac=0.15, random_state=seed).index, "value"] = np.nan
        df.loc[df["strategy"] == "multihead", "value"] = np.nan
        df = df[~((df["material"] == "Al") & (df["strategy"] == "l2sp"))]
        df = df[~((df["material"] == "Al") & (df["strategy"] == "reference"))]
        df.loc[(df["material"] == "Cu3Au") & (df["metric"] == "stress_mae"), "value"] = np.nan
    return df.reset_index(drop=True)


def synthetic_bands(*, shift: float = 0.0, imaginary: bool = False, nq: int = 21, nb: int = 6,
                    labels=(("GAMMA", "X"), ("X", "U"), ("K", "GAMMA"), ("GAMMA", "L"), ("L", "W"))) -> dict:
    dists, freqs, start = [], [], 0.0
    for i, _ in enumerate(labels):
        x = np.linspace(0, 1, nq)
        length = 0.5 + 0.1 * i
        d = start + length * x
        start = float(d[-1])
        k = np.sin(np.pi * x / 2) if i % 2 == 0 else np.cos(np.pi * x / 2)
        f = np.array([(1 + j) * (1 + shift) * (0.8 + 0.2 * j) * k + 0.3 * j * (1 - k) for j in range(nb)]).T
        if imaginary and i == 0:
            f[:, 0] = -0.8 * (1 + shift) * np.sin(np.pi * x)
        dists.append(d.tolist())
        freqs.append(f.tolist())
    return {"distances": dists, "frequencies": freqs, "labels": [list(p) for p in labels]}


def synthetic_surface(*, soft: float = 1.0, one_d: bool = False) -> dict:
    a1 = np.linspace(-0.3, 0.3, 13)
    a2 = np.linspace(-0.2, 0.2, 11)
    A, B = np.meshgrid(a1, a2, indexing="ij")
    e = soft * (-60 * A ** 2 + 400 * A ** 4) + (-25 * B ** 2 + 500 * B ** 4) + 15 * A * B
    if one_d:
        return {"amplitudes_1": a1.tolist(), "energy": e[:, 5].tolist(), "modes": [{"frequency": -0.8}]}
    return {"amplitudes_1": a1.tolist(), "amplitudes_2": a2.tolist(), "energy": e.tolist(),
            "modes": [{"q": [0.5, 0.5, 0], "frequency": -0.84}, {"q": [0, 0.5, 0], "frequency": -0.5}]}


STRUCTURES = {
    "Cu": {"formula": "Cu", "elements": ["Cu"], "spacegroup": "Fm-3m", "crystal_system": "cubic",
           "natoms_primitive": 1},
    "Cu3Au": {"formula": "Cu3Au", "elements": ["Au", "Cu"], "spacegroup": "Pm-3m", "crystal_system": "cubic",
              "natoms_primitive": 4},
    "Cu_bcc": {"formula": "Cu", "elements": ["Cu"], "spacegroup": "Im-3m", "crystal_system": "cubic",
               "natoms_primitive": 1},
    "Bi2Te3": {"formula": "Bi2Te3", "spacegroup": "R-3m", "crystal_system": "trigonal", "natoms_primitive": 5},
    "PbTe": {"formula": "PbTe", "elements": ["Pb", "Te"], "crystal_system": "cubic", "natoms_primitive": 2},
    "SnSe": {"formula": "SnSe", "elements": ["Sn", "Se"], "crystal_system": "orthorhombic",
             "natoms_primitive": 8},
    "ZnO": {"formula": "ZnO", "elements": ["Zn", "O"], "crystal_system": "hexagonal", "natoms_primitive": 4},
    "odd": {"formula": "X", "elements": [], "natoms_primitive": None},
}

RULEGRAPH = """digraph snakemake_dag {
    graph[bgcolor=white, margin=0];
    node[shape=box, style=rounded, fontname=sans, fontsize=10, penwidth=2];
    edge[penwidth=2, color=grey];
	0[label = "all", color = "0.00 0.6 0.85", style="rounded"];
	1[label = "figures", color = "0.08 0.6 0.85", style="rounded"];
	2[label = "aggregate", color = "0.17 0.6 0.85", style="rounded"];
	3[label = "evaluate_model", color = "0.25 0.6 0.85", style="rounded"];
	4[label = "finetune", color = "0.33 0.6 0.85", style="rounded"];
	5[label = "label", color = "0.42 0.6 0.85", style="rounded"];
	6[label = "rattle", color = "0.50 0.6 0.85", style="rounded"];
	7[label = "structures", color = "0.58 0.6 0.85", style="rounded"];
	8[label = "foundation", color = "0.67 0.6 0.85", style="rounded"];
	9[label = "evaluate_reference", color = "0.75 0.6 0.85", style="rounded"];
	10[label = "report", color = "0.83 0.6 0.85", style="rounded"];
	1 -> 0
	10 -> 0
	2 -> 1
	9 -> 1
	7 -> 1
	3 -> 2
	9 -> 2
	4 -> 3
	9 -> 3
	7 -> 3
	5 -> 4
	8 -> 4
	6 -> 5
	7 -> 6
	7 -> 9
	1 -> 10
}
"""


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def material_tree(workdir: Path, *, missing: bool = False) -> Path:
    """Under ``workdir``, the results layout's structure summaries of every material of STRUCTURES and Cu_bcc's
    reference and model band / surface files (phononft.layout); returns the results root."""
    for mat, st in STRUCTURES.items():
        write_json(workdir / layout.structure(mat, "json"), st)
    write_json(workdir / layout.reference("Cu_bcc", "bands.json"), synthetic_bands(imaginary=True))
    write_json(workdir / layout.reference("Cu_bcc", "surface.json"), synthetic_surface())
    for strat, shift in (("pretrained", -0.12), ("scratch", 0.08), ("naive", 0.03), ("lora", 0.01),
                         ("equitrain", -0.01), ("l2sp", 0.02)):
        if missing and strat == "scratch":
            continue
        b = 0 if strat == "pretrained" else 10
        write_json(workdir / layout.evaluation("Cu_bcc", strat, b, 0, "bands.json"),
                   synthetic_bands(shift=shift, imaginary=strat != "pretrained"))
        write_json(workdir / layout.evaluation("Cu_bcc", strat, b, 0, "surface.json"),
                   synthetic_surface(soft=1 + 3 * shift))
    if missing:  # an unreadable file counts as missing too
        (workdir / layout.evaluation("Cu_bcc", "naive", 10, 0, "surface.json")).write_text("{not json")
    return workdir / layout.RESULTS


def check_outputs(png: Path, pdf: Path) -> None:
    import matplotlib.pyplot as plt

    assert png.stat().st_size > 5_000, png
    assert pdf.stat().st_size > 2_000, pdf
    assert pdf.read_bytes()[:4] == b"%PDF"
    img = plt.imread(png)
    assert img.ndim == 3 and min(img.shape[:2]) > 300
    assert float(img[..., :3].std()) > 0.01, "PNG is uniform"
    assert not list(png.parent.glob(".*.tmp*")), "temporary files left behind"


def outs(tmp_path: Path, name: str) -> tuple[Path, Path]:
    return tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"


@pytest.fixture(params=[False, True], ids=["complete", "with_nan"])
def table_csv(request, tmp_path) -> Path:
    p = tmp_path / "results" / "summary" / "metrics.csv"
    p.parent.mkdir(parents=True)
    synthetic_table(nan=request.param).to_csv(p, index=False)
    return p


# ------------------------------------------------------------------------------------------------ loaders

def test_load_table_normalises(tmp_path):
    p = tmp_path / "m.csv"
    df = synthetic_table().head(20)
    df["value"] = df["value"].astype(object)
    df.loc[0, "value"] = "failed"
    df.to_csv(p, index=False)
    t = data.load_table(p)
    assert np.isnan(t.loc[0, "value"]) and t["budget"].dtype.kind == "i"
    with pytest.raises(ValueError):
        data.load_table(pd.DataFrame({"material": ["a"]}))


def test_load_bands_variants():
    b = bandfiles.load_bands(synthetic_bands())
    assert b.nseg == 5 and b.frequencies[0].shape == (21, 6)
    pos, lab = b.ticks()
    assert lab == ["Γ", "X", "U|K", "Γ", "L", "W"] and len(pos) == 6
    # phonopy style: flat labels + connections; distances restarting per segment; transposed segment
    d = synthetic_bands(labels=(("GAMMA", "X"), ("X", "U"), ("K", "GAMMA")))
    d["labels"] = ["GAMMA", "X", "U", "K", "GAMMA"]
    d["connections"] = [True, False, True]
    d["distances"] = [list(np.asarray(x) - x[0]) for x in d["distances"]]
    d["frequencies"][1] = np.asarray(d["frequencies"][1]).T.tolist()
    b = bandfiles.load_bands(d)
    assert b.ticks()[1] == ["Γ", "X", "U|K", "Γ"]
    assert all(b.distances[i][0] >= b.distances[i - 1][-1] - 1e-9 for i in range(1, 3))
    assert b.frequencies[1].shape == (21, 6)
    # single flat segment, no labels
    b = bandfiles.load_bands({"distances": [0, 1, 2], "frequencies": [[0, 1], [1, 2], [2, 3]]})
    assert b.nseg == 1 and b.ticks()[1] == ["", ""]
    assert bandfiles.pretty_label("X_1") == "X$_{1}$"


def test_load_surface_variants():
    s = bandfiles.load_surface(synthetic_surface())
    assert s.is_2d and s.energy.shape == (13, 11)
    d = synthetic_surface()
    d["energy"] = np.asarray(d["energy"]).T.tolist()
    assert bandfiles.load_surface(d).energy.shape == (13, 11)
    s = bandfiles.load_surface(synthetic_surface(one_d=True))
    assert not s.is_2d and s.energy.shape == (13,)


def evaluate_surface(*, soft: float = 1.0, n_modes: int = 2) -> dict:
    """A surface.json exactly as the evaluate stage writes it: phononft.modes.energy_surface's dict under
    "surface" (one amplitude grid for both modes, energies [i][j] in meV/atom), plus the relaxation."""
    amps = np.linspace(-0.3, 0.3, 9)
    A, B = np.meshgrid(amps, amps, indexing="ij")
    e = soft * (-60 * A ** 2 + 400 * A ** 4) + (-25 * B ** 2 + 500 * B ** 4)
    grid = e.tolist() if n_modes == 2 else (e[:, 4].tolist() if n_modes == 1 else [])
    surface = {"amplitudes": amps.tolist(), "n_modes": n_modes,
               "mode_q": [[0.5, 0.5, 0.0], [0.0, 0.5, 0.0]][:n_modes], "mode_band": [0, 1][:n_modes],
               "mode_frequency": [-0.84, -0.5][:n_modes], "energies_meV_per_atom": grid,
               "surface_min_meV_per_atom": float(np.min(grid)) if n_modes else float("nan"),
               "surface_min_amplitudes": [], "n_atoms_supercell": 54 if n_modes else 0}
    relaxation = {"energy_gain_meV_per_atom": 2.5, "new_phase": True} if n_modes else None
    return {"surface": surface, "relaxation": relaxation,
            "modes_source": {2: "own", 1: "given", 0: "none"}[n_modes]}


def test_load_surface_evaluate_format(tmp_path):
    s = bandfiles.load_surface(evaluate_surface())
    assert s.is_2d and s.energy.shape == (9, 9) and s.amplitude_unit == "Å"
    assert np.allclose(s.a1, s.a2) and s.a1[0] == pytest.approx(-0.3)
    assert s.modes[0]["q"] == [0.5, 0.5, 0.0] and s.modes[1]["frequency"] == -0.5
    # the grid is [i][j] = E(A1 = amplitudes[i], A2 = amplitudes[j]): A1 is the softer mode here
    assert s.energy[0, 4] < s.energy[4, 0]
    # with the normal-mode coordinates the evaluate stage writes (Q = amplitude x sqrt(sum m u^2), amu^1/2 Å),
    # each axis is its mode's Q
    with_q = evaluate_surface()
    scales = [7.5, 3.0]
    with_q["surface"]["Q_axes"] = [[a * k for a in with_q["surface"]["amplitudes"]] for k in scales]
    s = bandfiles.load_surface(with_q)
    assert s.amplitude_unit == "amu$^{1/2}$ Å"
    assert s.a1[0] == pytest.approx(-0.3 * 7.5) and s.a2[-1] == pytest.approx(0.3 * 3.0)
    s = bandfiles.load_surface(write_json(tmp_path / "one.json", evaluate_surface(n_modes=1)))
    assert not s.is_2d and s.energy.shape == (9,)
    with pytest.raises(ValueError, match="no energy surface"):
        bandfiles.load_surface(evaluate_surface(n_modes=0))
    with pytest.warns(UserWarning, match="surface unreadable"):
        assert bandfiles.maybe_surface(evaluate_surface(n_modes=0)) is None


def test_fig05_evaluate_format(tmp_path):
    png, pdf = outs(tmp_path, "fig05_eval")
    bands.fig05_imaginary_modes(synthetic_bands(imaginary=True),
                                {"pretrained": synthetic_bands(shift=-0.1), "lora (N=10)": synthetic_bands()},
                                evaluate_surface(),
                                {"pretrained": evaluate_surface(soft=0.5), "lora (N=10)": evaluate_surface(soft=1.1)},
                                png, pdf, material="Cu_bcc")
    check_outputs(png, pdf)


def test_pooled_rows_are_not_a_material(tmp_path):
    df = synthetic_table()
    pooled = pd.DataFrame([{"material": "all", "strategy": "lora", "budget": 10, "seed": 0,
                            "metric": "new_phase_f1", "value": 1.0, "unit": "1"}])
    assert "all" not in set(data.material_rows(pd.concat([df, pooled], ignore_index=True))["material"])


def test_deviation_and_target_helpers():
    df = synthetic_table()
    d = data.deviations(df, "heat_capacity", 10)
    assert set(d["strategy"]) == set(style.STRATEGY_ORDER) and d["deviation"].abs().max() < 100
    mb = data.min_budget_to_target(df, "rmse", 0.3)
    assert set(mb["status"]) <= {"reached", "not reached", "n/a"}
    assert (mb.loc[mb["status"] == "reached", "min_budget"] >= 0).all()
    nan = data.min_budget_to_target(synthetic_table(nan=True), "rmse", 0.3)
    assert (nan.loc[nan["strategy"] == "multihead", "status"] == "n/a").all()


def test_parse_dot():
    nodes, edges = rulegraph.parse_dot(RULEGRAPH)
    assert nodes["0"] == "all" and len(nodes) == 11 and ("7", "9") in edges and len(edges) == 16
    nodes, edges = rulegraph.parse_dot('digraph g { a -> b -> c; b [label = "B b"]; }')  # chains, labels
    assert nodes == {"a": "a", "b": "B b", "c": "c"} and edges == [("a", "b"), ("b", "c")]
    assert rulegraph.parse_dot("digraph snakemake_dag {}") == ({}, [])


def crossings(drawing: rulegraph.GraphLayout) -> list[tuple[str, str, str]]:
    """(edge source, edge target, box) for every edge that runs through a box other than its own ends'."""
    found = []
    for a, b, line in drawing.edges:
        pts = np.asarray(line)
        t = np.linspace(0, 1, 200)[:, None]
        samples = np.concatenate([p + t * (q - p) for p, q in zip(pts[:-1], pts[1:])])
        for n, (x, y, w, h) in drawing.boxes.items():
            inside = (np.abs(samples[:, 0] - x) < w / 2 - 1e-6) & (np.abs(samples[:, 1] - y) < h / 2 - 1e-6)
            if inside.any() and n not in (a, b):
                found.append((a, b, n))
    return found


@pytest.mark.parametrize("simplify", [True, False], ids=["figures_merged", "as_is"])
def test_layered_layout_no_edge_through_a_box(simplify):
    nodes, edges = rulegraph.parse_dot(RULEGRAPH)
    if simplify:
        nodes, edges = rulegraph.collapse_graph(nodes, edges, groups={rulegraph.FIGURE_RULES: "figures ({n})"},
                                                drop=rulegraph.DROPPED_RULES)
    drawing = rulegraph.layered_layout(nodes, edges)
    assert set(drawing.boxes) == set(nodes) and len(drawing.edges) == len(set(edges))
    assert not crossings(drawing)
    # layered: every edge goes down, from its source's bottom to its target's top, boxes apart in a layer
    for a, b, line in drawing.edges:
        (xa, ya, wa, ha), (xb, yb, wb, hb) = drawing.boxes[a], drawing.boxes[b]
        assert yb > ya and line[0][1] == pytest.approx(ya + ha / 2) and line[-1][1] == pytest.approx(yb - hb / 2)
        assert abs(line[0][0] - xa) < wa / 2 and abs(line[-1][0] - xb) < wb / 2
    rows: dict[float, list] = {}
    for x, y, w, _ in drawing.boxes.values():
        rows.setdefault(y, []).append((x - w / 2, x + w / 2))
    for row in rows.values():
        row.sort()
        assert all(right < left for (_, right), (left, _) in zip(row, row[1:]))
    # the check itself finds an edge drawn straight through a box in its way
    a, b, line = next((a, b, line) for a, b, line in drawing.edges if len(line) > 2)
    broken = rulegraph.GraphLayout(drawing.labels, drawing.boxes, [(a, b, [line[0], line[-1]])], drawing.fontsize)
    middle = [n for n, (x, y, w, h) in drawing.boxes.items() if drawing.boxes[a][1] < y < drawing.boxes[b][1]]
    broken.boxes[middle[0]] = ((line[0][0] + line[-1][0]) / 2, (line[0][1] + line[-1][1]) / 2, 20.0, 10.0)
    assert crossings(broken) == [(a, b, middle[0])]


def test_strategy_style():
    assert style.strategy_style("lora") == ("lora", "#d62728", "P")
    assert style.strategy_style("reference")[1:] == ("#000000", "*")
    label, color, marker = style.strategy_style("adapter_x")  # unknown: own name, a stable colour, a circle
    assert label == "adapter_x" and marker == "o" and color == style.strategy_style("adapter_x")[1]
    assert style.strategy_color("lora (N=10)") == "#d62728" and style.strategy_marker("naive (N=2)") == "D"
    assert len({style.strategy_style(s)[1] for s in style.STRATEGY_ORDER}) == len(style.STRATEGY_ORDER)
    assert style.ordered_strategies(["zeta", "lora", "reference", "pretrained"]) == ["pretrained", "lora", "zeta"]


# ------------------------------------------------------------------------------------------------ figures

def test_budget_curves(table_csv, tmp_path):
    png, pdf = outs(tmp_path, "curves")
    budget.fig13_budget_curves(table_csv, png, pdf)
    check_outputs(png, pdf)
    png, pdf = outs(tmp_path, "curves_one")
    budget.fig13_budget_curves(table_csv, png, pdf, material="Cu", metrics=("rmse",))
    check_outputs(png, pdf)


def test_fig01_overview(tmp_path, monkeypatch):
    monkeypatch.setattr(rulegraph.shutil, "which", lambda name: None)  # the matplotlib fallback
    png, pdf = outs(tmp_path, "fig01")
    overview.fig01_overview(RULEGRAPH, png, pdf)
    check_outputs(png, pdf)
    dot = tmp_path / "rulegraph.dot"
    dot.write_text(RULEGRAPH)
    overview.fig01_overview(dot, png, pdf)
    check_outputs(png, pdf)
    overview.fig01_overview("digraph snakemake_dag {}", png, pdf)  # empty graph: marked n/a
    check_outputs(png, pdf)


@pytest.mark.skipif(rulegraph.shutil.which("dot") is None, reason="graphviz dot not installed")
def test_fig01_overview_graphviz(tmp_path):
    png, pdf = outs(tmp_path, "fig01_dot")
    overview.fig01_overview(RULEGRAPH, png, pdf)
    check_outputs(png, pdf)


def test_fig02_and_fig07_dataset(tmp_path):
    material_tree(tmp_path)
    paths = [tmp_path / layout.structure(m, "json") for m in STRUCTURES]
    # each summary counts for its own material (the folder above structures/ in the layout)
    assert list(data.load_structures(paths)) == list(STRUCTURES)
    png, pdf = outs(tmp_path, "fig02")
    dataset.fig02_dataset(paths, png, pdf)
    check_outputs(png, pdf)
    png, pdf = outs(tmp_path, "fig07")
    dataset.fig07_element_heatmap(STRUCTURES, png, pdf)
    check_outputs(png, pdf)
    assert dataset.periodic_position(29) == (4, 11) and dataset.periodic_position(57) == (9, 3)
    assert dataset.periodic_position(118) == (7, 18) and dataset.periodic_position(8) == (2, 16)


def test_fig03_fig09_deviation(table_csv, tmp_path):
    png, pdf = outs(tmp_path, "fig03")
    deviations.fig03_property_deviation(table_csv, png, pdf, budget=10)
    check_outputs(png, pdf)
    png, pdf = outs(tmp_path, "fig09")
    deviations.fig09_thermal_deviation(table_csv, png, pdf)
    check_outputs(png, pdf)
    png, pdf = outs(tmp_path, "fig09b")
    deviations.fig09_thermal_deviation(table_csv, png, pdf, budget=5)
    check_outputs(png, pdf)


@pytest.mark.parametrize("missing", [False, True], ids=["complete", "missing"])
def test_band_figures(tmp_path, missing):
    root = material_tree(tmp_path, missing=missing)
    ref_bands = tmp_path / layout.reference("Cu_bcc", "bands.json")
    ref_surface = tmp_path / layout.reference("Cu_bcc", "surface.json")
    model_bands = bandfiles.eval_files(root, "Cu_bcc", budget=10)
    surfaces = bandfiles.eval_files(root, "Cu_bcc", budget=10, filename="surface.json")
    assert model_bands["frozen (N=10)"] is None and model_bands["pretrained"] is not None
    assert (model_bands["scratch (N=10)"] is None) == missing
    png, pdf = outs(tmp_path, "fig04")
    bands.fig04_band_section(ref_bands, model_bands, png, pdf, segments=(0, 2), material="Cu (bcc)")
    check_outputs(png, pdf)
    png, pdf = outs(tmp_path, "fig10")
    bands.fig10_band_grid(ref_bands, model_bands, png, pdf, material="Cu (bcc)",
                          annotations={"lora (N=10)": "RMSE 0.02 THz"})
    check_outputs(png, pdf)
    png, pdf = outs(tmp_path, "fig05")
    with pytest.warns(UserWarning, match="surface unreadable") if missing else contextlib.nullcontext():
        bands.fig05_imaginary_modes(ref_bands, model_bands, ref_surface, surfaces, png, pdf, material="Cu (bcc)")
    check_outputs(png, pdf)


def test_rmse_notes_of_the_band_grid():
    """fig10's panel notes: each model's band RMSE at the figure budget and seed (pretrained at 0), from the table."""
    df = synthetic_table(nan=True)
    notes = bands.rmse_notes(df, "Cu", ["pretrained", "lora", "multihead"], budget=10, seed=1)
    for s, b, label in (("pretrained", 0, "pretrained"), ("lora", 10, "lora (N=10)")):
        row = df[(df.material == "Cu") & (df.metric == "rmse") & (df.strategy == s) & (df.budget == b) & (df.seed == 1)]
        if row["value"].notna().all():
            assert notes[label] == f"RMSE {row['value'].iloc[0]:.3f} THz"
        else:
            assert label not in notes
    assert "multihead (N=10)" not in notes  # failed everywhere: no note


def test_fig05_one_mode(tmp_path):
    png, pdf = outs(tmp_path, "fig05_1d")
    bands.fig05_imaginary_modes(synthetic_bands(imaginary=True), {"lora (N=10)": synthetic_bands(shift=0.02)},
                                synthetic_surface(one_d=True),
                                {"lora (N=10)": synthetic_surface(soft=1.1, one_d=True), "naive (N=10)": None},
                                png, pdf, segments=(0, 3))
    check_outputs(png, pdf)


def test_fig06_cost(table_csv, tmp_path):
    png, pdf = outs(tmp_path, "fig06")
    cost.fig06_cost(table_csv, png, pdf, metric="rmse", target=0.25)
    check_outputs(png, pdf)


def test_fig08_fig11_validation(table_csv, tmp_path):
    png, pdf = outs(tmp_path, "fig08")
    validation.fig08_validation_errors(table_csv, png, pdf)
    check_outputs(png, pdf)
    png, pdf = outs(tmp_path, "fig11")
    validation.fig11_validation_per_material(table_csv, png, pdf, budget=10)
    check_outputs(png, pdf)


def test_all_nan_table_does_not_crash(tmp_path):
    df = synthetic_table()
    df["value"] = np.nan
    for name, fn, kw in (("c", budget.fig13_budget_curves, {}), ("f3", deviations.fig03_property_deviation, {}),
                         ("f6", cost.fig06_cost, {}), ("f8", validation.fig08_validation_errors, {}),
                         ("f9", deviations.fig09_thermal_deviation, {}),
                         ("f11", validation.fig11_validation_per_material, {})):
        png, pdf = outs(tmp_path, name)
        fn(df, png, pdf, **kw)
        assert png.stat().st_size > 0 and pdf.stat().st_size > 0


def selection_table() -> pd.DataFrame:
    """The synthetic table with an ``fps`` selection whose trained models are 40 % better than random's."""
    df = synthetic_table().assign(selection="random")
    fps = df[~df["strategy"].isin(["reference", "pretrained"])].copy()
    fps["selection"] = "fps"
    errors = fps["metric"].isin(["rmse", "mae", "phonon_rmse", "force_mae"])
    fps.loc[errors, "value"] *= 0.6
    return pd.concat([df, fps], ignore_index=True)


def test_selection_axis_in_cost_and_budget_figures(tmp_path, monkeypatch):
    """fig06, fig12 and fig13 draw every selection of the table (issue 17: results side by side)."""
    df = selection_table()
    rnd = data.min_budget_to_target(df, "rmse", 0.25)
    fps = data.min_budget_to_target(df, "rmse", 0.25, selection="fps")
    both = rnd.merge(fps, on=["material", "strategy"], suffixes=("_random", "_fps"))
    trained = both[both["strategy"] != "pretrained"]
    assert len(trained) and (trained["min_budget_fps"].fillna(99) <= trained["min_budget_random"].fillna(99)).all()
    assert (trained["min_budget_fps"].fillna(99) < trained["min_budget_random"].fillna(99)).any()
    drawn = {}

    def keep(fig, png, pdf):
        drawn[Path(png).stem] = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
        style.save(fig, png, pdf)

    for module, name, draw in ((cost, "fig06", cost.fig06_cost), (budget, "fig12", budget.fig12_selection),
                               (budget, "fig13", budget.fig13_budget_curves)):
        monkeypatch.setattr(module, "save", keep)
        png, pdf = outs(tmp_path, name)
        draw(df, png, pdf) if name == "fig13" else draw(df, png, pdf, metric="rmse", target=0.25)
        check_outputs(png, pdf)
    assert {"random", "fps"} <= set(drawn["fig06"]) and {"random", "fps"} <= set(drawn["fig13"])
    # one selection only: no selection legend entries
    png, pdf = outs(tmp_path, "fig13_random")
    budget.fig13_budget_curves(synthetic_table(), png, pdf)
    assert "fps" not in drawn["fig13_random"] and "random" not in drawn["fig13_random"]

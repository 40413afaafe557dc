"""The one definition of every metric in ``results/summary/metrics.csv``: name, unit, meaning.

The tidy table (:mod:`phononft.summary`) has one row per material x strategy x selection x budget x seed x metric
(columns ``material, strategy, selection, budget, seed, metric, value, unit, status``).  Each :class:`Metric` here says what
one metric name (or a family of names, ``pattern``) means, its ``unit`` (the table's ``unit`` column,
:func:`unit_of`), whether lower or higher is better, and how the figures aggregate seeds.  ``docs/metrics.md``
is generated from this module (``python tools/write_metrics_doc.py``; a test fails when they differ), and
:func:`undocumented` lists table metrics that have no entry.

Conventions used throughout: *reference* = the labeller (EMT mock, VASP-PBE, or a precomputed DFT
``phonopy.yaml``), evaluated with the same code as the models; *model row* = a fine-tuned (or zero-shot)
MACE model compared with that reference.  Frequencies are in THz, imaginary ones negative (phonopy).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["FAMILIES", "METRICS", "Metric", "entry", "markdown", "undocumented", "unit_of", "unused"]

#: Seed aggregation of most metrics in the figures and the README (``phononft.figures.summarise``).
MEDIAN_IQR = "median, IQR"
_DEVIATION = ("100 (model - ref) / abs(ref) per seed, median over seeds (fig03; fig09: then median and IQR "
              "of abs(deviation) over materials)")
_VALIDATION = "median, IQR over materials x seeds (fig08); per material over seeds (fig11)"
_BOOLEAN = "0/1 per seed; a median over seeds is the majority"

#: Families in document order: id -> heading.
FAMILIES = {
    "phonons": "Phonons (benchmark columns)",
    "thermal": "Thermal properties",
    "elastic": "Elastic, EOS and Slack properties",
    "modes": "Imaginary modes and phases",
    "errors": "Energy, force and stress errors",
    "cost": "Cost",
    "training": "Training",
}


@dataclass(frozen=True)
class Metric:
    """One metric of the tidy table.

    ``name``: the metric name, or for a ``pattern`` entry a readable stand-in (``C<ij>``); ``pattern``:
    a regular expression every name of the family matches in full; ``better``: ``lower``, ``higher``,
    ``closer`` (to the reference's value), ``same`` (as the reference's category) or ``""`` (not a score);
    ``twin``: model rows also carry ``benchmark_<name>``, the reference's value computed inside the same
    comparison; ``seeds``: how figures and README aggregate seeds.
    """

    name: str
    unit: str
    family: str
    better: str
    description: str
    pattern: str | None = None
    twin: bool = False
    seeds: str = MEDIAN_IQR

    def matches(self, metric: str) -> bool:
        return re.fullmatch(self.pattern, metric) is not None if self.pattern else metric == self.name


def _m(name, unit, family, better, description, **kw) -> Metric:
    return Metric(name, unit, family, better, description, **kw)


_PH, _TH, _EL, _MO, _ER, _CO, _TR = FAMILIES
_BAND = ("along the seekpath (HPKOT) high-symmetry path of the reference's primitive cell, "
         "``phonons.band_points`` points per segment, frequencies sorted at each q before differencing")
_MESH = ("on the ``phonons.mesh`` Monkhorst-Pack mesh (20x20x20 in the paper settings; half-shifted for even "
         "meshes) reduced by symmetry, q-points weighted, frequencies sorted at each q (``convention: benchmark``: "
         "each phonon on its own irreducible mesh, both on the full mesh when the reductions differ)")

METRICS: tuple[Metric, ...] = (
    # ---------------------------------------------------------------- phonons (benchmark columns)
    _m("rmse", "THz", _PH, "lower", f"Band-structure RMSE of the model's frequencies against the reference's {_BAND}. "
       "The study's headline error (fig06 target: 0.1 THz).", seeds=MEDIAN_IQR + "; fig06: first budget whose seed "
       "median is below the target"),
    _m("mae", "THz", _PH, "lower", "Band-structure mean absolute error on the points of ``rmse``."),
    _m("r2", "1", _PH, "higher", "Coefficient of determination 1 - SS_res/SS_tot of the band frequencies (same points "
       "as ``rmse``), reference as the truth; 1 is perfect."),
    _m("rmse_matched", "THz", _PH, "lower", "Band RMSE with modes paired by eigenvector overlap (Hungarian "
       "assignment) instead of frequency order, on the reference's path mapped to the model's primitive basis; "
       ">= ``rmse``; the excess measures mode-character (branch-crossing) errors. NaN when the primitive cells "
       "hold different atoms."),
    _m("phonon_rmse", "THz", _PH, "lower", f"RMSE of model vs reference frequencies over the Brillouin zone, {_MESH}."),
    _m("phonon_mae", "THz", _PH, "lower", "Mean absolute frequency error over the Brillouin zone, on the mesh of "
       "``phonon_rmse``."),
    _m("phonon_scaled_rmse", "THz", _PH, "lower", "Mesh RMSE after scaling all model frequencies by "
       "max(f_ref)/max(f_model): the error in the shape of the spectrum once the overall stiffness is corrected."),
    _m("phonon_rrmse", "1", _PH, "lower", "``phonon_scaled_rmse`` divided by the RMS of the reference mesh "
       "frequencies; this (scaled) definition reproduces the published benchmark numbers."),
    _m("phonon_rrmse_unscaled", "1", _PH, "lower", "``phonon_rmse`` divided by the RMS of the reference mesh "
       "frequencies (the presumably intended relative RMSE)."),
    _m("dos_overlap", "1", _PH, "higher", "Overlap of the phonon DOS of model and reference on the mesh: integral "
       "of min(g_ref, g_model) with both normalised to 1, Gaussian smearing 0.05 THz; 1 = identical, 0 = disjoint."),
    _m("min_frequency", "THz", _PH, "closer", "Lowest frequency on the band path, acoustic modes at Gamma included "
       "(negative = imaginary).", twin=True),
    _m("max_frequency", "THz", _PH, "closer", "Highest frequency on the band path.", twin=True),
    _m("mean_frequency", "THz", _PH, "closer", "Weighted mean of the positive mesh frequencies. Model rows "
       "(``convention: benchmark``, as published): of the model frequencies scaled by max(f_ref)/max(f_model), "
       "a quirk of the benchmark; the model's own mean is ``mean_frequency_unscaled``.", twin=True),
    _m("mean_frequency_unscaled", "THz", _PH, "closer", "The model's own weighted mean positive mesh frequency "
       "(compare with ``benchmark_mean_frequency``)."),
    _m("volume", "Å^3", _PH, "closer", "Volume of the relaxed primitive cell (phonopy's primitive cell of the "
       "relaxed unit cell).", twin=True),
    _m("rmsd", "1", _PH, "lower", "RMS distance between model- and reference-relaxed primitive cells from "
       "pymatgen's default StructureMatcher (lattices scaled to equal volume, distances divided by "
       "(V/n_sites)^(1/3), hence dimensionless); NaN when they do not match."),
    _m("maxd", "1", _PH, "lower", "Largest paired-site distance of the same StructureMatcher match, normalised "
       "like ``rmsd`` (dimensionless, although the benchmark's README labels it Å)."),
    _m("spacegroup_number", "1", _PH, "same", "International space-group number (spglib, symprec 1e-4) of the "
       "relaxed unit cell; differs from the reference's when the model relaxes into another phase.", twin=True,
       seeds=MEDIAN_IQR + " (a category: compare per seed)"),
    _m("relax_converged", "1", _PH, "", "1 when the relaxation before the phonon calculation (cell and "
       "positions, symmetry kept; VASP: twice, as the benchmark) reached ``phonons.relax_fmax`` within "
       "``phonons.relax_steps``; absent for a precomputed reference (its cell is kept).", seeds=_BOOLEAN),
    _m("benchmark_<name>", "as <name>", _PH, "", "On model rows, the reference's value of <name> computed inside "
       "the same comparison (same mesh, path and settings), as in the published benchmark's columns; exists for "
       "every metric marked twin. The reference's own rows carry the same quantities without the prefix.",
       pattern=r"benchmark_.+", seeds="as <name>"),
    # ---------------------------------------------------------------- thermal
    _m("heat_capacity", "J/K/mol", _TH, "closer", "Harmonic isochoric heat capacity C_V at ``phonons.temperature`` "
       "(300 K) from the mesh frequencies (modes with f > 0 only, phonopy's constants), per mole of primitive "
       "cells (phonopy's convention).", twin=True, seeds=_DEVIATION),
    _m("entropy", "J/K/mol", _TH, "closer", "Harmonic vibrational entropy S at ``phonons.temperature`` (300 K) from "
       "the mesh, per mole of primitive cells.", twin=True, seeds=_DEVIATION),
    _m("free_energy", "kJ/mol", _TH, "closer", "Harmonic Helmholtz free energy F at ``phonons.temperature`` (300 K) "
       "from the mesh, zero-point energy included, per mole of primitive cells.", twin=True, seeds=_DEVIATION),
    _m("k_diff_high_temp_limit", "W/m/K", _TH, "closer", "Agne et al.'s diffusive (minimum) thermal conductivity in "
       "the high-temperature limit, 2 n^(1/3) k_B <f> with n the atom number density of the primitive cell and "
       "<f> = ``mean_frequency`` (so scaled on model rows, as published); independent of temperature.", twin=True),
    _m("temperature", "K", _TH, "", "Temperature of the thermal properties (``phonons.temperature``), a setting."),
    # ---------------------------------------------------------------- elastic / EOS / Slack
    _m("bulk_modulus_eos", "GPa", _EL, "closer", "Bulk modulus from a third-order Birch-Murnaghan fit (ASE) of "
       "E(V) on an isotropic scan of +-3 % linear strain (7 points, fixed fractional positions) around the "
       "structure relaxed with the same calculator (the reference's too: with the labeller, VASP included)."),
    _m("v0_per_atom", "Å^3", _EL, "closer", "Equilibrium volume per atom of the same EOS fit."),
    _m("e0_per_atom", "eV/atom", _EL, "", "Minimum energy per atom of the EOS fit (absolute energies of "
       "different calculators are not comparable)."),
    _m("bprime", "1", _EL, "closer", "Pressure derivative of the bulk modulus, dB/dP, of the EOS fit."),
    _m("C<ij>", "GPa", _EL, "closer", "Elastic constants C11 ... C66 (Voigt notation, upper triangle) by central "
       "finite stress-strain differences at +-0.5 % strain (``elastic_delta``), ions relaxed in each strained "
       "cell, ASE stress sign (C = d sigma / d epsilon, engineering shear strain), symmetrised.",
       pattern=r"C(1[1-6]|2[2-6]|3[3-6]|4[4-6]|5[56]|66)"),
    _m("cij_min_eigenvalue", "GPa", _EL, "closer", "Smallest eigenvalue of the 6x6 elastic matrix; > 0 means Born "
       "(mechanically) stable."),
    _m("mechanically_stable", "1", _EL, "same", "1 when every eigenvalue of the elastic matrix is positive.",
       seeds=_BOOLEAN),
    _m("cij_asymmetry", "GPa", _EL, "lower", "Largest abs(C_ij - C_ji) before symmetrisation, a numerical-quality "
       "check of the finite differences."),
    _m("bulk_modulus_voigt", "GPa", _EL, "closer", "Voigt (uniform strain) bound of the bulk modulus from C_ij."),
    _m("bulk_modulus_reuss", "GPa", _EL, "closer", "Reuss (uniform stress) bound of the bulk modulus from S = C^-1."),
    _m("bulk_modulus_vrh", "GPa", _EL, "closer", "Voigt-Reuss-Hill bulk modulus (mean of both bounds).",
       seeds=_DEVIATION),
    _m("shear_modulus_voigt", "GPa", _EL, "closer", "Voigt bound of the shear modulus from C_ij."),
    _m("shear_modulus_reuss", "GPa", _EL, "closer", "Reuss bound of the shear modulus from S = C^-1."),
    _m("shear_modulus_vrh", "GPa", _EL, "closer", "Voigt-Reuss-Hill shear modulus.", seeds=_DEVIATION),
    _m("youngs_modulus", "GPa", _EL, "closer", "Young's modulus 9KG/(3K+G) from the Hill moduli."),
    _m("poisson_ratio", "1", _EL, "closer", "Poisson ratio (3K-2G)/(2(3K+G)) from the Hill moduli."),
    _m("density", "kg/m^3", _EL, "closer", "Mass density of the relaxed cell."),
    _m("v_longitudinal", "m/s", _EL, "closer", "Longitudinal sound velocity sqrt((K+4G/3)/rho) of the isotropic "
       "aggregate (Hill moduli); NaN if G <= 0."),
    _m("v_transverse", "m/s", _EL, "closer", "Transverse sound velocity sqrt(G/rho); NaN if G <= 0."),
    _m("v_mean", "m/s", _EL, "closer", "Mean sound velocity [(2/v_t^3 + 1/v_l^3)/3]^(-1/3)."),
    _m("debye_temperature", "K", _EL, "closer", "Debye temperature from the mean sound velocity (Anderson), "
       "(hbar/k_B) v_m (6 pi^2 n)^(1/3), n = atoms per volume.", seeds=_DEVIATION),
    _m("debye_temperature_acoustic", "K", _EL, "closer", "Acoustic Debye temperature theta_D n_prim^(-1/3) used "
       "by the Slack formula (n_prim = atoms per primitive cell)."),
    _m("gruneisen_slack", "1", _EL, "closer", "Acoustic Grüneisen parameter from the Poisson ratio, "
       "3(1+nu)/(2(2-3nu)) (Sanditov and Belomestnykh)."),
    _m("kappa_slack", "W/m/K", _EL, "closer", "Lattice thermal conductivity from the Slack formula (Morelli and "
       "Slack 2006) at ``kappa_temperature``, from the acoustic Debye temperature, Grüneisen parameter, mean "
       "atomic mass and volume per atom.", seeds=_DEVIATION),
    _m("slack_A", "W/m/K/(amu K^3 Å)", _EL, "", "Slack's prefactor A(gamma) used in ``kappa_slack``."),
    _m("kappa_temperature", "K", _EL, "", "Temperature of ``kappa_slack`` (``phonons.temperature``), a setting."),
    _m("atoms_per_primitive_cell", "1", _EL, "same", "Atoms in the spglib primitive cell (symprec 1e-3) of the "
       "relaxed structure."),
    _m("mean_atomic_mass", "amu", _EL, "", "Mean atomic mass of the structure (same for every model)."),
    _m("elastic_delta", "1", _EL, "", "Finite strain of the C_ij differences (a setting, 0.005)."),
    _m("elastic_cells", "1", _EL, "", "Strained cells computed for the elastic tensor (a symmetry-reduced set: 4 "
       "for cubic crystals, 12 for triclinic ones)."),
    _m("ionic_relaxation_steps", "1", _EL, "", "Relaxation steps summed over the strained cells (0 when symmetry "
       "keeps the forces zero)."),
    # ---------------------------------------------------------------- imaginary modes and phases
    _m("has_imaginary", "1", _MO, "same", "1 when a frequency on the band path or mesh is below "
       "``phonons.imaginary_threshold`` (-0.1 THz), ignoring the three acoustic modes within 0.05 1/Å of Gamma.",
       twin=True, seeds=_BOOLEAN),
    _m("min_frequency_nonacoustic", "THz", _MO, "closer", "Lowest frequency over band path and mesh with the "
       "acoustic modes near Gamma excluded (negative = imaginary).", twin=True),
    _m("imaginary_fraction", "1", _MO, "closer", "Fraction of q-points (band path + mesh) with an imaginary "
       "mode.", twin=True),
    _m("imaginary_threshold", "THz", _MO, "", "``phonons.imaginary_threshold``, a setting."),
    _m("imaginary_commensurate", "1", _MO, "same", "1 when an imaginary mode exists at a q-point commensurate "
       "with the phonopy supercell, acoustic modes at Gamma excluded; the two most imaginary are probed by the "
       "energy surface and the relaxations below, on the smallest supercell commensurate with them and at least "
       "``evaluate.imaginary.supercell_min_length`` (5 Å) long (models: the reference's modes).",
       seeds=_BOOLEAN),
    _m("surface_well", "1", _MO, "same", "1 when the energy surface along the probed modes goes more than "
       "0.01 meV/atom below the undistorted cell (an anharmonic well): what tells a spurious well of a model "
       "from a harmonic, rising surface.", seeds=_BOOLEAN),
    _m("n_relax_starts", "1", _MO, "", "Symmetry-distinct starting points of the relaxations along the modes "
       "(mode 1, mode 2 and their sum, both signs, at each of ``evaluate.imaginary.relax_amplitudes``)."),
    _m("mode_relax_converged", "1", _MO, "", "1 when the lowest-energy relaxation along the modes reached "
       "``evaluate.imaginary.fmax``.", seeds=_BOOLEAN),
    _m("n_imaginary_modes", "1", _MO, "closer", "Number of (q, branch) pairs below the threshold at those "
       "commensurate q-points."),
    _m("min_imaginary_frequency", "THz", _MO, "closer", "Most negative frequency at the commensurate q-points; "
       "NaN when there is none."),
    _m("surface_min_meV_per_atom", "meV/atom", _MO, "closer", "Minimum of the energy surface along the (up to two) "
       "most imaginary modes of the reference (the model's own if the reference has none), amplitudes up to "
       "``evaluate.imaginary.amplitude_max`` Å of the largest atomic displacement, fixed cell, relative to the "
       "undistorted supercell (<= 0 when the grid contains amplitude 0); NaN without modes."),
    _m("energy_gain_meV_per_atom", "meV/atom", _MO, "closer", "E_undistorted - E_final per atom after relaxing "
       "positions and cell from the supercell displaced along the modes (> 0: a lower-energy structure exists)."),
    _m("final_volume_change", "1", _MO, "closer", "Relative volume change V_final/V_start - 1 of that relaxation."),
    _m("new_phase", "1", _MO, "same", "1 when that relaxation ends in another space-group number than the start "
       "(spglib, symprec 0.1); 0 also when there was nothing to probe.", seeds=_BOOLEAN),
    _m("new_phase_strict", "1", _MO, "same", "As ``new_phase`` at symprec 1e-3.", seeds=_BOOLEAN),
    _m("final_spacegroup_number", "1", _MO, "same", "Space-group number (symprec 0.1) of the relaxed end point; "
       "only where a relaxation ran."),
    _m("same_final_phase", "1", _MO, "higher", "Model rows: 1 when ``final_spacegroup_number`` equals the "
       "reference's for that material (space-group numbers only, not structures).", seeds=_BOOLEAN),
    _m("new_phase_precision", "1", _MO, "higher", "Material ``all``: precision of the model's ``new_phase`` "
       "against the reference's over the materials both have, per strategy x budget x seed; 1 when the model "
       "predicts no new phase.", seeds="one value per seed over all materials; median, IQR over seeds"),
    _m("new_phase_recall", "1", _MO, "higher", "Material ``all``: recall of ``new_phase``; 1 when the reference "
       "has no new phase.", seeds="one value per seed over all materials; median, IQR over seeds"),
    _m("new_phase_f1", "1", _MO, "higher", "Material ``all``: F1 = 2PR/(P+R) of ``new_phase``; 1 exactly when "
       "model and reference agree on every material.",
       seeds="one value per seed over all materials; median, IQR over seeds"),
    _m("phase_precision_<t>", "1", _MO, "higher", "Material ``all``: the study's phase metric: per material the "
       "*set* of phases the relaxations along the imaginary modes end in (space groups at spglib tolerance t = "
       "1e-3 or 1e-1; several starts: each mode and their sum, both signs, several amplitudes), "
       "precision = sum_m |S_model & S_ref| / sum_m |S_model| pooled over materials, per strategy x budget x "
       "seed.", pattern=r"phase_precision_1e-[13]", seeds="one value per seed over all materials; median, IQR over seeds"),
    _m("phase_recall_<t>", "1", _MO, "higher", "Material ``all``: recall of the phase sets, sum_m |S_model & "
       "S_ref| / sum_m |S_ref|.", pattern=r"phase_recall_1e-[13]",
       seeds="one value per seed over all materials; median, IQR over seeds"),
    # ---------------------------------------------------------------- energy / force / stress errors
    _m("general_energy_mae", "meV/atom", _ER, "lower", "Forgetting: energy MAE per atom on the general set "
       "(``results/replay/general.extxyz``: the demo foundation's validation split, else a seeded sample of the "
       "foundation's pretraining data), data unlike the material's; the foundation's own value is the zero-shot "
       "row's.", seeds=_VALIDATION),
    _m("general_force_mae", "meV/Å", _ER, "lower", "Forgetting: force-component MAE on the general set.",
       seeds=_VALIDATION),
    _m("general_stress_mae", "GPa", _ER, "lower", "Forgetting: stress-component MAE on the general set.",
       seeds=_VALIDATION),
    _m("general_n_test", "1", _ER, "", "Structures in the general set."),
    _m("energy_mae", "meV/atom", _ER, "lower", "Mean absolute error of the energy per atom on the held-out test "
       "split of rattled supercells, labeller as the truth.", seeds=_VALIDATION),
    _m("force_mae", "meV/Å", _ER, "lower", "Mean absolute error of the force components on the test split.",
       seeds=_VALIDATION),
    _m("stress_mae", "GPa", _ER, "lower", "Mean absolute error of the six Voigt stress components on the test "
       "split (ASE sign); NaN without stress labels.", seeds=_VALIDATION),
    _m("n_test", "1", _ER, "", "Number of test structures behind the three MAEs."),
    # ---------------------------------------------------------------- cost
    _m("reference_calculations", "1", _CO, "lower", "Reference calculations a result needs. Model rows: the "
       "budget N (labelled training structures); reference rows: the displaced supercells of its "
       "finite-displacement phonon run. fig06 compares the two."),
    _m("property_calculations", "1", _CO, "lower", "Calculations of every property of this row's calculator: "
       "the relaxation, phonopy's displaced supercells, the EOS scan and strained cells of the elastic "
       "tensor, the energy surface and the relaxations along the imaginary modes (for the reference: VASP "
       "jobs on the real path)."),
    _m("eval_seconds", "s", _CO, "lower", "Wall time of the evaluate stage for this model (relaxation, phonons, "
       "comparison, test errors, elastic and mode analyses) or for the reference."),
    _m("evaluate_wall_seconds", "s", _CO, "lower", "Same as ``eval_seconds`` (model rows), named per stage."),
    _m("evaluate_cpu_seconds", "s", _CO, "lower", "CPU time of that evaluation (all threads)."),
    _m("train_seconds", "s", _CO, "lower", "Wall time of the fine-tuning job for this model (budget subset, "
       "training, export); near 0 for ``pretrained``."),
    _m("finetune_wall_seconds", "s", _CO, "lower", "Same as ``train_seconds``, named per stage."),
    _m("finetune_cpu_seconds", "s", _CO, "lower", "CPU time of the fine-tuning (this process and mace_run_train)."),
    _m("label_wall_seconds", "s", _CO, "lower", "Wall time of labelling the material's training series (Snakemake "
       "benchmark files) times N / largest budget: the share of labelling this budget uses."),
    _m("label_cpu_seconds", "s", _CO, "lower", "CPU time of labelling, scaled like ``label_wall_seconds``."),
    # ---------------------------------------------------------------- training
    _m("trainable_parameters", "1", _TR, "", "Parameters the strategy updates: all for ``naive``, ``multihead``, "
       "``scratch`` and ``l2sp``; those outside the frozen blocks for ``frozen``; the low-rank adapters for ``lora`` "
       "and ``equitrain``; 0 for ``pretrained``."),
    _m("total_parameters", "1", _TR, "", "Parameters of the model as the strategy's code counts them: the "
       "foundation's (adapters not added) for ``lora``, ``frozen``, ``naive``, ``multihead``, ``l2sp`` and "
       "``pretrained``; foundation + adapters for ``equitrain`` (counted on the adapter-wrapped model); the trained "
       "model for ``scratch``."),
    _m("epochs", "1", _TR, "", "Epochs run (early stopping on the validation split; 0 for ``pretrained``)."),
    _m("optimizer_steps", "1", _TR, "", "Optimiser updates over the whole training (batches per epoch x epochs; "
       "0 for ``pretrained``): the compute the strategy spent, comparable across strategies and budgets."),
    _m("learning_rate", "1", _TR, "", "Initial learning rate of the optimiser (the strategy's own, or the "
       "recipe's); empty for ``pretrained``."),
)

# Names without an entry keep the unit they had before this module existed (the former aggregate.PATTERN_UNITS).
_FALLBACK_UNITS = [
    (re.compile(r"^C[1-6][1-6]$"), "GPa"), (re.compile(r"_modulus_(voigt|reuss|vrh)$|^cij_min_eigenvalue$"), "GPa"),
    (re.compile(r"^v_(longitudinal|transverse|mean)$"), "m/s"), (re.compile(r"^density$"), "kg/m^3"),
    (re.compile(r"^v0_per_atom$"), "Å^3"), (re.compile(r"^e0_per_atom$"), "eV/atom"),
    (re.compile(r"temperature"), "K"), (re.compile(r"^mean_atomic_mass$"), "amu"),
    (re.compile(r"_seconds$"), "s"), (re.compile(r"^(elastic_delta|final_volume_change)$"), "1"),
]
_EXACT = {m.name: m for m in METRICS if m.pattern is None}
_PATTERNS = [m for m in METRICS if m.pattern is not None and not m.name.startswith("benchmark_")]
_PREFIX = "benchmark_"


def _own_entry(name: str) -> Metric | None:
    if name in _EXACT:
        return _EXACT[name]
    return next((m for m in _PATTERNS if m.matches(name)), None)


def entry(metric: str) -> Metric | None:
    """The entry documenting ``metric`` (``benchmark_<name>`` -> ``<name>``'s entry if it is a twin), or None."""
    own = _own_entry(metric)
    if own is not None or not metric.startswith(_PREFIX):
        return own
    base = _own_entry(metric.removeprefix(_PREFIX))
    return base if base is not None and base.twin else None


def unit_of(metric: str) -> str:
    """Unit of a metric as the table writes it ('1' for dimensionless numbers and counts)."""
    base = metric.removeprefix(_PREFIX)
    own = _own_entry(base)
    if own is not None:
        return own.unit
    return next((unit for pattern, unit in _FALLBACK_UNITS if pattern.search(base)), "1")


def undocumented(metric_names: Iterable[str]) -> list[str]:
    """The distinct names among ``metric_names`` that have no entry here, sorted (empty when all are documented)."""
    return sorted({str(m) for m in metric_names if entry(str(m)) is None})


def unused(metric_names: Iterable[str]) -> list[str]:
    """Entries (their ``name``) that match none of ``metric_names``: candidates for stale documentation."""
    names = {str(m) for m in metric_names}
    return [m.name for m in METRICS if not any(m.matches(n) for n in names)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("``", "`")


def markdown() -> str:
    """The text of ``docs/metrics.md``: one table per family, generated from :data:`METRICS`."""
    lines = [
        "# Metrics of `results/summary/metrics.csv`",
        "",
        "<!-- Generated from src/phononft/metrics.py by `python tools/write_metrics_doc.py`; do not edit. -->",
        "",
        "The tidy table has one row per material × strategy × selection × budget × seed × metric, columns "
        "`material, strategy, selection, budget, seed, metric, value, unit` (and `status`: `ok`, or `missing` "
        "for a model whose results are absent, value NaN). The reference's own values are rows with strategy "
        "`reference`, budget 0, seed 0; `pretrained` (zero-shot) has budget 0; `selection` is `random` unless "
        "`selections` lists others. Booleans are stored as 0/1, text columns "
        "(space-group symbols) as numbers, lists are left out.",
        "",
        "- **Reference vs model.** The reference is the labeller (EMT in the demo, VASP-PBE or a precomputed "
        "DFT `phonopy.yaml` in the paper setting) run through the same code as every model. On model rows a "
        "plain name is the model's value and `benchmark_<name>` the reference's, as in the published "
        "MACE-MP-0b3 phonon benchmark.",
        "- **Signs.** Imaginary frequencies are negative (phonopy's convention). Figures show deviations as "
        "100 (model − reference) / |reference| %.",
        "- **better**: `lower`/`higher` is better; `closer`: closer to the reference's value; `same`: the same "
        "category as the reference; blank: a setting, count or descriptor, not a score.",
        f"- **seeds**: how the figures and the README aggregate seeds. Unless stated: {MEDIAN_IQR} "
        "(median, with the interquartile range 25th–75th percentile as band or error bar; "
        "`phononft.figures.summarise`).",
        "",
    ]
    for family, title in FAMILIES.items():
        lines += [f"## {title}", "", "| metric | unit | better | seeds | description |",
                  "| --- | --- | --- | --- | --- |"]
        for m in (m for m in METRICS if m.family == family):
            name = f"`{m.name}`" + (" (+ `benchmark_`)" if m.twin else "")
            seeds = "" if m.seeds == MEDIAN_IQR else m.seeds
            lines.append(f"| {name} | {_cell(m.unit)} | {m.better} | {_cell(seeds)} | {_cell(m.description)} |")
        lines.append("")
    return "\n".join(lines)

"""Harmonic thermal properties from phonon frequencies on a mesh (heat capacity, entropy, free energy per mole of
primitive cells, as phonopy's convention), the mean frequency and the benchmark's high-temperature limit of
the diffusive thermal conductivity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from phonopy import Phonopy
from phonopy.physical_units import get_physical_units

from .qpoints import frequencies_at, mesh_sampling

__all__ = ["k_diff_high_temp_limit", "mean_frequency", "thermal_curves", "thermal_properties"]

_K_B = 1.380649e-23  # J/K (exact, SI 2019); the benchmark used 1.3806e-23 (-3.5e-5 relative)


def mean_frequency(freqs: NDArray, weights: NDArray) -> float:
    """Weighted mean (THz) of the positive frequencies of a mesh (imaginary/zero modes dropped)."""
    f = np.asarray(freqs, dtype=float)
    w = np.asarray(weights, dtype=float)[:, None] * np.ones(f.shape[1])
    mask = f > 0
    return float(np.sum(f[mask] * w[mask]) / np.sum(w[mask]))


def thermal_properties(
    freqs: NDArray, weights: NDArray, temperatures: float | Sequence[float]
) -> dict[str, NDArray[np.double]]:
    """Harmonic thermal properties from mesh frequencies (THz) and q-point weights.

    Only modes with f > 0 count (phonopy's default cutoff).  Per mole of primitive cells:
    ``heat_capacity`` C_v [J/K/mol], ``entropy`` S [J/K/mol], ``free_energy`` F [kJ/mol]
    (including the zero-point energy), and ``internal_energy`` U [kJ/mol].  At T = 0: C_v = S = 0,
    F = U = zero-point energy.  Same physical constants as phonopy, so it agrees with
    ``Phonopy.run_thermal_properties`` to machine precision on the same mesh.
    """
    units = get_physical_units()
    temps = np.atleast_1d(np.asarray(temperatures, dtype=float))
    f = np.asarray(freqs, dtype=float)
    w = np.asarray(weights, dtype=float)
    e = np.where(f > 0, f, np.nan) * units.THzToEv  # eV, NaN for ignored modes
    wn = w / w.sum()
    out = {k: np.zeros(len(temps)) for k in ("heat_capacity", "entropy", "free_energy", "internal_energy")}
    zpe = 0.5 * np.nansum(wn[:, None] * e)
    for i, t in enumerate(temps):
        if t <= 0:
            out["free_energy"][i] = out["internal_energy"][i] = zpe * units.EvTokJmol
            continue
        kt = units.KB * t
        x = e / kt
        ex = np.exp(-x)  # stable for large x
        cv = units.KB * x**2 * ex / (1 - ex) ** 2
        s = units.KB * (x * ex / (1 - ex) - np.log1p(-ex))
        fe = 0.5 * e + kt * np.log1p(-ex)
        u = 0.5 * e + e * ex / (1 - ex)
        out["heat_capacity"][i] = np.nansum(wn[:, None] * cv) * units.EvTokJmol * 1000
        out["entropy"][i] = np.nansum(wn[:, None] * s) * units.EvTokJmol * 1000
        out["free_energy"][i] = np.nansum(wn[:, None] * fe) * units.EvTokJmol
        out["internal_energy"][i] = np.nansum(wn[:, None] * u) * units.EvTokJmol
    out["temperatures"] = temps
    return out


def thermal_curves(
    phonon: Phonopy,
    *,
    t_min: float = 0.0,
    t_max: float = 1000.0,
    t_step: float = 10.0,
    mesh: int | Sequence[int] = 20,
    sampling: Literal["legacy", "phonopy"] = "legacy",
) -> dict[str, NDArray[np.double]]:
    """Thermal properties vs. temperature (0-1000 K by default) on a mesh; see :func:`thermal_properties`."""
    q, w = mesh_sampling(phonon, mesh, sampling=sampling)
    temps = np.arange(t_min, t_max + 0.5 * t_step, t_step)
    return thermal_properties(frequencies_at(phonon, q), w, temps)


def k_diff_high_temp_limit(phonon: Phonopy, mean_freq: float) -> float:
    """Agne et al.'s diffusive thermal conductivity in the high-temperature limit [W/m/K].

    k_diff(T -> inf) = n^(1/3) k_B / pi * <omega> = 2 n^(1/3) k_B <f>, with n the atom (site)
    number density of the primitive cell [m^-3] and <f> the mean phonon frequency [Hz]
    (Agne, Hanus, Snyder, Energy Environ. Sci. 11, 609 (2018)).
    """
    density = len(phonon.primitive) / (abs(np.linalg.det(phonon.primitive.cell)) * 1e-30)
    return float(2.0 * density ** (1.0 / 3.0) * _K_B * mean_freq * 1e12)

"""Command-line entry point ``phononft``.

Subcommands (one ``argparse`` subparser each; add new ones in ``build_parser``):

``phononft compare REFERENCE MODEL [--json OUT] [--temperature T] [--mesh N]``
    Benchmark phonon metrics of MODEL against REFERENCE (phonopy.yaml files, forces inside or a
    FORCE_SETS beside them), printed as JSON with the column names of the published
    MACE-MP-0b3 phonon benchmark: plain names are MODEL's values, ``benchmark_*`` REFERENCE's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .compare import phonon_metrics
from .io import _to_jsonable, write_json
from .phonon_io import PhononLoadError, load_phonopy


def _cmd_compare(args: argparse.Namespace) -> int:
    try:
        reference = load_phonopy(args.reference, symprec=args.symprec)
        model = load_phonopy(args.model, symprec=args.symprec)
    except PhononLoadError as exc:
        print(f"phononft compare: error: {exc}", file=sys.stderr)
        return 2
    metrics = phonon_metrics(
        reference, model,
        temperature=args.temperature, mesh=args.mesh, npoints=args.npoints, symprec=args.symprec,
        convention=args.convention, imaginary_threshold=args.imaginary_threshold,
    )
    metrics = {"reference": str(args.reference), "model": str(args.model), **metrics}
    if args.json is not None:
        write_json(args.json, metrics)
    print(json.dumps(_to_jsonable(metrics), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phononft", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("compare", help="phonon metrics of MODEL against REFERENCE (JSON)",
                       description="Benchmark phonon metrics of MODEL against REFERENCE.")
    p.add_argument("reference", type=Path, metavar="REFERENCE", help="reference phonopy.yaml")
    p.add_argument("model", type=Path, metavar="MODEL", help="model phonopy.yaml")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the metrics to this JSON file")
    p.add_argument("--temperature", type=float, default=300.0, metavar="T",
                   help="temperature of the thermal properties [K] (default 300)")
    p.add_argument("--mesh", type=int, default=20, metavar="N", help="N x N x N q-mesh (default 20)")
    p.add_argument("--npoints", type=int, default=101, help="q-points per band segment (default 101)")
    p.add_argument("--symprec", type=float, default=1e-4, help="symmetry tolerance [A] (default 1e-4)")
    p.add_argument("--convention", choices=("benchmark", "mapped"), default="benchmark",
                   help="'benchmark' reproduces the published numbers; 'mapped' maps q-points "
                        "between differing primitive cells and leaves the mean frequency unscaled")
    p.add_argument("--imaginary-threshold", type=float, default=-0.1, metavar="THZ",
                   help="frequencies below this count as imaginary [THz] (default -0.1)")
    p.set_defaults(func=_cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

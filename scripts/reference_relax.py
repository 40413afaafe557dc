"""Snakemake adapter: the reference's relaxed unit cell (phononft.reference.relaxed_structure)."""
from phononft.io import read_extxyz, write_extxyz
from phononft.label import calculator_from_config
from phononft.logs import rule_logger
from phononft.reference import relaxed_structure

log = rule_logger(snakemake.log[0])
i, cfg = snakemake.input, snakemake.params.settings
labeller = cfg["labeller"]["type"]
calc = None if labeller == "vasp" else calculator_from_config(cfg["labeller"][labeller])
relaxed = relaxed_structure(read_extxyz(i.structure)[0], cfg, calc=calc, answer_files=list(getattr(i, "step0", [])),
                            precomputed_path=getattr(i, "precomputed", None))
log(f"relaxed: {relaxed.get_volume() / len(relaxed):.4f} Å^3/atom, cell lengths {relaxed.cell.lengths().round(4)} Å")
write_extxyz(snakemake.output[0], [relaxed])

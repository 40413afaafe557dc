"""Snakemake adapter: one displaced (index >= 1) or the undisplaced (index 0) phonon supercell labelled by VASP."""
from phononft.reference import displaced_supercell
from phononft.logs import rule_logger
from phononft.vasp.jobs import label_one

log = rule_logger(snakemake.log[0])
atoms = displaced_supercell(snakemake.input.disp, int(snakemake.wildcards.index))
label_one(atoms, snakemake.output[0], command=snakemake.params.command, settings=snakemake.params.settings,
          gamma_only=snakemake.params.gamma_only, log=log)

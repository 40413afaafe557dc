"""Snakemake adapter: the study's claims on this run's table (phononft.claims.check_claims), written and logged
(the console gets them at the end of the run: onsuccess, rules/common.smk print_claims)."""
from phononft.claims import check_claims, report
from phononft.logs import rule_logger
from phononft.summary import write_table

log = rule_logger(snakemake.log[0])
claims = check_claims(snakemake.input.table, int(snakemake.params.budget))
write_table(claims, snakemake.output[0])
for line in report(claims):
    log(line)

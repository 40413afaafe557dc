# Download: the real-world inputs named in the config, for machines with internet: the foundation model
# (foundation.model) and its replay data (foundation.replay) when their file names are known ones (e.g.
# MACE-MP-0b3 medium and MPtrj's mp_traj_combined.xyz; phononft.download).  Once the files exist these rules
# never run; offline, the job fails saying where to get the file.  Downloads run on the submitting machine
# (localrule), never on compute nodes.
from phononft.download import known_downloads

for _name, (_path, _url) in known_downloads(config["foundation"]).items():

    rule:
        name:
            f"download_{_name}"
        localrule: True
        output:
            _path,
        params:
            url=_url,
        log:
            layout.log("download", _name),
        conda:
            "../envs/mlip.yaml"
        script:
            "../scripts/download.py"

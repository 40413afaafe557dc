# Known download locations (mace-torch: mace.calculators.foundations_models.mace_mp_urls and
# mace.tools.multihead_tools.assemble_replay_data), by file name.
DOWNLOAD_URLS = {
    "mace-mp-0b3-medium.model": "https://github.com/ACEsuit/mace-mp/releases/download/mace_mp_0b3/mace-mp-0b3-medium.model",
    "mace-mpa-0-medium.model": "https://github.com/ACEsuit/mace-mp/releases/download/mace_mpa_0/mace-mpa-0-medium.model",
    "2023-12-03-mace-128-L1_epoch-199.model": "https://github.com/ACEsuit/mace-mp/releases/download/mace_mp_0/2023-12-03-mace-128-L1_epoch-199.model",
    "mp_traj_combined.xyz": "https://github.com/ACEsuit/mace-foundations/releases/download/mace_mp_0b/mp_traj_combined.xyz",
}
KNOWN_DOWNLOADS = {
    key: (config["foundation"][key], DOWNLOAD_URLS[os.path.basename(config["foundation"][key])])
    for key in ("model", "replay")
    if config["foundation"].get(key) and os.path.basename(config["foundation"][key]) in DOWNLOAD_URLS
}

# Helpers of the label stage and of the reference's inputs (included by rules/label.smk): the labeller
# settings, the per-structure VASP job lists, and the input functions of rules label and evaluate_reference.
import json


def resolve_material_paths(materials, repo_root):
    """Relative file/reference_phonopy paths: the working directory's, else the repository root's (the shipped
    configs' paths are relative to it), so that a run in another --directory finds them too."""
    for spec in materials.values():
        for key in ("file", "reference_phonopy"):
            path = spec.get(key)
            if path and not os.path.isabs(path) and not os.path.exists(path):
                candidate = os.path.normpath(os.path.join(repo_root, path))
                if os.path.exists(candidate):
                    spec[key] = candidate


resolve_material_paths(config["materials"], workflow.basedir)  # basedir: the repository root (Snakefile)
LABELLER = config["labeller"]["type"]
VASP = config["labeller"].get("vasp", {})
VASP_RESOURCES = VASP.get("resources", {})
N_STRUCTURES = {
    "train": max(config["budgets"]),
    "valid": config["rattle"]["n_valid"],
    "test": config["rattle"]["n_test"],
}
# VASP: the structures of a split go to jobs of `structures_per_job` (default 1; the paper matrix uses more,
# so that it stays a DAG of a few thousand jobs); each structure keeps its own job directory
STRUCTURES_PER_JOB = VASP.get("structures_per_job", 1)
# per-split lists of the VASP job outputs, built once (the input function only formats the material)
VASP_LABEL_PATTERNS = {
    split: [
        f"results/{{material}}/labelled/vasp/{split}/job{k}.extxyz"
        for k in range(-(-n // STRUCTURES_PER_JOB))
    ]
    for split, n in N_STRUCTURES.items()
}


def label_benchmarks():
    """Per material, the benchmark files of the jobs that labelled its training series (VASP: the
    label_vasp jobs; mock: the label job)."""
    if LABELLER == "vasp":
        n = len(VASP_LABEL_PATTERNS["train"])
        return {m: [f"results/benchmarks/label_vasp/{m}/train_{k}.tsv" for k in range(n)] for m in MATERIALS}
    return {m: [f"results/benchmarks/label/{m}_train.tsv"] for m in MATERIALS}


def vasp_settings():
    """Keyword arguments of phononft.vasp.run_vasp from the config (the command is passed separately)."""
    return {
        "incar": VASP.get("incar", {}),
        "kpoint_density": VASP.get("kpoint_density", 300),
        "potcar": VASP.get("potcar", {}),
        "retries": VASP.get("retries", 1),
        "timeout": VASP.get("timeout"),
    }


def label_inputs(wildcards):
    rattled = f"results/{wildcards.material}/rattled/{wildcards.split}.extxyz"
    if LABELLER != "vasp":
        return {"rattled": rattled}
    return {
        "rattled": rattled,
        "labelled": [p.format(material=wildcards.material) for p in VASP_LABEL_PATTERNS[wildcards.split]],
    }


def reference_inputs(wildcards):
    """The reference's inputs: a precomputed phonopy file, VASP-labelled displacements, or the structure."""
    spec = config["materials"][wildcards.material]
    if "reference_phonopy" in spec:
        path = spec["reference_phonopy"]
        beside = [path.rsplit(".phonopy.yaml", 1)[0] + ".FORCE_SETS", os.path.join(os.path.dirname(path), "FORCE_SETS")]
        found = [f for f in beside if f != path and os.path.isfile(f)][:1]
        return {"precomputed": path, "force_sets": found}
    if LABELLER == "vasp":
        # phonopy's displacements of the structure (a checkpoint: their number depends on its symmetry)
        disp = checkpoints.reference_displacements.get(material=wildcards.material).output
        with open(disp.summary) as fh:
            n = json.load(fh)["n_displacements"]
        job = f"results/{wildcards.material}/eval/reference/vasp/{{}}/labelled.extxyz"
        return {
            "displacements": disp.disp,
            "labelled": [job.format(k) for k in range(1, n + 1)],
            "perfect": [job.format(0)] if VASP.get("subtract_residual_forces", True) else [],
        }
    return {"structure": f"results/{wildcards.material}/structure.extxyz"}

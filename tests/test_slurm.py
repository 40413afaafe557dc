"""The workflow on a real SLURM scheduler: `snakemake --profile profiles/slurm` on a one-node cluster.

Fast checks of the profiles (plugin option names, a dry run of `snakemake --profile slurm` after
tools/install_profiles.sh) run everywhere; the cluster test is marked slow.

A private single-node cluster (Debian's slurm-wlm + munge, installed with apt-get when missing) is started on
localhost in a temporary directory: its own munged socket, ports, state and spool directories and slurm.conf
(passed to every client and daemon through SLURM_CONF), so it neither needs nor touches a system
configuration. The tiny configuration, cut to two strategies, runs through the real rules with the shipped
profile; the command line only overrides what a cluster without accounting, GPUs or conda needs. Then every
process the test started is stopped.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm" / "profile.yaml"
PARTITION = "phononft"
DAEMONS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun", "slurmctld", "slurmd", "munged")



# --------------------------------------------------------------------------------------------------------
# installing and running the cluster
# --------------------------------------------------------------------------------------------------------
def ensure_slurm_installed() -> None:
    """Skip unless slurm-wlm and munge are there or can be installed with apt-get (as root)."""
    if all(shutil.which(tool) for tool in DAEMONS):
        return
    if os.geteuid() != 0:
        pytest.skip("slurm-wlm/munge are not installed and installing them needs root")
    if not shutil.which("apt-get"):
        pytest.skip("slurm-wlm/munge are not installed and apt-get is not available")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"]):
        try:
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            pytest.skip(f"{' '.join(cmd)} timed out")
        if res.returncode != 0:
            pytest.skip(f"{' '.join(cmd)} failed ({res.returncode}): {(res.stderr or res.stdout)[-500:]}")
    missing = [tool for tool in DAEMONS if not shutil.which(tool)]
    if missing:
        pytest.skip(f"apt-get install slurm-wlm munge left {missing} missing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class Cluster:
    """munged + slurmctld + slurmd on localhost, everything under one temporary directory."""

    def __init__(self, root: Path):
        self.root = root
        self.cpus = len(os.sched_getaffinity(0))
        self.marker = f"phononft-slurm-test-{secrets.token_hex(8)}"
        self.conf = root / "slurm.conf"
        self.bin = root / "bin"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = dict(os.environ)
        self.env.update(
            SLURM_CONF=str(self.conf),
            PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            PHONONFT_SLURM_TEST=self.marker,  # every process started here inherits it: the teardown's sweep
        )
        for var in [v for v in self.env if v.startswith(("SLURM_JOB", "SLURM_STEP", "SBATCH_", "SRUN_"))]:
            del self.env[var]

    # -- set-up --
    def write_files(self) -> None:
        import pwd

        munge = pwd.getpwnam("munge")
        for d in ("state", "spool", "log", "munge", "munge/private", "bin"):
            (self.root / d).mkdir()
        os.chmod(self.root, 0o755)
        # munged checks permissions: its socket directory open to all (0755), its key private (0700/0400)
        mdir, private = self.root / "munge", self.root / "munge" / "private"
        key = private / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        os.chmod(key, 0o400)
        os.chmod(private, 0o700)
        os.chmod(mdir, 0o755)
        for p in (mdir, private, key):
            os.chown(p, munge.pw_uid, munge.pw_gid)
        self.munge_socket = mdir / "munge.socket"
        # the plugin runs each job through `srun` with SLURM_* variables stripped, SLURM_CONF included:
        # this srun (first on PATH, exported to the jobs) points the real one at this cluster's slurm.conf
        real_srun = shutil.which("srun")
        shim = self.bin / "srun"
        shim.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{real_srun}" "$@"\n')
        shim.chmod(0o755)
        real_mem = int(memory_mb() * 0.9)
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=phononft-ci",
                    "SlurmctldHost=localhost",
                    f"SlurmctldPort={free_port()}",
                    f"SlurmdPort={free_port()}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    f"StateSaveLocation={self.root / 'state'}",
                    f"SlurmdSpoolDir={self.root / 'spool'}",
                    f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.root / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core",
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "JobCompType=jobcomp/none",
                    "SchedulerType=sched/backfill",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    # finished jobs stay visible to squeue/scontrol this long: the plugin's squeue status
                    # query needs >= 3 x its status interval, and the test reads the jobs' history
                    "MinJobAge=600",
                    "MailProg=/bin/true",
                    f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={real_mem} State=UNKNOWN",
                    f"PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def start(self, name: str, cmd: list[str], **kwargs) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")
        self.procs[name] = subprocess.Popen(
            cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, **kwargs,
        )
        log.close()

    def run(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout)

    def up(self) -> None:
        self.write_files()
        mdir = self.root / "munge"
        self.start(
            "munged",
            ["munged", "-F", f"--socket={self.munge_socket}", f"--key-file={mdir / 'private' / 'munge.key'}",
             f"--pid-file={mdir / 'munged.pid'}", f"--log-file={mdir / 'private' / 'munged.log'}",
             f"--seed-file={mdir / 'private' / 'munged.seed'}"],
            user="munge", group="munge", extra_groups=[],
        )
        self.wait_for(lambda: self.munge_socket.exists(), 20, "munged's socket")
        self.start("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        self.wait_for(lambda: self.run("scontrol", "ping").stdout.count("UP") > 0, 40, "slurmctld")
        self.start("slurmd", ["slurmd", "-D", "-N", "localhost", "-f", str(self.conf)])
        self.wait_for(self.node_idle, 60, "the node to be idle")

    def node_idle(self) -> bool:
        res = self.run("sinfo", "-h", "-N", "-o", "%N %T")
        state = res.stdout.split()[-1] if res.returncode == 0 and res.stdout.split() else ""
        if state.startswith(("down", "drain")):
            self.run("scontrol", "update", "NodeName=localhost", "State=RESUME")
        return state == "idle"

    def wait_for(self, check, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
            if dead:
                raise RuntimeError(f"{dead} exited while waiting for {what}\n{self.logs()}")
            try:
                if check():
                    return
            except (OSError, subprocess.TimeoutExpired):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}\n{self.logs()}")

    def logs(self, n: int = 3000) -> str:
        out = []
        for path in sorted((self.root / "log").glob("*")) + [self.root / "munge" / "private" / "munged.log"]:
            if path.is_file():
                out.append(f"--- {path.name}\n{path.read_text(errors='replace')[-n:]}")
        return "\n".join(out)

    # -- tear-down --
    def down(self) -> None:
        """Cancel every job, stop the daemons, then kill whatever still carries this cluster's marker."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                self.run("scancel", f"--partition={PARTITION}", timeout=15)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    res = self.run("squeue", "-h", "-t", "PENDING,RUNNING,COMPLETING,CONFIGURING", timeout=15)
                    if res.returncode != 0 or not res.stdout.strip():
                        break
                    time.sleep(1)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        sweep_marked(self.marker)


def marked_pids(marker: str) -> list[int]:
    """Processes whose environment carries `marker` (the daemons, slurmstepd, the jobs and their children)."""
    needle = f"PHONONFT_SLURM_TEST={marker}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def sweep_marked(marker: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = marked_pids(marker)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and marked_pids(marker):
            time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster():
    if sys.platform != "linux":
        pytest.skip("the SLURM test runs a cluster on Linux only")
    ensure_slurm_installed()
    if os.geteuid() != 0:
        pytest.skip("running slurmd (SlurmdUser=root) and munged as user munge needs root")
    # under /tmp: munged (user munge) must reach its socket, and a socket path has at most 107 characters
    root = Path(tempfile.mkdtemp(prefix="phononft-slurm-", dir="/tmp"))
    c = Cluster(root)
    try:
        c.up()
        yield c
    finally:
        c.down()
        leftover = marked_pids(c.marker)
        shutil.rmtree(root, ignore_errors=True)
        assert not leftover, f"processes left behind: {leftover}"


# --------------------------------------------------------------------------------------------------------
# the workflow
# --------------------------------------------------------------------------------------------------------
def tiny_config(path: Path) -> Path:
    """tests/data/tiny.yaml with two strategies: zero-shot (no training) and naive fine-tuning."""
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["strategies"] = ["pretrained", "naive"]
    cfg["finetune"]["strategy_params"] = {
        k: v for k, v in cfg["finetune"]["strategy_params"].items() if k in cfg["strategies"]
    }
    assert cfg["finetune"].get("gpus", 0) == 0, "the CI cluster has no GPU"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def shrink(value, name: str, cpus: int):
    """A profile resource scaled to the one small node (CPUs, memory, GPUs); expressions and strings kept."""
    if name in ("gpu", "gpus"):
        return 0  # no GPU here (the profile asks one per fine-tuning job)
    if isinstance(value, int) and name in ("tasks", "cpus_per_task", "cpus_per_gpu"):
        return max(1, min(value, cpus))
    if isinstance(value, int) and name.startswith("mem_mb"):
        return min(value, 1000)
    return value


def resource_overrides(profile: dict, cpus: int) -> tuple[list[str], list[str]]:
    """--default-resources and --set-resources: the profile's, shrunk, plus this cluster's partition.

    A command-line option replaces the whole profile key, so every entry of the profile is passed again.
    """
    defaults = {k: shrink(v, k, cpus) for k, v in profile["default-resources"].items()}
    defaults["slurm_partition"] = PARTITION
    default_args = [f"{k}={v}" for k, v in defaults.items()]
    set_args = []
    for rule, res in profile["set-resources"].items():
        for k, v in res.items():
            if k == "gpu_model":
                continue
            set_args.append(f"{rule}:{k}={shrink(v, k, cpus)}")
    return default_args, set_args


def test_profile_keys_are_the_plugins():
    """Every `slurm-*` key of the profile is an option of the installed plugin (a typo would be ignored)."""
    from snakemake_executor_plugin_slurm import ExecutorSettings

    profile = yaml.safe_load(PROFILE.read_text())
    known = {f"slurm-{f.replace('_', '-')}" for f in ExecutorSettings.__dataclass_fields__}
    unknown = [k for k in profile if k.startswith("slurm-") and k not in known]
    assert not unknown, f"not options of snakemake-executor-plugin-slurm: {unknown}"
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] in ("sacct", "squeue")
    # the plugin refuses GPUs, memory, partition... inside slurm_extra: they must be resources
    for res in [profile["default-resources"], *profile["set-resources"].values()]:
        assert "slurm_extra" not in res
    # profiles/default/ applies to every run implicitly: no cluster settings there
    default = REPO / "profiles" / "default"
    if default.exists():
        text = "".join(p.read_text() for p in default.glob("*.yaml"))
        assert "slurm" not in text and "executor" not in text


def test_installed_profiles_answer_the_bare_names(tmp_path):
    """tools/install_profiles.sh, then `snakemake --profile slurm` / `--profile local` from the repository root
    (dry runs; no SLURM needed). The slurm profile's expressions: a GPU per training job, none for zero-shot."""
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(REPO / "src"))
    for _ in range(2):  # idempotent
        res = subprocess.run([str(REPO / "tools" / "install_profiles.sh")], env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "warning" not in res.stderr
    for name in ("slurm", "local"):
        link = tmp_path / "xdg" / "snakemake" / name
        assert link.is_symlink() and link.resolve() == (REPO / "profiles" / name).resolve()
    # a user's own, different profile is never replaced
    (tmp_path / "xdg" / "snakemake" / "local").unlink()
    (tmp_path / "xdg" / "snakemake" / "local").mkdir()
    (tmp_path / "xdg" / "snakemake" / "local" / "profile.yaml").write_text("cores: 1\n")
    res = subprocess.run([str(REPO / "tools" / "install_profiles.sh")], env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "warning" in res.stderr
    assert (tmp_path / "xdg" / "snakemake" / "local" / "profile.yaml").read_text() == "cores: 1\n"

    work = tmp_path / "work"
    tiny = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    # GPUs where training runs on one (finetune.gpus, device not cpu), none for the zero-shot models and none at
    # all with finetune.device cpu; wall time from the work, growing with the attempt, capped
    for device, gpus, trained in (("auto", 1, "1"), ("cpu", 1, "0")):
        cfg = tmp_path / f"{device}.yaml"
        cfg.write_text(yaml.safe_dump({**tiny, "finetune": {**tiny["finetune"], "device": device, "gpus": gpus,
                                                              "runtime": 50}}))
        res = subprocess.run(
            [sys.executable, "-m", "snakemake", "--profile", "slurm", "-n", "--directory", str(work),
             "--configfile", str(cfg), "--software-deployment-method", "env-modules"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-4000:]
        # "Using profile slurm ..." or, with the workflow profile profiles/default, "Using profiles slurm and ..."
        assert re.search(r"Using profiles? slurm\b", out), out[-2000:]
        for rule, expected in (("finetune", trained), ("zero_shot", "0"), ("foundation", trained)):
            jobs = re.findall(rf"rule {rule}:\n(.*?)\n\n", out, re.S)
            assert jobs, rule
            for job in jobs:
                assert re.search(r"gpu=(\d+)", job).group(1) == expected, job
        for job in re.findall(r"rule finetune:\n(.*?)\n\n", out, re.S):
            assert re.search(r"runtime=(\d+)", job).group(1) == "50"  # one model (budget 2, seed 0) x 50 min
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "local", "-n", "--directory", str(work),
         "--configfile", str(cfg)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    assert re.search(r"Using profiles? local\b", res.stdout + res.stderr)


@pytest.mark.slow
def test_workflow_runs_through_sbatch(cluster, tmp_path):
    work = Path(tempfile.mkdtemp(prefix="work-", dir=cluster.root))
    config = tiny_config(work / "tiny_slurm.yaml")
    profile = yaml.safe_load(PROFILE.read_text())
    default_args, set_args = resource_overrides(profile, cluster.cpus)
    cmd = [
        sys.executable, "-m", "snakemake",
        "--profile", "profiles/slurm",
        "--directory", str(work),
        "--configfile", str(config),
        # this cluster has no accounting storage: job states come from squeue
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "5",
        # keep the per-job SLURM logs of successful jobs, to check them below
        "--slurm-keep-successful-logs",
        # no conda here: a deployment method no rule uses replaces the profile's conda
        "--software-deployment-method", "env-modules",
        # CPUs per job (and per group) on this node
        "--cores", str(cluster.cpus),
        "--retries", "0",
        "--verbose",
        "--default-resources", *default_args,
        "--set-resources", *set_args,
        "--",
        "results/summary/metrics.csv",
        "results/figures/fig13_budget_curves.png",
    ]
    env = dict(cluster.env, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    log_path = work / "snakemake.out"
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=1500)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)  # Snakemake cancels its SLURM jobs on SIGINT
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = "timeout"
    elapsed = time.monotonic() - start
    out = log_path.read_text(errors="replace")
    # kept after the cluster's directory is removed (pytest keeps the last runs' tmp_path)
    shutil.copy(log_path, tmp_path / "snakemake.out")
    if (work / ".snakemake" / "slurm_logs").is_dir():
        shutil.copytree(work / ".snakemake" / "slurm_logs", tmp_path / "slurm_logs", dirs_exist_ok=True)
    tail = out[-6000:] + "\n" + cluster.logs(1500)
    assert rc == 0, f"snakemake exited with {rc} after {elapsed:.0f} s\n{tail}"
    print(f"workflow on SLURM: {elapsed:.0f} s")

    # the results of the real rules
    table = work / "results" / "summary" / "metrics.csv"
    assert table.is_file() and table.stat().st_size > 0
    text = table.read_text()
    assert "pretrained" in text and "naive" in text and "reference" in text
    assert (work / "results" / "figures" / "fig13_budget_curves.png").stat().st_size > 1000

    # every job went through sbatch: SLURM job ids in Snakemake's log, each known to the controller
    jobids = re.findall(r"submitted with SLURM jobid (\d+)", out)
    assert jobids, tail
    sbatch_calls = [line for line in out.splitlines() if line.lstrip().startswith("sbatch call:")]
    assert len(sbatch_calls) == len(jobids)
    assert all(f"-p {PARTITION}" in call for call in sbatch_calls)
    assert not any("--gpus" in call or "--gres" in call for call in sbatch_calls), "no GPU is requested"
    states = {}
    for jobid in jobids:
        res = cluster.run("scontrol", "show", "job", jobid)
        assert res.returncode == 0, res.stderr
        states[jobid] = re.search(r"JobState=(\S+)", res.stdout).group(1)
    assert set(states.values()) == {"COMPLETED"}, states

    # per-rule (and per-group) SLURM logs of the plugin
    slurm_logs = work / ".snakemake" / "slurm_logs"
    kinds = {p.name for p in slurm_logs.iterdir()}
    for rule in ("rule_label", "rule_foundation", "rule_finetune"):
        assert rule in kinds, kinds
        assert list((slurm_logs / rule).rglob("*.log")), rule
    # the profile's groups: structures+rattle, reference, evaluations and the summary ran as group jobs
    assert any(k.startswith("group_") for k in kinds), kinds
    assert not {"rule_structures", "rule_rattle", "rule_evaluate", "rule_evaluate_zero_shot",
                "rule_summary"} & kinds, kinds
    n_jobs = len(jobids)
    # structures group + reference_relax + prep group (3 rattled splits) + 3 label + foundation + replay_general
    # + finetune + zero_shot + reference group + evaluate group + summary group (table and figure): 13
    assert n_jobs <= 13, n_jobs

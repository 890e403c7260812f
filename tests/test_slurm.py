"""The workflow on a real (single-node) SLURM cluster, through profiles/slurm.

`tests/slurm/cluster.sh start` installs Debian's SLURM packages if needed (root + apt-get) and
brings up munged, mariadbd, slurmdbd, slurmctld and slurmd on this machine, with two fake GPUs
(`Gres=gpu:2`, backed by /dev/null and /dev/zero), so the GPU rules are submitted exactly as
on a GPU cluster.

    pytest -m slurm tests/test_slurm.py -s        (-s shows the timings as they happen)

Skipped, with the reason, only where the cluster cannot be brought up at all: not root, or the
packages are missing and there is no apt-get.  Everything else that goes wrong is a failure.
Under CI (the environment variable CI set to anything but "", "0" or "false", as CI services set
CI=true) or with HEADPLAST_REQUIRE_SLURM=1, a cluster that cannot be brought up is a failure too,
so a CI run can never pass without having run SLURM.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"
SLURM_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
LOCAL_PROFILE = REPO / "profiles" / "local" / "config.yaml"
STATE = Path(os.environ.get("HEADPLAST_SLURM_STATE", "/tmp/headplast-slurm"))
GPU_RULES = [
    "init_checkpoint",
    "probe_features",
    "probe_checkpoint",
    "theta0_sweep",
    "finetune",
    "finetune_frozen",
    "importance_pre",
    "importance_pre_shared",
    "importance_post",
    "gradfisher_pre",
    "pruning",
    "function_change",
]
MEASURE_GROUP = "measure"  # rules/resources.smk
# rules of the `measure` group (MEASURE_GROUP) in the tiny DAG: one sbatch job per (model, task,
# start, seed); importance_pre is in the group too, where the shared theta0 sweep is off
MEASURE_GROUP_RULES = [
    "importance_pre_shared",
    "importance_post",
    "gradfisher_pre",
    "pruning",
    "function_change",
    "update",
    "heads",
]
PROFILE_GROUP_RULES = [*MEASURE_GROUP_RULES, "importance_pre"]
SLURM_BINS = ["slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "munged", "mariadbd"]
MAIN_TIMEOUT_S = 45 * 60

TIMINGS: dict[str, float] = {}


def _report(config, line: str) -> None:
    """A line in pytest's terminal output even without -s (timings)."""
    tr = config.pluginmanager.getplugin("terminalreporter")
    capman = config.pluginmanager.getplugin("capturemanager")
    if tr is None or capman is None:  # pragma: no cover
        print(f"[slurm] {line}", file=sys.stderr)
        return
    with capman.global_and_fixture_disabled():
        tr.write_line(f"[slurm] {line}")


def _skip_reason() -> str | None:
    have_bins = all(shutil.which(b) or Path("/usr/sbin", b).exists() for b in SLURM_BINS)
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root: a SLURM cluster (daemons, /etc/slurm/slurm.conf) is started here"
    if not have_bins and shutil.which("apt-get") is None:
        return "SLURM packages missing and no apt-get to install them"
    return None


def _slurm_required(env=os.environ) -> bool:
    """True under CI (CI set and not "", "0", "false") or with HEADPLAST_REQUIRE_SLURM=1."""
    ci = env.get("CI", "").strip().lower()
    return ci not in ("", "0", "false") or env.get("HEADPLAST_REQUIRE_SLURM", "") == "1"


def _unavailable(reason: str, env=os.environ):
    """Skip (a workstation without root) or, where SLURM is required, fail, naming the reason."""
    if _slurm_required(env):
        pytest.fail(
            f"SLURM is required here (CI or HEADPLAST_REQUIRE_SLURM=1) but the test cluster "
            f"cannot be started: {reason}"
        )
    pytest.skip(reason)


def _planned_or_flagged_incomplete(dry_out: str, rule: str, output: str) -> bool:
    """Whether a dry run redoes ``rule`` ("rule <rule>:" block) or refuses to go on because
    ``output`` is listed under "Incomplete files:"; either way its partial output is not trusted."""
    if re.search(rf"^rule {re.escape(rule)}:", dry_out, re.M):
        return True
    m = re.search(r"Incomplete files:\n((?:[^\n]+\n?)*)", dry_out)
    return bool(m) and output in [line.strip() for line in m.group(1).splitlines()]


def _env() -> dict[str, str]:
    """The environment of snakemake and, via sbatch --export=ALL, of every SLURM job."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    for k in [k for k in env if k.startswith("SLURM_")]:  # not a job inside a job
        del env[k]
    return env


def _run(cmd, cwd, timeout, check=True, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(
        cmd, cwd=cwd, env=_env(), text=True, capture_output=True, timeout=timeout, **kw
    )
    if check and p.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} -> rc {p.returncode}\n"
            f"--- stdout\n{p.stdout[-6000:]}\n--- stderr\n{p.stderr[-12000:]}"
        )
    return p


# --------------------------------------------------------------------------------- cluster
@pytest.fixture(scope="module")
def cluster(request):
    reason = _skip_reason()
    if reason:
        _unavailable(reason)
    # One cluster per machine: serialise with any other pytest process that wants one.
    lock = open("/tmp/headplast-slurm.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    t0 = time.monotonic()
    try:
        p = subprocess.run(
            ["bash", str(CLUSTER_SH), "start"], text=True, capture_output=True, timeout=900
        )
        assert p.returncode == 0, f"cluster.sh start failed:\n{p.stdout}\n{p.stderr}"
        TIMINGS["bring-up"] = time.monotonic() - t0
        _report(
            request.config,
            f"cluster bring-up: {TIMINGS['bring-up']:.1f} s ({p.stderr.strip().splitlines()[-1]})",
        )
        info = dict(line.split("=", 1) for line in (STATE / "env").read_text().split())
        yield info
    finally:
        t1 = time.monotonic()
        subprocess.run(
            ["bash", str(CLUSTER_SH), "stop"], text=True, capture_output=True, timeout=300
        )
        _report(request.config, f"cluster stop: {time.monotonic() - t1:.1f} s")
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _overrides(info: dict[str, str], profile: Path = SLURM_PROFILE) -> list[str]:
    """Command-line overrides of profiles/slurm for the test cluster.

    A --default-resources / --set-resources on the command line replaces the profile's whole
    list, so both are rebuilt from the profile itself with only the site values (account,
    partition) swapped: every other value of the profile is what the test runs with.
    """
    prof = yaml.safe_load(profile.read_text())
    site = {
        "slurm_partition": info["HEADPLAST_SLURM_PARTITION"],
        "slurm_account": info["HEADPLAST_SLURM_ACCOUNT"],
    }
    default = {**prof.get("default-resources", {}), **site}
    # --resources on the command line replaces the profile's (the per-job `gpu` cap) entirely
    resources = {**prof.get("resources", {}), "mem_mb": info["HEADPLAST_SLURM_MEM_MB"]}
    args = ["--default-resources", *(f"{k}={v}" for k, v in default.items())]
    setres = []
    for rule, res in (prof.get("set-resources") or {}).items():
        for k, v in res.items():
            setres.append(f"{rule}:{k}={site.get(k, v)}")
    if setres:
        args += ["--set-resources", *setres]
    return args + [
        "--jobs",
        "4",
        "--slurm-init-seconds-before-status-checks",
        "2",
        # the test node: no rule may ask for more CPUs or memory than it has
        "--max-threads",
        info["HEADPLAST_SLURM_CPUS"],
        "--resources",
        *(f"{k}={v}" for k, v in resources.items()),
        "--slurm-keep-successful-logs",
        "--verbose",  # the plugin logs its sbatch command lines at debug level
    ]


# Snakemake run against the cluster: the real profile and plugin, with the plugin's polling gap
# capped for the one-node test cluster (tests/slurm/snakemake_polling.py says why).
SUBMIT = [sys.executable, str(REPO / "tests" / "slurm" / "snakemake_polling.py")]


def _snakemake(workdir: Path, info, *extra, timeout=MAIN_TIMEOUT_S, check=True):
    cmd = [
        *SUBMIT,
        "--profile",
        "profiles/slurm",
        *_overrides(info),
        *extra,
    ]
    return _run(cmd, cwd=workdir, timeout=timeout, check=check)


def _submissions(log: str) -> dict[str, list[str]]:
    """SLURM job id -> rule, and rule -> its sbatch command lines, from snakemake's log."""
    sbatch: dict[str, list[str]] = {}
    for line in log.splitlines():
        m = re.search(r"sbatch call: (sbatch .*?) --wrap=", line)
        if m:
            # `rule_<name>[_wildcards_<values>]`, quoted or not; a group job's name is Snakemake's
            # `<group>_<its rules, sorted>` with more than five rules cut to five and "..."
            rule = re.search(r"--comment '?rule_(\S+?)(?:_wildcards_\S*)?'?\s", m.group(1))
            assert rule, f"no rule name in the sbatch comment: {m.group(1)}"
            rule = rule.group(1)
            sbatch.setdefault(rule, []).append(m.group(1))
    return sbatch


def _group_job_name(group: str, rules: list[str]) -> str:
    """Snakemake's name for a group job (GroupJob.name): the group, then its rules sorted, more
    than five cut to the first five and "..."."""
    names = sorted(rules)
    if len(names) > 5:
        names = [*names[:5], "..."]
    return "_".join([group, *names])


def _planned_rules(dry_run: str) -> dict[str, int]:
    """rule -> number of jobs, from the job-stats table of a dry run."""
    counts: dict[str, int] = {}
    for line in dry_run.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def _job_ids(log: str) -> list[str]:
    return re.findall(r"has been submitted with SLURM jobid (\d+)", log)


def _sacct(ids: list[str]) -> dict[str, str]:
    out = _run(
        ["sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode", "-j", ",".join(ids)],
        cwd="/",
        timeout=60,
    ).stdout
    return {f[0]: f[1] for f in (line.split("|") for line in out.splitlines() if line)}


def _wait_sacct(ids, done=lambda s: s not in ("PENDING", "RUNNING", "COMPLETING", ""), t=60):
    """sacct lags the controller by a moment; wait until every job has a final state."""
    end = time.monotonic() + t
    while True:
        states = _sacct(ids)
        if all(done(states.get(i, "")) for i in ids) or time.monotonic() > end:
            return states
        time.sleep(1)


# ----------------------------------------------------------------- the workflow, on SLURM
@pytest.mark.slurm
def test_workflow_on_slurm(cluster, tmp_path, request):
    """The tiny test DAG (.test/config.yaml), every job an sbatch job; all artifacts, all
    jobs COMPLETED in sacct, the GPU rules submitted with --gpus=1 (or --gres=gpu)."""
    missing = [f for f in ("Snakefile", ".test/config.yaml") if not (REPO / f).exists()]
    assert not missing, f"main workflow not there yet: {missing}"
    # Snakefile, rules/, ..., profiles/, tiny_model/
    from tests.workflow_utils import CONFIG_NAME, DELETE, make_workdir

    # one task of the two, one seed and the probe start, with the freeze interventions on it:
    # every rule of the tiny DAG still runs (the probe start's theta0 is built on the random
    # start's init_checkpoint; the summaries, start comparison and pages over one of each), in 39
    # sbatch jobs against 59 with both starts (the local run covers both starts and two seeds)
    wd = make_workdir(
        tmp_path,
        {
            "tasks": {"nli_b": DELETE},
            "seeds": [1],
            "starts": ["probe"],
            "interventions": {"starts": ["probe"]},
        },
    )
    cfg = ["--configfile", CONFIG_NAME]
    plan = _run(
        [sys.executable, "-m", "snakemake", *cfg, "-n", "--cores", "1"], cwd=wd, timeout=300
    )
    jobs = _planned_rules(plan.stdout)

    t0 = time.monotonic()
    p = _snakemake(wd, cluster, *cfg)
    TIMINGS["workflow"] = time.monotonic() - t0
    _report(request.config, f"tiny DAG on SLURM: {TIMINGS['workflow']:.1f} s")
    log = p.stdout + p.stderr

    # every target of `rule all` is there and up to date: nothing left to do ...
    dry = _run([sys.executable, "-m", "snakemake", *cfg, "-n", "--cores", "1"], cwd=wd, timeout=300)
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
    # ... and every output of every job (not just the targets) exists
    summ = _run(
        [sys.executable, "-m", "snakemake", *cfg, "--summary", "--cores", "1"], cwd=wd, timeout=300
    ).stdout
    rows = [r.split("\t") for r in summ.splitlines()[1:] if r.strip()]
    assert rows, summ
    bad = [
        (r[0], r[-2])
        for r in rows  # columns: output_file ... status, plan
        if "temp" not in r[-2] and (r[-2] != "ok" or not (wd / r[0]).exists())
    ]
    assert not bad, f"outputs missing or not ok: {bad}"

    # every SLURM job COMPLETED
    ids = _job_ids(log)
    assert ids, log[-5000:]
    states = _wait_sacct(ids)
    assert all(states.get(i) == "COMPLETED" for i in ids), states

    # the measuring rules of each (model, task, start, seed) were ONE sbatch job: fewer
    # submissions than jobs, by exactly (group size - 1) per group
    sbatch = _submissions(log)
    groups = {r: v for r, v in sbatch.items() if r.startswith("measure_")}
    n_runs = jobs["heads"]  # one per (model, task, start, seed)
    assert sum(len(v) for v in groups.values()) == n_runs, sorted(sbatch)
    assert all(r == _group_job_name(MEASURE_GROUP, MEASURE_GROUP_RULES) for r in groups), groups
    assert not set(MEASURE_GROUP_RULES) & set(sbatch), f"grouped rules submitted: {sorted(sbatch)}"
    n_jobs = sum(n for r, n in jobs.items() if r != "all")  # `all` is a local rule
    n_sbatch = sum(len(v) for v in sbatch.values())
    assert n_sbatch == n_jobs - n_runs * (len(MEASURE_GROUP_RULES) - 1) < n_jobs, (jobs, sbatch)
    _report(request.config, f"{n_sbatch} sbatch submissions for {n_jobs} jobs ({n_runs} groups)")

    # GPU rules and the measure groups asked SLURM for one GPU, the CPU rules for none
    gpu_jobs = {r for r in GPU_RULES if r in jobs}  # importance_pre only without the shared sweep
    assert gpu_jobs - set(MEASURE_GROUP_RULES) <= set(sbatch), sorted(sbatch)
    for rule, lines in sbatch.items():
        for line in lines:
            gpu = "--gpus=1" in line or re.search(r"--gres=gpu(:\w+)?:1\b", line)
            both = "--gpus" in line and "--gres" in line
            assert not both, line
            if rule in GPU_RULES or rule in groups:
                assert gpu, f"{rule}: {line}"
            else:
                assert "--gpus" not in line and "--gres" not in line, f"{rule}: {line}"
    _report(request.config, f"sbatch for finetune: {sbatch['finetune'][0]}")
    _report(request.config, f"sbatch for a measure group: {next(iter(groups.values()))[0]}")


# ------------------------------------------- a failed / cancelled job, --retries, no trust
FLAKY_SNAKEFILE = textwrap.dedent("""\
    # Attempt 1 of each rule leaves a partial output behind and dies: `flaky` exits 1,
    # `preempted` hangs until the test scancels it. Attempt 2 writes the real output.
    rule all:
        input: "flaky.txt", "preempted.txt"

    rule flaky:
        output: "flaky.txt"
        log: "logs/flaky.log"
        resources:
            gpu=1,
            mem_mb=200,
            runtime=lambda wc, attempt: 5 * attempt,
            tries=lambda wc, attempt: attempt,
        shell:
            "echo partial > {output}; "
            "if [ {resources.tries} -lt 2 ]; then exit 1; fi; echo ok > {output}"

    rule preempted:
        output: "preempted.txt"
        log: "logs/preempted.log"
        resources: gpu=1, mem_mb=200, runtime=5, tries=lambda wc, attempt: attempt
        shell:
            "echo partial > {output}; "
            "if [ {resources.tries} -lt 2 ]; then sleep 600; fi; echo ok > {output}"
    """)


def _scancel_when_running(workdir: Path, proc: subprocess.Popen, rule: str, t=180) -> str:
    """Wait until `rule`'s SLURM job runs and has written its partial output; scancel it."""
    end = time.monotonic() + t
    while time.monotonic() < end and proc.poll() is None:
        out = subprocess.run(
            ["squeue", "-h", "-t", "R", "-o", "%i %k"], text=True, capture_output=True
        ).stdout
        for line in out.splitlines():
            jid, _, comment = line.partition(" ")
            if comment.strip() == f"rule_{rule}" and (workdir / f"{rule}.txt").exists():
                subprocess.run(["scancel", jid], check=True)
                return jid
        time.sleep(0.5)
    raise AssertionError(f"{rule} never ran (snakemake rc={proc.poll()})")


def _popen_snakemake(workdir, info, *extra):
    cmd = [*SUBMIT, "--profile", "profiles/slurm", *_overrides(info), *extra]
    return subprocess.Popen(
        cmd, cwd=workdir, env=_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _scancel_and_finish(workdir, proc, rule, timeout=300) -> tuple[str, str]:
    """scancel `rule`'s job once it runs; return (its SLURM id, snakemake's output)."""
    try:
        jid = _scancel_when_running(workdir, proc, rule)
        out, _ = proc.communicate(timeout=timeout)
        return jid, out
    finally:
        if proc.poll() is None:  # never leave a snakemake behind
            proc.kill()
            proc.communicate()


# TRAP (plugin 2.8.0): for a job cancelled with scancel, sacct says "CANCELLED by <uid>", which
# the plugin's sacct status check does not match against its "CANCELLED" -> it keeps the job
# "running" and snakemake waits forever. squeue says plain "CANCELLED"; the test cluster keeps
# finished jobs in squeue for 10 min (MinJobAge=600), so the scancel test polls with squeue.
SCANCEL_STATUS = ["--slurm-status-command", "squeue"]


@pytest.mark.slurm
def test_failed_and_cancelled_jobs_are_not_trusted_and_retried(cluster, tmp_path, request):
    t0 = time.monotonic()
    (tmp_path / "Snakefile").write_text(FLAKY_SNAKEFILE)
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")

    # 1) no retries: `flaky` fails, `preempted` is scancel'ed -> snakemake fails, and neither
    #    partial output is trusted by a later run (removed, or flagged incomplete).
    proc = _popen_snakemake(tmp_path, cluster, "--retries", "0", *SCANCEL_STATUS)
    cancelled, out = _scancel_and_finish(tmp_path, proc, "preempted")
    assert proc.returncode != 0, out[-4000:]
    assert _wait_sacct([cancelled])[cancelled].startswith("CANCELLED")
    states = _wait_sacct(_job_ids(out))
    assert sorted(s.split()[0] for s in states.values()) == ["CANCELLED", "FAILED"], states
    dry = _run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1"],
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    dry_out = dry.stdout + dry.stderr
    for rule in ("flaky", "preempted"):
        # the partial output is gone or flagged incomplete: a later run plans to redo the job
        # (or refuses to go on without --rerun-incomplete), it never takes "partial" as done
        assert _planned_or_flagged_incomplete(dry_out, rule, f"{rule}.txt"), dry_out[-3000:]

    # 2) the profile's --retries, sacct status (the plugin's default): `flaky` fails on
    #    attempt 1 and is resubmitted with the attempt-dependent resources (runtime 5 -> 10 min).
    p = _snakemake(tmp_path, cluster, "flaky.txt", timeout=600)
    out = p.stdout + p.stderr
    assert (tmp_path / "flaky.txt").read_text().strip() == "ok"
    states = _wait_sacct(_job_ids(out))
    assert sorted(states.values()) == ["COMPLETED", "FAILED"], states
    sbatch = _submissions(out)["flaky"]
    assert len(sbatch) == 2 and all("--gpus=1" in s for s in sbatch), sbatch
    assert " -t 5 " in sbatch[0] and " -t 10 " in sbatch[1], sbatch

    # 3) the profile's --retries: `preempted` is scancel'ed on attempt 1, attempt 2 finishes.
    proc = _popen_snakemake(tmp_path, cluster, "preempted.txt", *SCANCEL_STATUS)
    cancelled, out = _scancel_and_finish(tmp_path, proc, "preempted")
    assert proc.returncode == 0, out[-6000:]
    assert (tmp_path / "preempted.txt").read_text().strip() == "ok"
    states = _wait_sacct(_job_ids(out))
    assert sorted(s.split()[0] for s in states.values()) == ["CANCELLED", "COMPLETED"], states
    assert len(_submissions(out)["preempted"]) == 2

    # a later run trusts the result: nothing to do
    dry = _run([sys.executable, "-m", "snakemake", "-n", "--cores", "1"], cwd=tmp_path, timeout=120)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    TIMINGS["retries"] = time.monotonic() - t0
    _report(request.config, f"failed/cancelled + retries test: {TIMINGS['retries']:.1f} s")


# ----------------------------------------------------------------- profiles, no cluster
@pytest.mark.parametrize(
    "env,required",
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"CI": "1"}, True),
        ({"CI": "false"}, False),
        ({"CI": ""}, False),
        ({"HEADPLAST_REQUIRE_SLURM": "1"}, True),
        ({"HEADPLAST_REQUIRE_SLURM": "0"}, False),
    ],
)
def test_no_cluster_fails_under_ci_and_skips_elsewhere(env, required):
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match="needs root"):
        _unavailable("needs root: test", env)
    assert _slurm_required(env) is required


def test_incomplete_check_is_per_rule():
    flagged = (
        "IncompleteFilesException:\nThe files below seem to be incomplete. ...\n"
        "--rerun-incomplete flag.\nIncomplete files:\nflaky.txt\n"
    )
    assert _planned_or_flagged_incomplete(flagged, "flaky", "flaky.txt")
    assert not _planned_or_flagged_incomplete(flagged, "preempted", "preempted.txt")
    planned = "Job stats:\n...\n\nrule preempted:\n    output: preempted.txt\n"
    assert _planned_or_flagged_incomplete(planned, "preempted", "preempted.txt")
    assert not _planned_or_flagged_incomplete(planned, "flaky", "flaky.txt")
    assert not _planned_or_flagged_incomplete("Nothing to be done.", "flaky", "flaky.txt")


@pytest.mark.snakemake
def test_local_profile_runs_one_gpu_job_at_a_time(tmp_path):
    """profiles/local caps `gpu` at 1: two GPU jobs never overlap, even with cores to spare."""
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent("""\
        rule all:
            input: expand("g{i}.txt", i=[1, 2]), "cpu.txt"
        rule gpu_job:
            output: "g{i}.txt"
            resources: gpu=1
            shell: "date +%s.%N > {output}; sleep 2; date +%s.%N >> {output}"
        rule cpu_job:
            output: "cpu.txt"
            shell: "date +%s.%N > {output}; sleep 2; date +%s.%N >> {output}"
        """)
    )
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    _run(
        [sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", "3"],
        cwd=tmp_path,
        timeout=300,
    )
    (a0, a1), (b0, b1) = (
        [float(x) for x in (tmp_path / f"g{i}.txt").read_text().split()] for i in (1, 2)
    )
    assert a1 <= b0 or b1 <= a0, "two gpu=1 jobs ran at the same time under profiles/local"


def test_slurm_profile_parses_and_sets_gpu_rules(tmp_path):
    """profiles/slurm: the GPU rules get the GPU partition and gpu=1 (finetune: the config's
    GPU count); the rules of the measure group all one gres=gpu:1 and gpu=0; no global gpu cap."""
    prof = yaml.safe_load(SLURM_PROFILE.read_text())
    assert prof["executor"] == "slurm"
    assert prof["resources"] == {"measure_gpu": 1}, "no global gpu cap on a cluster"
    assert prof["set-resource-scopes"] == {"measure_gpu": "local"}
    for rule in GPU_RULES + PROFILE_GROUP_RULES:
        res = prof["set-resources"][rule]
        assert res.get("slurm_partition"), (rule, res)
        if rule in PROFILE_GROUP_RULES:
            assert res.get("gpu") == 0 and res.get("gres") == "gpu:1", (rule, res)
        else:
            assert res.get("gpu") == (None if rule == "finetune" else 1), (rule, res)
            assert "gres" not in res, (rule, res)
    local = yaml.safe_load(LOCAL_PROFILE.read_text())
    assert local["resources"] == {"gpu": 1}

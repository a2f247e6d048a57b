"""A single-node SLURM cluster on localhost, to try (and test) the cluster path of sweeps.

    python -m lga.tools.slurm up        # install (apt) if needed, start munge, slurmctld, slurmd
    python -m lga.tools.slurm status
    python -m lga.tools.slurm down      # cancel leftover jobs, stop the daemons

Needs root and Debian's packages (slurmctld, slurmd, slurm-client, munge). It writes
``/etc/slurm/slurm.conf`` (refusing to touch one it did not write), keeps state, logs
and pid files under ``<temp dir>/lga-slurm``, and installs a small ``sacct`` in
``/usr/local/bin``: this cluster has no accounting database, and submitit asks sacct
for job states, so without it a killed job would leave the launcher waiting forever.
The ``sacct`` there answers submitit's query from ``scontrol show job``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STATE_DIR = Path(tempfile.gettempdir()) / "lga-slurm"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
SACCT_SHIM = Path("/usr/local/bin/sacct")
MARKER = "# written by lga.tools.slurm"
PARTITION = "debug"
PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]

SACCT_SCRIPT = f"""#!/usr/bin/env python3
{MARKER}: answers `sacct -o JobID,State,NodeList --parsable2 -j ID ...` from scontrol
# (this cluster has no accounting database, which the real sacct needs)
import subprocess, sys
args, ids = sys.argv[1:], []
for i, arg in enumerate(args):
    if arg == "-j" and i + 1 < len(args):
        ids += args[i + 1].split(",")
print("JobID|State|NodeList")
for job in ids:
    out = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if "JobId" not in f:
            continue
        jid = f["ArrayJobId"] + "_" + f["ArrayTaskId"] if "ArrayTaskId" in f else f["JobId"]
        print(jid + "|" + f.get("JobState", "UNKNOWN") + "|" + f.get("NodeList", ""))
"""


class ClusterError(RuntimeError):
    pass


def _run(*cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        raise ClusterError(
            f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def _host() -> str:
    return socket.gethostname().split(".")[0]


def can_run() -> str | None:
    """Why this machine cannot host the cluster, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (it writes /etc/slurm and starts daemons)"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "SLURM is not installed and apt-get is not available to install it"
    if SLURM_CONF.exists() and MARKER not in SLURM_CONF.read_text():
        return f"{SLURM_CONF} exists and was not written by lga.tools.slurm; not touching a real cluster's config"
    return None


def _install() -> None:
    if all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged")):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
        check=True,
        env=env,
        capture_output=True,
    )


def _start_munge() -> None:
    if _run("pgrep", "-x", "munged", check=False).returncode == 0:
        return
    if not Path("/etc/munge/munge.key").exists():
        _run("mungekey", "--create")
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    _run("runuser", "-u", "munge", "--", "/usr/sbin/munged")
    _run("sh", "-c", "munge -n | unmunge")


def _write_conf() -> None:
    host = _host()
    node = _run("slurmd", "-C").stdout.splitlines()[0].split()
    fields = dict(kv.split("=", 1) for kv in node if "=" in kv)
    fields["RealMemory"] = str(int(int(fields.get("RealMemory", "1024")) * 0.9))
    node_line = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("NodeName", "UpTime"))
    for sub in ("state", "spool"):
        (STATE_DIR / sub).mkdir(parents=True, exist_ok=True)
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SLURM_CONF.write_text(
        f"""{MARKER}: a single-node test cluster on localhost (python -m lga.tools.slurm down stops it)
ClusterName=lga
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
MailProg=/bin/true
StateSaveLocation={STATE_DIR}/state
SlurmdSpoolDir={STATE_DIR}/spool
SlurmctldPidFile={STATE_DIR}/slurmctld.pid
SlurmdPidFile={STATE_DIR}/slurmd.pid
SlurmctldLogFile={STATE_DIR}/slurmctld.log
SlurmdLogFile={STATE_DIR}/slurmd.log
NodeName={host} NodeAddr=127.0.0.1 {node_line}
PartitionName={PARTITION} Nodes={host} Default=YES State=UP MaxTime=INFINITE OverSubscribe=FORCE:4
"""
    )


def _install_sacct_shim() -> None:
    if SACCT_SHIM.exists() and MARKER not in SACCT_SHIM.read_text():
        raise ClusterError(f"{SACCT_SHIM} exists and is not lga's; remove it or put lga's sacct first on PATH")
    SACCT_SHIM.write_text(SACCT_SCRIPT)
    SACCT_SHIM.chmod(0o755)


def _pid(name: str) -> int | None:
    try:
        pid = int((STATE_DIR / f"{name}.pid").read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def up(timeout: float = 90) -> None:
    reason = can_run()
    if reason:
        raise ClusterError(f"cannot start the local SLURM cluster: {reason}")
    _install()
    _start_munge()
    _write_conf()
    _install_sacct_shim()
    if _pid("slurmctld") is None:
        _run("slurmctld")
    if _pid("slurmd") is None:
        _run("slurmd", "-N", _host())
    # sinfo can say idle from recovered state before slurmd registered: run a real job
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe = _run("srun", "-N1", "-n1", "-t", "1", "true", check=False, timeout=30)
            if probe.returncode == 0:
                return
            why = probe.stderr.strip()
        except subprocess.TimeoutExpired:  # slurmd still registering, or a loaded machine: try again
            why = "srun waited 30 s for a node"
        if time.monotonic() > deadline:
            raise ClusterError(f"cluster did not run a job within {timeout:.0f} s: {why}; logs in {STATE_DIR}")
        time.sleep(1)


def down() -> None:
    if shutil.which("scancel") and SLURM_CONF.exists():
        _run("scancel", "--user", "root", check=False, timeout=30)
    for name in ("slurmd", "slurmctld"):
        pid = _pid(name)
        if pid is None:
            continue
        os.kill(pid, 15)
        for _ in range(50):
            if _pid(name) is None:
                break
            time.sleep(0.2)
        else:
            os.kill(pid, 9)
    if SACCT_SHIM.exists() and MARKER in SACCT_SHIM.read_text():
        SACCT_SHIM.unlink()


def status() -> str:
    daemons = {name: _pid(name) for name in ("slurmctld", "slurmd")}
    lines = [f"{name}: {'running (pid %d)' % pid if pid else 'stopped'}" for name, pid in daemons.items()]
    if all(daemons.values()):
        lines.append(_run("sinfo", check=False).stdout.strip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    commands = {"up": up, "down": down, "status": lambda: print(status())}
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in commands:
        raise SystemExit(f"usage: python -m lga.tools.slurm {{{'|'.join(commands)}}}")
    try:
        commands[args[0]]()
    except (ClusterError, subprocess.CalledProcessError) as err:
        raise SystemExit(f"error: {err}") from None
    if args[0] == "up":
        print(
            f"SLURM is up: partition '{PARTITION}' on {_host()}; "
            "try `python run.py -m hydra/launcher=slurm attention=none,lga`"
        )


if __name__ == "__main__":
    main()

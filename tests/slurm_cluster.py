"""A real single-node SLURM cluster on loopback, for the tests (and by hand: ``python
tests/slurm_cluster.py`` starts one and prints its ``SLURM_CONF``; Ctrl-C or SIGTERM stops it).

Debian's packages (``slurm-wlm``, ``slurmdbd``, ``munge``, ``mariadb-server``), installed when
missing (as root). Accounting goes through slurmdbd to a private MariaDB, so ``sacct`` lists the
jobs, as on a site's cluster. Everything lives in one temporary folder; :meth:`stop` ends every
job, every daemon it started and every process they left. The commands find the cluster through
``SLURM_CONF`` (:attr:`env`)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ["slurm-wlm", "slurmdbd", "munge", "mariadb-server"]
DAEMONS = ["slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def installed() -> bool:
    return all(shutil.which(d, path="/usr/sbin:/usr/bin") for d in DAEMONS)


def install() -> None:
    from conftest import apt_install
    apt_install(*PACKAGES)


class SlurmCluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="clara-hydra-slurm-"))
        self.procs: list[subprocess.Popen] = []
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.dir / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))

    # -- the daemons ---------------------------------------------------------------------------
    def start(self) -> SlurmCluster:
        try:
            self._munge()
            self._mariadb()
            self._write_confs()
            self._daemon(["/usr/sbin/slurmdbd", "-D"], "slurmdbd.log")
            self._wait_port(self.dbd_port, "slurmdbd")
            self._sacctmgr("add", "cluster", "clara")
            self._daemon(["/usr/sbin/slurmctld", "-D", "-i"], "slurmctld.log")
            self._wait_port(self.ctld_port, "slurmctld")
            self._daemon(["/usr/sbin/slurmd", "-D"], "slurmd.log")
            self._wait_idle()
        except BaseException:
            self.stop()
            raise
        return self

    def _daemon(self, cmd: list[str], log: str, **kw) -> subprocess.Popen:
        out = open(self.dir / log, "w")
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def _munge(self) -> None:
        """munged on its own socket and key (SLURM's AuthInfo names the socket)."""
        self.munge_socket = self.dir / "munge" / "munge.socket"
        (self.dir / "munge").mkdir()
        key = self.dir / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._daemon(["/usr/sbin/munged", "--foreground", "--force", f"--socket={self.munge_socket}",
                      f"--key-file={key}", f"--pid-file={self.dir / 'munge' / 'munged.pid'}",
                      f"--log-file={self.dir / 'munge' / 'munged.log'}",
                      f"--seed-file={self.dir / 'munge' / 'munged.seed'}"], "munged.out")
        self._wait(lambda: self.munge_socket.exists(), "munged")

    def _mariadb(self) -> None:
        data = self.dir / "mysql"
        data.mkdir()
        shutil.chown(self.dir, "mysql")
        shutil.chown(data, "mysql", "mysql")
        subprocess.run(["mariadb-install-db", "--user=mysql", f"--datadir={data}",
                        "--auth-root-authentication-method=normal", "--skip-test-db"], check=True, capture_output=True)
        self.db_port = _free_port()
        self.db_socket = self.dir / "mysql.sock"
        self._daemon(["/usr/sbin/mariadbd", "--no-defaults", "--user=mysql", f"--datadir={data}",
                      f"--socket={self.db_socket}", f"--port={self.db_port}", "--bind-address=127.0.0.1",
                      f"--pid-file={self.dir / 'mysql.pid'}", "--skip-grant-tables", "--innodb-buffer-pool-size=64M"],
                     "mariadb.log")
        self._wait_port(self.db_port, "mariadbd")

    def _write_confs(self) -> None:
        self.dbd_port, self.ctld_port, self.d_port = _free_port(), _free_port(), _free_port()
        for sub in ("state", "spool", "log"):
            (self.dir / sub).mkdir()
        auth = f"AuthInfo=socket={self.munge_socket}"
        self.conf.write_text(f"""ClusterName=clara
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmdPort={self.d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
{auth}
StateSaveLocation={self.dir / 'state'}
SlurmdSpoolDir={self.dir / 'spool'}
SlurmctldPidFile={self.dir / 'slurmctld.pid'}
SlurmdPidFile={self.dir / 'slurmd.pid'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.dbd_port}
AccountingStoragePass={self.munge_socket}
JobCompType=jobcomp/none
MinJobAge=2
InactiveLimit=0
KillWait=1
Waittime=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
""")
        dbd = self.dir / "slurmdbd.conf"
        dbd.write_text(f"""AuthType=auth/munge
{auth}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self.dbd_port}
SlurmUser=root
PidFile={self.dir / 'slurmdbd.pid'}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.db_port}
StorageUser=root
StorageLoc=slurm_acct_db
""")
        dbd.chmod(0o600)

    def _sacctmgr(self, *args: str) -> None:
        for _ in range(50):
            proc = subprocess.run(["sacctmgr", "-i", *args], env=self.env, capture_output=True, text=True, timeout=30)
            if proc.returncode == 0 or "already exists" in proc.stdout + proc.stderr:
                return
            time.sleep(0.2)
        raise RuntimeError(f"sacctmgr {' '.join(args)}: {proc.stdout} {proc.stderr}")

    def _wait_idle(self) -> None:
        def idle() -> bool:
            proc = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True)
            return proc.returncode == 0 and proc.stdout.strip() in ("idle", "mixed")
        self._wait(idle, "the node (sinfo)", 60)

    def _wait_port(self, port: int, what: str) -> None:
        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        self._wait(listening, what)

    def _wait(self, ok, what: str, seconds: float = 30) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            if ok():
                return
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                break
            time.sleep(0.2)
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                         for p in sorted(self.dir.glob("*.log")))
        raise RuntimeError(f"{what} did not start\n{logs}")

    # -- queries -------------------------------------------------------------------------------
    def sacct(self, *args: str) -> str:
        return subprocess.run(["sacct", "-n", "-X", "-P", *args], env=self.env, capture_output=True, text=True,
                              check=True).stdout

    def jobs(self) -> list[str]:
        """The ids of the jobs the cluster still holds (pending, running or completing)."""
        return subprocess.run(["squeue", "-h", "-o", "%i"], env=self.env, capture_output=True, text=True,
                              check=True, timeout=30).stdout.split()

    def cancel_jobs(self, seconds: float = 60) -> None:
        """Cancel every job of this (private) cluster and wait until none is left: a job is listed
        until its processes have ended (COMPLETING), so none runs on past this."""
        subprocess.run(["scancel", "--full", "-u", pwd.getpwuid(os.geteuid()).pw_name], env=self.env,
                       capture_output=True, timeout=30)
        deadline = time.monotonic() + seconds
        while left := self.jobs():
            if time.monotonic() > deadline:
                raise RuntimeError(f"SLURM jobs {' '.join(left)} still there {seconds:.0f}s after scancel")
            time.sleep(0.2)

    def _strays(self) -> list[int]:
        """What this cluster's jobs left running: each slurmstepd (Debian's is slurmstepd-wlm) and
        each process of a job. Both have this cluster's ``SLURM_CONF`` in their environment; a
        job's has its ``SLURM_JOB_ID`` too, which tells it from a shell that merely uses the cluster."""
        mark = f"SLURM_CONF={self.conf}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    env = fh.read().split(b"\0")
                exe = os.path.basename(os.readlink(f"/proc/{entry}/exe"))
            except OSError:  # gone meanwhile, a zombie, or not ours to read
                continue
            if mark in env and (exe.startswith("slurmstepd") or any(v.startswith(b"SLURM_JOB_ID=") for v in env)):
                found.append(int(entry))
        return found

    def stop(self) -> None:
        """End the jobs, the daemons, and then whatever the cluster started that is still there:
        slurmd starts each job's slurmstepd in a session of its own, which outlives slurmd."""
        try:
            self.cancel_jobs(seconds=30)
        except (OSError, RuntimeError, subprocess.SubprocessError):
            pass  # (the daemons are stopped all the same; what the jobs left is killed below)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        for pid in self._strays():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    if not installed():
        install()
    cluster = SlurmCluster().start()
    print(f"export SLURM_CONF={cluster.conf}", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill PID stops it as Ctrl-C does
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()

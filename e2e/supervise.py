"""Supervise the local cluster's components the way a kubelet supervises static pods.

kwokctl --runtime=binary starts kube-apiserver, etcd, kube-controller-manager, kube-scheduler,
kwok-controller and metrics-server as detached processes and records each one's pid in
``<cluster>/pids/<name>.pid``; nothing restarts one that exits. kube-controller-manager and
kube-scheduler exit by design when they lose their leader lease (an API server outage does
that), and metrics-server may exit when it starts before the API server answers.

kwokctl v0.8 cannot start a single component: ``kwokctl start cluster`` starts every component
whose pid is not alive, which would undo an intentional stop, and it waits up to two minutes
for the API server; it also counts a zombie (a killed component its parent has not reaped yet)
as alive. So this supervisor re-launches a component itself, with the exact command line,
working directory and environment of the process kwokctl started, read from
``/proc/<pid>/{cmdline,cwd,environ}`` when ``e2e/cluster.sh up`` records them, and writes its
pid back into kwokctl's pid file, so kwokctl (``get components``, ``delete cluster``) keeps
seeing and stopping it.

Everything lives in the cluster directory:

    supervisor/components       the component names (``kwokctl get components``)
    supervisor/<name>.json      the recorded command line, working directory and environment
    supervisor/<name>.stopped   an intentional stop (``stop``): the supervisor leaves it alone
    supervisor/state.json       restart counts and backoff, written by the supervisor
    supervisor/supervisor.pid   the supervisor's pid; supervisor.lock is flock()ed while it runs
    logs/supervisor.log         every exit, restart, stop and start, one line each
    logs/<name>.log             the component's output (a restart appends to it)

Usage (``e2e/cluster.sh`` runs these with the system python3, standard library only):

    supervise.py record DIR NAME...   record the running components' command lines
    supervise.py daemon DIR           start the supervisor detached, unless one runs already
    supervise.py run DIR              the supervisor itself, in the foreground
    supervise.py shutdown DIR         stop the supervisor (not the components)
    supervise.py running DIR          exit 0 when a supervisor runs, 1 when none does
    supervise.py stop DIR NAME        stop a component; the supervisor leaves it alone
    supervise.py start DIR NAME       start a stopped (or dead) component again
    supervise.py status DIR           one line per component: state, pid, restarts
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TICK = 0.5  # seconds between liveness checks
BACKOFF_INITIAL = 1.0  # seconds before the first restart
BACKOFF_MAX = 30.0  # the delay doubles with each restart up to this
BACKOFF_RESET = 60.0  # ... and goes back to BACKOFF_INITIAL once a component stayed up this long
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL in ``stop`` (kube-apiserver stops listening
# at once but may then linger for a minute on open connections)


# -- the cluster directory ----------------------------------------------------------------------


class Cluster:
    def __init__(self, path: str) -> None:
        self.dir = Path(path).resolve()
        self.sup = self.dir / "supervisor"
        self.log_path = self.dir / "logs" / "supervisor.log"

    def exists(self) -> bool:
        return (self.dir / "kwok.yaml").exists()

    def pid_file(self, name: str) -> Path:
        return self.dir / "pids" / f"{name}.pid"

    def record_file(self, name: str) -> Path:
        return self.sup / f"{name}.json"

    def marker(self, name: str) -> Path:
        return self.sup / f"{name}.stopped"

    def components(self) -> list[str]:
        listed = self.sup / "components"
        if listed.exists():
            return [n for n in listed.read_text().split() if n]
        return sorted(p.stem for p in (self.dir / "pids").glob("*.pid"))

    def read_pid(self, name: str) -> int | None:
        try:
            return int(self.pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None

    def write_pid(self, name: str, pid: int) -> None:
        # kwokctl's format: the number, no newline; renamed into place so no reader sees half
        write_atomic(self.pid_file(name), str(pid))

    def alive(self, name: str, pid: int | None = None) -> int | None:
        """The component's pid when its process runs (a zombie does not), else None."""
        pid = self.read_pid(name) if pid is None else pid
        return pid if pid and process_is(pid, name, self.dir) else None

    def record(self, name: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.record_file(name).read_text())
            return data
        except (OSError, ValueError):
            return None

    def log(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {message}\n"
        try:  # never recreate a deleted cluster directory
            with open(self.log_path, "a") as f:  # O_APPEND: whole lines from several writers
                f.write(line)
        except FileNotFoundError:
            sys.stderr.write(line)

    @contextlib.contextmanager
    def ctl_lock(self) -> Iterator[None]:
        """Serialises ``stop``/``start`` with the supervisor's check-then-launch."""
        self.sup.mkdir(exist_ok=True)  # FileNotFoundError when the cluster is gone
        with open(self.sup / "ctl.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def supervisor_pid(self) -> int | None:
        """The running supervisor's pid: it holds supervisor.lock for its whole life."""
        lock = self.sup / "supervisor.lock"
        if not lock.exists():
            return None
        with open(lock, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pass  # held: a supervisor runs
            else:
                fcntl.flock(f, fcntl.LOCK_UN)
                return None
        try:
            return int((self.sup / "supervisor.pid").read_text())
        except (OSError, ValueError):
            return -1  # starting: it holds the lock but has not written its pid yet


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def process_is(pid: int, name: str, cluster_dir: Path) -> bool:
    """pid runs (not a zombie) and is this cluster's ``name``: its argv[0] is named ``name`` and
    it runs in the cluster directory (kwokctl starts every component there), so neither a
    recycled pid nor another cluster's process passes."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        state = stat[stat.rindex(")") + 2]
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (OSError, ValueError, IndexError):
        return False
    return (state not in "ZXx" and os.path.basename(os.fsdecode(argv0)) == name
            and cwd == str(cluster_dir))


def process_age(pid: int) -> float:
    """Seconds since pid started (0 when unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        start_ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22, starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


def launch(cluster: Cluster, name: str) -> int:
    """Start ``name`` from its recorded command line, detached like kwokctl starts it
    (own session, output to logs/<name>.log), and write kwokctl's pid file."""
    rec = cluster.record(name)
    if rec is None:
        raise RuntimeError(f"no recorded command line for {name} (run e2e/cluster.sh up)")
    env = dict(item.split("=", 1) for item in rec["env"] if "=" in item)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(cluster.dir / "logs" / f"{name}.log", "ab") as out:
        out.write(f"\n==== {stamp} started again by e2e/supervise.py ====\n".encode())
        out.flush()
        proc = subprocess.Popen(rec["argv"], cwd=rec["cwd"], env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out, start_new_session=True)
    cluster.write_pid(name, proc.pid)
    LAUNCHED[proc.pid] = proc
    return proc.pid


LAUNCHED: dict[int, subprocess.Popen[bytes]] = {}  # our children, reaped by reap()


def reap() -> None:
    for pid, proc in list(LAUNCHED.items()):
        if proc.poll() is not None:
            del LAUNCHED[pid]


# -- record -------------------------------------------------------------------------------------


def cmd_record(cluster: Cluster, names: list[str]) -> int:
    """Record each running component's command line; print (and exit 3 on) the ones that do not
    run, after removing their stale pid files so that ``kwokctl start cluster`` starts them."""
    cluster.sup.mkdir(exist_ok=True)
    if names:
        write_atomic(cluster.sup / "components", "\n".join(names) + "\n")
    missing = []
    for name in cluster.components():
        pid = cluster.alive(name)
        if pid is None:
            if not cluster.marker(name).exists():
                missing.append(name)
                cluster.pid_file(name).unlink(missing_ok=True)
            continue
        try:
            argv = [os.fsdecode(a) for a in
                    Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]]
            env = [os.fsdecode(e) for e in
                   Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if e]
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            missing.append(name)
            continue
        write_atomic(cluster.record_file(name),
                     json.dumps({"pid": pid, "argv": argv, "cwd": cwd, "env": env}, indent=1))
    if missing:
        print(" ".join(missing))
        return 3
    return 0


# -- the supervisor -----------------------------------------------------------------------------


class Supervisor:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.stopping = False
        self.state: dict[str, dict[str, Any]] = {}
        try:  # counts survive a restart of the supervisor itself
            old = json.loads((cluster.sup / "state.json").read_text())
        except (OSError, ValueError):
            old = {}
        now = time.monotonic()
        for name in cluster.components():
            prev = old.get(name, {})
            pid = cluster.alive(name)
            self.state[name] = {
                "restarts": int(prev.get("restarts", 0)),
                "last_restart": prev.get("last_restart"),
                "last_exit": prev.get("last_exit"),
                "backoff": BACKOFF_INITIAL,
                "pid": pid,
                "up_since": now - (process_age(pid) if pid else 0.0),
                "down_since": None,
                "next_restart": None,
            }
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        wall = time.time() - time.monotonic()
        out = {}
        for name, st in self.state.items():
            out[name] = {k: st[k] for k in ("restarts", "last_restart", "last_exit", "backoff",
                                            "pid")}
            out[name]["next_restart"] = (None if st["next_restart"] is None
                                         else st["next_restart"] + wall)
        write_atomic(self.cluster.sup / "state.json", json.dumps(out, indent=1))
        self.dirty = False

    def tick(self, name: str) -> None:
        c, st, now = self.cluster, self.state[name], time.monotonic()
        pid = c.alive(name)
        if pid is not None:
            if pid != st["pid"]:  # a new process: ours, start's, or kwokctl's
                st.update(pid=pid, up_since=now - process_age(pid), down_since=None,
                          next_restart=None)
                self.dirty = True
            if st["backoff"] > BACKOFF_INITIAL and now - st["up_since"] >= BACKOFF_RESET:
                st["backoff"] = BACKOFF_INITIAL
                self.dirty = True
            return
        if c.marker(name).exists():  # stopped on purpose: leave it alone
            if st["pid"] is not None or st["next_restart"] is not None:
                st.update(pid=None, down_since=None, next_restart=None, backoff=BACKOFF_INITIAL)
                self.dirty = True
            return
        if st["down_since"] is None:
            st["down_since"] = now
            st["next_restart"] = now + st["backoff"]
            st["last_exit"] = time.time()
            was = (f"pid {st['pid']}, up {now - st['up_since']:.0f}s" if st["pid"]
                   else "not running")
            c.log(f"{name} exited ({was}); restarting in {st['backoff']:.0f}s")
            st["pid"] = None
            self.dirty = True
        if now < st["next_restart"]:
            return
        down_for = now - st["down_since"]
        with c.ctl_lock():  # stop may have marked it meanwhile, start may have started it
            if c.marker(name).exists() or c.alive(name) is not None or not c.exists():
                return
            try:
                pid = launch(c, name)
            except Exception as e:  # log, back off, try again
                st["backoff"] = min(st["backoff"] * 2, BACKOFF_MAX)
                st["next_restart"] = now + st["backoff"]
                c.log(f"{name} could not be started: {e}; next try in {st['backoff']:.0f}s")
                self.dirty = True
                return
        st["restarts"] += 1
        st["last_restart"] = time.time()
        st.update(pid=pid, up_since=now, down_since=None, next_restart=None)
        c.log(f"{name} restarted (restart {st['restarts']}, pid {pid}, {down_for:.1f}s after "
              f"it exited); next backoff {min(st['backoff'] * 2, BACKOFF_MAX):.0f}s")
        st["backoff"] = min(st["backoff"] * 2, BACKOFF_MAX)
        self.dirty = True

    def run(self) -> int:
        c = self.cluster
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        c.log(f"supervisor started (pid {os.getpid()}) for {', '.join(self.state)}")
        while not self.stopping:
            if not c.exists():
                c.log("the cluster directory is gone (kwokctl delete cluster); supervisor exits")
                for proc in LAUNCHED.values():  # nothing may outlive the cluster
                    with contextlib.suppress(OSError):
                        proc.kill()
                break
            reap()
            try:
                for name in self.state:
                    if self.stopping:
                        break
                    self.tick(name)
                self.save()
            except FileNotFoundError:
                pass  # the cluster directory went away meanwhile: noticed above next time
            time.sleep(TICK)
        reap()
        if c.exists():
            self.save()
            c.log(f"supervisor stopped (pid {os.getpid()})")
        return 0

    def on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True


def cmd_run(cluster: Cluster) -> int:
    cluster.sup.mkdir(exist_ok=True)
    lock = open(cluster.sup / "supervisor.lock", "a")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"a supervisor already runs for {cluster.dir}", file=sys.stderr)
        return 0
    write_atomic(cluster.sup / "supervisor.pid", str(os.getpid()))
    try:
        return Supervisor(cluster).run()
    finally:
        if cluster.sup.exists():
            (cluster.sup / "supervisor.pid").unlink(missing_ok=True)


def cmd_daemon(cluster: Cluster) -> int:
    """Start ``run`` detached (own session, output to logs/supervisor.log, no terminal, no inherited
    pipes: ``eval "$(cluster.sh up)"`` must not wait for it) and wait until it holds its lock."""
    if cluster.supervisor_pid():
        return 0
    with open(cluster.log_path, "ab") as out:
        # the trailing slash: `cluster.sh down`'s last resort, pkill -f "<cluster dir>/", matches
        subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__), "run",
                          f"{cluster.dir}/"],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                         start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pid = cluster.supervisor_pid()
        if pid and pid > 0:
            return 0
        time.sleep(0.05)
    print("the supervisor did not start; see " + str(cluster.log_path), file=sys.stderr)
    return 1


def cmd_running(cluster: Cluster) -> int:
    return 0 if cluster.supervisor_pid() else 1


def cmd_shutdown(cluster: Cluster) -> int:
    pid = cluster.supervisor_pid()
    if not pid:
        return 0
    if pid > 0:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and cluster.supervisor_pid():
        time.sleep(0.05)
    pid = cluster.supervisor_pid()
    if pid and pid > 0:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return 0


# -- intentional stop and start -----------------------------------------------------------------


def cmd_stop(cluster: Cluster, name: str) -> int:
    if name not in cluster.components():
        print(f"unknown component {name}; one of: {' '.join(cluster.components())}",
              file=sys.stderr)
        return 2
    with cluster.ctl_lock():
        write_atomic(cluster.marker(name), time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
        pid = cluster.alive(name)
    if pid is None:
        cluster.log(f"{name} stopped on request (it was not running); the supervisor leaves it "
                    "alone")
        cluster.pid_file(name).unlink(missing_ok=True)
        return 0
    start = time.monotonic()
    how = "SIGTERM"
    cluster.log(f"{name} stopping on request (pid {pid}, SIGTERM)")
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    while cluster.alive(name, pid) and time.monotonic() - start < STOP_GRACE:
        time.sleep(0.05)
    if cluster.alive(name, pid):
        how = f"SIGKILL after {STOP_GRACE:.0f}s"
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        while cluster.alive(name, pid) and time.monotonic() - start < STOP_GRACE + 10:
            time.sleep(0.05)
    if cluster.alive(name, pid):
        cluster.log(f"{name} (pid {pid}) survived SIGKILL; still marked stopped")
        print(f"{name} (pid {pid}) does not exit", file=sys.stderr)
        return 1
    if cluster.read_pid(name) == pid:
        cluster.pid_file(name).unlink(missing_ok=True)  # as kwokctl's own stop does
    cluster.log(f"{name} stopped on request (pid {pid}, {how}, gone after "
                f"{time.monotonic() - start:.1f}s); the supervisor leaves it alone")
    return 0


def cmd_start(cluster: Cluster, name: str) -> int:
    if name not in cluster.components():
        print(f"unknown component {name}; one of: {' '.join(cluster.components())}",
              file=sys.stderr)
        return 2
    with cluster.ctl_lock():
        pid = cluster.alive(name)
        if pid is None:
            pid = launch(cluster, name)
            cluster.log(f"{name} started on request (pid {pid})")
        cluster.marker(name).unlink(missing_ok=True)
    return 0


# -- status -------------------------------------------------------------------------------------


def cmd_status(cluster: Cluster) -> int:
    sup = cluster.supervisor_pid()
    try:
        state = json.loads((cluster.sup / "state.json").read_text())
    except (OSError, ValueError):
        state = {}
    if sup:
        print(f"supervisor: running (pid {sup}); restarts are logged in {cluster.log_path}")
    else:
        print("supervisor: not running (e2e/cluster.sh up starts it)")
    rows = [("COMPONENT", "STATE", "PID", "RESTARTS", "LAST-RESTART", "")]
    now = time.time()
    for name in cluster.components():
        st = state.get(name, {})
        pid = cluster.alive(name)
        note = ""
        if pid is not None:
            what = "running"
        elif cluster.marker(name).exists():
            what, note = "stopped", "(stop-component; start-component starts it)"
        elif sup and st.get("next_restart"):
            what = "restarting"
            note = f"(exited; next start in {max(0.0, st['next_restart'] - now):.0f}s)"
        else:
            what = "down"
        last = st.get("last_restart")
        rows.append((name, what, str(pid or "-"), str(st.get("restarts", 0)),
                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last)) if last else "-",
                     note))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)).rstrip()
              + (f"  {r[5]}" if r[5] else ""))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    command, cluster, rest = argv[0], Cluster(argv[1]), argv[2:]
    if command == "record":
        return cmd_record(cluster, rest)
    if command in ("stop", "start") and len(rest) == 1:
        return (cmd_stop if command == "stop" else cmd_start)(cluster, rest[0])
    simple = {"run": cmd_run, "daemon": cmd_daemon, "shutdown": cmd_shutdown,
              "status": cmd_status, "running": cmd_running}
    if command in simple and not rest:
        return simple[command](cluster)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

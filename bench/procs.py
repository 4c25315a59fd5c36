"""Processes the benchmark starts (and always stops), /proc readings, machine facts."""

from __future__ import annotations

import atexit
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class Procs:
    """Every process started through here runs in its own session (process group)
    and is stopped (TERM, then KILL) by stop()/stop_all(), at exit, on Ctrl-C or TERM."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.live: list[subprocess.Popen] = []
        atexit.register(self.stop_all)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, _frame) -> None:
        self.stop_all()
        raise KeyboardInterrupt(f"signal {signum}")

    def start(self, name: str, cmd: list[str], cpus: str | None = None, env: dict | None = None,
              cwd: str | None = None, pass_fds: tuple = ()) -> subprocess.Popen:
        if cpus:
            cmd = ["taskset", "-c", cpus, *cmd]
        log = open(self.log_dir / f"{name}.log", "ab")
        log.write(f"\n$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True, pass_fds=pass_fds)
        proc.bench_name = name  # type: ignore[attr-defined]
        self.live.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 10) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        if proc in self.live:
            self.live.remove(proc)
        # Descendants left in the group (a uvicorn worker, a node child) go too.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_all(self) -> None:
        for proc in list(reversed(self.live)):
            self.stop(proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_http(port: int, path: str, proc: subprocess.Popen, timeout: float = 60, method: str = "GET",
              headers: str = "") -> None:
    """Until something answers an HTTP request on 127.0.0.1:port (any status)."""
    deadline = time.monotonic() + timeout
    request = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n".encode()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{getattr(proc, 'bench_name', 'process')} exited with {proc.returncode}; "
                               f"see its log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(request)
                if s.recv(16).startswith(b"HTTP/"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}{path} within {timeout:.0f} s")


def tree(pid: int) -> list[int]:
    """pid and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime (all threads) of these processes, plus their reaped children."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / CLK_TCK


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pids: list[int]) -> int:
    return sum(_status_kb(p, "VmRSS") for p in pids)


def hwm_kb(pids: list[int]) -> int:
    """Peak resident set (VmHWM), summed over the processes (one, for one worker)."""
    return sum(_status_kb(p, "VmHWM") for p in pids)


def busy_seconds() -> float:
    """CPU-seconds the whole machine spent busy since boot (all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / CLK_TCK


class NoiseMeter:
    """CPU the rest of the machine used while we measured (others' tests, builds...)."""

    def __init__(self) -> None:
        self.busy0, self.own0, self.t0 = busy_seconds(), self._own(), time.monotonic()

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def report(self, live_own_s: float = 0.0) -> dict:
        wall = time.monotonic() - self.t0
        other = busy_seconds() - self.busy0 - (self._own() - self.own0) - live_own_s
        cores = os.cpu_count() or 1
        return {"wall_s": round(wall, 1), "other_cpu_s": round(max(0.0, other), 1),
                "other_cpu_pct_of_machine": round(max(0.0, other) / (wall * cores) * 100, 1)}


def wait_quiet(max_wait_s: float, threshold_pct: float = 15.0, window_s: float = 3.0) -> float:
    """Wait (up to max_wait_s) for a window in which the machine is mostly idle, so
    measurements do not start in the middle of someone else's test run. Returns the
    busy share (% of all cores) of the last window."""
    deadline = time.monotonic() + max_wait_s
    cores = os.cpu_count() or 1
    while True:
        b0 = busy_seconds()
        time.sleep(window_s)
        busy = (busy_seconds() - b0) / (window_s * cores) * 100
        if busy < threshold_pct or time.monotonic() >= deadline:
            return round(busy, 1)


def machine_info() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = _meminfo("MemTotal")
    virt = ""
    try:
        virt = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Hypervisor vendor:"):
                virt = f"{line.split(':', 1)[1].strip()} VM" + (f", {virt} container" if virt and virt != "none" else "")
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(), "os": _os_name(), "python": sys.version.split()[0],
        "virtualisation": virt or "unknown",
    }


def _meminfo(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def clean_up(procs: Procs, gateways: Iterable, scratch: Path, *, keep: bool, ok: bool,
             what: str = "logs") -> None:
    """A run's end, however it ended: its gateways' scratch state, every process it
    started, and its scratch folder (kept when asked, or when the run failed)."""
    for gw in gateways:
        gw.cleanup()
    procs.stop_all()
    if keep or not ok:
        print(f"{what} kept in {scratch}", file=sys.stderr, flush=True)
    else:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)


def run_main(main: Callable[[], None]) -> None:
    """`main()`, with Ctrl-C (or TERM: Procs turns it into KeyboardInterrupt) ending
    the run cleanly with status 130."""
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted: everything this run started has been stopped", file=sys.stderr)
        sys.exit(130)

"""Install LiteLLM (PyPI) and the Portkey gateway (npm) outside the repo, run the same
measurements against the same fake upstream, add their columns to BENCHMARKS.md.

    bench/compare.sh [--quick] [--only litellm,portkey] [--litellm-version X] [--portkey-version Y]

Everything of theirs lives in a scratch directory (default /tmp/gw-bench-peers);
nothing is added to the repo except their figures. Each is measured pinned to core 0
like this gateway, then unpinned ("all cores": LiteLLM with 2 workers; Portkey is one
Node.js process). Both run on their default, cheapest path: LiteLLM with a master key
and no database (so no spend tracking), Portkey with no config (pass-through).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import report  # noqa: E402
from load import Target  # noqa: E402
from measure import Opts, log, measure_all_cores, measure_system, upstream_capacity  # noqa: E402
from procs import (NoiseMeter, Procs, cpu_seconds, free_port, machine_info, run_main, tree,  # noqa: E402
                   wait_http, wait_quiet)
from run import start_upstream  # noqa: E402

HONO_NODE_SERVER = "1.14.1"  # Portkey 1.15's streaming breaks with newer @hono/node-server
# @hono/node-server's serve() binds every interface when given only a port, and the
# Portkey CLI has no host option: this preload makes a bare listen(port) loopback-only.
LISTEN_LOCAL = """import net from "node:net";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" && (args[1] === undefined || typeof args[1] === "function")) {
    args.splice(1, args[1] === undefined ? 1 : 0, "127.0.0.1");
  } else if (args[0] && typeof args[0] === "object" && !args[0].host && !args[0].path && args[0].fd === undefined) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
"""


def sh(cmd: list[str], cwd: Path | None = None, timeout: float = 1800) -> str:
    log("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def install_litellm(scratch: Path, version: str | None, upgrade: bool) -> str:
    venv = scratch / "litellm-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        sh([sys.executable, "-m", "venv", str(venv)])
    spec = f"litellm[proxy]=={version}" if version else "litellm[proxy]"
    have = subprocess.run([str(py), "-m", "pip", "show", "litellm"], capture_output=True, text=True).stdout
    current = next((line.split(": ", 1)[1] for line in have.splitlines() if line.startswith("Version: ")), None)
    if current is None or upgrade or (version and current != version):
        sh([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-U", spec])
    have = subprocess.run([str(py), "-m", "pip", "show", "litellm"], capture_output=True, text=True).stdout
    return next(line.split(": ", 1)[1] for line in have.splitlines() if line.startswith("Version: "))


def install_portkey(scratch: Path, version: str, upgrade: bool) -> str:
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise RuntimeError("Node.js and npm are needed (apt-get install nodejs npm)")
    root = scratch / "portkey"
    root.mkdir(parents=True, exist_ok=True)
    package = {"name": "gw-bench-portkey", "private": True,
               "dependencies": {"@portkey-ai/gateway": version},
               "overrides": {"@hono/node-server": HONO_NODE_SERVER}}
    pkg_file = root / "package.json"
    installed = root / "node_modules" / "@portkey-ai" / "gateway" / "package.json"
    if upgrade or not installed.exists() or json.loads(pkg_file.read_text()) != package:
        pkg_file.write_text(json.dumps(package, indent=2) + "\n")
        sh(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root)
    hono = json.loads((root / "node_modules" / "@hono" / "node-server" / "package.json").read_text())["version"]
    if hono != HONO_NODE_SERVER:
        raise RuntimeError(f"@hono/node-server is {hono}, not {HONO_NODE_SERVER}: the npm override did not apply")
    (root / "listen-local.mjs").write_text(LISTEN_LOCAL)
    return json.loads(installed.read_text())["version"]


def assert_loopback_only(port: int) -> None:
    """Refuse to measure a server that also listens on a public/wildcard address."""
    hexport = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and local.endswith(hexport):
                addr = local.rsplit(":", 1)[0]
                if addr not in ("0100007F", "00000000000000000000000001000000"):
                    raise RuntimeError(f"port {port} listens on {addr} (not loopback only); stopping")


class Peer:
    def __init__(self, name: str, label: str) -> None:
        self.name, self.label = name, label
        self.notes: list[str] = []

    def start(self, procs: Procs, upstream_port: int, workers: int, cpus: str | None):
        raise NotImplementedError


class LiteLLM(Peer):
    def __init__(self, scratch: Path) -> None:
        super().__init__("litellm", "LiteLLM proxy")
        self.scratch, self.key = scratch, "sk-bench-" + secrets.token_hex(32)

    def start(self, procs, upstream_port, workers, cpus):
        config = self.scratch / "litellm-config.yaml"
        config.write_text(
            "model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/gpt-4o-mini\n"
            f"      api_base: http://127.0.0.1:{upstream_port}/v1\n      api_key: sk-fake-upstream\n")
        port = free_port()
        env = dict(os.environ, LITELLM_MASTER_KEY=self.key, LITELLM_LOCAL_MODEL_COST_MAP="True",
                   LITELLM_TELEMETRY="False")
        env.pop("DATABASE_URL", None)
        cmd = [str(self.scratch / "litellm-venv" / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1",
               "--port", str(port), "--num_workers", str(workers)]
        proc = procs.start(f"litellm-{workers}w", cmd, cpus=cpus, env=env, cwd=str(self.scratch))
        wait_http(port, "/health/liveliness", proc, timeout=180)
        target = Target(self.name, f"http://127.0.0.1:{port}/v1/chat/completions", "bench",
                        {"Authorization": f"Bearer {self.key}"})
        return proc, target, " ".join(cmd).replace(str(self.scratch), "$SCRATCH")


class Portkey(Peer):
    def __init__(self, scratch: Path) -> None:
        super().__init__("portkey", "Portkey gateway (Node.js)")
        self.root = scratch / "portkey"

    def start(self, procs, upstream_port, workers, cpus):
        port = free_port()
        cmd = ["node", "--import", "./listen-local.mjs", "node_modules/@portkey-ai/gateway/build/start-server.js",
               f"--port={port}", "--headless"]
        proc = procs.start("portkey", cmd, cpus=cpus, env=dict(os.environ, NODE_ENV="production"), cwd=str(self.root))
        wait_http(port, "/", proc, timeout=60)
        target = Target(self.name, f"http://127.0.0.1:{port}/v1/chat/completions", "gpt-4o-mini", {
            "Authorization": "Bearer sk-fake-upstream", "x-portkey-provider": "openai",
            "x-portkey-custom-host": f"http://127.0.0.1:{upstream_port}/v1"})
        return proc, target, "env NODE_ENV=production " + " ".join(cmd)


def measure_peer(peer: Peer, procs: Procs, up: tuple, opts: Opts, capacity: dict, command: str) -> dict:
    upstream, up_port, up_proc = up
    noise, up_cpu0 = NoiseMeter(), cpu_seconds(tree(up_proc.pid))
    proc, target, start_cmd = peer.start(procs, up_port, 1, "0")
    assert_loopback_only(int(target.url.split(":")[2].split("/")[0]))
    try:
        result = measure_system(target, upstream, lambda: [proc.pid], opts)
        result.pop("tally")
    finally:
        procs.stop(proc)
    workers = 2 if peer.name == "litellm" else 1
    proc, target, all_cmd = peer.start(procs, up_port, workers, None)
    try:
        all_cores = measure_all_cores(target, opts)
        all_cores.pop("tally")
        all_cores.update(start_cmd=all_cmd, workers_label=f"{workers} worker{'s' if workers > 1 else ''}")
    finally:
        procs.stop(proc)
    return {"label": peer.label, "date": time.strftime("%Y-%m-%d %H:%M %Z"), "command": command,
            "server": ("uvicorn inside the litellm CLI, 1 worker on 1 core" if peer.name == "litellm"
                       else "Node.js (@hono/node-server), 1 process on 1 core"),
            "start_cmd": f"taskset -c 0 {start_cmd}", "upstream": capacity, "result": result, "all_cores": all_cores,
            "noise": noise.report(cpu_seconds(tree(up_proc.pid)) - up_cpu0), "notes": peer.notes}


def main() -> None:
    p = argparse.ArgumentParser(description="Add LiteLLM and Portkey to BENCHMARKS.md (see bench/README.md).")
    p.add_argument("--quick", action="store_true", help="shorter runs and a 60 s soak")
    p.add_argument("--soak-seconds", type=float, help="RSS soak length (default 600, --quick 60, 0 = skip)")
    p.add_argument("--only", default="litellm,portkey", help="comma-separated: litellm, portkey")
    p.add_argument("--scratch", default="/tmp/gw-bench-peers", help="where they are installed (outside the repo)")
    p.add_argument("--litellm-version", help="default: the latest on PyPI (kept once installed; --upgrade)")
    p.add_argument("--portkey-version", default="latest", help="npm version or tag of @portkey-ai/gateway")
    p.add_argument("--upgrade", action="store_true", help="reinstall even if present")
    p.add_argument("--wait-quiet", type=float, default=120, metavar="S",
                   help="wait up to S seconds for an idle machine before measuring each (0 = don't)")
    args = p.parse_args()
    scratch = Path(args.scratch).resolve()
    if Path(__file__).resolve().parent.parent in scratch.parents or scratch == Path(__file__).resolve().parent.parent:
        sys.exit("--scratch must be outside the repository")
    scratch.mkdir(parents=True, exist_ok=True)
    opts = Opts.make(args.quick, args.soak_seconds)
    command = "bench/compare.sh " + " ".join(sys.argv[1:])
    data = report.load_results()
    data["machine"] = machine_info()
    status = data.setdefault("peer_status", {})
    peers: list[Peer] = []
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        try:
            if name == "litellm":
                version = install_litellm(scratch, args.litellm_version, args.upgrade)
                peer = LiteLLM(scratch)
                peer.notes = [f"litellm {version} from PyPI (`litellm[proxy]`), in {scratch}/litellm-venv; "
                              "config: one model_list entry `openai/gpt-4o-mini` with api_base = the fake upstream; "
                              "master key auth, no database (no spend tracking or budgets), default logging"]
            elif name == "portkey":
                version = install_portkey(scratch, args.portkey_version, args.upgrade)
                peer = Portkey(scratch)
                peer.notes = [f"@portkey-ai/gateway {version} from npm with `overrides` pinning @hono/node-server "
                              f"{HONO_NODE_SERVER}, in {scratch}/portkey; headers x-portkey-provider: openai and "
                              "x-portkey-custom-host: the fake upstream; listening on 127.0.0.1 only through a "
                              "`node --import` preload (its CLI has no host option)"]
            else:
                sys.exit(f"unknown peer {name!r} (litellm, portkey)")
            status[name] = f"{peer.label} {version}: measured {time.strftime('%Y-%m-%d')}"
            peers.append(peer)
        except Exception as exc:  # noqa: BLE001 - say exactly why in BENCHMARKS.md
            log(f"{name}: install failed: {exc}")
            status[name] = f"could not be installed: {str(exc).strip()[:600]}"
    procs = Procs(scratch)
    try:
        upstream, up_port, up_proc = start_upstream(procs)
        capacity = upstream_capacity(upstream, 3 if args.quick else 5, cpus="0")
        for peer in peers:
            if args.wait_quiet:
                log(f"machine busy {wait_quiet(args.wait_quiet)}% of all cores before {peer.name}")
            try:
                data["runs"][peer.name] = measure_peer(peer, procs, (upstream, up_port, up_proc), opts, capacity,
                                                       command)
            except Exception as exc:  # noqa: BLE001
                log(f"{peer.name}: measurement failed: {exc}")
                status[peer.name] = f"installed, but the measurement failed: {str(exc).strip()[:600]}"
                data["runs"].pop(peer.name, None)
            report.save_results(data)
    finally:
        procs.stop_all()
    print(report.write(data))


if __name__ == "__main__":
    run_main(main)

"""The deploy files, checked without Docker or a cluster (neither runs here): the
Dockerfile's instructions and commands, compose.yaml's services and references, the
kustomize base rendered by `kubectl kustomize` and checked structurally, the systemd units
verified by systemd-analyze. tests/test_scale_processes.py runs the same commands."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy_helpers import (ROOT, compose, dockerfile_cmd, dockerfile_instructions, flag_values,
                                  readme_uvicorn_argv)

K8S = ROOT / "deploy" / "k8s"
SYSTEMD = ROOT / "deploy" / "systemd"
# Read by something other than settings.py: uvicorn, prometheus_client, Python, Django.
EXTERNAL_VARIABLES = {"WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "PROMETHEUS_MULTIPROC_DIR",
                      "DJANGO_SETTINGS_MODULE", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PATH"}
GATEWAY_FLAGS = {"--loop": "uvloop", "--http": "httptools", "--no-access-log": None}


def known_variables() -> set[str]:
    """Every environment variable the code reads (env.<type>("NAME") or os.environ), plus
    the ones read by the servers and libraries themselves."""
    names = set(EXTERNAL_VARIABLES)
    for path in ROOT.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        text = path.read_text(errors="replace")
        names |= set(re.findall(r"""env(?:\(\))?\.\w+\(\s*["']([A-Z][A-Z0-9_]+)["']""", text))
        names |= set(re.findall(r"""environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]+)["']""", text))
    return names


# --- Dockerfile ------------------------------------------------------------------------
def test_dockerfile_is_multi_stage_slim_and_runs_as_a_non_root_user():
    steps = dockerfile_instructions()
    froms = [args for name, args in steps if name == "FROM"]
    assert len(froms) >= 2 and all(f.startswith("python:3.11-slim") for f in froms)
    users = [args for name, args in steps if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    # the non-root user exists before USER switches to it, and nothing runs after as root
    run_lines = " ".join(args for name, args in steps if name == "RUN")
    assert f"useradd --system --uid 10001 --gid {users[-1].split(':')[1]}" in run_lines
    assert [name for name, _ in steps].index("USER") > max(i for i, (n, _) in enumerate(steps) if n == "RUN")
    assert "collectstatic --noinput" in run_lines
    assert "COPY --from=build /opt/venv /opt/venv" in [f"{n} {a}" for n, a in steps]
    for name, args in steps:  # what it copies from the context exists
        if name == "COPY" and not args.startswith("--from"):
            assert (ROOT / args.split()[0]).exists(), args


def test_dockerfile_cmd_is_readmes_uvicorn_command_and_healthcheck_probes_healthz():
    cmd = dockerfile_cmd()
    assert cmd[:2] == ["uvicorn", "gateway_project.asgi:application"]
    flags = flag_values(cmd)
    assert GATEWAY_FLAGS.items() <= flags.items()
    assert (flags["--host"], flags["--port"]) == ("0.0.0.0", "8000")
    readme = flag_values(readme_uvicorn_argv())
    # README's production flags (workers come from WEB_CONCURRENCY in the image)
    assert {k: v for k, v in readme.items() if k not in ("--host", "--port", "--workers")}.items() <= flags.items()
    assert ("EXPOSE", "8000") in dockerfile_instructions()
    healthcheck = next(args for name, args in dockerfile_instructions() if name == "HEALTHCHECK")
    assert "http://127.0.0.1:8000/healthz" in healthcheck and "CMD" in healthcheck


def test_dockerfile_installs_the_pinned_runtime_requirements_only(tmp_path):
    run = next(args for name, args in dockerfile_instructions() if name == "RUN" and "requirements" in args)
    extract = run.split("&&")[0].replace("/tmp/requirements.txt", str(ROOT / "requirements.txt"))
    extract = extract.replace("/tmp/runtime.txt", str(tmp_path / "runtime.txt"))
    subprocess.run(["bash", "-c", extract], check=True)
    lines = [line.split("#")[0].strip() for line in (tmp_path / "runtime.txt").read_text().splitlines()]
    packages = {re.split(r"[\[=]", line)[0].lower(): line for line in lines if line}
    assert {"django", "uvicorn", "uvloop", "httptools", "celery", "psycopg", "redis", "django-celery-beat"} <= set(packages)
    assert not {"pytest", "torch", "numpy", "openai", "playwright"} & set(packages)
    assert all("==" in line for line in packages.values())


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "var", ".env"} <= ignored


def test_the_images_collectstatic_step_works(tmp_path):
    env = {**os.environ, "GATEWAY_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "gateway_project.settings"}
    env.pop("DATABASE_URL", None)  # as in the build: no database, settings' defaults
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env,
                   check=True, timeout=120)
    assert (tmp_path / "static" / "admin" / "css" / "base.css").is_file()


# --- compose.yaml ----------------------------------------------------------------------
def test_compose_has_the_whole_deployment():
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "gateway", "worker", "beat", "prometheus", "grafana"} <= set(services)
    assert services["gateway"]["deploy"]["replicas"] == 2
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "command" not in services["gateway"]  # the image's CMD
    assert services["worker"]["command"][:4] == ["celery", "-A", "gateway_project", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "gateway_project", "beat"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    for name in ("gateway", "worker", "beat"):  # nothing starts before this release's migrations
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["DATABASE_URL"].endswith("@postgres:5432/gateway")
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    for name in ("worker", "beat", "migrate"):  # the image's HEALTHCHECK probes a web server
        assert services[name]["healthcheck"] == {"disable": True}
    assert services["gateway"]["environment"]["PROMETHEUS_MULTIPROC_DIR"] in " ".join(services["gateway"]["tmpfs"])


def test_compose_references_exist_and_secrets_come_from_the_environment():
    doc = compose()
    services = doc["services"]
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, (name, dep)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in doc["volumes"], (name, source)
    known = known_variables()
    for name in ("gateway", "worker", "beat", "migrate"):
        env = services[name]["environment"]
        assert set(env) <= known, set(env) - known
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${")


def test_compose_prometheus_and_grafana_configuration():
    prometheus = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text())
    job = prometheus["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["dns_sd_configs"][0] == {"names": ["gateway"], "type": "A", "port": 8000, "refresh_interval": "30s"}
    assert prometheus["rule_files"] == ["/etc/prometheus/rules/alerts.yml"]
    mounts = {target: source for source, target in
              (v.split(":")[:2] for v in compose()["services"]["prometheus"]["volumes"]) if source.startswith(".")}
    rules = prometheus["rule_files"][0]
    directory = next(t for t in mounts if rules.startswith(t + "/"))
    assert (ROOT / mounts[directory] / rules[len(directory) + 1:]).is_file()  # deploy/prometheus/alerts.yml
    assert (ROOT / "deploy/grafana/gateway-dashboard.json").is_file()
    if shutil.which("promtool"):
        result = subprocess.run(["promtool", "check", "config", "--syntax-only",
                                 str(ROOT / "deploy/compose/prometheus.yml")], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    provisioning = ROOT / "deploy/compose/grafana/provisioning"
    datasource = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"][0]
    assert (datasource["type"], datasource["url"]) == ("prometheus", "http://prometheus:9090")
    provider = yaml.safe_load((provisioning / "dashboards/gateway.yml").read_text())["providers"][0]
    mounts = dict(v.split(":")[:2] for v in compose()["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana"] == provider["options"]["path"]


# --- Kubernetes (kustomize base) ---------------------------------------------------------
def test_every_k8s_file_parses_and_the_kustomization_lists_existing_files():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    for path in K8S.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["apiVersion"] and doc["kind"], path
    # the example Secret is documentation, never applied
    assert "secret.example.yaml" not in kustomization["resources"]


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("!! kubectl is not installed (scripts/test.sh installs Debian's kubernetes-client)")
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(result.stdout)}


def _pod(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def _env_sources(container: dict) -> set[tuple[str, str]]:
    return {(kind, source[kind]["name"]) for source in container["envFrom"] for kind in source}


def test_kustomize_renders_every_part(rendered):
    assert set(rendered) == {
        ("ConfigMap", "llm-gateway-config"), ("Service", "llm-gateway"), ("Deployment", "llm-gateway"),
        ("Deployment", "llm-gateway-worker"), ("Deployment", "llm-gateway-beat"), ("Job", "llm-gateway-migrate"),
        ("HorizontalPodAutoscaler", "llm-gateway"), ("PodDisruptionBudget", "llm-gateway"),
    }
    known = known_variables()
    assert set(rendered["ConfigMap", "llm-gateway-config"]["data"]) <= known
    for (kind, name), doc in rendered.items():
        if kind in ("Deployment", "Job"):
            pod = _pod(doc)
            assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
            for container in pod["containers"]:
                assert container["image"] == "llm-gateway:latest"
                assert _env_sources(container) == {("configMapRef", "llm-gateway-config"),
                                                   ("secretRef", "llm-gateway-secrets")}
                assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
                mounted = {m["name"] for m in container.get("volumeMounts", [])}
                assert mounted <= {v["name"] for v in pod.get("volumes", [])}


def test_gateway_deployment_probes_scaling_and_disruption(rendered):
    gateway = rendered["Deployment", "llm-gateway"]
    pod = _pod(gateway)
    container = pod["containers"][0]
    assert gateway["spec"]["replicas"] >= 2
    assert "command" not in container and "args" not in container  # the image's CMD
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    assert pod["terminationGracePeriodSeconds"] > int(flag_values(dockerfile_cmd())["--timeout-graceful-shutdown"])
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert gateway["spec"]["selector"]["matchLabels"] == labels
    service = rendered["Service", "llm-gateway"]
    assert service["spec"]["selector"] == labels and service["spec"]["ports"][0]["targetPort"] == "http"
    for other in ("llm-gateway-worker", "llm-gateway-beat"):  # the Service sends traffic to gateways only
        other_labels = rendered["Deployment", other]["spec"]["template"]["metadata"]["labels"]
        assert not service["spec"]["selector"].items() <= other_labels.items()
    hpa = rendered["HorizontalPodAutoscaler", "llm-gateway"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm-gateway"}
    assert hpa["minReplicas"] >= 2 and hpa["metrics"][0]["resource"]["name"] == "cpu"
    pdb = rendered["PodDisruptionBudget", "llm-gateway"]["spec"]
    assert pdb["selector"]["matchLabels"] == labels and pdb["minAvailable"] >= 1
    metrics_dir = {e["name"]: e["value"] for e in container["env"]}["PROMETHEUS_MULTIPROC_DIR"]
    assert metrics_dir in {m["mountPath"] for m in container["volumeMounts"]}


def test_worker_beat_and_migration_job_run_composes_commands(rendered):
    services = compose()["services"]
    worker = _pod(rendered["Deployment", "llm-gateway-worker"])["containers"][0]
    assert worker["command"] == services["worker"]["command"]
    beat = rendered["Deployment", "llm-gateway-beat"]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"] == {"type": "Recreate"}
    assert _pod(beat)["containers"][0]["command"] == services["beat"]["command"]
    job = rendered["Job", "llm-gateway-migrate"]
    assert _pod(job)["restartPolicy"] == "Never"
    assert _pod(job)["containers"][0]["command"] == services["migrate"]["command"]


# --- systemd -----------------------------------------------------------------------------
def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def test_systemd_units_run_the_same_commands_as_the_image():
    gateway = _unit("gateway@.service")["Service"]
    argv = gateway["ExecStart"].split()
    assert argv[0] == "/opt/llm-gateway/.venv/bin/uvicorn"
    flags = flag_values(argv)
    assert {k: v for k, v in flag_values(dockerfile_cmd()).items() if k not in ("--host", "--port")}.items() \
        <= flags.items()
    assert (flags["--host"], flags["--port"]) == ("127.0.0.1", "%i")
    assert "PROMETHEUS_MULTIPROC_DIR=/run/llm-gateway-%i" in (SYSTEMD / "gateway@.service").read_text()
    assert gateway["RuntimeDirectory"] == "llm-gateway-%i"  # per instance, emptied at each start
    services = compose()["services"]
    for unit, service in (("gateway-worker.service", "worker"), ("gateway-beat.service", "beat"),
                          ("gateway-migrate.service", "migrate")):
        exec_start = _unit(unit)["Service"]["ExecStart"].split()
        assert Path(exec_start[0]).name == services[service]["command"][0]
        assert exec_start[1:] == services[service]["command"][1:], unit
    for unit in ("gateway@.service", "gateway-worker.service", "gateway-beat.service"):
        parsed = _unit(unit)
        assert parsed["Service"]["User"] == "gateway" and parsed["Install"]["WantedBy"] == "gateway.target"
        assert parsed["Service"]["EnvironmentFile"] == "/etc/llm-gateway/gateway.env"


def test_env_example_names_known_variables_and_no_real_secrets():
    pairs = [line.split("=", 1) for line in (SYSTEMD / "gateway.env.example").read_text().splitlines()
             if line and not line.startswith("#")]
    names = {name for name, _ in pairs}
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"} <= names <= known_variables()
    values = dict(pairs)
    assert values["SECRET_KEY"] == "CHANGE-ME" and "CHANGE-ME@" in values["DATABASE_URL"]


def test_systemd_analyze_verifies_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("!! systemd-analyze is not installed")
    # Installed as the units expect: the code (with its .venv) at /opt/llm-gateway.
    for path in SYSTEMD.iterdir():
        text = path.read_text().replace("/opt/llm-gateway", str(ROOT))
        (tmp_path / path.name).write_text(text)
    (tmp_path / "gateway@8001.service").write_text((tmp_path / "gateway@.service").read_text())
    units = [str(tmp_path / n) for n in ("gateway@8001.service", "gateway-worker.service", "gateway-beat.service",
                                         "gateway-migrate.service", "gateway.target")]
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "tmp" in line or "gateway" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr

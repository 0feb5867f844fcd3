"""The deployment examples agree with the CLI and the config schema they rely on."""

from __future__ import annotations

import re
from typing import Any

import yaml

from pipeline.config import ProxyConfig
from tests.ops_support import REPO


def manifests() -> dict[str, dict[str, Any]]:
    """deploy/kubernetes.yaml by kind."""
    with (REPO / "deploy" / "kubernetes.yaml").open() as file:
        return {doc["kind"]: doc for doc in yaml.safe_load_all(file)}


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_probes_use_the_admin_port_the_service_leaves_out() -> None:
    """Liveness hits /healthz and readiness /readyz on the admin port; the Service has no admin."""
    docs = manifests()
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = container["args"]
    assert {"path": "/healthz", "port": "admin"} == container["livenessProbe"]["httpGet"]
    assert {"path": "/readyz", "port": "admin"} == container["readinessProbe"]["httpGet"]
    assert str(ports["admin"]) == flag(args, "--admin-port")
    assert str(ports["http"]) == flag(args, "--port")
    assert ["http"] == [p["targetPort"] for p in docs["Service"]["spec"]["ports"]]


def test_config_map_is_a_valid_config_and_secret_holds_its_keys() -> None:
    """The ConfigMap's config validates, is mounted where --config points, and every
    environment variable it names comes from the Secret."""
    docs = manifests()
    config = ProxyConfig.model_validate(yaml.safe_load(docs["ConfigMap"]["data"]["config.yaml"]))
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    named = {r.upstream.api_key_env for r in config.routes} | {
        r.auth.keys_env for r in config.routes if r.auth is not None
    }
    assert f"{mount['mountPath']}/config.yaml" == flag(container["args"], "--config")
    assert {None} | set(docs["Secret"]["stringData"]) >= named
    assert [{"secretRef": {"name": docs["Secret"]["metadata"]["name"]}}] == container["envFrom"]


def test_termination_grace_covers_the_drain() -> None:
    """The kubelet waits longer than preStop plus the proxy's own grace period."""
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + float(
        flag(container["args"], "--grace-s")
    )


def test_dockerfile_runs_unprivileged_with_a_liveness_healthcheck() -> None:
    """The image is python:3.11-slim, runs as a non-root user and checks /healthz."""
    text = (REPO / "Dockerfile").read_text()
    healthcheck = re.search(r"^HEALTHCHECK (?:.*\\\n)*.*", text, re.MULTILINE)
    user = re.search(r"^USER (\S+)", text, re.MULTILINE)
    assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
    assert healthcheck is not None
    assert "http://127.0.0.1:9090/healthz" in healthcheck.group()
    assert user is not None
    assert user.group(1) not in {"0", "root"}
    assert re.search(r"^EXPOSE 8080 9090$", text, re.MULTILINE)

"""The rendered Kubernetes manifests: valid, hardened, consistent with the code and with each other.

Core kinds are validated against the Kubernetes OpenAPI schemas that the kubernetes-validate package
ships (offline, strict: unknown fields fail). No package ships the Strimzi CRDs, so their kinds are
checked against a subset of the Strimzi v1 CRD schemas written down here, limited to the fields
these manifests use and closed to others, so a misspelt field fails too.
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from ler.topics import ALL_TOPICS, DLQ

pytestmark = pytest.mark.unit

Manifest = dict[str, Any]

Render = Callable[[str], list[Manifest]]

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.32"
STRIMZI = "kafka.strimzi.io/v1"
KAFKA_CLUSTER = "ler"
# Secrets the Strimzi operators create: one per KafkaUser (its password) and the cluster CA.
STRIMZI_CA_SECRET = f"{KAFKA_CLUSTER}-cluster-ca-cert"


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Manifest], kind: str, name: str) -> Manifest:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_templates(docs: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    """(workload, pod template) for every Deployment and CronJob."""
    for d in docs:
        if d["kind"] == "Deployment":
            yield d, d["spec"]["template"]
        elif d["kind"] == "CronJob":
            yield d, d["spec"]["jobTemplate"]["spec"]["template"]


def config_map(docs: list[Manifest], prefix: str) -> dict[str, str]:
    """The data of the generated ConfigMap whose name (before the hash suffix) is prefix."""
    found = [
        d
        for d in of_kind(docs, "ConfigMap")
        if re.fullmatch(rf"{re.escape(prefix)}-[a-z0-9]{{10}}", d["metadata"]["name"])
    ]
    assert len(found) == 1, f"expected one generated ConfigMap {prefix}"
    data: dict[str, str] = found[0]["data"]
    return data


def kafka_config(docs: list[Manifest]) -> dict[str, Any]:
    config: dict[str, Any] = one(docs, "Kafka", KAFKA_CLUSTER)["spec"]["kafka"]["config"]
    return config


def brokers(docs: list[Manifest]) -> int:
    return sum(
        p["spec"]["replicas"]
        for p in of_kind(docs, "KafkaNodePool")
        if "broker" in p["spec"]["roles"]
    )


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) matches the labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op = expr["key"], expr["operator"]
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op == "In" and labels.get(key) not in expr["values"]:
            return False
        if op == "NotIn" and labels.get(key) in expr["values"]:
            return False
    return True


# --- Schemas -------------------------------------------------------------------------------------


def test_selector_matching_helper_is_sound() -> None:
    labels = {"ler/service": "wallet", "app.kubernetes.io/component": "api"}
    assert selects({}, labels)
    assert selects({"matchExpressions": [{"key": "ler/service", "operator": "Exists"}]}, labels)
    assert not selects({"matchLabels": {"ler/service": "notifications"}}, labels)
    assert not selects({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_kinds_validate_against_the_kubernetes_schemas(rendered: Render, overlay: str) -> None:
    checked = 0
    for doc in rendered(overlay):
        if doc["apiVersion"].startswith("kafka.strimzi.io/"):
            continue
        # Raises SchemaNotFoundError for a kind it does not know: nothing slips through unchecked.
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {e.message}")
        checked += 1
    assert checked > 40


def test_kubernetes_validation_rejects_a_broken_manifest(rendered: Render) -> None:
    deployment = dict(of_kind(rendered("prod"), "Deployment")[0])
    deployment["spec"] = {**deployment["spec"], "replica": 2}  # misspelt: must fail strict mode
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def _closed(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


_RESOURCES = _closed(
    {
        "requests": {"type": "object", "additionalProperties": {"type": ["string", "integer"]}},
        "limits": {"type": "object", "additionalProperties": {"type": ["string", "integer"]}},
    }
)
_METADATA = _closed(
    {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    ["name", "namespace"],
)
_CLUSTER_LABEL = {
    "properties": {"labels": {"required": ["strimzi.io/cluster"]}},
    "required": ["labels"],
}
_SELECTOR = {"type": "object"}

# Subsets of the Strimzi v1 CRD openAPIV3Schemas (packaging/install/cluster-operator/04*-Crd-*.yaml
# of strimzi-kafka-operator 0.49+), for the fields used here.
STRIMZI_SCHEMAS: dict[str, dict[str, Any]] = {
    "KafkaTopic": _closed(
        {
            "apiVersion": {"const": STRIMZI},
            "kind": {"const": "KafkaTopic"},
            "metadata": {"allOf": [_METADATA, _CLUSTER_LABEL]},
            "spec": _closed(
                {
                    "topicName": {"type": "string"},
                    "partitions": {"type": "integer", "minimum": 1},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
                    "config": {"type": "object"},
                },
                ["topicName", "partitions", "replicas", "config"],
            ),
        },
        ["apiVersion", "kind", "metadata", "spec"],
    ),
    "KafkaUser": _closed(
        {
            "apiVersion": {"const": STRIMZI},
            "kind": {"const": "KafkaUser"},
            "metadata": {"allOf": [_METADATA, _CLUSTER_LABEL]},
            "spec": _closed(
                {
                    "authentication": _closed(
                        {"type": {"enum": ["tls", "tls-external", "scram-sha-512"]}}, ["type"]
                    ),
                    "authorization": _closed(
                        {
                            "type": {"enum": ["simple"]},
                            "acls": {
                                "type": "array",
                                "minItems": 1,
                                "items": _closed(
                                    {
                                        "type": {"enum": ["allow", "deny"]},
                                        "host": {"type": "string"},
                                        "resource": _closed(
                                            {
                                                "type": {
                                                    "enum": [
                                                        "topic",
                                                        "group",
                                                        "cluster",
                                                        "transactionalId",
                                                    ]
                                                },
                                                "name": {"type": "string"},
                                                "patternType": {"enum": ["literal", "prefix"]},
                                            },
                                            ["type"],
                                        ),
                                        "operations": {
                                            "type": "array",
                                            "minItems": 1,
                                            "items": {
                                                "enum": [
                                                    "Read",
                                                    "Write",
                                                    "Create",
                                                    "Delete",
                                                    "Alter",
                                                    "Describe",
                                                    "ClusterAction",
                                                    "AlterConfigs",
                                                    "DescribeConfigs",
                                                    "IdempotentWrite",
                                                    "All",
                                                ]
                                            },
                                        },
                                    },
                                    ["resource", "operations"],
                                ),
                            },
                        },
                        ["type", "acls"],
                    ),
                },
                ["authentication", "authorization"],
            ),
        },
        ["apiVersion", "kind", "metadata", "spec"],
    ),
    "KafkaNodePool": _closed(
        {
            "apiVersion": {"const": STRIMZI},
            "kind": {"const": "KafkaNodePool"},
            "metadata": {"allOf": [_METADATA, _CLUSTER_LABEL]},
            "spec": _closed(
                {
                    "replicas": {"type": "integer", "minimum": 0},
                    "roles": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"enum": ["controller", "broker"]},
                    },
                    "storage": _closed(
                        {
                            "type": {"enum": ["ephemeral", "persistent-claim", "jbod"]},
                            "volumes": {
                                "type": "array",
                                "items": _closed(
                                    {
                                        "id": {"type": "integer", "minimum": 0},
                                        "type": {"enum": ["ephemeral", "persistent-claim"]},
                                        "size": {"type": "string"},
                                        "class": {"type": "string"},
                                        "deleteClaim": {"type": "boolean"},
                                        "kraftMetadata": {"enum": ["shared"]},
                                    },
                                    ["type"],
                                ),
                            },
                        },
                        ["type"],
                    ),
                    "resources": _RESOURCES,
                },
                ["replicas", "roles", "storage"],
            ),
        },
        ["apiVersion", "kind", "metadata", "spec"],
    ),
    "Kafka": _closed(
        {
            "apiVersion": {"const": STRIMZI},
            "kind": {"const": "Kafka"},
            "metadata": _METADATA,
            "spec": _closed(
                {
                    "kafka": _closed(
                        {
                            "version": {"type": "string"},
                            "metadataVersion": {"type": "string"},
                            "listeners": {
                                "type": "array",
                                "minItems": 1,
                                "items": _closed(
                                    {
                                        "name": {"type": "string", "pattern": "^[a-z0-9]{1,11}$"},
                                        "port": {"type": "integer", "minimum": 9092},
                                        "type": {
                                            "enum": [
                                                "internal",
                                                "route",
                                                "loadbalancer",
                                                "nodeport",
                                                "ingress",
                                                "cluster-ip",
                                            ]
                                        },
                                        "tls": {"type": "boolean"},
                                        "authentication": _closed(
                                            {
                                                "type": {
                                                    "enum": [
                                                        "tls",
                                                        "scram-sha-512",
                                                        "oauth",
                                                        "custom",
                                                    ]
                                                }
                                            },
                                            ["type"],
                                        ),
                                        "networkPolicyPeers": {
                                            "type": "array",
                                            "items": _closed(
                                                {
                                                    "podSelector": _SELECTOR,
                                                    "namespaceSelector": _SELECTOR,
                                                    "ipBlock": {"type": "object"},
                                                }
                                            ),
                                        },
                                    },
                                    ["name", "port", "type", "tls"],
                                ),
                            },
                            "authorization": _closed(
                                {"type": {"enum": ["simple", "keycloak", "opa", "custom"]}},
                                ["type"],
                            ),
                            "config": {"type": "object"},
                        },
                        ["listeners"],
                    ),
                    "entityOperator": _closed(
                        {
                            "topicOperator": _closed({"resources": _RESOURCES}),
                            "userOperator": _closed({"resources": _RESOURCES}),
                        }
                    ),
                },
                ["kafka"],
            ),
        },
        ["apiVersion", "kind", "metadata", "spec"],
    ),
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_strimzi_kinds_match_the_crd_schemas(rendered: Render, overlay: str) -> None:
    strimzi = [d for d in rendered(overlay) if d["apiVersion"].startswith("kafka.strimzi.io/")]
    assert {d["kind"] for d in strimzi} == set(STRIMZI_SCHEMAS)
    for doc in strimzi:
        try:
            jsonschema.validate(doc, STRIMZI_SCHEMAS[doc["kind"]])
        except jsonschema.ValidationError as e:
            path = ".".join(str(p) for p in e.absolute_path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {e.message}")
        labels = doc["metadata"].get("labels", {})
        if doc["kind"] != "Kafka":
            assert labels["strimzi.io/cluster"] == KAFKA_CLUSTER


def test_strimzi_schema_rejects_a_misspelt_field(rendered: Render) -> None:
    topic = of_kind(rendered("prod"), "KafkaTopic")[0]
    broken = {**topic, "spec": {**topic["spec"], "partition": 3}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, STRIMZI_SCHEMAS["KafkaTopic"])


# --- Topics and Kafka identities ----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_contract_topic_has_exactly_one_kafka_topic(rendered: Render, overlay: str) -> None:
    declared = Counter(t["spec"]["topicName"] for t in of_kind(rendered(overlay), "KafkaTopic"))
    expected = Counter(t.name for t in ALL_TOPICS)
    assert declared == expected, "KafkaTopics and ler.topics.ALL_TOPICS differ"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topic_settings_follow_the_contract_and_the_cluster(rendered: Render, overlay: str) -> None:
    docs = rendered(overlay)
    settings = config_map(docs, "ler-config")
    broker_config = kafka_config(docs)
    by_name = {t["spec"]["topicName"]: t for t in of_kind(docs, "KafkaTopic")}
    for topic in ALL_TOPICS:
        spec = by_name[topic.name]["spec"]
        policy = "compact" if topic.compacted else "delete"
        assert spec["config"]["cleanup.policy"] == policy, topic.name
        assert isinstance(spec["config"]["retention.ms"], int), topic.name
        # The code creates topics with these settings where no operator does (embedded, tests).
        assert spec["partitions"] == int(settings["LER_TOPIC_PARTITIONS"]), topic.name
        assert spec["replicas"] == int(settings["LER_TOPIC_REPLICATION_FACTOR"]), topic.name
        assert spec["replicas"] <= brokers(docs), topic.name
        assert spec["replicas"] >= broker_config["min.insync.replicas"], topic.name


def test_replication_in_prod_survives_one_broker_and_dev_fits_one(rendered: Render) -> None:
    prod, dev = kafka_config(rendered("prod")), kafka_config(rendered("dev"))
    assert brokers(rendered("prod")) == 3
    assert prod["default.replication.factor"] == 3
    assert prod["min.insync.replicas"] == 2
    assert prod["offsets.topic.replication.factor"] == 3
    assert brokers(rendered("dev")) == 1
    for key in ("default.replication.factor", "min.insync.replicas"):
        assert dev[key] == 1, key
    for overlay in OVERLAYS:
        assert kafka_config(rendered(overlay))["auto.create.topics.enable"] is False


def _acl_topics(user: Manifest, operation: str) -> set[str]:
    return {
        acl["resource"]["name"]
        for acl in user["spec"]["authorization"]["acls"]
        if acl["resource"]["type"] == "topic"
        and acl["resource"].get("patternType", "literal") == "literal"
        and operation in acl["operations"]
    }


def test_kafka_acls_name_only_contract_topics_and_cover_each(rendered: Render) -> None:
    users = of_kind(rendered("prod"), "KafkaUser")
    contract = {t.name for t in ALL_TOPICS}
    written: set[str] = set()
    read: set[str] = set()
    for user in users:
        for acl in user["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            assert "All" not in acl["operations"], user["metadata"]["name"]
            assert resource["type"] in {"topic", "group"}, user["metadata"]["name"]
            if resource.get("patternType") == "prefix":
                # A processor's own prefix (group and Faust internal topics): never a contract name.
                assert resource["name"].startswith(user["metadata"]["name"]) or resource[
                    "name"
                ].startswith("ler-"), resource
                assert not any(t.startswith(resource["name"]) for t in contract), resource
            elif resource["type"] == "topic":
                assert resource["name"] in contract, resource
        written |= _acl_topics(user, "Write")
        read |= _acl_topics(user, "Read")
    assert written == contract, f"no service may write {contract - written}"
    assert read == contract - {DLQ.name}, f"no service reads {contract - {DLQ.name} - read}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_its_kafka_user_and_every_user_a_workload(
    rendered: Render, overlay: str
) -> None:
    docs = rendered(overlay)
    users = {u["metadata"]["name"] for u in of_kind(docs, "KafkaUser")}
    used: set[str] = set()
    for workload, template in pod_templates(docs):
        for container in template["spec"]["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            if "KAFKA_SASL_USERNAME" not in env:
                continue
            username = env["KAFKA_SASL_USERNAME"]["value"]
            assert username in users, workload["metadata"]["name"]
            password = env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
            # The User Operator stores the password in a Secret named like the user.
            assert password == {"name": username, "key": "password"}
            used.add(username)
    assert used == users


# --- Workloads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_probed_limited_and_locked_down(rendered: Render, overlay: str) -> None:
    templates = list(pod_templates(rendered(overlay)))
    assert len(templates) >= 11
    for workload, template in templates:
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = template["spec"]
        pod_security = pod.get("securityContext", {})
        assert pod.get("automountServiceAccountToken") is False, name
        assert pod_security.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        mounts_tmp = False
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            security = container.get("securityContext", {})
            if workload["kind"] == "Deployment":
                assert "livenessProbe" in container, name
                assert "readinessProbe" in container, name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"].get(bound, {})), name
            assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, name
            assert security.get("readOnlyRootFilesystem") is True, name
            assert security.get("allowPrivilegeEscalation") is False, name
            assert security.get("capabilities", {}).get("drop") == ["ALL"], name
            image = container["image"]
            assert re.search(r":[\w.-]+$", image), f"{name}: {image} has no tag"
            assert not image.endswith(":latest"), name
            for mount in container.get("volumeMounts", []):
                if mount["mountPath"] == "/tmp" and "emptyDir" in volumes[mount["name"]]:
                    mounts_tmp = True
        assert mounts_tmp, f"{name}: /tmp must be a writable emptyDir"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_apis_and_processors_are_probed_on_their_health_endpoints(
    rendered: Render, overlay: str
) -> None:
    deployments = [
        d
        for d in of_kind(rendered(overlay), "Deployment")
        if d["metadata"]["labels"].get("ler/service")
    ]
    components = Counter(
        d["metadata"]["labels"]["app.kubernetes.io/component"] for d in deployments
    )
    assert components == {"api": 4, "processor": 5}
    for deployment in deployments:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        env = {e["name"]: e.get("value") for e in container["env"]}
        live, ready = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
        assert (live["path"], ready["path"]) == ("/healthz", "/readyz")
        assert live["port"] == ready["port"]
        command, name = container["args"]
        prefix = name.upper().replace("-", "_")
        if deployment["metadata"]["labels"]["app.kubernetes.io/component"] == "api":
            assert command == "serve"
            # Listening on the pod's address, not the embedded default of 127.0.0.1.
            assert env[f"{prefix}_HOST"] == "0.0.0.0"
            assert ports[live["port"]] == int(env[f"{prefix}_PORT"] or 0)
        else:
            assert command == "process"
            assert ports[live["port"]] == int(env[f"{prefix}_PROCESSOR_HEALTH_PORT"] or 0)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_reference_resolves_or_is_a_documented_secret(rendered: Render, overlay: str) -> None:
    docs = rendered(overlay)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    strimzi_secrets = {u["metadata"]["name"] for u in of_kind(docs, "KafkaUser")}
    strimzi_secrets.add(STRIMZI_CA_SECRET)
    external: set[str] = set()
    for workload, template in pod_templates(docs):
        pod = template["spec"]
        assert ("ServiceAccount", pod["serviceAccountName"]) in names, workload["metadata"]["name"]
        refs: list[tuple[str, str]] = []
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                refs.append(("ConfigMap", source["configMapRef"]["name"]))
            for env in container.get("env", []):
                value_from = env.get("valueFrom", {})
                if "secretKeyRef" in value_from:
                    refs.append(("Secret", value_from["secretKeyRef"]["name"]))
                if "configMapKeyRef" in value_from:
                    refs.append(("ConfigMap", value_from["configMapKeyRef"]["name"]))
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                refs.append(("Secret", volume["secret"]["secretName"]))
            if "configMap" in volume:
                refs.append(("ConfigMap", volume["configMap"]["name"]))
        for kind, name in refs:
            if (kind, name) in names:
                continue
            assert kind == "Secret", f"{workload['metadata']['name']}: {kind} {name} missing"
            if name not in strimzi_secrets:
                external.add(name)
    if overlay == "prod":
        guide = (REPO / "docs" / "deployment.md").read_text()
        undocumented = {name for name in external if f"`{name}`" not in guide}
        assert not undocumented, (
            f"secrets to create that docs/deployment.md does not list: {undocumented}"
        )
        assert external, "prod generates no secrets: the guide must list them"
    else:
        # The dev overlay generates every secret but the signing key (documented as one command).
        assert external == {"ler-verification-signing-key"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_pdbs_and_hpas_point_at_workloads(rendered: Render, overlay: str) -> None:
    docs = rendered(overlay)
    deployments = of_kind(docs, "Deployment")

    def matching(selector: dict[str, Any]) -> list[Manifest]:
        return [
            d for d in deployments if selects(selector, d["spec"]["template"]["metadata"]["labels"])
        ]

    for service in of_kind(docs, "Service"):
        (target,) = matching({"matchLabels": service["spec"]["selector"]})
        ports = {
            p["name"] for c in target["spec"]["template"]["spec"]["containers"] for p in c["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, service["metadata"]["name"]
    covered = set()
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        (target,) = matching(pdb["spec"]["selector"])
        covered.add(target["metadata"]["name"])
    assert covered == {d["metadata"]["name"] for d in deployments}, "every Deployment has a PDB"
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        one(docs, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])


# --- Network policies ---------------------------------------------------------------------------


def _egress_ports(docs: list[Manifest], labels: dict[str, str]) -> set[int]:
    ports: set[int] = set()
    for policy in of_kind(docs, "NetworkPolicy"):
        if "Egress" in policy["spec"]["policyTypes"] and selects(
            policy["spec"]["podSelector"], labels
        ):
            for rule in policy["spec"].get("egress", []):
                ports |= {p["port"] for p in rule.get("ports", [])}
    return ports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_open_only_what_each_pod_needs(
    rendered: Render, overlay: str
) -> None:
    docs = rendered(overlay)
    policies = of_kind(docs, "NetworkPolicy")
    deny = one(docs, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for deployment in of_kind(docs, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        if "ler/service" not in labels:
            continue
        name = deployment["metadata"]["name"]
        ports = _egress_ports(docs, labels)
        needed = {53, 5432, 9092, 9093, 4317, 4318}
        webhooks = {443, 587}
        assert needed <= ports, f"{name}: missing egress {needed - ports}"
        if labels["ler/service"] == "notifications":
            assert webhooks <= ports, name
        allowed = needed | (webhooks if labels["ler/service"] == "notifications" else set())
        # The other APIs ask the enrollment API who holds a key or token (read your writes).
        asks_enrollment = labels["app.kubernetes.io/component"] == "api" and labels[
            "ler/service"
        ] in {"verification", "wallet", "notifications"}
        if asks_enrollment:
            assert 8001 in ports, f"{name}: cannot reach the enrollment API"
            allowed |= {8001}
        assert ports <= allowed, f"{name}: egress beyond its needs: {ports - allowed}"
        ingress = [
            rule
            for p in policies
            if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
            for rule in p["spec"].get("ingress", [])
        ]
        if labels["app.kubernetes.io/component"] == "api":
            assert ingress, f"{name}: the API must be reachable from the ingress controller"
            from_outside = [r for r in ingress if any("namespaceSelector" in p for p in r["from"])]
            assert from_outside, name
            inside = [r for r in ingress if r not in from_outside]
            if inside:  # only the enrollment API takes traffic from the other APIs
                assert labels["ler/service"] == "enrollment", name
                assert all(p["port"] == 8001 for r in inside for p in r["ports"]), name
        else:
            assert not ingress, f"{name}: a processor takes no traffic"


# --- Overlays -----------------------------------------------------------------------------------


def test_prod_runs_in_production_mode_with_redundancy(rendered: Render) -> None:
    docs = rendered("prod")
    assert config_map(docs, "ler-config")["LER_ENV"] == "production"
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(docs, "HorizontalPodAutoscaler")
    }
    for deployment in of_kind(docs, "Deployment"):
        name = deployment["metadata"]["name"]
        component = deployment["metadata"]["labels"].get("app.kubernetes.io/component")
        if component == "api":
            assert hpas[name]["spec"]["minReplicas"] >= 2, name
            assert "replicas" not in deployment["spec"], f"{name}: its HPA owns the count"
        else:
            assert deployment["spec"]["replicas"] >= 2, name
    assert len(hpas) == 4


def test_prod_gives_more_resources_than_dev(rendered: Render) -> None:
    def limits(overlay: str) -> dict[str, str]:
        return {
            d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["resources"][
                "limits"
            ]["memory"]
            for d in of_kind(rendered(overlay), "Deployment")
            if d["metadata"]["labels"].get("ler/service")
        }

    def mebibytes(quantity: str) -> int:
        number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
        return int(number) * (1024 if unit == "Gi" else 1)

    dev, prod = limits("dev"), limits("prod")
    assert dev.keys() == prod.keys()
    for name in dev:
        assert mebibytes(prod[name]) > mebibytes(dev[name]), name


def test_dev_secrets_are_visibly_throwaway_and_prod_commits_none(rendered: Render) -> None:
    for secret in of_kind(rendered("dev"), "Secret"):
        for value in secret["data"].values():
            assert "dev-only" in base64.b64decode(value).decode(), secret["metadata"]["name"]
    assert not of_kind(rendered("prod"), "Secret")
    assert not of_kind(rendered("base"), "Secret")


def test_otel_collector_exports_for_real_in_prod_and_to_the_log_in_dev(rendered: Render) -> None:
    for overlay, exporter in (("prod", "otlphttp"), ("dev", "debug")):
        docs = rendered(overlay)
        config = yaml.safe_load(config_map(docs, "otel-collector-config")["config.yaml"])
        for pipeline in config["service"]["pipelines"].values():
            assert pipeline["exporters"] == [exporter], overlay
            assert set(pipeline["processors"]) <= set(config["processors"])
            assert set(pipeline["receivers"]) <= set(config["receivers"])
        settings = config_map(docs, "ler-config")
        assert settings["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
        one(docs, "Service", "otel-collector")
    prod = rendered("prod")
    endpoint = yaml.safe_load(config_map(prod, "otel-collector-config")["config.yaml"])
    assert endpoint["exporters"]["otlphttp"]["endpoint"] == "${env:OTEL_BACKEND_ENDPOINT}"
    assert config_map(prod, "otel-backend")["OTEL_BACKEND_ENDPOINT"].startswith("https://")

"""relman.toml: one typed model, validated once at load.

Unknown keys are rejected and every error is one line naming the file, the line and the key,
e.g. ``relman.toml:12: unknown key 'bogus_setting' in [environments.prod]``.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from core.config.common import (
    _NAME_MESSAGE,
    _NAMES,
    NAME_PATTERN,
    PolicyMatch,
    Strategy,
)
from core.config.pipelines import (
    PipelinesConfig,
    WatchConfig,
    check_pipelines,
    check_watch,
)
from core.config.schema import Model, SchemaError, toml_table
from core.errors import ConfigError, UsageError

CONFIG_NAME = "relman.toml"
# A stage name as GTO accepts it in a tag (gto/constants.py's name rule).
GTO_STAGE_PATTERN = r"^[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?$"

# The models are frozen, keyword-only dataclasses checked by core/config/schema.py: the annotation
# says what a key holds, ``metadata`` its constraints.


@toml_table
class ProjectConfig(Model):
    """[project]: the project's name, its interpreter, and whether promotions write GTO tags."""

    name: str = field(metadata={"pattern": NAME_PATTERN})
    # The interpreter of the project's own environment (suites, DVC stage commands).
    # Relative paths are taken from the project root; default: the one running relman.
    python: str | None = None
    # Write GTO-style git tags (NAME@vX.Y.Z, NAME#STAGE#N) when promoting.
    gto_tags: bool = True


# ------------------------------------------------------------------- monitoring policies
# The parameters any policy layer may set, and the shapes of the layers; how they cascade is
# core/alerts/policies.py's business (its docstring shows the TOML).

_POSITIVE = {"gt": 0}
_COUNT = {"ge": 1}
_SHARE = {"ge": 0, "le": 1}
_URL = {"pattern": r"^https?://\S+$"}
_LABEL = {"pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}


@toml_table
class MonitoringParameters(Model):
    """Monitoring parameters; None means "not set in this layer" (TOML has no null)."""

    # Collection (the collector and the metric store).
    scrape_interval: float | None = field(default=None, metadata=_POSITIVE)
    raw_retention_hours: float | None = field(default=None, metadata=_POSITIVE)
    rollup_retention_days: float | None = field(default=None, metadata=_POSITIVE)
    webhook: str | None = field(default=None, metadata=_URL)
    # Sudden breaks: value over threshold for N minutes; resolved after N clear; cooldown.
    latency_p99_ms: float | None = field(default=None, metadata=_POSITIVE)
    latency_for_minutes: int | None = field(default=None, metadata=_COUNT)
    error_rate_max: float | None = field(default=None, metadata=_SHARE)
    error_for_minutes: int | None = field(default=None, metadata=_COUNT)
    resolve_for_minutes: int | None = field(default=None, metadata=_COUNT)
    cooldown_minutes: int | None = field(default=None, metadata={"ge": 0})
    # Baselines that know the past (core/alerts/seasonal.py), the regression rule against
    # them and the trend test of a release (core/alerts/regression.py, core/alerts/trend.py).
    season: Literal["auto", "daily", "weekly", "recent", "none"] | None = None
    regression_ratio: float | None = field(default=None, metadata={"gt": 1})
    regression_z: float | None = field(default=None, metadata=_POSITIVE)
    regression_for_minutes: int | None = field(default=None, metadata=_COUNT)
    regression_severe_ratio: float | None = field(default=None, metadata={"gt": 1})
    regression_severe_z: float | None = field(default=None, metadata=_POSITIVE)
    regression_severe_for_minutes: int | None = field(default=None, metadata=_COUNT)
    drop_ratio: float | None = field(default=None, metadata={"gt": 1})
    drop_for_minutes: int | None = field(default=None, metadata=_COUNT)
    trend_window_minutes: int | None = field(default=None, metadata={"ge": 3})
    trend_min_slope: float | None = field(default=None, metadata=_POSITIVE)
    trend_p_max: float | None = field(default=None, metadata={"gt": 0, "lt": 1})
    # Slow leaks: one-sided CUSUM against the past, or the release's own baseline.
    leak_metric: Literal["rps", "error_rate", "p50_ms", "p95_ms", "p99_ms"] | None = None
    leak_baseline_minutes: int | None = field(default=None, metadata=_COUNT)
    leak_k: float | None = field(default=None, metadata={"ge": 0})
    leak_h: float | None = field(default=None, metadata=_POSITIVE)
    leak_min_sigma_ms: float | None = field(default=None, metadata={"ge": 0})
    # Drift, live performance, availability.
    drift_psi_max: float | None = field(default=None, metadata=_POSITIVE)
    drift_window_minutes: int | None = field(default=None, metadata=_COUNT)
    drift_min_records: int | None = field(default=None, metadata=_COUNT)
    accuracy_max_drop: float | None = field(default=None, metadata=_SHARE)
    down_for_minutes: int | None = field(default=None, metadata=_COUNT)
    # Act: roll the environment back when an alert fires there (core/delivery/auto_rollback.py).
    auto_rollback: bool | None = None
    # The keys this table really set (filled by core/config/schema.py; empty when built in code).
    fields_set: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def parameters(self) -> dict[str, Any]:
        """The parameters this layer sets, in declaration order."""
        return {
            name: getattr(self, name)
            for name in PARAMETER_NAMES
            if name in self.fields_set and getattr(self, name) is not None
        }


PARAMETER_NAMES: tuple[str, ...] = tuple(
    f.name for f in fields(MonitoringParameters) if f.name != "fields_set"
)
# The parameters that hold a number with a fraction (an integer written there is a float).
FLOAT_PARAMETERS: frozenset[str] = frozenset(
    f.name for f in fields(MonitoringParameters) if "float" in str(f.type)
)


@toml_table
class ConditionalParameters(MonitoringParameters):
    """One ``[[...when]]`` entry: parameters that apply where ``match`` does."""

    match: PolicyMatch


@toml_table
class PolicyLayer(MonitoringParameters):
    """A layer of parameters (a template, [environments.E.monitoring], [services.S.monitoring])
    and its conditional values, applied in file order after the layer's own values."""

    when: list[ConditionalParameters] = field(default_factory=list)


@toml_table
class AssignRule(Model):
    """``[[monitoring.assign]]``: attach templates to every matching (service, env)."""

    match: PolicyMatch
    templates: list[str] = field(metadata={"min_length": 1})


@toml_table
class ServiceConfig(Model):
    """One [services.NAME]: what is built and served, from which model and data."""

    # BentoML service import path, as `bentoml build` / `bentoml serve` take it. None: a
    # service whose lineage, versions and stages relman tracks, with nothing to build yet.
    bento: str | None = field(default=None, metadata={"min_length": 1})
    # The BentoML build config: a bentofile.yaml, or pyproject.toml with [tool.bentoml.build].
    build: str = "bentofile.yaml"
    # DVC artifacts (names from dvc.yaml `artifacts:` or paths) that are the model / the data.
    model: list[str] = field(metadata={"min_length": 1})
    data: list[str] = field(default_factory=list)
    # The column of the training data the model predicts, for the drift of the prediction
    # mix; default: the data's first text column that the service does not log as a feature.
    label: str | None = None
    # A JSON request body sent to `endpoint` for smoke tests.
    sample_request: str | None = None
    endpoint: str = "predict"
    # [services.NAME.monitoring]: this service's monitoring parameters
    # (core/alerts/policies.py).
    monitoring: PolicyLayer = field(default_factory=PolicyLayer)


# A DNS-1123 label: the names of namespaces (and of what relman creates in them).
_DNS_LABEL = {"pattern": r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"}
# A Kubernetes resource quantity: "500m", "1", "2Gi", "1.5".
_QUANTITY = {"pattern": r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"}


@toml_table
class KubernetesResources(Model):
    """``resources = { cpu = "1", memory = "2Gi" }``: each pod's requests, and its limits."""

    cpu: str | None = field(default=None, metadata=_QUANTITY)
    memory: str | None = field(default=None, metadata=_QUANTITY)


@toml_table
class KubernetesConfig(Model):
    """[environments.ENV.kubernetes]: where and how a Kubernetes environment runs
    (docs/targets.md, Kubernetes)."""

    namespace: str = field(metadata=_DNS_LABEL)
    # A context of the kubeconfig (default: its current context); the kubeconfig file
    # (default: $KUBECONFIG, else ~/.kube/config; relative paths from the project's root).
    context: str | None = field(default=None, metadata={"min_length": 1})
    kubeconfig: str | None = field(default=None, metadata={"min_length": 1})
    # Images are REGISTRY/relman/SERVICE:RELEASE (default registry: localhost, podman's).
    image_registry: str | None = field(
        default=None, metadata={"pattern": r"^[a-z0-9][a-z0-9.:_/-]*[a-z0-9]$"}
    )
    image_pull_secret: str | None = field(default=None, metadata=_DNS_LABEL)
    replicas: int = field(default=1, metadata={"ge": 1, "le": 1000})
    resources: KubernetesResources = field(default_factory=KubernetesResources)
    strategy: Literal["blue-green"] = "blue-green"
    termination_grace_seconds: int = field(default=30, metadata={"ge": 0, "le": 3600})
    # Where users reach the Service (an ingress, a load balancer); relman checks the
    # environment's health there. Without it: through the API server's service proxy.
    url: str | None = field(default=None, metadata=_URL)


@toml_table
class EnvironmentConfig(Model):
    """One [environments.NAME], in promotion order: where it serves (or the stage it reads),
    what must pass to enter it, how a release rolls out there."""

    host: str = "127.0.0.1"
    # None: a stage relman reads (its GTO tags) and does not serve; deploying needs a port.
    port: int | None = field(default=None, metadata={"ge": 1, "le": 65535})
    # The GTO stage this environment is in the registry's tags (default: its own name).
    stage: str | None = field(default=None, metadata={"pattern": GTO_STAGE_PATTERN})
    # local: `bentoml serve` behind relman's proxy on this machine; kubernetes: the
    # release's image as a Deployment and a Service (the [.kubernetes] sub-table).
    target: Literal["local", "kubernetes"] = "local"
    kubernetes: KubernetesConfig | None = None
    # What runs a release on the local target: its Bento (`bentoml serve`), or its OCI image
    # (`podman run`, built by `relman build --image`): docs/targets.md, Images.
    runtime: Literal["bento", "image"] = "bento"
    # Suites that must have passed for the very release being promoted.
    suites: list[str] = field(default_factory=list)
    # Gates (names of [gates.*] tables) the release must pass to enter this environment.
    gates: list[str] = field(default_factory=list)
    # Approvals needed, each from a user other than the one who promotes (four-eyes).
    approvals: int = field(default=0, metadata={"ge": 0})
    # Readiness wait for a started service, in seconds.
    ready_timeout: float = field(default=60.0, metadata=_POSITIVE)
    # [environments.NAME.monitoring]: monitoring parameters here (core/alerts/policies.py).
    monitoring: PolicyLayer = field(default_factory=PolicyLayer)
    # [environments.NAME.rollout]: how a promotion moves traffic (docs/rollouts.md).
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig())

    @property
    def served(self) -> bool:
        """Whether relman deploys to this environment (a port here, or a cluster), rather
        than only reading its stage from the registry's tags."""
        return self.port is not None or self.kubernetes is not None

    @property
    def url(self) -> str | None:
        """Where the environment answers; None for a stage relman does not serve, and for a
        cluster environment with no ``url`` (its Service answers inside the cluster)."""
        if self.kubernetes is not None:
            return self.kubernetes.url
        return None if self.port is None else f"http://{self.host}:{self.port}"


# ------------------------------------------------------------------- rollouts and analysis
# docs/rollouts.md; the plan a rollout runs is core/delivery/rollout_plan.py's business.

CHECKS = ("error-rate", "latency", "prediction-mix", "shadow-agreement", "accuracy")
Check = Literal["error-rate", "latency", "prediction-mix", "shadow-agreement", "accuracy"]


@toml_table
class RolloutStepConfig(Model):
    """One step: ``{ weight = 10, pause = "1m" }`` (route 10% of requests to the new release,
    or mirror 10% in a shadow rollout, then wait), ``{ pause = "manual" }`` (wait for `relman
    rollout resume`), or ``{ analysis = "NAME" }`` (judge it against the stable release)."""

    weight: int | None = field(default=None, metadata={"ge": 0, "le": 100})
    pause: str | None = field(default=None, metadata={"min_length": 1})
    analysis: str | None = field(default=None, metadata={"min_length": 1})


@toml_table
class RolloutConfig(Model):
    """[environments.NAME.rollout]: how a release replaces the one serving there."""

    strategy: Strategy = "all-at-once"
    # Empty: the built-in steps of the strategy (core/delivery/rollout_plan.py).
    steps: list[RolloutStepConfig] = field(default_factory=list)
    # A request header whose value keeps a client on one side (else: per request).
    sticky: str | None = field(default=None, metadata={"pattern": r"^[A-Za-z0-9-]+$"})


@toml_table
class AnalysisConfig(Model):
    """[analysis.NAME]: the checks of a new release against the stable one, same minutes."""

    # One measurement every interval; an analysis step takes `count` of them.
    interval: str = "30s"
    count: int = field(default=2, metadata=_COUNT)
    # Failed measurements tolerated; one more aborts the rollout.
    failure_limit: int = field(default=0, metadata={"ge": 0})
    # Too little traffic to decide at the step's last measurement: measure on (wait: at most
    # `count` more, then abort), pause the rollout for a person, or abort it at once (fail).
    inconclusive: Literal["wait", "pause", "fail"] = "wait"
    checks: list[Check] = field(
        default_factory=lambda: ["error-rate", "latency", "prediction-mix", "shadow-agreement"]
    )
    # Requests (or prediction records) each side needs before a check concludes.
    min_requests: int = field(default=100, metadata=_COUNT)
    # error-rate: one-sided significance of "the new release errs more", over the rollout.
    confidence: float = field(default=0.99, metadata={"gt": 0.5, "lt": 1})
    # latency: this quantile of the new release over the stable's, at most this ratio.
    latency_quantile: Literal["p50", "p95", "p99"] = "p95"
    latency_max_ratio: float = field(default=1.25, metadata={"gt": 1})
    # prediction-mix: PSI of the new release's predictions against the stable's.
    psi_max: float = field(default=0.2, metadata=_POSITIVE)
    # shadow-agreement: share of mirrored requests answered with the same prediction.
    agreement_min: float = field(default=0.95, metadata=_SHARE)
    # accuracy (late ground truth from `relman feedback`): at most this drop.
    accuracy_max_drop: float = field(default=0.05, metadata=_SHARE)


@toml_table
class SuiteConfig(Model):
    """One [suites.NAME]: pytest paths, arguments, timeout and environment of a test suite."""

    paths: list[str] = field(metadata={"min_length": 1})
    args: list[str] = field(default_factory=list)
    timeout: float = field(default=300.0, metadata=_POSITIVE)
    env: dict[str, str] = field(default_factory=dict)
    kind: Literal["unit", "data", "model", "other"] = "other"


@toml_table
class GateConfig(Model):
    """A metric gate: an absolute threshold and/or a comparison with the live baseline."""

    metric: str
    # Metrics file holding the metric; default: any metrics file of the release.
    file: str | None = None
    min: float | None = None
    max: float | None = None
    higher_is_better: bool = True
    # Compare with the release live in the environment (MLflow MetricThreshold-style).
    baseline: bool = False
    min_absolute_change: float | None = None
    min_relative_change: float | None = None


# The collection defaults of [monitoring], the project-wide table.
COLLECTION_DEFAULTS: dict[str, float | str | None] = {
    "scrape_interval": 5.0,
    "raw_retention_hours": 6.0,
    "rollup_retention_days": 28.0,
    "webhook": None,
}


@toml_table
class PrometheusLabels(Model):
    """[monitoring.labels]: the Prometheus label names that tell which relman service,
    environment and release a series belongs to (docs/prometheus.md). ``service`` and ``env``
    are the labels relman's file_sd list gives each target; ``release`` is the one BentoML
    puts on its own metrics (the Bento's version, which relman sets to the release id)."""

    service: str = field(default="service", metadata=_LABEL)
    env: str = field(default="env", metadata=_LABEL)
    release: str = field(default="service_version", metadata=_LABEL)


@toml_table
class MonitoringConfig(PolicyLayer):
    """[monitoring]: project-wide parameters (above the built-in defaults), the templates
    and the rules that assign them. Read effective values with core.alerts.policies, not here:
    the four collection keys keep their defaults only for readers of this table alone.
    ``source`` and the keys after it say where the metrics come from and where alerts go
    beyond this machine (docs/prometheus.md); they are the project's, not a policy's."""

    scrape_interval: float = field(default=5.0, metadata=_POSITIVE)
    raw_retention_hours: float = field(default=6.0, metadata=_POSITIVE)
    rollup_retention_days: float = field(default=28.0, metadata=_POSITIVE)
    # [monitoring.templates.NAME]: named sets of parameters, attached by assign rules.
    templates: dict[str, PolicyLayer] = field(
        default_factory=dict,
        metadata={
            "key_pattern": NAME_PATTERN,
            "key_message": "template " + _NAME_MESSAGE,
        },
    )
    # [[monitoring.assign]], in file order: later rules override earlier ones.
    assign: list[AssignRule] = field(default_factory=list)
    # "scrape": the collector scrapes each environment's /metrics; "prometheus": it reads
    # the same counters from prometheus_url's HTTP API.
    source: Literal["scrape", "prometheus"] = "scrape"
    prometheus_url: str | None = field(default=None, metadata=_URL)
    labels: PrometheusLabels = field(default_factory=PrometheusLabels)
    # A Prometheus file_sd target list of the live environments, kept by the collector
    # (relative to the project's root).
    file_sd: str | None = field(default=None, metadata={"min_length": 1})
    # Alertmanager's base URL: relman's alerts posted to its v2 API, its silences read.
    alertmanager_url: str | None = field(default=None, metadata=_URL)


def _default_environments() -> dict[str, EnvironmentConfig]:
    return {
        "dev": EnvironmentConfig(port=3000),
        "staging": EnvironmentConfig(port=3001),
        "prod": EnvironmentConfig(port=3002, approvals=1),
    }


@toml_table
class RelmanConfig(Model):
    """All of relman.toml, validated."""

    project: ProjectConfig
    services: dict[str, ServiceConfig] = field(metadata={"min_length": 1, **_NAMES})
    # In promotion order: the order of the tables in relman.toml.
    environments: dict[str, EnvironmentConfig] = field(
        default_factory=_default_environments, metadata=_NAMES
    )
    suites: dict[str, SuiteConfig] = field(default_factory=dict, metadata=_NAMES)
    gates: dict[str, GateConfig] = field(default_factory=dict, metadata=_NAMES)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    analysis: dict[str, AnalysisConfig] = field(default_factory=dict, metadata=_NAMES)
    pipelines: PipelinesConfig = field(default_factory=PipelinesConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)

    @property
    def environment_order(self) -> list[str]:
        return list(self.environments)

    def check_names(self, *, service: str | None = None, env: str | None = None) -> None:
        """UsageError, listing what is declared, for a service or environment not declared."""
        if service is not None and service not in self.services:
            known = ", ".join(self.services)
            raise UsageError(f"no service {service!r} in relman.toml (services: {known})")
        if env is not None and env not in self.environments:
            known = ", ".join(self.environments)
            raise UsageError(f"no environment {env!r} in relman.toml (environments: {known})")

    def stage_of(self, env: str) -> str:
        """The GTO stage that stands for ``env`` in the registry's tags."""
        return self.environments[env].stage or env

    def require_service(self, service: str) -> None:
        """UsageError (exit 2) naming what to add when ``service`` has no BentoML service to
        build: relman tracks its lineage, versions and stages, and builds nothing."""
        if self.services[service].bento is None:
            raise UsageError(
                f"service {service!r} has no BentoML service to build: add bento = "
                f'"module:Class" (and its bentofile.yaml) to [services.{service}] in '
                f"relman.toml, or write a minimal one with '{self.scaffold_command(service)}'"
            )

    def scaffold_command(self, service: str) -> str:
        """The command that writes a minimal BentoML service for ``service`` (its relman.toml
        rewritten: --force); ``--service`` names it where there are several."""
        named = f" --service {service}" if len(self.services) > 1 else ""
        return f"relman init --force --scaffold-service{named}"

    def require_port(self, env: str) -> None:
        """UsageError (exit 2) when ``env`` is a stage relman reads but does not serve."""
        if not self.environments[env].served:
            raise UsageError(
                f"environment {env!r} has no port: relman reads its stage and serves nothing "
                f"there; add port = N to [environments.{env}] in relman.toml to deploy to it"
            )


@dataclass(frozen=True)
class Project:
    """A loaded project: its root folder, its relman.toml and the validated config.
    ``inferred``: there is no relman.toml; the config was read from the repository itself
    (core/lineage/infer.py), for commands that only read."""

    root: Path
    config_path: Path
    config: RelmanConfig
    inferred: bool = False

    @property
    def state_dir(self) -> Path:
        return self.root / ".relman"

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "ledger.db"

    @property
    def metrics_path(self) -> Path:
        return self.state_dir / "metrics.db"

    def python(self) -> str:
        """The interpreter of the project's environment."""
        import sys

        configured = self.config.project.python
        if not configured:
            return sys.executable
        path = Path(configured)
        return str(path if path.is_absolute() else self.root / path)


# ---------------------------------------------------------------------------------- loading


def find_config(start: Path | None = None) -> Path:
    """The nearest relman.toml in ``start`` or a folder above it."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise MissingConfig(
        f"no {CONFIG_NAME} in {here} or any folder above it; run 'relman init' in the "
        "repository, or pass --project DIR"
    )


class MissingConfig(ConfigError):
    """There is no relman.toml where one was looked for (exit 2)."""


def load_project(project_dir: Path | None = None) -> Project:
    """Load the project at ``project_dir`` (exactly there), or found upward from the cwd."""
    if project_dir is not None:
        path = Path(project_dir)
        if not path.is_dir():
            raise ConfigError(f"--project {path}: no such folder")
        config_path = path / CONFIG_NAME
        if not config_path.is_file():
            raise MissingConfig(
                f"{shown_path(config_path)}: not found; run 'relman init' there, "
                "or point --project at the folder that holds relman.toml"
            )
    else:
        config_path = find_config()
    config = load_config(config_path)
    return Project(root=config_path.parent.resolve(), config_path=config_path, config=config)


def load_config(path: Path) -> RelmanConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{shown_path(path)}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown_path(path)}: not UTF-8 text ({exc.reason})") from exc
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> RelmanConfig:
    shown = shown_path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        from core.config.lines import describe_toml_error

        raise ConfigError(describe_toml_error(exc, shown)) from exc
    try:
        config = RelmanConfig.from_data(data)
    except SchemaError as exc:
        from core.config.lines import describe_problems

        raise ConfigError(describe_problems(exc.problems, text, shown)) from exc
    _check_references(config, text, shown)
    return config


def _check_references(config: RelmanConfig, text: str, shown: str) -> None:
    def line_of(loc: tuple[str, ...]) -> int:  # only for an error: a valid file is not scanned
        from core.config.lines import key_lines, line_for

        return line_for(key_lines(text), loc)

    for env_name, env in config.environments.items():
        for key_name, known, table in (
            ("suites", config.suites, "suites"),
            ("gates", config.gates, "gates"),
        ):
            for name in getattr(env, key_name):
                if name not in known:
                    line = line_of(("environments", env_name, key_name))
                    choices = ", ".join(sorted(known)) or "none are declared"
                    raise ConfigError(
                        f"{shown}:{line}: [environments.{env_name}] {key_name} names {name!r}, "
                        f"which is not a [{table}.*] table ({choices})"
                    )
    _check_targets(config, line_of, shown)
    seen: dict[tuple[str, int], str] = {}
    for env_name, env in config.environments.items():
        if env.port is None:
            continue
        key = (env.host, env.port)
        if key in seen:
            line = line_of(("environments", env_name, "port"))
            raise ConfigError(
                f"{shown}:{line}: [environments.{env_name}] port {env.port} is already used "
                f"by [environments.{seen[key]}]; give each environment its own port"
            )
        seen[key] = env_name
    _check_monitoring(config, line_of, shown)
    _check_rollouts(config, line_of, shown)
    if config.pipelines.named or config.pipelines.assign or config.pipelines.fields_set:
        check_pipelines(
            config.pipelines,
            config.environment_order,
            {name: env.approvals for name, env in config.environments.items()},
            line_of,
            shown,
        )
    if config.watch.poll != "5s" or config.watch.debounce != "10s":
        check_watch(config.watch, line_of, shown)


def _check_targets(
    config: RelmanConfig, line_of: Callable[[tuple[str, ...]], int], shown: str
) -> None:
    """A kubernetes environment has its sub-table and no port (the local target's); the
    sub-table belongs to a kubernetes environment; a cluster rolls out all at once."""
    for name, env in config.environments.items():
        where = f"[environments.{name}]"
        if env.target == "kubernetes" and env.kubernetes is None:
            raise ConfigError(
                f"{shown}:{line_of(('environments', name, 'target'))}: {where} target = "
                f'"kubernetes" needs a [environments.{name}.kubernetes] table with at least '
                'namespace = "..." (docs/targets.md)'
            )
        if env.target != "kubernetes" and env.kubernetes is not None:
            raise ConfigError(
                f"{shown}:{line_of(('environments', name, 'kubernetes'))}: "
                f'[environments.{name}.kubernetes] applies to target = "kubernetes"; add it '
                f"to {where}, or remove the table"
            )
        if env.target == "kubernetes" and env.port is not None:
            raise ConfigError(
                f"{shown}:{line_of(('environments', name, 'port'))}: {where} port is the local "
                "target's; a kubernetes environment answers at its Service (set url in "
                f"[environments.{name}.kubernetes] for an ingress), remove port"
            )
        if env.target == "kubernetes" and env.rollout.strategy != "all-at-once":
            raise ConfigError(
                f"{shown}:{line_of(('environments', name, 'rollout', 'strategy'))}: "
                f"[environments.{name}.rollout] strategy = {env.rollout.strategy!r} is not "
                'built for kubernetes environments yet; use "all-at-once" (blue-green: '
                "validated before the Service switches)"
            )


def _check_rollouts(
    config: RelmanConfig, line_of: Callable[[tuple[str, ...]], int], shown: str
) -> None:
    """Steps that can run: one kind each, weights rising to at most 100, pauses that are
    durations, analyses that are declared; intervals that are durations."""
    from core.config.durations import parse_duration

    for name, analysis in config.analysis.items():
        try:
            if parse_duration(analysis.interval) <= 0:
                raise ValueError(f"{analysis.interval!r} is not a positive duration")
        except ValueError as exc:
            line = line_of(("analysis", name, "interval"))
            raise ConfigError(f"{shown}:{line}: [analysis.{name}] interval: {exc}") from None
    for env_name, env in config.environments.items():
        rollout = env.rollout
        where = f"[environments.{env_name}.rollout]"
        last = -1
        for index, item in enumerate(rollout.steps):
            loc = ("environments", env_name, "rollout", "steps")
            kinds = [k for k in ("weight", "analysis") if getattr(item, k) is not None]
            problem = None
            if len(kinds) > 1:
                problem = "a step sets weight or analysis, not both"
            elif not kinds and item.pause is None:
                problem = "a step needs weight, pause or analysis"
            elif item.analysis is not None and item.pause is not None:
                problem = "an analysis step takes no pause"
            elif item.weight is not None:
                if item.weight == 0:
                    problem = "a weight must be above 0"
                elif rollout.strategy == "canary" and item.weight <= last:
                    problem = f"weights must rise: {item.weight} after {last}"
                last = item.weight
            if problem is None and item.pause is not None and item.pause != "manual":
                try:
                    parse_duration(item.pause)
                except ValueError as exc:
                    problem = f"pause: {exc}, or 'manual'"
            if (
                problem is None
                and item.analysis is not None
                and item.analysis not in {*config.analysis, "default"}
            ):
                choices = ", ".join(sorted(config.analysis)) or "none are declared"
                problem = f"analysis {item.analysis!r} is not an [analysis.*] table ({choices})"
            if problem:
                raise ConfigError(f"{shown}:{line_of(loc)}: {where} steps #{index + 1}: {problem}")
        if rollout.steps and rollout.strategy == "all-at-once":
            raise ConfigError(
                f"{shown}:{line_of(('environments', env_name, 'rollout', 'steps'))}: {where} "
                'steps need strategy = "canary" or "shadow" (all-at-once has none)'
            )


def _check_monitoring(
    config: RelmanConfig, line_of: Callable[[tuple[str, ...]], int], shown: str
) -> None:
    """Assign rules name declared templates; env and target patterns match something; a
    Prometheus source has its URL."""
    monitoring = config.monitoring
    if monitoring.source == "prometheus" and monitoring.prometheus_url is None:
        line = line_of(("monitoring", "source"))
        raise ConfigError(
            f'{shown}:{line}: [monitoring] source = "prometheus" needs prometheus_url '
            '(e.g. prometheus_url = "http://127.0.0.1:9090")'
        )
    for index, rule in enumerate(monitoring.assign):
        for name in rule.templates:
            if name not in monitoring.templates:
                line = line_of(("monitoring", "assign", str(index), "templates"))
                choices = ", ".join(sorted(monitoring.templates)) or "none are declared"
                raise ConfigError(
                    f"{shown}:{line}: [[monitoring.assign]] #{index + 1} templates names "
                    f"{name!r}, which is not a [monitoring.templates.*] table ({choices})"
                )
    matches: list[tuple[tuple[str, ...], str, PolicyMatch]] = [
        (("monitoring", "assign", str(index)), f"[[monitoring.assign]] #{index + 1}", rule.match)
        for index, rule in enumerate(monitoring.assign)
    ]
    layers: list[tuple[tuple[str, ...], PolicyLayer]] = [(("monitoring",), monitoring)]
    layers += [(("monitoring", "templates", n), t) for n, t in monitoring.templates.items()]
    layers += [
        (("environments", n, "monitoring"), e.monitoring) for n, e in config.environments.items()
    ]
    layers += [(("services", n, "monitoring"), s.monitoring) for n, s in config.services.items()]
    for loc, layer in layers:
        for index, conditional in enumerate(layer.when):
            where = f"[[{'.'.join(loc)}.when]] #{index + 1}"
            matches.append(((*loc, "when", str(index)), where, conditional.match))
    known: dict[str, list[str]] = {
        "env": list(config.environments),
        "target": sorted({str(env.target) for env in config.environments.values()}),
    }
    for loc, where, match in matches:
        for key, patterns in match.patterns().items():
            if key not in known:
                continue  # a service pattern may name services still to come
            for pattern in patterns:
                if not any(fnmatch.fnmatchcase(name, pattern) for name in known[key]):
                    line = line_of((*loc, "match", key))
                    noun = "environment" if key == "env" else "environment target"
                    raise ConfigError(
                        f"{shown}:{line}: {where} match {key} = {pattern!r} matches no "
                        f"{noun} ({', '.join(known[key])})"
                    )


def shown_path(path: Path) -> str:
    """A path as a person finds it: relative to the cwd when it is below it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return relative if not relative.startswith("..") else str(path)

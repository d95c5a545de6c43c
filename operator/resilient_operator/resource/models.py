"""The ResilientService custom resource: pydantic models, the single source of truth.

The CRD under ``crds/`` is generated from these models (see ``crd.py``); every rule the API
server enforces through the CRD (types, enums, minimums, CEL rules) is mirrored here so the
unit tests and the operator see the same contract.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

GROUP = "resilience.dev"
VERSION = "v1alpha1"
KIND = "ResilientService"
PLURAL = "resilientservices"
SINGULAR = "resilientservice"
SHORT_NAMES = ["rsvc"]
CATEGORIES = ["resilience"]

# Labels the operator owns on every child and pod; the selector is derived from them only.
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "resilient-operator"
MANAGED_LABELS = (LABEL_NAME, LABEL_INSTANCE, LABEL_MANAGED_BY)

# the name becomes the Service's name and a label value: a DNS-1035 label
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX_LENGTH = 63
NAME_RULE = (f"self.metadata.name.size() <= {NAME_MAX_LENGTH} && "
             f"self.metadata.name.matches('{NAME_PATTERN}')")
NAME_MESSAGE = ("metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', "
                f"starting with a letter) of at most {NAME_MAX_LENGTH} characters: it names the "
                "Service and is the value of the app.kubernetes.io/instance label")
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
PERCENT_PATTERN = r"^(100|[1-9]?[0-9])%$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration such as ``90s``, ``1m30s`` or ``250ms``."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 10m or 1h30m")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


def _check_int_or_percent(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must be a non-negative integer or a percentage such as 25%")
        return value
    if not re.fullmatch(PERCENT_PATTERN, value):
        raise ValueError(f"{value!r} must be a non-negative integer or a percentage 0%..100%")
    return value


def resolve_int_or_percent(value: int | str, total: int, *, round_up: bool) -> int:
    """An absolute count from an int or a percentage of ``total`` (as Kubernetes rounds it)."""
    if isinstance(value, int):
        return value
    pct = int(value.rstrip("%"))
    scaled = pct * total
    return -(-scaled // 100) if round_up else scaled // 100


INT_OR_PERCENT_RULE = "type(self) == int ? self >= 0 : self.matches('" + PERCENT_PATTERN + "')"

Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(json_schema_extra={"pattern": DURATION_PATTERN}),
]


def _check_timeout(text: str) -> str:
    if parse_duration(text) < 1:
        raise ValueError(f"{text!r} is shorter than 1s: a timeout of zero would act on every "
                         "pod the moment it changes (a starting pod is not Ready yet)")
    return text


# a time after which healing acts: zero would switch the safety off, so at least one second
Timeout = Annotated[
    str,
    AfterValidator(_check_timeout),
    Field(json_schema_extra={
        "pattern": DURATION_PATTERN,
        "x-kubernetes-validations": [{
            "rule": "duration(self) >= duration('1s')",
            "message": "must be at least 1s: a timeout of zero would act on every pod the "
                       "moment it changes (a starting pod is not Ready yet)"}],
    }),
]
IntOrPercent = Annotated[
    int | str,
    AfterValidator(_check_int_or_percent),
    Field(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": INT_OR_PERCENT_RULE,
                    "message": "must be a non-negative integer or a percentage such as 25%",
                }
            ]
        }
    ),
]
def _without_null_values(value: Any) -> Any:
    # the API server prunes a null map value before it validates or stores anything
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None}
    return value


LabelMap = Annotated[dict[str, str], BeforeValidator(_without_null_values)]


class K8sModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are rejected. A null is
    treated as absent (the API server prunes it, then applies the default)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: Any) -> Any:
        return _without_null_values(data)


class OpenModel(BaseModel):
    """A part of a Kubernetes object we pass through: known fields typed, the rest kept."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )


# ---------------------------------------------------------------------------------------------
# spec.template


class Container(OpenModel):
    """A container of the pod (the full Kubernetes Container; name and image are required)."""

    name: str = Field(min_length=1, description="Name of the container (DNS label).")
    image: str = Field(min_length=1, description="Container image reference.")


class TemplateMetadata(K8sModel):
    """Labels and annotations for the pods. The app.kubernetes.io name, instance and
    managed-by labels are the operator's and may not be set here."""

    labels: LabelMap | None = Field(
        default=None,
        description="Labels added to every pod (the operator's own labels cannot be set).",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(k, !(k in "
                    + str(list(MANAGED_LABELS)).replace('"', "'")
                    + "))",
                    "message": "the labels app.kubernetes.io/name, app.kubernetes.io/instance "
                    "and app.kubernetes.io/managed-by are set by the operator",
                }
            ]
        },
    )
    annotations: LabelMap | None = Field(
        default=None, description="Annotations added to every pod."
    )

    @model_validator(mode="after")
    def _no_managed_labels(self) -> TemplateMetadata:
        clash = sorted(set(self.labels or {}) & set(MANAGED_LABELS))
        if clash:
            raise ValueError(f"template.metadata.labels may not set {', '.join(clash)}")
        return self


class PodSpec(OpenModel):
    """The pod spec (the full Kubernetes PodSpec; containers are required)."""

    containers: list[Container] = Field(
        min_length=1, description="The pod's containers; at least one."
    )


class PodTemplate(K8sModel):
    """The pod template of the replicas, as in a Deployment."""

    metadata: TemplateMetadata | None = Field(
        default=None, description="Labels and annotations of the pods."
    )
    spec: PodSpec = Field(description="The pod spec of the replicas.")


# ---------------------------------------------------------------------------------------------
# spec.service


class ServicePort(K8sModel):
    """One port of the Service in front of the pods."""

    name: str | None = Field(default=None, description="Name of the port (required with >1 port).")
    port: int = Field(ge=1, le=65535, description="Port the Service listens on.")
    target_port: int | str | None = Field(
        default=None,
        description="Container port number or name the traffic goes to; defaults to port.",
        json_schema_extra={"x-kubernetes-int-or-string": True},
    )
    protocol: Literal["TCP", "UDP", "SCTP"] = Field(default="TCP", description="IP protocol.")


class ServiceSpec(K8sModel):
    """Load balancing in front of the pods: a Service owned by the resource."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.ports.size() <= 1 || "
                    "self.ports.all(p, has(p.name) && size(p.name) > 0)",
                    "message": "every port needs a name when there is more than one",
                }
            ]
        }
    )

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="Kubernetes Service type."
    )
    ports: list[ServicePort] = Field(min_length=1, description="Ports the Service exposes.")
    annotations: LabelMap | None = Field(
        default=None, description="Annotations of the Service (e.g. for a cloud load balancer)."
    )

    @model_validator(mode="after")
    def _names_when_many(self) -> ServiceSpec:
        if len(self.ports) > 1 and any(not p.name for p in self.ports):
            raise ValueError("service.ports: every port needs a name when there is more than one")
        return self


# ---------------------------------------------------------------------------------------------
# spec.availability


class ZoneSpread(K8sModel):
    """Spread the pods across failure domains with a topology spread constraint."""

    max_skew: int = Field(default=1, ge=1, description="Largest allowed difference in pod count "
                          "between two domains.")
    topology_key: str = Field(
        default="topology.kubernetes.io/zone", min_length=1,
        description="Node label whose values are the domains (zones by default).",
    )
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = Field(
        default="ScheduleAnyway",
        description="ScheduleAnyway prefers the spread; DoNotSchedule requires it.",
    )


class Availability(K8sModel):
    """How many pods must stay up: a PodDisruptionBudget and the zone spread of the pods."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.minAvailable) && has(self.maxUnavailable))",
                    "message": "set only one of minAvailable and maxUnavailable",
                }
            ]
        }
    )

    min_available: IntOrPercent | None = Field(
        default=None, description="Pods (or percent of replicas) that must stay available."
    )
    max_unavailable: IntOrPercent | None = Field(
        default=None, description="Pods (or percent of replicas) that may be unavailable."
    )
    zone_spread: ZoneSpread | None = Field(
        default=None, description="Spread the pods across zones (topology spread constraint)."
    )

    @model_validator(mode="after")
    def _one_of(self) -> Availability:
        if self.min_available is not None and self.max_unavailable is not None:
            raise ValueError("availability: set only one of minAvailable and maxUnavailable")
        return self


# ---------------------------------------------------------------------------------------------
# spec.autoscaling


class Autoscaling(K8sModel):
    """An autoscaling/v2 HorizontalPodAutoscaler whose target is this resource."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
                    "message": "minReplicas must not exceed maxReplicas",
                }
            ]
        }
    )

    min_replicas: int = Field(default=1, ge=1, description="Lower bound of the replicas.")
    max_replicas: int = Field(ge=1, description="Upper bound of the replicas.")
    target_cpu_utilization_percentage: int | None = Field(
        default=None, ge=1, le=1000, alias="targetCPUUtilizationPercentage",
        description="Average CPU use, percent of requests. 80 when no target is given.",
    )
    target_memory_utilization_percentage: int | None = Field(
        default=None, ge=1, le=1000, description="Average memory use, percent of requests."
    )
    behavior: dict[str, Any] | None = Field(
        default=None,
        description="HPA scaling behavior (autoscaling/v2 HorizontalPodAutoscalerBehavior), "
        "passed through.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling: minReplicas must not exceed maxReplicas")
        return self


# ---------------------------------------------------------------------------------------------
# spec.healing


class Healing(K8sModel):
    """Self-healing policy: when pods are replaced, and the budget for doing so."""

    mode: Literal["Enabled", "ObserveOnly", "Disabled"] = Field(
        default="Enabled",
        description="Enabled acts; ObserveOnly decides and reports but never acts; Disabled.",
    )
    not_ready_timeout: Timeout = Field(
        default="60s", description="A pod Running but not Ready this long is unhealthy."
    )
    max_restarts: int = Field(
        default=5, ge=1, description="This many container restarts within restartWindow make "
        "a pod unhealthy (CrashLoop)."
    )
    restart_window: Timeout = Field(default="10m", description="Window for maxRestarts.")
    node_lost_timeout: Timeout = Field(
        default="30s", description="A pod whose node is NotReady/Unknown this long is moved."
    )
    max_concurrent: IntOrPercent = Field(
        default=1, description="Heals in flight at once (int or percent of replicas)."
    )
    cooldown: Duration = Field(
        default="30s", description="Minimum gap between two heals of this service."
    )
    storm_threshold: IntOrPercent = Field(
        default="50%",
        description="When this share (or count) of the pods is unhealthy at once, healing stops "
        "and is reported: the cause is rarely the pods.",
    )
    storm_min_pods: int = Field(
        default=3, ge=1,
        description="A storm needs at least this many unhealthy pods as well as the "
        "stormThreshold share, so one sick pod of a small service is still healed.",
    )


# ---------------------------------------------------------------------------------------------
# spec.rollout

COMMAND_PROMOTE = "resilience.dev/promote"
COMMAND_ABORT = "resilience.dev/abort"
COMMAND_RETRY = "resilience.dev/retry"
COMMANDS = (COMMAND_PROMOTE, COMMAND_ABORT, COMMAND_RETRY)
# a promote token with this prefix promotes all the way (kubectl rsvc promote --full)
PROMOTE_FULL_PREFIX = "full:"
MAX_STEPS = 32


class Pause(K8sModel):
    """Wait: for ``duration``, or, without it, for a promote command."""

    duration: Duration | None = Field(
        default=None, description="How long to wait; without it the rollout waits for "
        "`kubectl rsvc promote` (the resilience.dev/promote annotation)."
    )


class RolloutStep(K8sModel):
    """One step of a canary: shift weight, or pause."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.setWeight) != has(self.pause)",
                    "message": "a step is either setWeight or pause",
                }
            ]
        }
    )

    set_weight: int | None = Field(
        default=None, ge=1, le=100,
        description="Percent of the total replicas that run the new template (1..100).",
    )
    pause: Pause | None = Field(default=None, description="Wait before the next step.")

    @model_validator(mode="after")
    def _one_of(self) -> RolloutStep:
        if (self.set_weight is None) == (self.pause is None):
            raise ValueError("a step is either setWeight or pause")
        return self


class RolloutHealth(K8sModel):
    """Health gate of the new pods, checked continuously from the first new pod (during
    pauses too): any criterion crossed aborts the rollout."""

    max_restarts: int = Field(default=1, ge=0, description="Restarts of any new pod above "
                              "this abort.")
    not_ready_timeout: Timeout = Field(default="60s", description="A new pod Running but not "
                                        "Ready this long aborts.")
    start_timeout: Duration = Field(default="5m", description="A new pod Pending (scheduling, "
                                    "pulling, creating) this long aborts.")
    oom_killed: Literal["Abort", "Ignore"] = Field(default="Abort", description="Whether a new "
                                                   "pod's container killed for memory aborts.")


class Rollout(K8sModel):
    """How a change of spec.template reaches the pods: Rolling (the Deployment's own rolling
    update, with the health gate and automatic rollback) or Canary (steps of weights and
    pauses on a second Deployment, with automatic abort)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.strategy) && self.strategy == 'Canary') ? "
                    "has(self.steps) && size(self.steps) > 0 : !has(self.steps)",
                    "message": "steps are required with strategy Canary and allowed only there",
                },
                {
                    "rule": "!has(self.steps) || self.steps.filter(s, has(s.setWeight))"
                    ".map(s, s.setWeight).isSorted()",
                    "message": "setWeight must not decrease from one step to the next",
                },
            ]
        }
    )

    strategy: Literal["Rolling", "Canary"] = Field(default="Rolling", description="Rolling or "
                                                   "Canary.")
    paused: bool = Field(default=False, description="Standing pause: no new step starts while "
                         "true (`kubectl rsvc pause` / `resume`).")
    max_surge: IntOrPercent = Field(default="25%", description="Pods allowed above the total "
                                    "while new pods start (int or percent of the total).")
    min_ready_seconds: int = Field(default=5, ge=0, le=3600, description="A new pod counts only "
                                   "after it has been Ready this long.")
    progress_deadline: Duration = Field(default="10m", description="A step's new pods must be "
                                        "available within this, else the rollout aborts.")
    max_pause_duration: Duration = Field(default="24h", description="Any pause older than this "
                                         "aborts the rollout.")
    steps: list[RolloutStep] | None = Field(
        default=None, max_length=MAX_STEPS, description="Canary only, at least one: setWeight "
        "and pause steps, weights not decreasing."
    )
    health: RolloutHealth = Field(default_factory=RolloutHealth, description="The health gate "
                                  "of new pods.", json_schema_extra={"default": {}})

    @model_validator(mode="after")
    def _steps(self) -> Rollout:
        if self.strategy == "Canary" and not self.steps:
            raise ValueError("rollout.steps: at least one step is required with strategy Canary")
        if self.strategy != "Canary" and self.steps is not None:
            raise ValueError("rollout.steps: steps are allowed only with strategy Canary")
        weights = [s.set_weight for s in self.steps or [] if s.set_weight is not None]
        if weights != sorted(weights):
            raise ValueError("rollout.steps: setWeight must not decrease from one step to the "
                             "next")
        return self


# ---------------------------------------------------------------------------------------------
# the resource


class ResilientServiceSpec(K8sModel):
    """Desired state of a ResilientService."""

    replicas: int = Field(
        default=1, ge=0, le=2**31 - 1,  # the scale subresource reads an int32
        description="Desired replicas when there is no autoscaling; the scale subresource "
        "reads and writes it (and so does the autoscaler).",
    )
    template: PodTemplate = Field(description="The pod template of the replicas.")
    service: ServiceSpec | None = Field(
        default=None, description="Optional Service that load-balances across the pods."
    )
    availability: Availability | None = Field(
        default=None, description="Optional availability policy: a PodDisruptionBudget and a "
        "zone spread."
    )
    autoscaling: Autoscaling | None = Field(
        default=None, description="Optional HorizontalPodAutoscaler targeting this resource."
    )
    healing: Healing = Field(
        default_factory=Healing,
        description="Self-healing policy (enabled by default).",
        json_schema_extra={"default": {}},
    )
    rollout: Rollout = Field(
        default_factory=Rollout,
        description="How a new template is rolled out (Rolling by default).",
        json_schema_extra={"default": {}},
    )

    def desired_replicas(self) -> int:
        """Replicas of the Deployment: spec.replicas, clamped to the autoscaling bounds."""
        if self.autoscaling is None:
            return self.replicas
        return max(self.autoscaling.min_replicas, min(self.replicas, self.autoscaling.max_replicas))


# ---------------------------------------------------------------------------------------------
# status


class Condition(K8sModel):
    """A condition in the Kubernetes shape."""

    type: str = Field(description="Type of the condition (Ready, Available, Progressing, "
                      "Degraded).")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable details.")
    last_transition_time: str = Field(description="When the status last changed.")
    observed_generation: int | None = Field(
        default=None, description="The generation this condition was computed for."
    )


class UnhealthyPod(K8sModel):
    """A pod found unhealthy, why, and what healing does about it."""

    name: str = Field(description="Pod name.")
    reason: str = Field(description="NotReady, CrashLoop, Failed, NodeLost, or a reason that "
                        "replacing cannot help (ImagePullBackOff, Unschedulable...).")
    since: str = Field(description="When the pod became unhealthy.")
    action: str = Field(description="Replace, WouldReplace (ObserveOnly), Wait (a budget or "
                        "backoff holds it), or Report (replacing would not help).")
    message: str = Field(default="", description="Details.")


class HealAction(K8sModel):
    """The last action healing took."""

    pod: str = Field(description="Pod acted on.")
    reason: str = Field(description="Why.")
    action: str = Field(description="Evicted or Deleted.")
    time: str = Field(description="When.")


class HealInFlight(K8sModel):
    """A heal the operator started whose replacement is not Ready yet (holds a budget slot).
    Written before the eviction is sent, so a restarted operator or a new leader never
    repeats it."""

    pod: str = Field(description="Pod being replaced.")
    pod_uid: str = Field(alias="podUID", description="Its uid.")
    reason: str = Field(description="Why it is replaced.")
    unhealthy_since: str = Field(description="When it became unhealthy.")
    acted_at: str = Field(description="When the operator acted.")
    generation: int = Field(default=0, description="Replacements in a row before this one.")
    replacement: str | None = Field(default=None, description="The pod that replaced it.")


class PodGeneration(K8sModel):
    """A pod that is itself a replacement, and how many replacements in a row led to it (a
    replacement that comes back unhealthy is replaced only after a backoff)."""

    pod: str = Field(description="Pod name.")
    generation: int = Field(description="Replacements in a row that led to this pod.")


class HealingStatus(K8sModel):
    """What self-healing sees and has done, and the state its decisions depend on."""

    suspended: bool = Field(default=False, description="Healing is stopped by the storm breaker.")
    unhealthy_pods: list[UnhealthyPod] = Field(
        default_factory=list, description="Pods found unhealthy now."
    )
    last_action: HealAction | None = Field(default=None, description="The last heal.")
    pods_replaced: int = Field(default=0, description="Pods replaced since the operator started "
                               "watching this resource.")
    pods_moved_from_lost_nodes: int = Field(default=0, description="Pods moved off lost nodes.")
    last_heal_time: str | None = Field(default=None, description="When the last heal round "
                                       "ran (the cooldown counts from it).")
    resumed_time: str | None = Field(default=None, description="When the storm breaker last "
                                     "let go (pods unhealthy during the storm get a fresh "
                                     "grace from then).")
    in_flight: list[HealInFlight] = Field(default_factory=list, description="Heals whose "
                                          "replacement is not Ready yet.")
    generations: list[PodGeneration] = Field(default_factory=list, description="Replacement "
                                             "pods and their place in a row of replacements.")


class RolloutAbort(K8sModel):
    """Why the last rollout was aborted."""

    revision: str = Field(description="The revision aborted.")
    reason: str = Field(description="CamelCase reason (CanaryRestarts, CanaryNotReady, "
                        "CanaryNotStarted, CanaryOOMKilled, ProgressDeadlineExceeded, "
                        "PauseTooLong, AbortCommand).")
    message: str = Field(default="", description="Details: the pod and what it showed.")
    time: str = Field(description="When the abort was decided.")


class RolloutRecord(K8sModel):
    """One finished rollout."""

    revision: str = Field(description="Revision rolled out.")
    result: Literal["Promoted", "Aborted", "Superseded", "RolledBack"] = Field(
        description="How it ended.")
    started: str = Field(description="When it started.")
    finished: str = Field(description="When it ended.")
    reason: str | None = Field(default=None, description="Why, when it did not promote.")


class Commands(K8sModel):
    """The last token of each command acted on (or ignored): each token acts once."""

    promote: str | None = Field(default=None, description="resilience.dev/promote token.")
    abort: str | None = Field(default=None, description="resilience.dev/abort token.")
    retry: str | None = Field(default=None, description="resilience.dev/retry token.")


class RolloutStatus(K8sModel):
    """Where the rollout is; everything the next decision needs, so a restart or a new leader
    continues at the same step."""

    phase: Literal["Idle", "Progressing", "Paused", "Promoting", "Completed", "Aborting",
                   "Aborted"] = Field(default="Idle", description="Idle, Progressing, Paused, "
                                      "Promoting, Completed, Aborting or Aborted.")
    strategy: str | None = Field(default=None, description="Strategy of the current rollout.")
    revision: str | None = Field(default=None, description="Revision of spec.template.")
    stable_revision: str | None = Field(default=None, description="Revision the stable track "
                                        "runs.")
    stable_template: dict[str, Any] | None = Field(
        default=None, description="The pod template of the stable track during a rollout.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    stable_pod_hashes: list[str] = Field(default_factory=list, description="pod-template-hash "
                                         "of the pods that ran before a Rolling update.")
    step_index: int | None = Field(default=None, description="Current step (0-based).")
    current_step: str | None = Field(default=None, description="The current step for people: "
                                     "2/4, Promoting or Aborting (kubectl get's STEP).")
    step_started: str | None = Field(default=None, description="When the current step began.")
    steps: int | None = Field(default=None, description="Number of steps.")
    desired_weight: int = Field(default=0, description="Percent of the total the current step "
                                "asks of the new template.")
    actual_weight: int = Field(default=0, description="Percent of ready pods that run the new "
                               "template.")
    stable_pods: int = Field(default=0, description="Ready pods of the stable track.")
    canary_pods: int = Field(default=0, description="Ready pods of the canary track.")
    total: int | None = Field(default=None, description="The total the split is taken of "
                              "(held while a lower autoscaler value waits for the end).")
    base_total: int | None = Field(default=None, description="The total when the rollout "
                                   "started: a rise is capped relative to it.")
    started: str | None = Field(default=None, description="When the rollout started.")
    first_bad_signal: str | None = Field(default=None, description="When a new pod first "
                                         "showed a failure (for the abort metrics).")
    aborted_revision: str | None = Field(default=None, description="A revision aborted; not "
                                         "tried again without a retry command.")
    last_abort: RolloutAbort | None = Field(default=None, description="The last abort.")
    commands: Commands = Field(default_factory=Commands, description="Tokens acknowledged.")
    message: str | None = Field(default=None, description="What the rollout waits for.")
    history: list[RolloutRecord] = Field(default_factory=list, max_length=10,
                                         description="The last rollouts (at most 10).")


class ResilientServiceStatus(K8sModel):
    """Observed state of a ResilientService."""

    observed_generation: int | None = Field(default=None, description="Generation last acted on.")
    replicas: int | None = Field(default=None, description="Pods of the service (scale "
                                 "subresource).")
    desired_replicas: int | None = Field(default=None, description="Replicas wanted now.")
    ready_replicas: int | None = Field(default=None, description="Pods Ready.")
    available_replicas: int | None = Field(default=None, description="Pods available.")
    updated_replicas: int | None = Field(default=None, description="Pods of the current template.")
    selector: str | None = Field(default=None, description="Label selector of the pods (scale "
                                 "subresource).")
    state: str | None = Field(default=None, description="One-word summary of the conditions for "
                              "kubectl get: Ready, Progressing, Degraded, Unavailable.")
    conditions: list[Condition] = Field(default_factory=list, description="Current conditions.")
    healing: HealingStatus | None = Field(default=None, description="Self-healing report.")
    rollout: RolloutStatus | None = Field(default=None, description="Progressive delivery.")


class ResilientService(K8sModel):
    """A stateless service kept reliable, scalable and safely deployable by the operator."""

    model_config = ConfigDict(extra="ignore")

    spec: ResilientServiceSpec
    status: ResilientServiceStatus | None = None


def parse_spec(spec: dict[str, Any]) -> ResilientServiceSpec:
    """The typed spec of a resource body's ``spec`` (raises pydantic.ValidationError); only
    the JSON (camelCase) names are accepted, as the API server does."""
    return ResilientServiceSpec.model_validate(spec, by_alias=True, by_name=False)

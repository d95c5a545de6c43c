"""Progressive delivery decisions: where a rollout is, what each track should run, when to
advance, promote, abort or roll back.

Pure: the spec, the rollout state (status.rollout), the two tracks as their Deployments report
them, the new pods, the commands and the clock come in; a Plan comes out (the new state, the
tracks to apply, the events to post, when to look again). The rollout actor
(reconcile/rollout.py) writes the state to status before it applies the tracks, so a restart or
a new leader continues at the same step and never aborts or advances twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..builders.children import Tracks
from ..resource.models import (
    COMMAND_ABORT,
    COMMAND_PROMOTE,
    COMMAND_RETRY,
    PROMOTE_FULL_PREFIX,
    Commands,
    ResilientServiceSpec,
    RolloutAbort,
    RolloutHealth,
    RolloutRecord,
    RolloutStatus,
    parse_duration,
    resolve_int_or_percent,
)
from ..resource.times import format_precise, parse_time
from ..resource.views import NodeView, PodView

IDLE, PROGRESSING, PAUSED, PROMOTING = "Idle", "Progressing", "Paused", "Promoting"
COMPLETED, ABORTING, ABORTED = "Completed", "Aborting", "Aborted"
ACTIVE = (PROGRESSING, PAUSED, PROMOTING, ABORTING)

# abort reasons
CANARY_RESTARTS = "CanaryRestarts"
CANARY_NOT_READY = "CanaryNotReady"
CANARY_NOT_STARTED = "CanaryNotStarted"
CANARY_OOM = "CanaryOOMKilled"
CANARY_FAILED = "CanaryFailed"
PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
PAUSE_TOO_LONG = "PauseTooLong"
ABORT_COMMAND = "AbortCommand"

# event reasons
STARTED = "RolloutStarted"
STEP = "RolloutStepCompleted"
PAUSED_EVENT = "RolloutPaused"
PROMOTING_EVENT = "RolloutPromoting"
COMPLETED_EVENT = "RolloutCompleted"
ABORTED_EVENT = "RolloutAborted"
RESTORED_EVENT = "StableRestored"
SUPERSEDED_EVENT = "RolloutSuperseded"
REVERTED_EVENT = "RolloutReverted"
RETRIED_EVENT = "RolloutRetried"
ROLLED_BACK_EVENT = "RolledBack"
IGNORED_EVENT = "CommandIgnored"
SCALE_DOWN_HELD = "ScaleDownHeld"
SCALE_UP_CAPPED = "ScaleUpCapped"
SCALE_UP_UNCAPPED = "ScaleUpNotCapped"

HISTORY_LIMIT = 10
# waiting reasons of a container that has not started yet
STARTING = frozenset({"ContainerCreating", "PodInitializing", "ErrImagePull", "ImagePullBackOff",
                      "CreateContainerConfigError", "CreateContainerError"})


@dataclass(frozen=True)
class Track:
    """One track as its Deployment reports it."""

    exists: bool = False
    replicas: int = 0  # spec.replicas
    available: int = 0
    ready: int = 0
    updated: int = 0
    pods: int = 0  # status.replicas: pods of every ReplicaSet of the Deployment
    settled: bool = True  # the controller has seen the latest spec
    revision: str | None = None  # resilience.dev/revision annotation
    template: dict[str, Any] | None = None  # spec.template as it is live

    def complete(self, replicas: int) -> bool:
        """Every pod of the Deployment runs its template and is available, and no pod of an
        older template is left."""
        return self.settled and self.replicas == replicas and self.updated >= replicas and \
            self.available >= replicas and self.pods <= replicas


@dataclass(frozen=True)
class Observed:
    """What the rollout decision reads of the world."""

    revision: str  # revision of spec.template
    total: int  # desired replicas now (spec.replicas, clamped to the autoscaler's bounds)
    stable: Track
    canary: Track
    canary_pods: list[PodView] = field(default_factory=list)
    stable_pods: list[PodView] = field(default_factory=list)  # pods of the stable Deployment
    nodes: dict[str, NodeView] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)  # annotation -> token
    # average CPU use of the stable pods, percent of their requests (metrics.k8s.io); None when
    # unknown. Read only when the autoscaler asks for more during a rollout.
    stable_cpu_utilization: float | None = None


@dataclass
class Plan:
    """What the rollout decided."""

    state: RolloutStatus
    tracks: Tracks
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    wake_at: float | None = None
    results: list[str] = field(default_factory=list)  # Promoted, Aborted, Superseded...
    abort_reason: str | None = None
    started: bool = False

    def wake(self, when: float | None) -> None:
        if when is not None and (self.wake_at is None or when < self.wake_at):
            self.wake_at = when

    def normal(self, reason: str, message: str) -> None:
        self.events.append(("Normal", reason, message))

    def warning(self, reason: str, message: str) -> None:
        self.events.append(("Warning", reason, message))


# -- arithmetic --------------------------------------------------------------------------------


def split(total: int, weight: int) -> tuple[int, int]:
    """(stable, canary) pods for a weight: canary the nearest count to weight% of the total
    (ties up), at least one of each track while 0 < weight < 100."""
    if total <= 0 or weight <= 0:
        return max(total, 0), 0
    if weight >= 100:
        return 0, total
    canary = max(1, math.floor(weight * total / 100 + 0.5))
    if total >= 2:
        canary = min(canary, total - 1)
    return max(1, total - canary), canary


def surge_of(max_surge: int | str, total: int) -> int:
    """Pods allowed above the total (at least one, so a rollout can always move)."""
    return max(1, resolve_int_or_percent(max_surge, total, round_up=True))


def shift(total: int, surge: int, grow: Track, grow_to: int, shrink: Track,
          shrink_to: int) -> tuple[int, int]:
    """One surge-first move of replicas between two tracks: the growing track gains pods only
    within ``total + surge``; the shrinking one loses its unavailable pods, and available ones
    only as far as the pods available beyond the total allow. Returns (grow, shrink) replicas."""
    room = max(0, total + surge - grow.replicas - shrink.replicas)
    grown = min(grow_to, grow.replicas + room) if grow_to > grow.replicas else grow_to
    if shrink_to >= shrink.replicas:
        return grown, shrink_to
    unavailable = max(0, shrink.replicas - shrink.available)
    spare = max(0, grow.available + shrink.available - total)
    removable = unavailable + spare
    return grown, max(shrink_to, shrink.replicas - removable)


def weight_at(steps: list[Any], index: int) -> int:
    """The weight in force at step ``index``: the last setWeight at or before it."""
    weight = 0
    for step in steps[: index + 1]:
        if step.set_weight is not None:
            weight = step.set_weight
    return weight


# -- health ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A new pod crossed a health criterion."""

    reason: str
    message: str


def health(pods: list[PodView], gate: RolloutHealth, nodes: dict[str, NodeView],
           now: float) -> tuple[Verdict | None, float | None, float | None]:
    """The verdict on the new pods (None: healthy so far), the next time a criterion could be
    crossed, and when a pod first showed a failure. Pods disrupted by eviction, preemption or
    a lost node are not the release's fault and are left out."""
    next_check: float | None = None
    first_bad: float | None = None
    not_ready = parse_duration(gate.not_ready_timeout)
    start = parse_duration(gate.start_timeout)
    for pod in sorted(pods, key=lambda p: p.name):
        node = nodes.get(pod.node) if pod.node else None
        if pod.terminating or pod.disrupted or (node is not None and not node.ready):
            continue
        if pod.restarts > 0 or (pod.phase == "Running" and not pod.ready):
            seen = pod.not_ready_since if not pod.ready else now
            first_bad = seen if first_bad is None else min(first_bad, seen)
        if pod.restarts > gate.max_restarts:
            return Verdict(CANARY_RESTARTS, f"new pod {pod.name} restarted {pod.restarts} times "
                           f"(health.maxRestarts {gate.max_restarts})"), None, first_bad
        if pod.oom_killed and gate.oom_killed == "Abort":
            return Verdict(CANARY_OOM, f"a container of new pod {pod.name} was OOMKilled"), \
                None, first_bad
        if pod.phase == "Failed":
            return Verdict(CANARY_FAILED, f"new pod {pod.name} failed"), None, first_bad
        if pod.phase == "Pending" or pod.waiting_reason in STARTING:
            deadline = pod.created + start
            if now >= deadline:
                what = pod.waiting_reason or "Pending"
                return Verdict(CANARY_NOT_STARTED, f"new pod {pod.name} has not started for "
                               f"{gate.start_timeout} ({what})"), None, first_bad
            next_check = _earliest(next_check, deadline)
            continue
        if pod.phase == "Running" and not pod.ready:
            deadline = pod.not_ready_since + not_ready
            if now >= deadline:
                return Verdict(CANARY_NOT_READY, f"new pod {pod.name} has been running but not "
                               f"ready for {gate.not_ready_timeout}"), None, first_bad
            next_check = _earliest(next_check, deadline)
    return None, next_check, first_bad


# -- the decision ------------------------------------------------------------------------------


def decide(spec: ResilientServiceSpec, seen: Observed, state: RolloutStatus | None,
           now: float) -> Plan:
    """The rollout's next state and the tracks to apply."""
    cfg = spec.rollout
    st = (state or RolloutStatus()).model_copy(deep=True)
    plan = Plan(state=st, tracks=Tracks(stable_replicas=seen.total))
    updates: dict[str, Any] = {}

    if st.stable_revision is None:
        # first sight: a new service, or one from before rollouts were tracked, runs its spec
        live = seen.stable.revision if seen.stable.exists else None
        updates["stable_revision"] = live or seen.revision
    st = st.model_copy(update=updates)
    st = _commands(spec, seen, st, plan, now)

    active = st.phase in ACTIVE
    if seen.revision == st.stable_revision:
        if active and st.phase != ABORTING or (st.phase == ABORTING and st.strategy == "Rolling"):
            st = _finish(st, "Superseded", now, "TemplateReverted")
            plan.results.append("Superseded")
            plan.normal(REVERTED_EVENT, f"spec.template is back to the stable revision "
                        f"{st.stable_revision}: the rollout of {st.revision} stops and the "
                        "canary is removed")
            st = st.model_copy(update={"phase": IDLE, "revision": seen.revision})
            return _at_rest(spec, seen, st, plan)
        if st.phase == ABORTING:
            return _aborting(spec, seen, st, plan, now)
        st = st.model_copy(update={"revision": seen.revision,
                                   "phase": st.phase if st.phase != IDLE else IDLE})
        return _at_rest(spec, seen, st, plan)

    if seen.revision == st.aborted_revision:
        if st.phase == ABORTING:
            return _aborting(spec, seen, st, plan, now)
        return _held(spec, seen, st, plan)

    if not active or st.revision != seen.revision:
        if active and st.phase != ABORTING:
            st = _finish(st, "Superseded", now, "NewTemplate")
            plan.results.append("Superseded")
            plan.normal(SUPERSEDED_EVENT, f"a new template ({seen.revision}) supersedes the "
                        f"rollout of {st.revision}: starting again at step 1")
        st = _start(spec, seen, st, now, keep_stable=active)
        plan.started = True
        steps = len(cfg.steps or [])
        how = f"canary, {steps} steps" if cfg.strategy == "Canary" else "rolling update"
        plan.normal(STARTED, f"rolling out revision {seen.revision} ({how}); stable runs "
                    f"{st.stable_revision}")

    if st.strategy == "Rolling":
        return _rolling(spec, seen, st, plan, now)
    return _canary(spec, seen, st, plan, now)


def _start(spec: ResilientServiceSpec, seen: Observed, st: RolloutStatus, now: float,
           keep_stable: bool) -> RolloutStatus:
    stable_template = st.stable_template if keep_stable and st.stable_template else \
        seen.stable.template
    hashes = sorted({p.template_hash for p in seen.stable_pods if p.template_hash})
    if keep_stable and st.stable_pod_hashes:
        hashes = st.stable_pod_hashes
    return st.model_copy(update={
        "phase": PROGRESSING, "strategy": spec.rollout.strategy, "revision": seen.revision,
        "stable_template": stable_template, "stable_pod_hashes": hashes,
        "step_index": 0 if spec.rollout.strategy == "Canary" else None,
        "steps": len(spec.rollout.steps or []) or None,
        "step_started": format_precise(now), "started": format_precise(now),
        "first_bad_signal": None, "total": seen.total, "base_total": seen.total,
        "message": None,
        "desired_weight": 0,
    })


def _finish(st: RolloutStatus, result: str, now: float, reason: str | None = None
            ) -> RolloutStatus:
    record = RolloutRecord(revision=st.revision or "", result=result,
                           started=format_precise(parse_time(st.started) or now),
                           finished=format_precise(now), reason=reason)
    history = [*st.history, record][-HISTORY_LIMIT:]
    return st.model_copy(update={"history": history})


def _tracks(spec: ResilientServiceSpec, st: RolloutStatus, stable: int, canary: int | None,
            stable_template: dict[str, Any] | None, min_ready: bool,
            max_surge: int | str | None = None) -> Tracks:
    return Tracks(
        stable_replicas=stable, stable_template=stable_template, canary_replicas=canary,
        max_surge=max_surge if max_surge is not None else spec.rollout.max_surge,
        min_ready_seconds=spec.rollout.min_ready_seconds if min_ready else 0,
        stable_revision=st.stable_revision if stable_template is not None else st.revision,
        canary_revision=st.revision,
    )


def _counts(st: RolloutStatus, seen: Observed, desired_weight: int) -> RolloutStatus:
    ready = seen.stable.ready + seen.canary.ready
    actual = round(100 * seen.canary.ready / ready) if ready else 0
    step = None
    if st.phase in (PROGRESSING, PAUSED) and st.step_index is not None and st.steps:
        step = f"{st.step_index + 1}/{st.steps}"
    elif st.phase in (PROMOTING, ABORTING):
        step = st.phase
    return st.model_copy(update={"current_step": step, "stable_pods": seen.stable.ready,
                                 "canary_pods": seen.canary.ready,
                                 "desired_weight": desired_weight, "actual_weight": actual})


def _at_rest(spec: ResilientServiceSpec, seen: Observed, st: RolloutStatus, plan: Plan) -> Plan:
    """No rollout: the stable track runs spec.template at the total; no canary."""
    st = st.model_copy(update={"stable_template": None, "stable_pod_hashes": [],
                               "total": None, "base_total": None, "message": None,
                               "step_started": None, "step_index": None})
    plan.state = _counts(st, seen, 100 if st.phase == COMPLETED else 0)
    if st.phase == COMPLETED:  # every pod runs the revision that was rolled out
        plan.state = plan.state.model_copy(update={"actual_weight": 100})
    plan.tracks = Tracks(stable_replicas=seen.total, max_surge=spec.rollout.max_surge,
                         stable_revision=st.stable_revision)
    return plan


def _held(spec: ResilientServiceSpec, seen: Observed, st: RolloutStatus, plan: Plan) -> Plan:
    """spec.template is a revision that was aborted: the stable track keeps its template until
    a retry command or a different template."""
    template = st.stable_template or seen.stable.template
    plan.state = _counts(st.model_copy(update={
        "message": f"revision {st.aborted_revision} was aborted; `kubectl rsvc retry` tries it "
        "again, a different template starts a new rollout"}), seen, 0)
    plan.tracks = _tracks(spec, st, seen.total, None, template, False)
    return plan


def wants_more(spec: ResilientServiceSpec, state: RolloutStatus | None, total: int) -> bool:
    """The autoscaler asks for more pods than the rollout's total while a rollout runs: the
    stable pods' CPU decides how far that goes (so the caller reads pod metrics)."""
    return spec.autoscaling is not None and state is not None and state.phase in ACTIVE and \
        state.total is not None and total > state.total


def _hold_total(spec: ResilientServiceSpec, seen: Observed, st: RolloutStatus, plan: Plan
                ) -> tuple[RolloutStatus, int]:
    """During a rollout a lower autoscaler value waits for the end; a higher one applies only
    as far as the stable pods' own CPU justifies, so a hot or broken canary cannot push the
    fleet to maxReplicas."""
    held = st.total or seen.total
    if seen.total < held:
        plan.normal(SCALE_DOWN_HELD, f"the autoscaler asks for {seen.total} replicas; "
                    f"holding {held} until the rollout ends")
        return st, held
    if seen.total > held and spec.autoscaling is not None:
        target = spec.autoscaling.target_cpu_utilization_percentage
        if seen.stable_cpu_utilization is None or target is None:
            plan.normal(SCALE_UP_UNCAPPED, f"the autoscaler asks for {seen.total} replicas "
                        "during the rollout; the stable pods' CPU use is unknown (no metrics, "
                        "or no CPU target), so the rise applies as asked")
        else:
            # what the stable pods' own load asks of the fleet the rollout started with (a
            # metric sample justifies one step, however often the operator looks at it)
            base = st.base_total or held
            justified = math.ceil(base * seen.stable_cpu_utilization / target)
            allowed = min(seen.total, max(held, justified))
            if allowed < seen.total:
                plan.normal(SCALE_UP_CAPPED, f"the autoscaler asks for {seen.total} replicas; "
                            f"the stable pods use {seen.stable_cpu_utilization:.0f}% CPU "
                            f"(target {target}%), which justifies {allowed}: the rest waits "
                            "for the rollout to end")
                return st.model_copy(update={"total": allowed}), allowed
    return st.model_copy(update={"total": seen.total}), seen.total


def _abort(st: RolloutStatus, verdict: Verdict, now: float, plan: Plan) -> RolloutStatus:
    plan.warning(ABORTED_EVENT, f"aborted the rollout of {st.revision}: {verdict.message}; "
                 f"the stable track ({st.stable_revision}) is restored and the canary removed")
    plan.results.append("Aborted")
    plan.abort_reason = verdict.reason
    return st.model_copy(update={
        "phase": ABORTING, "aborted_revision": st.revision,
        "last_abort": RolloutAbort(revision=st.revision or "", reason=verdict.reason,
                                   message=verdict.message, time=format_precise(now)),
        "message": verdict.message,
    })


def _canary(spec: ResilientServiceSpec, seen: Observed, st: RolloutStatus, plan: Plan,
            now: float) -> Plan:
    cfg = spec.rollout
    steps = cfg.steps or []
    st, total = _hold_total(spec, seen, st, plan)
    surge = surge_of(cfg.max_surge, total)
    if st.phase == ABORTING:
        return _aborting(spec, seen, st, plan, now)

    verdict, check, first_bad = health(seen.canary_pods, cfg.health, seen.nodes, now)
    plan.wake(check)
    if first_bad is not None and st.first_bad_signal is None:
        st = st.model_copy(update={"first_bad_signal": format_precise(first_bad)})
    if verdict is None and st.phase != PROMOTING:
        verdict = _deadlines(spec, seen, st, total, now, plan)
    if verdict is not None:
        st = _abort(st, verdict, now, plan)
        return _aborting(spec, seen, st, plan, now)

    if st.phase == PROMOTING:
        return _promoting(spec, seen, st, plan, total, surge, now)

    index = min(st.step_index or 0, len(steps) - 1)
    weight = weight_at(steps, index)
    stable_to, canary_to = split(total, weight)
    stable_n, canary_n = _move(total, surge, seen, stable_to, canary_to)
    st = _counts(st, seen, weight)
    step = steps[index]
    started = parse_time(st.step_started) or now
    done = False
    if step.set_weight is not None:
        done = seen.canary.exists and seen.canary.complete(canary_to) and \
            seen.stable.settled and seen.stable.replicas == stable_to and \
            seen.stable.available >= min(stable_to, seen.stable.replicas)
        message = f"step {index + 1}/{len(steps)}: weight {weight}%, canary " \
                  f"{seen.canary.available}/{canary_to} available"
    elif step.pause is not None and step.pause.duration is not None:
        until = started + parse_duration(step.pause.duration)
        done = now >= until
        plan.wake(until)
        message = f"step {index + 1}/{len(steps)}: pause {step.pause.duration}"
    else:
        message = f"step {index + 1}/{len(steps)}: paused until `kubectl rsvc promote`"
    if cfg.paused:
        message = "paused (spec.rollout.paused): " + message
    phase = PAUSED if cfg.paused or (step.pause is not None and step.pause.duration is None) \
        else PROGRESSING
    if phase == PAUSED and st.phase != PAUSED:
        plan.normal(PAUSED_EVENT, message)
    st = st.model_copy(update={"phase": phase, "message": message})
    if done and not cfg.paused:
        st = _advance(st, steps, now, plan)
        if st.phase == PROMOTING:
            return _promoting(spec, seen, st, plan, total, surge, now)
        following = steps[st.step_index or 0]
        if following.pause is not None and following.pause.duration is None:
            message = f"step {(st.step_index or 0) + 1}/{len(steps)}: paused until " \
                      "`kubectl rsvc promote`"
            plan.normal(PAUSED_EVENT, message)
            st = st.model_copy(update={"phase": PAUSED, "message": message})
        elif following.pause is not None and following.pause.duration is not None:
            plan.wake(now + parse_duration(following.pause.duration))
    plan.state = st
    plan.tracks = _tracks(spec, st, stable_n, canary_n, st.stable_template, True)
    return plan


def _advance(st: RolloutStatus, steps: list[Any], now: float, plan: Plan) -> RolloutStatus:
    index = (st.step_index or 0) + 1
    plan.normal(STEP, f"step {index}/{len(steps)} of revision {st.revision} completed")
    if index >= len(steps):
        plan.normal(PROMOTING_EVENT, f"all steps passed: promoting {st.revision} to stable")
        return st.model_copy(update={"phase": PROMOTING, "step_index": len(steps),
                                     "step_started": format_precise(now)})
    return st.model_copy(update={"phase": PROGRESSING, "step_index": index,
                                 "step_started": format_precise(now)})


def _deadlines(spec: ResilientServiceSpec, seen: Observed, st: RolloutStatus, total: int,
               now: float, plan: Plan) -> Verdict | None:
    """A step whose new pods are not available in time, or a pause held too long."""
    cfg = spec.rollout
    steps = cfg.steps or []
    started = parse_time(st.step_started) or now
    index = min(st.step_index or 0, len(steps) - 1)
    step = steps[index]
    if step.pause is not None:
        limit = started + parse_duration(cfg.max_pause_duration)
        if now >= limit:
            return Verdict(PAUSE_TOO_LONG, f"step {index + 1} paused for longer than "
                           f"maxPauseDuration {cfg.max_pause_duration}")
        plan.wake(limit)
        return None
    _, canary_to = split(total, weight_at(steps, index))
    if seen.canary.available >= canary_to:
        return None
    limit = started + parse_duration(cfg.progress_deadline)
    if now >= limit:
        return Verdict(PROGRESS_DEADLINE, f"step {index + 1}: {seen.canary.available}/"
                       f"{canary_to} new pods available after progressDeadline "
                       f"{cfg.progress_deadline}")
    plan.wake(limit)
    return None


def _move(total: int, surge: int, seen: Observed, stable_to: int, canary_to: int
          ) -> tuple[int, int]:
    """Replicas of (stable, canary) for this reconcile, one surge-first move toward a split."""
    if canary_to >= seen.canary.replicas:
        canary_n, stable_n = shift(total, surge, seen.canary, canary_to, seen.stable, stable_to)
    else:
        stable_n, canary_n = shift(total, surge, seen.stable, stable_to, seen.canary, canary_to)
    return stable_n, canary_n


def _promoting(spec: ResilientServiceSpec, seen: Observed, st: RolloutStatus, plan: Plan,
               total: int, surge: int, now: float) -> Plan:
    """The stable track takes the new template, rolling surge-first while the canary keeps
    serving; the canary goes only when the new stable is available at the full total."""
    st = _counts(st.model_copy(update={"phase": PROMOTING}), seen, 100)
    canary = seen.canary.replicas if seen.canary.exists else 0
    on_new = seen.stable.revision == st.revision
    if not on_new or not seen.stable.complete(seen.stable.replicas):
        # step a: the stable Deployment rolls to the new template at its current size, its own
        # surge bounded by what the rollout's surge leaves
        size = seen.stable.replicas if seen.stable.exists else total
        room = max(1, total + surge - size - canary)
        plan.state = st.model_copy(update={"message": f"promoting: stable rolling to "
                                           f"{st.revision} ({seen.stable.updated}/{size} "
                                           "updated)"})
        plan.tracks = _tracks(spec, st, size, canary if seen.canary.exists else None, None,
                              True, max_surge=room)
        return plan
    stable_n, canary_n = shift(total, surge, seen.stable, total, seen.canary, 0)
    if canary_n == 0 and seen.stable.complete(total):
        st = _finish(st, "Promoted", now)
        plan.results.append("Promoted")
        plan.normal(COMPLETED_EVENT, f"revision {st.revision} is stable: {total}/{total} "
                    "available; the canary Deployment is removed")
        st = st.model_copy(update={"phase": COMPLETED, "stable_revision": st.revision,
                                   "stable_template": None, "stable_pod_hashes": [],
                                   "step_started": None, "message": None, "total": None,
                                   "base_total": None,
                                   "first_bad_signal": None})
        plan.state = _counts(st, seen, 100)
        plan.tracks = Tracks(stable_replicas=seen.total, max_surge=spec.rollout.max_surge,
                             stable_revision=st.revision)
        return plan
    plan.state = st.model_copy(update={"message": f"promoting: canary {canary_n} -> 0, "
                                       f"stable {stable_n}/{total}"})
    plan.tracks = _tracks(spec, st, stable_n, canary_n, None, True)
    return plan


def _aborting(spec: ResilientServiceSpec, seen: Observed, st: RolloutStatus, plan: Plan,
              now: float) -> Plan:
    """Restore the stable track first (its template untouched), then remove the canary."""
    total = max(st.total or 0, seen.total)
    surge = surge_of(spec.rollout.max_surge, total)
    template = st.stable_template or seen.stable.template
    if st.strategy == "Rolling":
        plan.tracks = _tracks(spec, st, seen.total, None, template, True)
        if seen.stable.revision == st.stable_revision and seen.stable.complete(seen.total):
            st = _finish(st, "RolledBack", now, (st.last_abort.reason if st.last_abort
                                                 else None))
            plan.normal(RESTORED_EVENT, f"rolled back to {st.stable_revision}: "
                        f"{seen.total}/{seen.total} available")
            st = st.model_copy(update={"phase": ABORTED, "total": None, "base_total": None,
                                       "step_started": None})
        plan.state = _counts(st, seen, 0)
        return plan
    stable_n, canary_n = shift(total, surge, seen.stable, total, seen.canary, 0)
    if (canary_n == 0 or not seen.canary.exists) and seen.stable.complete(total) and \
            seen.stable.revision == st.stable_revision:
        st = _finish(st, "Aborted", now, st.last_abort.reason if st.last_abort else None)
        plan.normal(RESTORED_EVENT, f"stable {st.stable_revision} fully restored: "
                    f"{total}/{total} available; canary removed")
        st = st.model_copy(update={"phase": ABORTED, "total": None, "base_total": None,
                                       "step_started": None})
        plan.state = _counts(st, seen, 0)
        plan.tracks = _tracks(spec, st, seen.total, None, template, False)
        return plan
    plan.state = _counts(st, seen, 0)
    plan.tracks = _tracks(spec, st, stable_n, canary_n if seen.canary.exists else None,
                          template, True)
    return plan


def _rolling(spec: ResilientServiceSpec, seen: Observed, st: RolloutStatus, plan: Plan,
             now: float) -> Plan:
    """The Deployment's own rolling update, with the health gate: new pods that fail it roll
    the Deployment back to the previous template, once."""
    if st.phase == ABORTING:
        return _aborting(spec, seen, st, plan, now)
    new_pods = [p for p in seen.stable_pods
                if p.template_hash and p.template_hash not in st.stable_pod_hashes]
    verdict, check, first_bad = health(new_pods, spec.rollout.health, seen.nodes, now)
    plan.wake(check)
    if first_bad is not None and st.first_bad_signal is None:
        st = st.model_copy(update={"first_bad_signal": format_precise(first_bad)})
    if verdict is None:
        started = parse_time(st.step_started) or now
        limit = started + parse_duration(spec.rollout.progress_deadline)
        if not seen.stable.complete(seen.total) and now >= limit:
            verdict = Verdict(PROGRESS_DEADLINE, f"{seen.stable.updated}/{seen.total} pods "
                              f"updated after progressDeadline {spec.rollout.progress_deadline}")
        plan.wake(limit)
    if verdict is not None and st.stable_template is not None:
        st = _abort(st, verdict, now, plan)
        plan.warning(ROLLED_BACK_EVENT, f"re-applying the previous template "
                     f"({st.stable_revision}); {st.revision} is not applied again without "
                     "`kubectl rsvc retry`")
        return _aborting(spec, seen, st, plan, now)
    if seen.stable.revision == st.revision and seen.stable.complete(seen.total):
        st = _finish(st, "Promoted", now)
        plan.results.append("Promoted")
        plan.normal(COMPLETED_EVENT, f"revision {st.revision} rolled out: "
                    f"{seen.total}/{seen.total} available")
        st = st.model_copy(update={"phase": COMPLETED, "stable_revision": st.revision})
        return _at_rest(spec, seen, st, plan)
    plan.state = _counts(st.model_copy(update={
        "message": f"rolling: {seen.stable.updated}/{seen.total} updated, "
        f"{seen.stable.available} available"}), seen, 100)
    plan.tracks = _tracks(spec, st, seen.total, None, None, True)
    return plan


# -- commands ----------------------------------------------------------------------------------


def _commands(spec: ResilientServiceSpec, seen: Observed, st: RolloutStatus, plan: Plan,
              now: float) -> RolloutStatus:
    """Act once per token: abort first (it wins over a promote given at the same time)."""
    acked = st.commands
    updates: dict[str, Any] = {}
    for annotation, field_name in ((COMMAND_ABORT, "abort"), (COMMAND_PROMOTE, "promote"),
                                   (COMMAND_RETRY, "retry")):
        token = seen.commands.get(annotation)
        if not token or token == getattr(acked, field_name):
            continue
        updates[field_name] = token
        st, ignored = _command(spec, seen, st, field_name, token, now, plan)
        if ignored:
            plan.normal(IGNORED_EVENT, f"{annotation}={token}: {ignored}")
    if updates:
        st = st.model_copy(update={"commands": Commands(**{**acked.model_dump(), **updates})})
    return st


def _command(spec: ResilientServiceSpec, seen: Observed, st: RolloutStatus, name: str,
             token: str, now: float, plan: Plan) -> tuple[RolloutStatus, str | None]:
    running = st.phase in (PROGRESSING, PAUSED, PROMOTING) and st.revision == seen.revision \
        and seen.revision != st.stable_revision
    if name == "abort":
        if not running:
            return st, f"no rollout is running (phase {st.phase})"
        return _abort(st, Verdict(ABORT_COMMAND, f"abort requested ({token})"), now, plan), None
    if name == "promote":
        if not running or st.phase == PROMOTING:
            return st, f"no rollout step waits for a promote (phase {st.phase})"
        steps = spec.rollout.steps or []
        if st.strategy != "Canary":
            return st, "a Rolling update has no steps to promote"
        if token.startswith(PROMOTE_FULL_PREFIX):
            plan.normal(PROMOTING_EVENT, f"promoting {st.revision} to stable (promote --full)")
            return st.model_copy(update={"phase": PROMOTING, "step_index": len(steps),
                                         "step_started": format_precise(now)}), None
        index = st.step_index or 0
        if index < len(steps) and steps[index].pause is not None:
            return _advance(st, steps, now, plan), None
        return st, (f"step {index + 1} is not a pause; `kubectl rsvc promote --full` "
                    "promotes at once")
    # retry
    if st.phase != ABORTED or st.aborted_revision != seen.revision:
        return st, "nothing to retry: the current template was not aborted"
    plan.normal(RETRIED_EVENT, f"retrying revision {seen.revision}")
    return st.model_copy(update={"aborted_revision": None, "phase": IDLE}), None


def _earliest(*times: float | None) -> float | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None

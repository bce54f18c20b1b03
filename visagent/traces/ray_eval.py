"""`visagent eval --ray`: the same episodes as visagent.traces.evaluate, each one a Ray task on a cluster.

The head (this process) submits one task per scenario × seed; a worker process somewhere on the cluster
opens its own executor and world through `visagent.traces.evaluate.run_episode` (the function the local eval runs,
so the world it builds, the verdict and the trace are the same), builds its own engine (the scripted oracle,
or a client of the model server at the URL given: an in-process model cannot be shared across machines and is
refused) and returns the `EpisodeOutcome`. The head numbers episodes and aggregates them with the local
eval's own code (`episode_jobs`, `collect_report`, `EvalReport`), so the table, JSON, per-tag results and
`--min-success` cannot drift apart.

Traces: "ship" (default) writes each episode's trace in a temporary directory on the worker and sends it back
to the head as a tar archive (unpacked with tarfile's "data" filter, bounded in size); "shared" writes it
straight into the trace directory, which must be the same path on every node (NFS and the like). A worker
writes a shared trace under `<trace dir>/.attempts/` first and moves it into place when the episode ends, so
an attempt that died leaves nothing beside the finished traces.

Failures: a worker process that dies mid-episode is retried once by Ray (`max_retries=1`); when the retry
dies too, the episode is reported with status `error`. Either way each episode is in the report exactly once.
Ctrl-C on the head cancels the outstanding tasks and raises `EvalInterrupted` carrying the partial report.

Resources: a sim episode asks for one CPU; an episode whose scenario names another world asks for that world's
resource as well (`display` for a real desktop, `android` for a phone), so a cluster started with
`ray start --resources '{"display": 4}'` runs at most four desktop episodes on that host at a time. A real-desktop
episode's scenario travels to the worker (its setup/check/oracle are module functions, pickled by reference) and
its world starts and ends there. Ray keeps a task no node can ever run pending forever, so the head checks the
cluster's resources first and stops with one line naming the missing one (`check_resources`).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import signal
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visagent.loop.agent import AgentConfig
from visagent.core.errors import ConfigError
from visagent.traces.evaluate import (EpisodeOutcome, EvalReport, collect_report, episode_config, episode_jobs,
                               oracle_factory, run_episode, scenario_tags)
from visagent.core.settings import RAY_ADDRESS, RAY_TRACE_MODES, Settings

log = logging.getLogger(__name__)

INSTALL_HINT = "Ray is not installed; install it with: pip install 'visagent[ray]' (or pip install 'ray[client]')"
#: Custom Ray resources an episode of each world asks for besides one CPU ("sim" needs none).
WORLD_RESOURCES: dict[str, dict[str, float]] = {"sim": {}, "real-desktop": {"display": 1.0},
                                                "android": {"android": 1.0}}
#: Largest trace one episode may ship back to the head (tar bytes); a bigger one stays on the worker.
SHIP_LIMIT_BYTES = 512 * 1024 * 1024
#: Name prefix of a worker's temporary trace directory ("ship" mode), followed by its pid.
STAGING_PREFIX = "visagent-ray-"
#: Times Ray runs an episode again after its worker process died.
RETRIES = 1
#: What the Ray Client proxy (ray/util/client/server/proxier.py, Datapath) answers a new connection when the
#: server process it starts for that connection died at startup or did not listen in time. Seen on a loaded
#: machine: that process (setup_worker.py exec'ing `python -m ray.util.client.server`) crashed at once with gRPC's
#: "Epoll1Poller ... epoll_wait error: Bad file descriptor"; the next connection gets a new process and port, so
#: `_connect` tries once more on exactly these.
CLIENT_SERVER_STARTUP_FAILURES = ("Starting Ray client server failed", "Proxy failed to Connect to backend")
#: A hook called in the worker as (job, executor) before the agent starts (tests inject a crash here).
EpisodeHook = Callable[["EpisodeJob", Any], None]


class EvalInterrupted(Exception):
    """Ctrl-C during a Ray eval: the outstanding tasks are cancelled; `report` holds the finished episodes."""

    def __init__(self, report: EvalReport, total: int) -> None:
        super().__init__(f"interrupted: {len(report.episodes)} of {total} episodes finished")
        self.report = report
        self.total = total


def import_ray() -> Any:
    """The `ray` module, or ConfigError with the one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def check_address(address: str) -> str:
    """A Ray address as `--ray` / the `ray` setting take it. Raises ConfigError."""
    if not RAY_ADDRESS.fullmatch(address):
        raise ConfigError(f"--ray {address!r} is not a Ray address; give auto, local, ray://HOST:PORT or "
                          "HOST:PORT (put scenario ids before --ray, or write --ray=ADDRESS)")
    return address


@dataclass(frozen=True)
class EngineSpec:
    """What each worker plays the episodes with: the scripted oracle, or a client of the model server at
    `settings.model` (an http(s) URL). Built on the worker, so nothing unpicklable crosses the cluster."""

    policy: str | None = None
    settings: Settings | None = None

    @classmethod
    def for_eval(cls, settings: Settings, policy: str | None) -> EngineSpec:
        """The spec for `visagent eval --ray`; ConfigError (one line) for a model the workers cannot reach."""
        if policy == "oracle":
            return cls(policy="oracle")
        if policy:
            raise ConfigError(f"--ray knows the policies: oracle; got {policy!r}")
        model = settings.model
        if not model.startswith(("http://", "https://")):
            raise ConfigError(f"--ray needs a model served over HTTP (--model http://HOST:PORT/v1, e.g. from "
                              f"`visagent serve` or vLLM); {model!r} is an in-process model the workers cannot share")
        return cls(settings=settings)

    @property
    def label(self) -> str:
        return "policy:oracle" if self.policy == "oracle" else (self.settings.model if self.settings else "")

    def factory(self) -> Any:
        """engine_factory(scenario, executor) for run_episode, in the worker."""
        if self.policy == "oracle":
            return oracle_factory
        engine = _worker_engine(self.settings)
        return lambda scenario, executor: engine


_ENGINES: dict[Settings, Any] = {}


def _worker_engine(settings: Settings | None) -> Any:
    """One model client per worker process and settings (Ray reuses worker processes across tasks)."""
    if settings is None:
        raise ConfigError("no model given for the Ray workers")
    if settings not in _ENGINES:
        from visagent.loop.engines import open_engine

        _ENGINES[settings] = open_engine(settings)
    return _ENGINES[settings]


@dataclass(frozen=True)
class EpisodeJob:
    """One episode as the head sends it: its place in the report, the scenario (a picklable dataclass), the
    seed, the agent config with the episode's step limit, and the world it needs."""

    index: int
    scenario: Any
    seed: int
    config: AgentConfig
    world: str = "sim"
    resources: dict[str, float] = field(default_factory=dict)


def episode_world(scenario: Any) -> str:
    """The world an episode runs in: the scenario's `world` field when it has one (a real desktop, a phone),
    else the sim."""
    return str(getattr(scenario, "world_kind", None) or getattr(scenario, "world", None) or "sim")


def make_jobs(scenarios: Sequence[Any], seeds: Sequence[int], config: AgentConfig,
              max_steps: int | None) -> list[EpisodeJob]:
    jobs = []
    for index, (scenario, seed) in enumerate(episode_jobs(scenarios, seeds)):
        world = episode_world(scenario)
        if world not in WORLD_RESOURCES:
            raise ConfigError(f"scenario {scenario.id}: world {world!r} has no Ray resource; "
                              f"known: {', '.join(WORLD_RESOURCES)}")
        jobs.append(EpisodeJob(index, scenario, seed, episode_config(scenario, config, max_steps), world,
                               dict(WORLD_RESOURCES[world])))
    return jobs


# -- the worker side ---------------------------------------------------------------------------------------

def run_job(job: EpisodeJob, spec: EngineSpec, traces: str | None, trace_dir: str | None,
            hook: EpisodeHook | None = None) -> tuple[EpisodeOutcome, bytes | None]:
    """One episode in a Ray worker: (outcome, the trace as tar bytes when shipped, else None).
    `traces`: "ship", "shared" or None (no trace)."""
    base = spec.factory()

    def hooked(scenario: Any, executor: Any) -> Any:
        hook(job, executor)  # type: ignore[misc]
        return base(scenario, executor)

    factory = base if hook is None else hooked

    if traces is None:
        return run_episode(job.scenario, job.seed, factory, job.config, trace_dir=None), None
    if traces == "shared":
        if not trace_dir:
            raise ConfigError("shared traces need a trace directory")
        staging = Path(trace_dir) / ".attempts" / f"{job.index}-{uuid.uuid4().hex[:8]}"
    else:
        _sweep_dead_staging()
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-"))
    try:
        outcome = run_episode(job.scenario, job.seed, factory, job.config, trace_dir=staging)
        data = None
        if outcome.trace is not None:
            run_dir = Path(outcome.trace)
            if traces == "shared":
                final = Path(trace_dir) / run_dir.name  # type: ignore[arg-type]
                os.replace(run_dir, final)
                outcome.trace = str(final)
            else:
                data = _pack(run_dir)
                if data is None:
                    outcome.trace = None
                    outcome.reason += f" (trace over {SHIP_LIMIT_BYTES >> 20} MiB, not shipped)"
        return outcome, data
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _sweep_dead_staging() -> None:
    """Remove the staging dirs of this host's worker processes that died mid-episode (a crash or a forced
    cancel skips their own cleanup); a dir is removed only when the pid in its name no longer exists."""
    for path in Path(tempfile.gettempdir()).glob(f"{STAGING_PREFIX}*-*"):
        pid = path.name[len(STAGING_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # someone else's process: alive
            continue


def _pack(run_dir: Path) -> bytes | None:
    size = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file())
    if size > SHIP_LIMIT_BYTES:
        return None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(run_dir, arcname=run_dir.name)
    return buf.getvalue()


def unpack_trace(data: bytes, trace_dir: Path) -> Path:
    """A shipped trace into `trace_dir`: exactly one top-level run directory, regular files and folders only
    (tarfile's "data" filter refuses links, devices and paths outside). Raises ValueError otherwise."""
    trace_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        members = tar.getmembers()
        tops = {Path(m.name).parts[0] for m in members if m.name not in ("", ".")}
        if len(tops) != 1 or any(not (m.isfile() or m.isdir()) for m in members):
            raise ValueError("a shipped trace must be one run directory of plain files")
        top = tops.pop()
        if top in (".", "..") or (trace_dir / top).exists():
            raise ValueError(f"shipped trace {top!r} clashes with an existing one")
        tar.extractall(trace_dir, filter="data")
    return trace_dir / top


# -- the head side -----------------------------------------------------------------------------------------

def ray_evaluate(
    scenarios: Sequence[Any],
    spec: EngineSpec,
    *,
    address: str = "auto",
    seeds: Sequence[int] = (0,),
    agent_config: AgentConfig | None = None,
    max_steps: int | None = None,
    trace_dir: str | Path | None = None,
    traces: str = "ship",
    split: str | None = None,
    on_episode: Callable[[EpisodeOutcome], None] | None = None,
    cancel: Any = None,
    hook: EpisodeHook | None = None,
) -> EvalReport:
    """Run every scenario × seed as a Ray task on the cluster at `address` and aggregate like `evaluate`.

    Connects with `ray.init(address)` unless this process is already connected (then that connection is used
    and kept); "local" starts a throwaway single-node Ray here. `traces`: "ship" or "shared" (module doc);
    `trace_dir` None keeps no traces. `on_episode` is called in this thread as each episode ends. Setting
    `cancel` (a threading.Event) cancels outstanding tasks; the episodes that finished make the report.
    Raises ConfigError (no Ray, bad address, cannot connect), EvalInterrupted on Ctrl-C.
    """
    ray = import_ray()
    scenario_list = list(scenarios)
    if not scenario_list:
        raise ValueError("no scenarios to evaluate; check the ids, --split and --tags")
    if traces not in RAY_TRACE_MODES:
        raise ConfigError(f"ray traces must be one of {', '.join(RAY_TRACE_MODES)}, got {traces!r}")
    jobs = make_jobs(scenario_list, seeds, agent_config or AgentConfig(), max_steps)
    root = None if trace_dir is None else Path(trace_dir)
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    mode = None if root is None else traces
    started_here = _connect(ray, check_address(address))
    start = time.perf_counter()
    results: dict[int, EpisodeOutcome] = {}
    try:
        check_resources(ray.cluster_resources(), jobs)  # a demand no node meets would wait forever
        workers = int(ray.cluster_resources().get("CPU", 0))
        task = ray.remote(max_retries=RETRIES, retry_exceptions=False)(run_job)
        pending = {}
        for job in jobs:
            ref = task.options(num_cpus=1, resources=job.resources or None).remote(
                job, spec, mode, None if root is None else str(root.resolve()), hook)
            pending[ref] = job
        try:
            while pending:
                if cancel is not None and cancel.is_set():
                    _cancel(ray, pending)
                    break
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
                for ref in done:
                    job = pending.pop(ref)
                    outcome = _collect(ray, ref, job, root)
                    results[job.index] = outcome
                    if on_episode is not None:
                        on_episode(outcome)
        except KeyboardInterrupt:
            _cancel(ray, pending)
            report = collect_report(results, model=spec.label, split=split, workers=workers,
                                    wall_s=time.perf_counter() - start)
            raise EvalInterrupted(report, len(jobs)) from None
        return collect_report(results, model=spec.label, split=split, workers=workers,
                              wall_s=time.perf_counter() - start)
    finally:
        if started_here:
            ray.shutdown()


def check_resources(available: dict[str, float], jobs: Sequence[EpisodeJob]) -> None:
    """ConfigError (one line naming the resource and the `ray start` fix) when the cluster declares none of a
    resource the episodes ask for: Ray would keep such a task pending forever instead of failing it."""
    for job in jobs:
        for name, amount in sorted(job.resources.items()):
            if available.get(name, 0) < amount:
                raise ConfigError(f"no node of the Ray cluster declares the {name!r} resource that {job.world} "
                                  f"episodes need (scenario {job.scenario.id}); start the nodes that can run them "
                                  f"with: ray start --address HEAD:6379 --resources '{{\"{name}\": N}}' "
                                  f"(N: how many at a time)")
    if jobs and available.get("CPU", 0) < 1:
        raise ConfigError("the Ray cluster has no CPU to run episodes on; start a node with: ray start --address "
                          "HEAD:6379 --num-cpus N")


def _connect(ray: Any, address: str) -> bool:
    """Connect this process to the cluster; True when this call did (and the caller must disconnect)."""
    if ray.is_initialized():
        return False
    _check_listening(address)
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    try:
        for attempt in range(2):
            try:
                ray.init(address=None if address == "local" else address, logging_level=logging.WARNING,
                         log_to_driver=False, include_dashboard=False if address == "local" else None)
                break
            except ConnectionAbortedError as exc:
                transient = next((t for t in CLIENT_SERVER_STARTUP_FAILURES if t in str(exc)), None)
                if attempt or transient is None or not address.startswith("ray://"):
                    raise
                log.warning("the Ray Client server at %s could not start this connection's server process (%s); "
                            "connecting once more", address, transient)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        why = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"  # a server traceback: its last line
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: {why[:400]}") from None
    finally:
        if main and sigterm is not None:  # Ray's own SIGTERM handler kills at once; the CLI's stops like Ctrl-C
            signal.signal(signal.SIGTERM, sigterm)
    return True


def _check_listening(address: str, timeout_s: float = 5.0) -> None:
    """For HOST:PORT and ray://HOST:PORT: ConfigError at once when nothing accepts a connection there (Ray's
    own client would retry for minutes)."""
    import socket

    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: {why}; is `ray start --head` "
                          "running there (GCS port 6379, Ray Client port 10001)?") from None


def _cancel(ray: Any, pending: dict) -> None:
    for ref in pending:
        try:
            ray.cancel(ref, force=True)
        except Exception as exc:  # noqa: BLE001 - a task already finished or gone: nothing to cancel
            log.debug("cancel %s: %s", ref, exc)
    pending.clear()


def _collect(ray: Any, ref: Any, job: EpisodeJob, root: Path | None) -> EpisodeOutcome:
    """The outcome of a finished task; a task whose worker died after its retry becomes an `error` outcome."""
    try:
        outcome, data = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # run_job itself raised (run_episode records its own errors)
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        why = f"{type(cause).__name__}: {cause}".splitlines()[0]
        return _error_outcome(job, why)
    except ray.exceptions.RayError as exc:  # the worker process (or its node) died, twice
        words = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        why = f"{type(exc).__name__}: the worker died {RETRIES + 1} times" + (f" ({words})" if words else "")
        return _error_outcome(job, why)
    if data is not None and root is not None:
        try:
            outcome.trace = str(unpack_trace(data, root))
        except (ValueError, OSError, tarfile.TarError) as exc:
            log.warning("episode %s seed %s: shipped trace refused: %s", job.scenario.id, job.seed, exc)
            outcome.trace = None
    return outcome


def _error_outcome(job: EpisodeJob, why: str) -> EpisodeOutcome:
    return EpisodeOutcome(scenario=str(job.scenario.id), seed=job.seed, split=str(getattr(job.scenario, "split", "")),
                          tags=scenario_tags(job.scenario), success=False, status="error", reason=why, steps=0,
                          seconds=0.0, step_seconds=0.0, prompt_tokens=0, generated_tokens=0, trace=None, error=why)

"""`visagent eval --ray`: episodes as Ray tasks on a real local cluster (a head and a second node, each with one
worker CPU, on loopback, started here and stopped at the end), aggregated like the local eval."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from visagent.core.errors import ConfigError
from visagent.traces.evaluate import evaluate, oracle_factory
from visagent.sim.scenarios import get_scenario
from visagent.core.settings import Settings, load_settings
from visagent.core.trace import list_traces, read_trace

SCENARIOS = ("desktop-settings-wifi-off", "phone-settings-brightness", "desktop-settings-language")
SEEDS = (0, 1)
pytestmark = pytest.mark.timeout(300)  # a cluster that cannot start fails here instead of hanging the suite


def _same(episode) -> tuple:
    """What must match between a Ray and a local run of the same episode (times and trace paths differ)."""
    return (episode.scenario, episode.seed, episode.split, tuple(episode.tags), episode.success, episode.status,
            episode.reason, episode.steps, tuple(episode.side_effects), episode.error)


def _our_processes(marker: str) -> list[int]:
    """Processes whose command line names this cluster's temp dir (every Ray process started for it does)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray cluster on loopback: the head node and one more node, one CPU each (two worker processes).
    Yields the `ray.cluster_utils.Cluster` (a test may add a node) and `cluster`'s three addresses."""
    tmp = tempfile.mkdtemp(prefix="vgray-", dir="/tmp")  # short: Ray puts unix sockets under it
    saved = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "TMPDIR",
                                            "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S")}
    os.environ["RAY_TMPDIR"] = tmp  # the cluster's files and its address file stay in our own directory
    # Loopback only: with "clusters" off, Ray gives every node (and the driver) 127.0.0.1 instead of the
    # machine's outward address; the variable for the processes Ray starts, the constant for this one.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["TMPDIR"] = tmp  # the workers' staging dirs too (the Ray processes inherit it)
    # The Ray Client proxy waits this long for a new client's own server process to listen (default 30 s; a
    # loaded 2-core machine may need more). It is also how long a client whose server process died at startup
    # stays blocked before ray.init fails (its log stream waits on that channel), after which the product
    # connects once more (ray_eval.CLIENT_SERVER_STARTUP_FAILURES): 60 s keeps that case inside the CLI test.
    os.environ["RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S"] = "60"
    import ray  # in the test extra (scripts/setup.sh installs it): missing Ray fails here, never skips
    from ray._private import ray_constants
    from ray.cloudpickle import register_pickle_by_value
    from ray.cluster_utils import Cluster

    saved_constant = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    register_pickle_by_value(sys.modules[__name__])  # the hooks below travel to the workers by value
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        client_port = free.getsockname()[1]
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                      "node_ip_address": "127.0.0.1",
                                                      "ray_client_server_port": client_port})
    c.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    ray.init(address=c.address, logging_level="ERROR", log_to_driver=False)
    try:
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        yield c, (c.address, tmp, f"ray://127.0.0.1:{client_port}")
    finally:
        ray.shutdown()
        c.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = saved_constant
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        deadline = time.monotonic() + 30
        while _our_processes(tmp) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _our_processes(tmp)
        assert not left, f"Ray processes still running after the cluster stopped: {left}"
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    """(GCS address, the cluster's temp dir, Ray Client address) of the module's cluster."""
    return ray_cluster[1]


def test_ray_and_local_oracle_episodes_have_identical_outcomes(cluster, tmp_path):
    from visagent.traces.ray_eval import EngineSpec, ray_evaluate

    address, _, _ = cluster
    scenarios = [get_scenario(s) for s in SCENARIOS]
    seen = []
    remote = ray_evaluate(scenarios, EngineSpec(policy="oracle"), address=address, seeds=SEEDS,
                          trace_dir=tmp_path / "ray", traces="ship", on_episode=seen.append)
    local = evaluate(scenarios, oracle_factory, seeds=SEEDS, workers=2, trace_dir=tmp_path / "local",
                     model="policy:oracle")
    assert len(remote.episodes) == len(seen) == len(SCENARIOS) * len(SEEDS)
    assert [_same(e) for e in remote.episodes] == [_same(e) for e in local.episodes]
    assert remote.success_rate == local.success_rate == 1.0
    assert remote.per_tag() == local.per_tag() and remote.model == local.model == "policy:oracle"
    assert remote.workers == 2  # the cluster's CPUs
    for episode in remote.episodes:  # each trace came back to the head, whole, with the world's verdict
        assert Path(episode.trace).parent == tmp_path / "ray"
        trace = read_trace(episode.trace)
        assert trace.meta["executor"]["scenario"] == episode.scenario and trace.meta["executor"]["seed"] == episode.seed
        assert trace.meta["verdict"]["success"] is True and trace.meta["steps"] == episode.steps
        assert len(trace.steps) == episode.steps
    assert len(list_traces(tmp_path / "ray")) == len(remote.episodes)


def test_workers_talk_to_the_model_url_given(cluster, tmp_path):
    """A model served over HTTP: every worker opens its own client of that URL (a scripted stub on loopback
    that claims success at once); the claim is recorded, the world's verdict decides."""
    from tests.fixtures.openai_stub import OpenAIStub, Reply, delta_chunk
    from visagent.traces.ray_eval import EngineSpec, ray_evaluate

    terminate = ("<tool_call>\n<function=computer_use>\n<parameter=action>\nterminate\n</parameter>\n"
                 "<parameter=status>\nsuccess\n</parameter>\n</function>\n</tool_call>")

    def reply(request):
        if request["path"].endswith("/models"):
            return Reply(body={"object": "list", "data": [{"id": "stub-model", "max_model_len": 32768}]})
        return Reply(chunks=[delta_chunk({"content": terminate}), delta_chunk({}, finish="stop"),
                             {"id": "u", "object": "chat.completion.chunk", "created": 0, "model": "stub-model",
                              "choices": [], "usage": {"prompt_tokens": 1234, "completion_tokens": 20,
                                                       "total_tokens": 1254}}])

    address, _, _ = cluster
    stub = OpenAIStub(reply)
    try:
        spec = EngineSpec.for_eval(Settings(model=stub.url), None)
        report = ray_evaluate([get_scenario("desktop-settings-wifi-off"), get_scenario("phone-settings-brightness")],
                              spec, address=address, seeds=(0,), trace_dir=None)
    finally:
        stub.close()
    assert report.model == stub.url and [e.status for e in report.episodes] == ["success", "success"]
    assert report.success_rate == 0.0 and [e.prompt_tokens for e in report.episodes] == [1234, 1234]
    chats = [r["json"] for r in stub.requests if r["path"].endswith("/chat/completions")]
    assert sorted(c["tools"][0]["function"]["name"] for c in chats) == ["computer_use", "mobile_use"]


def _crash_once(marks, job, executor):
    """Kill the worker process at its second action, the first time episode 0 runs."""
    with (marks / f"attempts-{job.index}").open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    if job.index != 0 or (marks / "crashed").exists():
        return
    (marks / "crashed").write_text("1")
    real = executor.execute
    calls = []

    def execute(action):
        calls.append(action)
        if len(calls) == 2:
            os._exit(1)  # a worker dying mid-episode, as an OOM kill or a lost node would
        return real(action)

    executor.execute = execute


def _always_crash(marks, job, executor):
    with (marks / f"attempts-{job.index}").open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    if job.index == 1:
        os._exit(1)


@pytest.fixture
def marks(tmp_path):
    """Where the hooks (running in the workers, same machine) note each attempt."""
    path = tmp_path / "marks"
    path.mkdir()
    return path


def test_a_worker_that_dies_mid_episode_is_retried_once_and_counted_once(cluster, tmp_path, marks):
    from visagent.traces.ray_eval import EngineSpec, ray_evaluate

    address, _, _ = cluster
    scenarios = [get_scenario("desktop-settings-wifi-off")]
    report = ray_evaluate(scenarios, EngineSpec(policy="oracle"), address=address, seeds=(0, 1),
                          trace_dir=tmp_path / "runs", traces="shared", hook=functools.partial(_crash_once, marks))
    assert (marks / "crashed").exists()  # the first attempt really died
    assert len((marks / "attempts-0").read_text().split()) == 2  # ...and ran again once
    assert len((marks / "attempts-1").read_text().split()) == 1
    assert [(e.scenario, e.seed, e.status, e.success) for e in report.episodes] == [
        ("desktop-settings-wifi-off", 0, "success", True), ("desktop-settings-wifi-off", 1, "success", True)]
    # shared traces: each finished episode's trace is in the trace dir once; the dead attempt's is not beside them
    traces = list_traces(tmp_path / "runs")
    assert sorted(str(t.path) for t in traces) == sorted(e.trace for e in report.episodes)


def test_a_worker_that_dies_again_is_reported_as_error(cluster, tmp_path, marks):
    from visagent.traces.ray_eval import EngineSpec, ray_evaluate

    address, _, _ = cluster
    scenarios = [get_scenario("desktop-settings-wifi-off")]
    report = ray_evaluate(scenarios, EngineSpec(policy="oracle"), address=address, seeds=(0, 1, 2),
                          trace_dir=None, hook=functools.partial(_always_crash, marks))
    assert len((marks / "attempts-1").read_text().split()) == 2  # tried, then retried once, no more
    assert [(e.seed, e.status) for e in report.episodes] == [(0, "success"), (1, "error"), (2, "success")]
    error = report.episodes[1]
    assert not error.success and "died 2 times" in error.reason and error.trace is None
    assert report.success_rate == pytest.approx(2 / 3)
    assert "failed: desktop-settings-wifi-off seed 1" in report.summary_table()


def test_interrupt_cancels_outstanding_tasks_and_keeps_the_finished(cluster, tmp_path):
    from visagent.traces.ray_eval import EngineSpec, EvalInterrupted, ray_evaluate

    address, _, _ = cluster
    scenarios = [get_scenario(s) for s in SCENARIOS]

    def ctrl_c(outcome):  # the head's Ctrl-C arrives while it waits for the next episode
        raise KeyboardInterrupt

    with pytest.raises(EvalInterrupted) as caught:
        ray_evaluate(scenarios, EngineSpec(policy="oracle"), address=address, seeds=(0, 1, 2, 3),
                     trace_dir=tmp_path / "runs", on_episode=ctrl_c)
    partial = caught.value.report
    assert len(partial.episodes) == 1 and caught.value.total == 12
    assert Path(partial.episodes[0].trace).parent == tmp_path / "runs"
    assert partial.to_dict()["episodes_total"] == 1 and "overall" in partial.summary_table()
    import ray

    assert ray.cluster_resources().get("CPU") == 2  # the cluster is still there for the next test
    deadline = time.monotonic() + 30  # ...and the cancelled tasks give their CPUs back
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == 2


def test_cli_eval_through_ray_client_writes_the_same_json_and_exit_code(cluster, tmp_path):
    """`--ray ray://HOST:PORT`: the head talks to the cluster through the Ray Client server."""
    _, ray_tmp, client = cluster
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "RAY_TMPDIR": ray_tmp,
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "VISAGENT_TRACE_DIR": str(tmp_path / "runs")}
    cmd = [sys.executable, "-m", "visagent", "eval", *SCENARIOS[:2], "--policy", "oracle", "--seeds", "1",
           "--ray", client, "--json", str(tmp_path / "r.json"), "--no-progress", "--min-success", "100%"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["episodes_total"] == 2 and data["success_rate"] == 1.0 and data["model"] == "policy:oracle"
    assert set(data["per_tag"]) >= {"app:settings", "platform:phone"}
    assert all(Path(e["trace"]).is_dir() and Path(e["trace"]).parent == Path(data["trace_dir"])
               for e in data["episodes"])
    assert "overall" in proc.stdout and "traces:" in proc.stdout


class _FlakyClientRay:
    """Ray's module as `_connect` uses it, whose client connections fail as Ray Client's do: ConnectionAbortedError
    with the proxy's traceback (ray/util/client/worker.py `_server_init`)."""

    def __init__(self, *failures: str) -> None:
        self.failures = list(failures)
        self.calls = 0

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs) -> None:
        self.calls += 1
        if self.failures:
            raise ConnectionAbortedError(f"Initialization failure from server:\nTraceback (most recent call last):\n"
                                         f"  ...\n{self.failures.pop(0)}")


def test_a_client_server_process_that_died_at_startup_is_retried_once(monkeypatch, caplog):
    from visagent.traces import ray_eval

    monkeypatch.setattr(ray_eval, "_check_listening", lambda address: None)
    died = "RuntimeError: Starting Ray client server failed. See ray_client_server_23000.err for detailed logs."
    ray = _FlakyClientRay(died)
    with caplog.at_level("WARNING", logger=ray_eval.__name__):
        assert ray_eval._connect(ray, "ray://head:10001") is True
    assert ray.calls == 2 and "connecting once more" in caplog.text
    assert "Starting Ray client server failed" in caplog.text
    ray = _FlakyClientRay(died, died)  # twice: the one-line error, with the proxy's last line
    with pytest.raises(ConfigError, match="cannot connect to the Ray cluster at ray://head:10001: Initialization "
                                          "failure from server: ... RuntimeError: Starting Ray client server failed"):
        ray_eval._connect(ray, "ray://head:10001")
    assert ray.calls == 2
    ray = _FlakyClientRay("RuntimeError: Runtime environment doesn't match")  # not a startup failure: no retry
    with pytest.raises(ConfigError, match="Runtime environment doesn't match"):
        ray_eval._connect(ray, "ray://head:10001")
    assert ray.calls == 1


def test_ctrl_c_on_the_cli_cancels_and_writes_the_finished_episodes(cluster, tmp_path):
    import signal

    address, ray_tmp, client = cluster
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "RAY_TMPDIR": ray_tmp,
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "VISAGENT_TRACE_DIR": str(tmp_path / "runs")}
    cmd = [sys.executable, "-m", "visagent", "eval", *SCENARIOS, "--policy", "oracle", "--seeds", "10",
           "--ray", address, "--json", str(tmp_path / "r.json"), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    try:
        deadline = time.monotonic() + 120  # until the first shipped trace is in: episodes are finishing
        while not list((tmp_path / "runs").glob("eval-*/*/meta.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-2000:]
    data = json.loads((tmp_path / "r.json").read_text())
    assert "interrupted" in data and 1 <= data["episodes_total"] < 30
    assert [(e["scenario"], e["seed"]) for e in data["episodes"]] == sorted(
        [(e["scenario"], e["seed"]) for e in data["episodes"]], key=lambda k: (SCENARIOS.index(k[0]), k[1]))
    assert "overall" in out and "interrupted:" in err and "cancelled" in err


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch, capsys):
    from visagent.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    code = main(["eval", "desktop-settings-wifi-off", "--policy", "oracle", "--ray", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "pip install 'visagent[ray]'" in err


def test_an_in_process_model_is_refused_with_one_line(capsys):
    from visagent.cli import main
    from visagent.traces.ray_eval import EngineSpec

    code = main(["eval", "desktop-settings-wifi-off", "--model", "tiny", "--ray=local", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "served over HTTP" in err and "'tiny'" in err
    with pytest.raises(ConfigError, match="in-process model"):
        EngineSpec.for_eval(Settings(model="/models/qwen"), None)
    assert EngineSpec.for_eval(Settings(model="http://10.0.0.5:8000/v1"), None).label == "http://10.0.0.5:8000/v1"
    assert EngineSpec.for_eval(Settings(), "oracle").label == "policy:oracle"


def test_bad_addresses_are_one_line(capsys):
    from visagent.cli import main

    code = main(["eval", "--ray", "desktop-settings-wifi-off", "--policy", "oracle"])  # a scenario id, not an address
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "not a Ray address" in err
    code = main(["eval", "--ray", "auto", "--no-ray", "--policy", "oracle"])
    assert code == 2 and "not both" in capsys.readouterr().err
    import socket

    with socket.socket() as free:  # a port nothing listens on: refused at once, not after Ray's retries
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # a process not yet on Ray
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        proc = subprocess.run([sys.executable, "-m", "visagent", "eval", "desktop-settings-wifi-off", "--policy",
                               "oracle", "--ray", address, "--no-progress", "--no-traces"],
                              capture_output=True, text=True, env=env, timeout=60)
        err = proc.stderr.strip()
        assert proc.returncode == 2 and len(err.splitlines()) == 1, err
        assert f"cannot connect to the Ray cluster at {address}: Connection refused" in err


def test_ray_settings_come_from_the_file_and_the_environment(tmp_path):
    (tmp_path / "visagent.toml").write_text('ray = "ray://head.example:10001"\nray_traces = "shared"\n')
    s = load_settings({}, env={}, cwd=tmp_path, home=tmp_path)
    assert s.ray == "ray://head.example:10001" and s.ray_traces == "shared"
    assert load_settings({}, env={"VISAGENT_RAY": "auto"}, cwd=tmp_path, home=tmp_path).ray == "auto"
    assert load_settings({}, env={}, cwd=tmp_path / "none", home=tmp_path / "none").ray is None
    with pytest.raises(ConfigError, match="ray must be auto, local"):
        load_settings({}, env={"VISAGENT_RAY": "http://head:8265"}, cwd=tmp_path, home=tmp_path)
    with pytest.raises(ConfigError, match="ray_traces must be ship or shared"):
        load_settings({}, env={"VISAGENT_RAY_TRACES": "nfs"}, cwd=tmp_path, home=tmp_path)


def test_a_shipped_trace_cannot_escape_the_trace_dir(tmp_path):
    import io
    import tarfile

    from visagent.traces.ray_eval import unpack_trace

    def tar_of(*members):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, kind in members:
                info = tarfile.TarInfo(name)
                if kind == "link":
                    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                    tar.addfile(info)
                else:
                    tar.addfile(info, io.BytesIO(b""))
        return buf.getvalue()

    root = tmp_path / "runs"
    for bad in (tar_of(("../evil/meta.json", "file")), tar_of(("run/meta.json", "file"), ("run/x", "link")),
                tar_of(("a/meta.json", "file"), ("b/meta.json", "file"))):
        with pytest.raises((ValueError, tarfile.TarError)):
            unpack_trace(bad, root)
    assert not (tmp_path / "evil").exists() and not (root / "run" / "x").exists()
    assert unpack_trace(tar_of(("run/meta.json", "file")), root) == root / "run"


def test_the_dashboard_submits_a_suite_to_the_cluster(cluster, tmp_path):
    from ui.engines import ModelChoice
    from ui.suites import SuiteRequest, SuiteRunner

    address, _, _ = cluster
    runner = SuiteRunner(Settings(), engines=None, trace_root=tmp_path / "runs")  # the oracle needs no engine
    suite = runner.start(SuiteRequest(model=ModelChoice("oracle", ""), split="heldout", tags=("app:settings",),
                                      seeds=1, ray=address))
    suite.thread.join(240)
    snap = suite.snapshot()
    assert snap.finished and snap.message.startswith("done"), snap.message
    assert snap.done == snap.total > 0 and snap.successes == snap.total
    assert all(Path(row[-1]).is_dir() for row in snap.rows)


def test_a_threading_cancel_event_stops_the_suite(cluster, tmp_path):
    from visagent.traces.ray_eval import EngineSpec, ray_evaluate

    address, _, _ = cluster
    cancel = threading.Event()
    report = ray_evaluate([get_scenario(s) for s in SCENARIOS], EngineSpec(policy="oracle"), address=address,
                          seeds=(0, 1, 2), trace_dir=None, cancel=cancel, on_episode=lambda e: cancel.set())
    assert 1 <= len(report.episodes) < 9


def test_staging_dirs_of_dead_workers_are_swept(tmp_path, monkeypatch):
    import tempfile as tf

    from visagent.traces import ray_eval

    monkeypatch.setattr(tf, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = tmp_path / f"{ray_eval.STAGING_PREFIX}{dead.pid}-abc"
    alive = tmp_path / f"{ray_eval.STAGING_PREFIX}{os.getppid()}-abc"
    other = tmp_path / "visagent-raylet-notours"
    for d in (gone, alive, other):
        (d / "run").mkdir(parents=True)
    ray_eval._sweep_dead_staging()
    assert not gone.exists() and alive.exists() and other.exists()


# -- the real-desktop world on Ray: a node that declares displays ------------------------------------------------
REAL_SCENARIOS = ("xterm-write-file", "galculator-arith")  # two programs, 2 oracle steps each, ~2 s an episode


def test_real_desktop_without_a_display_node_fails_at_once_naming_the_resource(cluster, tmp_path):
    """No node declares `display`: Ray would keep the tasks pending forever; the eval stops before submitting."""
    from visagent.realworld.registry import get_real_scenario
    from visagent.traces.ray_eval import EngineSpec, ray_evaluate

    address, _, _ = cluster
    import ray

    assert "display" not in ray.cluster_resources()
    with pytest.raises(ConfigError) as caught:
        ray_evaluate([get_real_scenario(REAL_SCENARIOS[0])], EngineSpec(policy="oracle"), address=address,
                     trace_dir=tmp_path / "runs")
    line = str(caught.value)
    assert len(line.splitlines()) == 1 and "'display' resource" in line and "real-desktop" in line
    assert """ray start --address HEAD:6379 --resources '{"display": N}'""" in line
    assert not list((tmp_path / "runs").iterdir())  # nothing ran
    # ...and nothing of this eval is left pending on the cluster. Ray's resource view is eventually consistent
    # (an earlier test's cancelled tasks may still be handing their CPUs back), so wait for both CPUs to be free.
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU") != 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray.available_resources().get("CPU") == 2


@pytest.fixture
def display_node(ray_cluster, tmp_path, monkeypatch):
    """A third node (one CPU) declaring two displays, as `ray start --resources '{"display": 2}'` would; its
    workers' world records go to a state dir of this test (the environment a node starts with reaches its
    workers). Removed afterwards, so the other tests see the two-CPU cluster again."""
    import ray

    c, _ = ray_cluster
    state = tmp_path / "state"
    monkeypatch.setenv("VISAGENT_REAL_STATE", str(state))  # also this process's local worlds
    node = c.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources={"display": 2})
    c.wait_for_nodes()
    try:
        yield state
    finally:
        c.remove_node(node)
        deadline = time.monotonic() + 30
        while "display" in ray.cluster_resources() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "display" not in ray.cluster_resources()


@pytest.mark.x11
def test_real_desktop_episodes_on_a_display_node_match_the_local_eval(cluster, display_node, tmp_path):
    """Each real-desktop episode runs as a task on the node with displays, starts its own Xvfb and programs
    there, ships its trace back, and ends like the local eval's episode; no world is left running."""
    from visagent.realworld import procs
    from visagent.realworld.registry import get_real_scenario
    from visagent.traces.ray_eval import EngineSpec, ray_evaluate

    address, ray_tmp, _ = cluster
    scenarios = [get_real_scenario(s) for s in REAL_SCENARIOS]
    tokens: set[str] = set()
    stop = threading.Event()

    def watch() -> None:  # the worlds' records name their tokens while they run (workers and this process)
        while not stop.is_set():
            tokens.update(p.name[len("world-"):-len(".json")] for p in display_node.glob("world-*.json"))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        remote = ray_evaluate(scenarios, EngineSpec(policy="oracle"), address=address, seeds=(0,),
                              trace_dir=tmp_path / "ray")
        local = evaluate(scenarios, oracle_factory, seeds=(0,), workers=1, trace_dir=tmp_path / "local",
                         model="policy:oracle")
    finally:
        stop.set()
        watcher.join()
    assert [_same(e) for e in remote.episodes] == [_same(e) for e in local.episodes]
    assert [(e.scenario, e.status, e.success) for e in remote.episodes] == [
        ("xterm-write-file", "success", True), ("galculator-arith", "success", True)]
    for episode in remote.episodes:  # the trace came back from the worker, judged on the real state there
        assert Path(episode.trace).parent == tmp_path / "ray"
        trace = read_trace(episode.trace)
        executor = trace.meta["executor"]
        assert executor["world"] == "real-desktop" and executor["scenario"] == episode.scenario
        assert trace.meta["verdict"]["success"] is True and len(trace.steps) == episode.steps
    assert len(tokens) == 4  # four worlds ran (two on the node, two here) ...
    assert {t: procs.marked_pids(t) for t in tokens} == {t: [] for t in tokens}  # ... and none left a process
    assert not list(display_node.glob("world-*.json"))  # ... or a record
    assert not list(Path(ray_tmp).glob("visagent-real-*"))  # ... or the workers' world directories

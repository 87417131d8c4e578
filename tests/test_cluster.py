"""`cluster`, `runtime.Runtime` and `distribution.multi_worker_strategy` without a second process.

The multi-process behaviour itself is in tests/test_multi_worker.py.
"""

import json
import socket
import time
import types

import pytest
import tensorflow as tf

from weibo_lstm import errors
from weibo_lstm.cli import main as cli
from weibo_lstm.distribute.cluster import (
    ClusterError,
    describe_cluster_failure,
    has_cluster,
    wait_for_peers,
)
from weibo_lstm.distribute.runtime import Runtime
from weibo_lstm.distribute.strategies import multi_worker_strategy


def fake_runtime(cluster: dict, task_type: str, index: int) -> Runtime:
    """The Runtime of a task of `cluster` (just enough of a strategy to place it)."""
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type=task_type, task_id=index
    )
    return Runtime(types.SimpleNamespace(cluster_resolver=resolver))


def set_tf_config(monkeypatch, addresses, index):
    config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TWO = {"worker": ["a:1", "b:2"]}


@pytest.mark.parametrize(
    ("cluster", "task", "chief", "name", "workers"),
    [
        (TWO, ("worker", 0), True, "worker_0", 2),
        (TWO, ("worker", 1), False, "worker_1", 2),
        ({"chief": ["c:0"], **TWO}, ("worker", 0), False, "worker_0", 3),
        ({"chief": ["c:0"], **TWO}, ("chief", 0), True, "chief_0", 3),
    ],
)
def test_chief_task_name_and_worker_count(cluster, task, chief, name, workers):
    runtime = fake_runtime(cluster, *task)
    assert (runtime.is_chief, runtime.task, runtime.num_workers) == (chief, name, workers)


def test_one_process_is_its_own_chief():
    runtime = Runtime(tf.distribute.get_strategy())
    assert runtime.is_chief and runtime.task == "local" and runtime.num_workers == 1
    runtime.barrier()  # returns at once
    assert runtime.disagreements({"data": b"anything"}) == []
    assert runtime.any_worker(True) and not runtime.any_worker(False)


def test_has_cluster_reads_tf_config():
    assert not has_cluster("")
    assert not has_cluster(json.dumps({"cluster": {"worker": ["a:1"]}}))
    assert has_cluster(json.dumps({"cluster": TWO}))
    with pytest.raises(ValueError, match="not valid JSON"):
        has_cluster("{cluster")


def test_chief_writes_to_the_path_others_to_a_removed_temporary_directory(tmp_path):
    with fake_runtime(TWO, "worker", 0).output_dir(tmp_path / "out") as out:
        (out / "report.csv").write_text("chief")
    assert (tmp_path / "out" / "report.csv").read_text() == "chief"

    with fake_runtime(TWO, "worker", 1).output_dir(tmp_path / "out") as scratch:
        assert scratch != tmp_path / "out" and "worker_1" in scratch.name
        (scratch / "report.csv").write_text("worker")
    assert not scratch.exists()
    with (
        pytest.raises(RuntimeError, match="boom"),
        fake_runtime(TWO, "worker", 1).output_dir(tmp_path / "out") as scratch,
    ):
        raise RuntimeError("boom")
    assert not scratch.exists()  # removed on error too
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report.csv"]


HEARTBEAT = """Graph execution error:

Detected at node while/CollectiveReduceV2 defined at (most recent call last):
Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks are unhealthy (stopped sending heartbeats):
/job:worker/replica:0/task:1
The tasks have crashed. Check the task logs for an earlier error."""

REFUSED = """Collective ops is aborted by: failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:53145: Failed to connect to remote host: Connection refused
Additional GRPC error information from remote target /job:worker/replica:0/task:0 while calling /tensorflow.WorkerService/CompleteInstance:"""


CLOSED = """Graph execution error:

Detected at node while/CollectiveReduceV2 defined at (most recent call last):
Socket closed
Additional GRPC error information from remote target /job:worker/replica:0/task:0 while calling /tensorflow.WorkerService/RecvBuf:
:UNKNOWN:Error received from peer  {grpc_message:"Socket closed", grpc_status:14}"""


@pytest.mark.parametrize(
    ("index", "error", "expected"),
    [
        (
            0,
            tf.errors.UnavailableError(None, None, HEARTBEAT),
            "worker_0: worker_1 stopped sending heartbeats (killed, crashed or unreachable)",
        ),
        (
            1,
            tf.errors.UnavailableError(None, None, REFUSED),
            "worker_1: worker_0 is unreachable (connection refused or closed: its process is gone)",
        ),
        (
            1,
            tf.errors.UnavailableError(None, None, CLOSED),
            "worker_1: worker_0 is unreachable (connection refused or closed: its process is gone)",
        ),
        (
            1,
            tf.errors.AbortedError(None, None, CLOSED.replace("Socket closed", "Stream removed")),
            "worker_1: worker_0 failed (AbortedError: Stream removed)",
        ),
        (
            0,
            tf.errors.UnavailableError(
                None, None, HEARTBEAT.replace("replica:0/task:1\n", "replica:0/task:2\n")
            ),
            "worker_0: worker_2 stopped sending heartbeats (killed, crashed or unreachable)",
        ),
        (
            0,
            tf.errors.DeadlineExceededError(None, None, "Collective has timed out."),
            "worker_0: a collective timed out waiting for a peer",
        ),
    ],
)
def test_cluster_failures_become_one_line(monkeypatch, index, error, expected):
    set_tf_config(monkeypatch, ["127.0.0.1:1", "127.0.0.1:2"], index)
    message = describe_cluster_failure(error)
    assert message.startswith(expected + "; the cluster cannot continue. Restart every worker")
    assert "\n" not in message


def test_other_errors_are_not_cluster_failures(monkeypatch):
    unavailable = tf.errors.UnavailableError(None, None, "x")
    assert describe_cluster_failure(unavailable) is None  # no TF_CONFIG: not a cluster run
    set_tf_config(monkeypatch, ["127.0.0.1:1", "127.0.0.1:2"], 0)
    assert describe_cluster_failure(ValueError("x")) is None
    assert describe_cluster_failure(tf.errors.InvalidArgumentError(None, None, "x")) is None
    assert describe_cluster_failure(ClusterError("as is")) == "as is"


def test_startup_waits_for_peers_then_gives_up_naming_them(monkeypatch):
    mine, missing = unused_port(), unused_port()
    set_tf_config(monkeypatch, [f"127.0.0.1:{mine}", f"127.0.0.1:{missing}"], 0)
    start = time.monotonic()
    with pytest.raises(ClusterError) as error:
        wait_for_peers(1.0)
    assert time.monotonic() - start < 10
    assert str(error.value).startswith(
        f"worker_0: the cluster did not come up within 1 s: no answer from worker_1 at "
        f"127.0.0.1:{missing}. Start the same command on every node"
    )
    with socket.create_server(("127.0.0.1", missing)):  # the peer is up
        wait_for_peers(5.0)


def test_startup_refuses_a_port_in_use(monkeypatch):
    with socket.create_server(("", 0)) as busy:
        port = busy.getsockname()[1]
        set_tf_config(monkeypatch, [f"127.0.0.1:{port}", "127.0.0.1:1"], 0)
        with pytest.raises(ClusterError, match=f"worker_0: cannot listen on port {port}"):
            wait_for_peers(1.0)


def test_multi_worker_strategy_checks_its_arguments_before_starting():
    with pytest.raises(ValueError, match="Received: collective='mpi'"):
        multi_worker_strategy("mpi")
    with pytest.raises(ValueError, match="Received: startup_timeout=0"):
        multi_worker_strategy(startup_timeout=0)


def test_cli_reports_a_cluster_failure_in_one_line(capsys):
    parser = cli.ArgumentParser(prog="weibo-lstm")

    def fail(args):
        raise ClusterError("worker_0: the cluster did not come up within 5 s: no answer")

    parser.set_defaults(run=fail)
    assert cli.run([], parser) == errors.RUN_FAILED == 3
    assert capsys.readouterr().err == (
        "error: worker_0: the cluster did not come up within 5 s: no answer\n"
    )
    assert cli.main(["train", "--startup-timeout", "0"]) == 2
    assert "Argument `startup_timeout` must be > 0" in capsys.readouterr().err


def test_tf_config_without_this_nodes_task_is_refused(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": TWO}))
    with pytest.raises(ClusterError, match="TF_CONFIG must name this node's task"):
        wait_for_peers(1.0)

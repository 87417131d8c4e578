"""`TF_CONFIG` clusters: whether there is one, waiting for the peers, naming a failure.

A multi-worker job is `MultiWorkerMirroredStrategy` configured from `TF_CONFIG` (see
`strategies.multi_worker_strategy`): every worker runs the same program, and
TensorFlow's coordination service notices a worker that dies (missed heartbeats) and
aborts the collectives of the others. This process's place in the cluster (chief,
task, where it writes, barrier, agreement) is `runtime.Runtime`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from typing import TYPE_CHECKING

from weibo_lstm.errors import ClusterError

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger("weibo_lstm")

#: Seconds a worker waits for every task of `TF_CONFIG` to join.
DEFAULT_STARTUP_TIMEOUT = 600.0


def has_cluster(tf_config: str | None = None) -> bool:
    """True when `TF_CONFIG` describes a cluster with more than one task."""
    raw = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not raw.strip():
        return False
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(f"TF_CONFIG is not valid JSON: {raw[:200]!r}") from None
    return sum(len(tasks) for tasks in cluster.values()) > 1


def describe_cluster_failure(error: BaseException) -> str | None:
    """One line for an error that means the cluster broke; None for any other error.

    TensorFlow reports a dead peer as `UnavailableError` (missed heartbeats, or a
    refused or closed connection) and an expired `collective_timeout` as
    `DeadlineExceededError`; their messages span many lines of gRPC detail.
    """
    import tensorflow as tf  # here: `weibo-lstm --help` reads this module's constants

    if isinstance(error, ClusterError):
        return str(error)
    if not isinstance(
        error,
        tf.errors.UnavailableError | tf.errors.DeadlineExceededError | tf.errors.AbortedError,
    ):
        return None
    me, _ = _tf_config_task()
    if me is None:
        return None
    text = str(getattr(error, "message", error))
    # The lost tasks follow these phrases; other task names are the workers that
    # relayed the error.
    culprit = re.search(r"unhealthy|remote target", text)
    named = re.findall(
        r"/job:(\w+)(?:/replica:\d+)?/task:(\d+)", text[culprit.start() :] if culprit else text
    )
    peers = [t for t in dict.fromkeys(f"{job}_{index}" for job, index in named) if t != me]
    who = ", ".join(peers) or "a peer"
    if "heartbeat" in text:
        what = f"{who} stopped sending heartbeats (killed, crashed or unreachable)"
    elif any(sign in text.lower() for sign in _CONNECTION_LOST):
        what = f"{who} is unreachable (connection refused or closed: its process is gone)"
    elif isinstance(error, tf.errors.DeadlineExceededError):
        what = f"a collective timed out waiting for {who}"
    else:
        what = f"{who} failed ({type(error).__name__}: {_gist(text)})"
    return (
        f"{me}: {what}; the cluster cannot continue. Restart every worker "
        "(see docs/multi_worker.md)"
    )


# How gRPC says that a peer's process is gone.
_CONNECTION_LOST = (
    "refused",
    "failed to connect",
    "socket closed",
    "connection reset",
    "broken pipe",
)


def _gist(text: str) -> str:
    """The informative line of a TensorFlow runtime error (not its boilerplate)."""
    grpc = re.search(r'grpc_message:"([^"]+)"', text)
    if grpc:
        return grpc.group(1)
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(
            ("Graph execution error", "Detected at node", "File ", "[[")
        ):
            return line
    return "no details"


def _tf_config_task() -> tuple[str | None, dict[str, str]]:
    """This task's `worker_1`-style name and the address of every chief and worker."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        task = config.get("task", {})
        me = f"{task['type']}_{task['index']}" if task else None
        cluster = config.get("cluster", {})
        tasks = {
            f"{job}_{index}": address
            for job in ("chief", "worker")
            for index, address in enumerate(cluster.get(job, []))
        }
        return me, tasks
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError):
        return None, {}


def wait_for_peers(seconds: float | None) -> None:
    """Returns once every other chief and worker of `TF_CONFIG` accepts connections.

    TensorFlow waits for missing peers inside a C++ call that holds the GIL and has no
    deadline, so the wait happens here first: this task listens on its own port
    (peers see it is up) and connects to theirs (their listener, or their TensorFlow
    server once they are past this point) until all answer. Call it right before
    creating the strategy: the listener is closed on return, and TensorFlow binds
    the same port.

    Args:
        seconds: how long to wait for the slowest peer (None: forever).

    Raises:
        ClusterError: if a peer does not answer within `seconds`, if this task's
            port is taken by another process, or if `TF_CONFIG` names no task of
            its cluster for this node.
    """
    me, tasks = _tf_config_task()
    if me not in tasks:
        raise ClusterError(
            f"TF_CONFIG must name this node's task, a chief or worker of its cluster "
            f'(e.g. "task": {{"type": "worker", "index": 1}}); it names {me} in {tasks}'
        )
    port = int(tasks[me].rsplit(":", 1)[1])
    try:
        listener = socket.create_server(
            ("", port),
            family=socket.AF_INET6 if socket.has_dualstack_ipv6() else socket.AF_INET,
            dualstack_ipv6=socket.has_dualstack_ipv6(),
        )
    except OSError as e:
        raise ClusterError(
            f"{me}: cannot listen on port {port} (TF_CONFIG: {tasks[me]}): {e.strerror or e}; "
            "is another process using it?"
        ) from None
    waiting = {name: address for name, address in tasks.items() if name != me}
    logger.info(
        "%s: waiting for %s (up to %s s)",
        me,
        ", ".join(f"{n} at {a}" for n, a in waiting.items()),
        "forever" if seconds is None else f"{seconds:g}",
    )
    start = time.monotonic()
    reported = start
    try:
        while waiting := {n: a for n, a in waiting.items() if not _accepts_connections(a)}:
            now = time.monotonic()
            if seconds is not None and now - start > seconds:
                raise ClusterError(
                    f"{me}: the cluster did not come up within {seconds:g} s: no answer from "
                    f"{', '.join(f'{n} at {a}' for n, a in waiting.items())}. Start the same "
                    "command on every node, each with its own task index, check that the "
                    "ports are reachable, or raise --startup-timeout"
                )
            if now - reported > 30:
                logger.info("%s: still waiting for %s", me, ", ".join(waiting))
                reported = now
            time.sleep(0.5)
    finally:
        listener.close()


def _accepts_connections(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            return True
    except OSError:
        return False


def place_in_cluster(strategy: tf.distribute.Strategy) -> tuple[bool, str, int]:
    """`(is_chief, task, num_workers)` of this process under `strategy`.

    The chief is the `chief` task, else worker 0; outside a cluster this process is
    the chief, named `local`, of one worker.

    Example:

    >>> import tensorflow as tf
    >>> place_in_cluster(tf.distribute.get_strategy())
    (True, 'local', 1)
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True, "local", 1
    spec = resolver.cluster_spec().as_dict()
    is_chief = resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in spec
    )
    num_workers = max(1, len(spec.get("chief", [])) + len(spec.get("worker", [])))
    return is_chief, f"{resolver.task_type}_{resolver.task_id}", num_workers

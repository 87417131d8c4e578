"""All-reduce cost on paper: ring all-reduce time, its share of a step, weak-scaling efficiency.

With a fixed per-replica batch (weak scaling) every replica computes a step in
`t_step` whatever the replica count N; then the gradients (one float32 per trainable
weight: our replica step turns embedding gradients into dense tensors, so the dense
size is what is all-reduced) are summed across replicas. A ring all-reduce of `S`
bytes over N devices sends `2 (N − 1) / N × S` bytes over each device's link, in
`2 (N − 1)` steps:

    t_ar = 2 (N − 1) / N × S / B  +  2 (N − 1) × α

`B` is the *bus bandwidth* in NCCL's sense (nccl-tests, doc/PERFORMANCE.md:
`busbw = algbw × 2 (N − 1) / N` for all-reduce, the figure comparable to the link's
peak), `α` the latency of one ring step. TensorFlow's MirroredStrategy packs all
gradients into one NCCL all-reduce per step, so the latency term is paid once a step.

Without overlap (the all-reduce starts after the backward pass, as `apply_gradients`
does in our replica step) a step takes `t_step + t_ar`:

    all-reduce share       = t_ar / (t_step + t_ar)
    weak-scaling efficiency = t_step / (t_step + t_ar)

The bound with perfect overlap of communication and computation is
`t_step / max(t_step, t_ar)`.

Example:

>>> round(ring_allreduce_seconds(8e6, 4, 24e9) * 1e3, 3)  # 8 MB, 4 GPUs, 24 GB/s
0.5
"""

from __future__ import annotations

import dataclasses

FORMULA = (
    "t_ar = 2(N-1)/N * S / B + 2(N-1) * alpha; share = t_ar / (t_step + t_ar); "
    "efficiency = t_step / (t_step + t_ar) (no overlap); "
    "overlapped bound = t_step / max(t_step, t_ar)"
)


@dataclasses.dataclass(frozen=True)
class Link:
    """A GPU interconnect as the projection assumes it.

    Attributes:
        name: what it is.
        peak_gb_s: the link's theoretical bandwidth per direction, GB/s (10^9 B/s).
        bus_gb_s: the all-reduce bus bandwidth assumed (NCCL's busbw), GB/s.
        latency_us: α, the latency of one ring step, microseconds.
        note: where the assumption comes from.
    """

    name: str
    peak_gb_s: float
    bus_gb_s: float
    latency_us: float
    note: str = ""


#: The links of the projection. Bus bandwidths are assumptions (about 75-80 % of the
#: peak, what nccl-tests typically reports), not measurements of ours.
LINKS = {
    "pcie4_x16": Link(
        "PCIe 4.0 x16",
        peak_gb_s=32.0,
        bus_gb_s=24.0,
        latency_us=10.0,
        note="~32 GB/s per direction theoretical; 24 GB/s busbw assumed with GPU peer-to-peer. "
        "RTX 4090 (the recipe's 7-GPU machine) has no NVLink and no peer-to-peer, so NCCL "
        "goes through host memory and will likely get less: an optimistic bound for it.",
    ),
    "nvlink3": Link(
        "NVLink 3 (A100 SXM)",
        peak_gb_s=300.0,
        bus_gb_s=240.0,
        latency_us=5.0,
        note="A100 NVLink 3: 12 links, 300 GB/s per direction; 240 GB/s busbw assumed.",
    ),
}

#: The recipe's measured run: 7 x RTX 4090, ~330 s for 15 epochs at 64 per GPU, on
#: weibo_senti_100k (119,988 rows; an 80 % training split assumed).
RECIPE = {
    "seconds": 330.0,
    "epochs": 15,
    "gpus": 7,
    "per_replica_batch": 64,
    "train_rows": round(0.8 * 119_988),
}


def ring_allreduce_seconds(
    num_bytes: float, num_devices: int, bus_bytes_per_second: float, latency_seconds: float = 0.0
) -> float:
    """Time of one ring all-reduce of `num_bytes` over `num_devices` devices.

    `2 (N − 1) / N × num_bytes / bus_bytes_per_second + 2 (N − 1) × latency_seconds`;
    0 for one device.
    """
    if num_devices < 1:
        raise ValueError(
            f"Argument `num_devices` must be >= 1. Received: num_devices={num_devices}"
        )
    n = num_devices
    return 2 * (n - 1) / n * num_bytes / bus_bytes_per_second + 2 * (n - 1) * latency_seconds


def project(gradient_bytes: float, step_seconds: float, num_devices: int, link: Link) -> dict:
    """The all-reduce time, its share of a step and the weak-scaling efficiency at N devices.

    Returns:
        `allreduce_ms`, `step_ms` (compute), `share_no_overlap`,
        `efficiency_no_overlap` and `efficiency_overlapped` (the perfect-overlap bound).
    """
    t_ar = ring_allreduce_seconds(
        gradient_bytes, num_devices, link.bus_gb_s * 1e9, link.latency_us * 1e-6
    )
    return {
        "allreduce_ms": t_ar * 1e3,
        "step_ms": step_seconds * 1e3,
        "share_no_overlap": t_ar / (step_seconds + t_ar),
        "efficiency_no_overlap": step_seconds / (step_seconds + t_ar),
        "efficiency_overlapped": step_seconds / max(step_seconds, t_ar),
    }


def recipe_step_seconds(recipe: dict = RECIPE) -> float:
    """Wall time per step of the recipe's run: seconds / (epochs × steps per epoch).

    An upper bound of its compute step: it also holds its all-reduce, validation and
    input pipeline (every post padded to 180).
    """
    global_batch = recipe["gpus"] * recipe["per_replica_batch"]
    steps = recipe["epochs"] * -(-recipe["train_rows"] // global_batch)
    return recipe["seconds"] / steps


def projection_table(
    gradient_bytes: float,
    step_seconds: dict[str, float],
    devices=(2, 4, 8),
    links: dict[str, Link] | None = None,
) -> dict:
    """Projections for every step-time source × link × device count (JSON-ready).

    Args:
        gradient_bytes: bytes all-reduced per step.
        step_seconds: single-replica compute time per step, by source (e.g.
            `{"measured_here": 0.05, "gpu": 0.1}`).
        devices: device counts N.
        links: the links (default `LINKS`).
    """
    links = LINKS if links is None else links
    return {
        "formula": FORMULA,
        "assumptions": "weak scaling (fixed per-replica batch, t_step independent of N); one "
        "all-reduce of all gradients per step; no overlap unless stated",
        "gradient_bytes": gradient_bytes,
        "links": {key: dataclasses.asdict(link) for key, link in links.items()},
        "step_ms": {source: s * 1e3 for source, s in step_seconds.items()},
        "results": {
            source: {
                key: {str(n): project(gradient_bytes, s, n, link) for n in devices}
                for key, link in links.items()
            }
            for source, s in step_seconds.items()
        },
    }


def markdown(projection: dict) -> str:
    """The projection as a markdown table."""
    lines = [
        f"gradient bytes per step: {projection['gradient_bytes'] / 1e6:.2f} MB",
        "",
        "| step time (source) | link (busbw) | N | t_ar ms | share (no overlap) "
        "| efficiency (no overlap) | efficiency (overlapped) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for source, by_link in projection["results"].items():
        for key, by_n in by_link.items():
            link = projection["links"][key]
            for n, r in by_n.items():
                lines.append(
                    f"| {r['step_ms']:.1f} ms ({source}) | {link['name']} ({link['bus_gb_s']:g} GB/s) "
                    f"| {n} | {r['allreduce_ms']:.3f} | {r['share_no_overlap']:.2%} "
                    f"| {r['efficiency_no_overlap']:.4f} | {r['efficiency_overlapped']:.4f} |"
                )
    return "\n".join(lines)

"""The numbers of a run (summarize) and the performance targets they meet or miss."""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from bench.screen.common import SCENES, ms, percentile


def summarize(
    user: dict[str, Any],
    viewer: dict[str, Any],
    seconds: float,
    cpu: float,
    grab: dict[str, Any] | None,
) -> dict[str, Any]:
    frames = {f[0]: f for f in user["frames"]}
    timings = [t for t in viewer["timings"] if t[0] in frames]
    paints = sorted(viewer["paints"])
    latencies, network, decode, paint = [], [], [], []
    pi = 0
    for seq, arrived, applied, _size in sorted(timings, key=lambda t: t[2]):
        while pi < len(paints) and (paints[pi][0] < applied or paints[pi][1] < seq):
            pi += 1
        frame = frames[seq]
        network.append(arrived - frame[2])
        decode.append(applied - arrived)
        if pi < len(paints):
            latencies.append(paints[pi][0] - frame[1])  # one CLOCK_MONOTONIC
            paint.append(paints[pi][0] - applied)
    delivered = [frames[t[0]] for t in timings]
    sizes = [f[3] for f in delivered]
    stage = [f[4] + f[5] + f[6] + f[7] for f in delivered if not f[9]]
    encodings: dict[str, int] = {}
    for f in delivered:
        for e in f[8]:
            encodings[e] = encodings.get(e, 0) + 1
    fps = len(timings) / seconds
    ordered = [frames[k] for k in sorted(frames)]
    gaps = [b[1] - a[2] for a, b in itertools.pairwise(ordered)]
    out: dict[str, Any] = {
        "F": round(fps, 1),
        "latency_ms": {
            "p50": ms(latencies),
            "p95": round(percentile(latencies, 95) * 1000, 3) if latencies else None,
        },
        "bytes_per_frame": round(statistics.mean(sizes)) if sizes else 0,
        "Mbit_s": round(sum(sizes) * 8 / seconds / 1e6, 3),
        "user_cpu_percent": round(100 * cpu / seconds, 1),
        "stages_ms": {
            "grab": ms([f[4] for f in delivered]),
            "diff": ms([f[5] for f in delivered]),
            "encode": ms([f[6] for f in delivered]),
            "send": ms([f[7] for f in delivered]),
            "network": ms(network),
            "decode": ms(decode),
            "paint": ms(paint),
        },
        "stage_sum_ms": {
            "median": ms(stage),
            "mean": round(statistics.mean(stage) * 1000, 3) if stage else None,
        },
        "user_ms_between_frames": {
            "idle_median": ms(gaps),
            "cycle_mean": round((ordered[-1][1] - ordered[0][1]) / (len(ordered) - 1) * 1000, 3)
            if len(ordered) > 1
            else None,
        },
        "encodings": encodings,
        "frames": len(timings),
        "viewer_errors": viewer["errors"],
        "acks_lost": user.get("lost"),
        "quality_level": user.get("quality_level"),
        "motion_region": user.get("motion_region"),
    }
    if stage:
        # Throughput is bounded by the mean time per frame (not the median).
        bound = 1000 / (statistics.mean(stage) * 1000)
        out["stage_bound_fps"] = round(bound, 1)
        out["F_over_stage_bound"] = round(fps / bound, 3)
    if grab is not None:
        out["G"] = grab["G"]
        out["G_before_after"] = grab["G_before_after"]
        out["grab_copy_ms"] = grab["grab_copy_ms"]
        out["F_over_G"] = round(fps / grab["G"], 3) if grab["G"] else None
    return out


def targets(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    typing = results.get("typing", {}).get("synthetic")
    if typing:
        out["typing_F_over_G_ge_0.4"] = {
            "value": typing.get("F_over_G"),
            "met": (typing.get("F_over_G") or 0) >= 0.4,
        }
        p50 = typing["latency_ms"]["p50"]
        out["typing_latency_p50_le_5ms"] = {"value": p50, "met": p50 is not None and p50 <= 5}
        out["typing_bytes_per_frame_le_1500"] = {
            "value": typing["bytes_per_frame"],
            "met": typing["bytes_per_frame"] <= 1500,
        }
    for scene in ("scrolling", "video"):
        run = results.get(scene, {}).get("synthetic")
        if run and "F_over_stage_bound" in run:
            out[f"{scene}_F_ge_0.9_of_stage_bound"] = {
                "value": run["F_over_stage_bound"],
                "met": run["F_over_stage_bound"] >= 0.9,
            }
    for scene in SCENES:
        real = results.get(scene, {}).get("real")
        vnc = results.get(scene, {}).get("x11vnc")
        if real and vnc:
            entry: dict[str, Any] = {
                "ours_updates_s_Mbit_s": [real["F"], real["Mbit_s"]],
                "x11vnc_updates_s_Mbit_s": [vnc["updates_per_s"], vnc["Mbit_s"]],
                "met": real["F"] > vnc["updates_per_s"] and real["Mbit_s"] <= vnc["Mbit_s"],
            }
            if scene == "static":
                # One change a second: both deliver all of them, "more" cannot happen.
                entry["note"] = "both deliver every change; met = as many updates, no more Mbit/s"
                entry["met"] = (
                    real["F"] >= vnc["updates_per_s"] - 0.1 and real["Mbit_s"] <= vnc["Mbit_s"]
                )
            out[f"{scene}_vs_x11vnc_more_updates_no_more_Mbit"] = entry
    static = results.get("static", {}).get("real")
    if static:
        out["static_cpu_le_3_percent"] = {
            "value": static["user_cpu_percent"],
            "met": static["user_cpu_percent"] <= 3,
        }
    return out

"""A small run of the whole benchmark (both servers, every scenario, a few users for a few seconds), so the harness
cannot rot: nothing lost or duplicated, every scenario produces numbers, the JSON and the PNG are written."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.runner import Options, run


def test_bench_smoke(tmp_path: Path) -> None:
    opts = Options(
        users=12,
        room_size=4,
        rates=(10.0, 20.0),
        step_seconds=1.0,
        max_rate=20.0,  # no search past the listed rates, and no step run again: a few seconds in all
        retries=0,
        idle=(12, 24),
        history_messages=2_000,
        history_calls=20,
        ack_calls=20,
        ack_interval=0.0,
        workers=2,
        out=tmp_path / "results",
        settle_seconds=0.3,
    )
    data = run(opts)

    saved = json.loads((tmp_path / "results" / "results.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(data["summary"]))
    assert (tmp_path / "results" / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for kind in ("reference", "real"):
        result = data["results"][kind]
        steps = result["fanout"]["steps"]
        assert [s["offered_msgs_per_s"] for s in steps] == [10.0, 20.0], kind
        for step in steps:
            assert step["acked"] == step["sent"] > 0, (kind, step["failures"])
            assert step["delivered"] == step["expected_deliveries"] == step["acked"] * opts.room_size, kind
            assert step["lost"] == step["duplicated"] == step["unexpected"] == 0, kind
            assert step["foreign_room"] == step["out_of_order"] == 0, kind
            assert math.isfinite(step["p99_ms"]) and step["generator_cpu_share"] >= 0, kind
        for scenario in ("ack", "history"):
            assert result[scenario]["failures"] == 0, (kind, scenario)
            assert math.isfinite(result[scenario]["p99_ms"]) and result[scenario]["n"] > 0, (kind, scenario)
        assert [level["connections"] for level in result["idle"]["levels"]] == [12, 24], kind
        assert all(math.isfinite(level["per_connection_kib"]) for level in result["idle"]["levels"]), kind
    # side by side: the two servers' fan-out steps took turns
    ref_steps, real_steps = (data["results"][kind]["fanout"]["steps"] for kind in ("reference", "real"))
    starts = [s["started_s"] for pair in zip(ref_steps, real_steps, strict=True) for s in pair]
    assert starts == sorted(starts)
    assert "reference" in data["summary"][0] and data["summary"][0]["real"] is not None

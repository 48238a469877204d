"""The fan-out's rate ladder and its saturation point, on recorded steps (no servers): which rate is offered next,
when a step over the bound is run again, how far the search goes, and what counts as saturation."""

from __future__ import annotations

from typing import Any

import pytest

from bench.report import summary
from bench.runner import Options, next_step, parse_args, saturation


def step(rate: float, p99: float, attempt: int = 1, *, lost: int = 0) -> dict[str, Any]:
    return {
        "offered_msgs_per_s": rate,
        "offered_deliveries_per_s": rate * 50,
        "delivered_per_s": rate * 50 * 0.99,
        "p99_ms": p99,
        "attempt": attempt,
        "lost": lost,
        "duplicated": 0,
        "failed": 0,
    }


def play(opts: Options, p99_at: dict[float, list[float]]) -> list[dict[str, Any]]:
    """Runs the ladder against made-up p99s: each rate's attempts in turn (the last one repeats)."""
    steps: list[dict[str, Any]] = []
    while (move := next_step(opts, steps)) is not None:
        rate, attempt = move
        runs = p99_at.get(rate, [5.0])
        steps.append(step(rate, runs[min(attempt, len(runs)) - 1], attempt))
        assert len(steps) < 100
    return steps


def rates(steps: list[dict[str, Any]]) -> list[tuple[float, int]]:
    return [(s["offered_msgs_per_s"], s["attempt"]) for s in steps]


def test_the_search_goes_past_the_listed_rates_until_the_bound_breaks() -> None:
    opts = Options(rates=(100, 200), grow=1.1, max_rate=2000, retries=1)
    steps = play(opts, {260: [150.0]})
    assert rates(steps) == [(100, 1), (200, 1), (220, 1), (240, 1), (260, 1), (260, 2)]
    assert saturation(steps) == {
        "saturation_msgs_per_s": 240,
        "saturation_deliveries_per_s": 240 * 50 * 0.99,
        "saturation_offered_deliveries_per_s": 240 * 50,
        "saturation_reached": True,
    }


def test_a_step_over_the_bound_once_is_run_again_and_counts_if_the_rerun_keeps_it() -> None:
    opts = Options(rates=(100, 200, 300), grow=1.1, max_rate=300, retries=1)
    steps = play(opts, {200: [400.0, 20.0]})
    assert rates(steps) == [(100, 1), (200, 1), (200, 2), (300, 1)]
    assert saturation(steps)["saturation_msgs_per_s"] == 300
    assert saturation(steps)["saturation_reached"] is False  # never broke it: 300 msg/s is a lower bound


def test_listed_rates_past_saturation_still_run_once_each_for_the_curve() -> None:
    opts = Options(rates=(100, 200, 300, 400), retries=1, stop_p99_ms=1000)
    steps = play(opts, {200: [150.0], 300: [500.0], 400: [2000.0]})
    assert rates(steps) == [(100, 1), (200, 1), (200, 2), (300, 1), (400, 1)]
    assert saturation(steps)["saturation_msgs_per_s"] == 100
    assert saturation(steps)["saturation_reached"] is True


def test_a_lost_message_ends_the_ladder_and_is_never_within_the_bound() -> None:
    opts = Options(rates=(100, 200, 300), retries=1)
    steps = [step(100, 5.0), step(200, 5.0, lost=1)]
    assert next_step(opts, steps) is None
    assert saturation(steps)["saturation_msgs_per_s"] == 100


def test_a_repeated_listed_rate_runs_each_time() -> None:
    opts = Options(rates=(300, 300), max_rate=300)
    assert rates(play(opts, {})) == [(300, 1), (300, 1)]


def test_the_summary_marks_a_saturation_never_reached_as_a_lower_bound() -> None:
    def fanout(sat: float, reached: bool) -> dict[str, Any]:
        return {"fanout": {"steps": [], "saturation_deliveries_per_s": sat, "saturation_reached": reached}}

    def row(ref: dict[str, Any], real: dict[str, Any]) -> dict[str, Any]:
        return summary({"reference": ref, "real": real})[0]

    assert row(fanout(10_000, True), fanout(9_000, True))["met"] is True
    assert row(fanout(10_000, True), fanout(7_000, True))["met"] is False
    # the real server only has a lower bound: a ratio already ≥ 0.8 is met, a lower one is not known
    assert row(fanout(10_000, True), fanout(9_000, False))["met"] is True
    assert row(fanout(10_000, True), fanout(7_000, False))["met"] is None
    # the reference only has a lower bound: its true figure is higher, so a ratio under 0.8 fails, others are unknown
    assert row(fanout(10_000, False), fanout(7_000, True))["met"] is False
    assert row(fanout(10_000, False), fanout(9_000, True))["met"] is None
    assert row(fanout(10_000, False), fanout(10_000, False))["lower_bound"] == {"reference": True, "real": True}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--rates", "abc"], "comma-separated list of numbers"),
        (["--rates", ""], "at least one rate"),
        (["--rates", "10,0"], "above 0"),
        (["--idle", "x"], "comma-separated list of numbers"),
        (["--rates", "10,20", "--max-rate", "5"], "below the highest of --rates"),
        (["--retries", "-1"], "0 or more"),
        (["--grow", "0"], "above 1"),
        (["--history-messages", "10"], "above 50"),
        (["--servers", "nope"], "unknown scenario or server"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_error(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_args(args)
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


def test_good_arguments_are_parsed() -> None:
    opts = parse_args(["--rates", "10, 20,40", "--idle", "100", "--max-rate", "40", "--retries", "0"])
    assert opts.rates == (10.0, 20.0, 40.0) and opts.idle == (100,) and opts.max_rate == 40 and opts.retries == 0
    assert parse_args([]).rates == Options().rates  # the defaults parse to themselves


def test_the_summary_names_the_sizes_the_run_had() -> None:
    run = {
        "history": {"room_messages": 2000, "p50_ms": 1.0, "p99_ms": 2.0},
        "idle": {"levels": [{"connections": 40, "per_connection_kib": 41.0}]},
    }
    rows = {r["metric"]: r for r in summary({"reference": {}, "real": run})}
    assert rows["get_history 50 of 2,000 p99"]["met"] is True
    assert rows["memory per idle connection at 40"]["real"] == 41.0
    assert rows["memory per idle connection at 40"]["met"] is False

"""`python -m bench`: every scenario against the reference server and the real server, in one run."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from . import report, servers
from .eio import LeanClient
from .generator import Generator, Spec, cpu_seconds
from .servers import BENCH_ENV, HISTORY_ROOM, HISTORY_USER, Layout, ServerProcess

KINDS = ("reference", "real")
SCENARIOS = ("ack", "history", "fanout", "idle")


@dataclass
class Options:
    users: int = 1000
    room_size: int = 50
    rates: tuple[float, ...] = (10, 20, 40, 80, 120, 160, 200, 260, 320, 400)
    step_seconds: float = 5.0
    stop_p99_ms: float = 1000.0
    # Past the last of `rates`, while the server keeps p99 under 100 ms, the offered rate grows by `grow` (at least
    # 20 msg/s a step) up to `max_rate`: the saturation point is found, not capped by the list.
    grow: float = 1.1
    max_rate: float = 2000.0
    # A step over the bound is run once more before it counts: one stall of the shared machine is not saturation.
    retries: int = 1
    idle: tuple[int, ...] = (1000, 5000)
    history_messages: int = 1_000_000
    history_calls: int = 300
    ack_calls: int = 300
    ack_interval: float = 0.02
    workers: int = 2
    scenarios: tuple[str, ...] = SCENARIOS
    kinds: tuple[str, ...] = KINDS
    out: Path = Path(__file__).resolve().parent / "results"
    data_dir: Path | None = None
    png: bool = True
    profile: Path | None = None  # run the real server under pyinstrument, report written here
    settle_seconds: float = 2.0  # after connecting the fan-out users, before the first step


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def ms_summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50) * 1000,
        "p95_ms": percentile(values, 95) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": (max(values) * 1000) if values else float("nan"),
        "mean_ms": (statistics.fmean(values) * 1000) if values else float("nan"),
    }


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # children (servers, workers) inherit it
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Bench:
    def __init__(self, opts: Options, work: Path) -> None:
        self.opts = opts
        self.work = work
        self.layout = Layout(
            users=max(opts.users, *opts.idle) if opts.idle else opts.users,
            room_size=opts.room_size,
            history_messages=opts.history_messages,
        )
        self.data_dir = opts.data_dir or work / "data"
        self.tokens: dict[str, str] = {}
        self.started = time.monotonic()

    # set-up ----------------------------------------------------------------------------------------
    def prepare(self) -> dict[str, Any]:
        timings: dict[str, Any] = {}
        if "real" in self.opts.kinds:
            if not (self.data_dir / "chat.db").exists():
                timings = servers.seed(self.data_dir, self.layout)
            ids = [servers.user_id(i) for i in range(self.layout.users)] + [HISTORY_USER]
            self.tokens = servers.mint_tokens(self.data_dir, ids)
        return timings

    def auth(self, kind: str, i: int) -> dict[str, Any]:
        uid = servers.user_id(i)
        if kind == "real":
            return {"token": self.tokens[uid]}
        return {"user": uid, "rooms": [self.layout.room_of(i)]}

    def specs(self, kind: str, count: int) -> list[Spec]:
        return [(servers.user_id(i), self.layout.room_of(i), self.auth(kind, i)) for i in range(count)]

    def start(self, kind: str, label: str) -> ServerProcess:
        log = self.work / f"{kind}-{label}.log"
        if kind == "real":
            return servers.start_real(self.data_dir, log, profile=self.opts.profile if label == "main" else None)
        return servers.start_reference(log, self.opts.history_messages)

    # scenarios -------------------------------------------------------------------------------------
    async def _single(self, server: ServerProcess, auth: dict[str, Any]) -> tuple[aiohttp.ClientSession, LeanClient]:
        session = aiohttp.ClientSession()
        client = LeanClient(session)
        await client.connect(server.url, auth)
        return session, client

    async def ack(self, server: ServerProcess, kind: str) -> dict[str, Any]:
        """One client, alone, sends `ack_calls` messages one after another, `ack_interval` apart."""
        session, client = await self._single(server, self.auth(kind, 0))
        room = self.layout.room_of(0)
        latencies: list[float] = []
        failures = 0
        cpu0 = server.cpu_seconds()
        t0 = time.monotonic()
        try:
            for k in range(self.opts.ack_calls):
                start = time.monotonic()
                payload = {"room_id": room, "text": f"ack {k}", "client_msg_id": f"ack-{os.getpid()}-{time.time_ns()}"}
                answer = await client.call("send_message", payload)
                latencies.append(time.monotonic() - start)
                if not (isinstance(answer, dict) and answer.get("ok") and answer["message"]["seq"] > 0):
                    failures += 1
                await asyncio.sleep(self.opts.ack_interval)
        finally:
            await client.close()
            await session.close()
        wall = time.monotonic() - t0
        cpu = server.cpu_seconds() - cpu0
        return {
            **ms_summary(latencies),
            "failures": failures,
            "server_cpu_share": cpu / wall,
            # CPU per message (the socket's connect and close included, over 300 sends: a few %).
            "server_cpu_ms_per_message": cpu / max(1, len(latencies)) * 1000,
        }

    async def history(self, server: ServerProcess, kind: str) -> dict[str, Any]:
        """`get_history` of the newest 50 of the history room, `history_calls` times, one after another."""
        auth: dict[str, Any] = {"user": HISTORY_USER, "rooms": [HISTORY_ROOM]}
        if kind == "real":
            auth = {"token": self.tokens[HISTORY_USER]}
        session, client = await self._single(server, auth)
        latest: list[float] = []
        deep: list[float] = []
        failures = 0
        rng = __import__("random").Random(7)
        cpu0 = server.cpu_seconds()
        try:
            for k in range(self.opts.history_calls):
                payload: dict[str, Any] = {"room_id": HISTORY_ROOM, "limit": 50}
                if k % 2 and kind == "real":  # every other call: a page at a random depth (real server only)
                    payload["before_seq"] = rng.randint(51, self.opts.history_messages)
                start = time.monotonic()
                answer = await client.call("get_history", payload)
                (deep if "before_seq" in payload else latest).append(time.monotonic() - start)
                if not (isinstance(answer, dict) and answer.get("ok") and len(answer["messages"]) == 50):
                    failures += 1
        finally:
            await client.close()
            await session.close()
        cpu = server.cpu_seconds() - cpu0
        result: dict[str, Any] = {**ms_summary(latest), "failures": failures}
        result["server_cpu_ms_per_call"] = cpu / max(1, len(latest) + len(deep)) * 1000
        result["room_messages"] = self.opts.history_messages
        if deep:
            result["random_depth"] = ms_summary(deep)
        return result

    def fanout(self, up: dict[str, ServerProcess], after_stop: list[Generator]) -> dict[str, dict[str, Any]]:
        """Every server's fan-out, run side by side: each has its users connected the whole time, and the steps
        take turns (reference, then real, rate after rate), so a spell of load from elsewhere on the host falls on
        both servers' steps alike rather than on whichever happened to be running."""
        opts = self.opts
        gens: dict[str, Generator] = {}
        connected: dict[str, dict[str, Any]] = {}
        for kind, server in up.items():
            gen = Generator(server.url, self.specs(kind, opts.users), opts.workers)
            after_stop.append(gen)  # closed after the server: thousands of goodbyes would cost it more than a stop
            gens[kind] = gen
            connected[kind] = gen.connect(opts.users)
            if connected[kind]["connected"] != opts.users:
                done = connected[kind]
                raise RuntimeError(f"{kind}: only {done['connected']} of {opts.users} connected: {done['errors']}")
        time.sleep(opts.settle_seconds)  # presence and bot work after the connects settle
        steps: dict[str, list[dict[str, Any]]] = {kind: [] for kind in up}
        while True:
            moved = False
            for kind, server in up.items():
                move = next_step(opts, steps[kind])
                if move is None:
                    continue
                moved = True
                for each in up.values():  # the step before (the other server's) has quite finished
                    settle(each)
                rate, attempt = move
                step = self._fanout_step(gens[kind], server, len(steps[kind]), rate)
                step["attempt"] = attempt
                steps[kind].append(step)
                print(report.step_line(kind, step), flush=True)
            if not moved:
                break
        return {
            kind: {"connect_seconds": connected[kind]["seconds"], "steps": steps[kind], **saturation(steps[kind])}
            for kind in up
        }

    def _fanout_step(self, gen: Generator, server: ServerProcess, number: int, rate: float) -> dict[str, Any]:
        opts = self.opts
        n = len(gen.pipes)
        gen.broadcast("begin", number)
        gcpu0, scpu0, t0 = gen.cpu(), server.cpu_seconds(), time.monotonic()
        sends = gen.call_all("send", [(number, rate / n, opts.step_seconds)] * n)
        expected: dict[str, list[str]] = defaultdict(list)
        for result in sends:
            for cmid, room in result["acked"]:
                expected[room].append(cmid)
        collected = gen.broadcast("collect", dict(expected), 30.0)
        wall = time.monotonic() - t0
        gcpu, scpu = gen.cpu() - gcpu0, server.cpu_seconds() - scpu0
        latencies = [x for c in collected for x in c["latencies"]]
        ack_latencies = [x for s in sends for x in s["ack_latencies"]]
        send_seconds = max(s["send_seconds"] for s in sends)
        received = sum(c["received"] for c in collected)
        # Delivered per second: the deliveries of the step over the time from the first send to the last delivery.
        span = max(send_seconds, opts.step_seconds) + max(0.0, percentile(latencies, 100) if latencies else 0.0)
        return {
            "offered_msgs_per_s": rate,
            "started_s": t0 - self.started,  # since the run began (the steps of the two servers take turns)
            "offered_deliveries_per_s": rate * opts.room_size,
            "sent": sum(s["sent"] for s in sends),
            "acked": sum(len(s["acked"]) for s in sends),
            "failed": sum(s["failed"] for s in sends),
            "failures": [f for s in sends for f in s["failures"]][:5],
            "expected_deliveries": sum(c["expected"] for c in collected),
            "delivered": received,
            "delivered_per_s": received / span,
            "lost": sum(c["lost"] for c in collected),
            "duplicated": sum(c["duplicates"] for c in collected),
            "unexpected": sum(c["unexpected"] for c in collected),
            "foreign_room": sum(c["foreign"] for c in collected),
            "out_of_order": sum(c["out_of_order"] for c in collected),
            **ms_summary(latencies),
            "ack_p50_ms": percentile(ack_latencies, 50) * 1000,
            "ack_p99_ms": percentile(ack_latencies, 99) * 1000,
            "wall_s": wall,
            "generator_cpu_s": gcpu,
            "generator_cpu_share": gcpu / wall,  # in cores: 1.0 = one core busy all the time
            "server_cpu_s": scpu,
            "server_cpu_share": scpu / wall,
            # CPU time per delivery: unlike latency, barely moved by other load on the machine.
            "generator_cpu_us_per_delivery": gcpu / max(1, received) * 1e6,
            "server_cpu_us_per_delivery": scpu / max(1, received) * 1e6,
        }

    def idle(self, kind: str) -> dict[str, Any]:
        opts = self.opts
        server = self.start(kind, "idle")
        levels: list[dict[str, Any]] = []
        gen: Generator | None = None
        try:
            settle(server)
            base = server.rss_bytes()
            gen = Generator(server.url, self.specs(kind, max(opts.idle)), opts.workers)
            for level in sorted(opts.idle):
                connected = gen.connect(level)
                settle(server)
                rss = server.rss_bytes()
                levels.append(
                    {
                        "connections": connected["connected"],
                        "connect_seconds": connected["seconds"],
                        "errors": connected["errors"][:3],
                        "rss_mib": rss / 2**20,
                        "per_connection_kib": (rss - base) / max(1, connected["connected"]) / 1024,
                    }
                )
                print(
                    f"  {kind:9} idle {connected['connected']:>5} connections: "
                    f"{levels[-1]['per_connection_kib']:.1f} KiB each",
                    flush=True,
                )
        finally:
            server.stop()
            if gen is not None:
                gen.close()
        return {"baseline_rss_mib": base / 2**20, "levels": levels}

    # the whole run ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        opts = self.opts
        started = time.time()
        nofile = raise_nofile()
        t_seed = time.monotonic()
        seed_timings = self.prepare()
        results: dict[str, Any] = {kind: {} for kind in opts.kinds}
        bench_cpu0 = cpu_seconds()
        wanted = [s for s in ("ack", "history", "fanout") if s in opts.scenarios]
        if wanted:
            up: dict[str, ServerProcess] = {}
            generators: list[Generator] = []
            try:
                for kind in opts.kinds:
                    up[kind] = self.start(kind, "main")
                for kind, server in up.items():
                    settle(server)
                    results[kind]["server_start_rss_mib"] = server.rss_bytes() / 2**20
                    if "ack" in wanted:
                        results[kind]["ack"] = asyncio.run(self.ack(server, kind))
                        ack = results[kind]["ack"]
                        print(
                            f"  {kind:9} send ack  p50 {ack['p50_ms']:.2f} ms  p99 {ack['p99_ms']:.2f} ms  "
                            f"server CPU {ack['server_cpu_ms_per_message']:.2f} ms/message",
                            flush=True,
                        )
                    if "history" in wanted:
                        results[kind]["history"] = asyncio.run(self.history(server, kind))
                        hist = results[kind]["history"]
                        print(
                            f"  {kind:9} history   p50 {hist['p50_ms']:.2f} ms  p99 {hist['p99_ms']:.2f} ms  "
                            f"server CPU {hist['server_cpu_ms_per_call']:.2f} ms/call",
                            flush=True,
                        )
                if "fanout" in wanted:
                    for kind, fanned in self.fanout(up, generators).items():
                        results[kind]["fanout"] = fanned
            finally:
                for server in up.values():
                    server.stop()
                for gen in generators:
                    gen.close()
        if "idle" in opts.scenarios:
            for kind in opts.kinds:
                results[kind]["idle"] = self.idle(kind)
        return {
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": time.time() - started,
            "machine": {
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "note": "generator and servers on the same machine",
                "nofile": nofile,
            },
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
            "real_server_env": BENCH_ENV,
            "seed": {**seed_timings, "total_s": time.monotonic() - t_seed},
            "bench_parent_cpu_s": cpu_seconds() - bench_cpu0,
            "results": results,
            "summary": report.summary(results),
        }


BOUND_MS = 100.0  # the saturation bound: p99 send→deliver


def within_bound(step: dict[str, Any]) -> bool:
    return bool(step["p99_ms"] < BOUND_MS and not step["lost"] and not step["duplicated"] and not step["failed"])


def next_step(opts: Options, steps: list[dict[str, Any]]) -> tuple[float, int] | None:
    """The fan-out's next (offered rate, attempt), or None when it is over. In order: `rates`; a step over the bound
    again (up to `retries` times) until the first rate that stays over it; past the last of `rates`, while nothing
    broke the bound, a rate `grow` times higher (at least 20 msg/s more, at most `max_rate`). It ends at a step
    that lost or failed a message or had a p99 past `stop_p99_ms`."""
    if not steps:
        return (opts.rates[0], 1) if opts.rates else None
    last = steps[-1]
    rate, attempt = last["offered_msgs_per_s"], last["attempt"]
    if last["lost"] or last["failed"]:
        return None
    before = steps[: len(steps) - attempt]  # the steps of the earlier rates
    if not within_bound(last) and attempt <= opts.retries and not saturation(before)["saturation_reached"]:
        return rate, attempt + 1
    if last["p99_ms"] > opts.stop_p99_ms:
        return None
    position = sum(1 for s in steps if s["attempt"] == 1)
    if position < len(opts.rates):
        return opts.rates[position], 1
    if saturation(steps)["saturation_reached"]:
        return None
    following = max(rate + 20, round(rate * opts.grow / 10) * 10)
    return (following, 1) if following <= opts.max_rate else None


def saturation(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest offered rate below the first one that broke the bound (p99 under 100 ms, nothing lost,
    duplicated or failed) in every attempt. `saturation_reached` is false when no rate broke it: the server's
    saturation is then above the highest rate tried (`--max-rate`), and only a lower bound is known."""
    by_rate: dict[float, list[dict[str, Any]]] = {}
    for step in steps:
        by_rate.setdefault(step["offered_msgs_per_s"], []).append(step)
    best: dict[str, Any] | None = None
    reached = False
    for rate in sorted(by_rate):
        good = [s for s in by_rate[rate] if within_bound(s)]
        if not good:
            reached = True
            break
        best = min(good, key=lambda s: s["p99_ms"])
    if best is None:
        return {"saturation_msgs_per_s": 0.0, "saturation_deliveries_per_s": 0.0, "saturation_reached": reached}
    return {
        "saturation_msgs_per_s": best["offered_msgs_per_s"],
        "saturation_deliveries_per_s": best["delivered_per_s"],
        "saturation_offered_deliveries_per_s": best["offered_deliveries_per_s"],
        "saturation_reached": reached,
    }


def settle(server: ServerProcess, quiet: float = 0.05, window: float = 0.5, limit: float = 20.0) -> None:
    """Wait until the server uses under `quiet` of a core over `window` seconds (or `limit` seconds pass)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        c0 = server.cpu_seconds()
        time.sleep(window)
        if (server.cpu_seconds() - c0) / window < quiet:
            return


def _numbers(kind: type[float] | type[int]) -> Any:
    """An argparse type: a comma-separated list of positive numbers (an empty list is allowed here)."""

    def parse(text: str) -> tuple[float, ...] | tuple[int, ...]:
        try:
            values = tuple(kind(x) for x in text.split(",") if x.strip())
        except ValueError:
            raise argparse.ArgumentTypeError("a comma-separated list of numbers, e.g. 10,20,40") from None
        if any(v <= 0 for v in values):
            raise argparse.ArgumentTypeError("every number must be above 0")
        return values

    return parse


def parse_args(argv: list[str] | None = None) -> Options:
    d = Options()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--users", type=int, default=d.users, help="fan-out: connected users (default %(default)s)")
    p.add_argument("--room-size", type=int, default=d.room_size, help="fan-out: users per room (default %(default)s)")
    p.add_argument(
        "--rates",
        type=_numbers(float),
        default=",".join(f"{r:g}" for r in d.rates),
        help="fan-out: offered messages/s, stepped in order (default %(default)s)",
    )
    p.add_argument("--step-seconds", type=float, default=d.step_seconds, help="fan-out: seconds per rate")
    p.add_argument("--stop-p99-ms", type=float, default=d.stop_p99_ms, help="fan-out: stop stepping past this p99")
    p.add_argument(
        "--grow",
        type=float,
        default=d.grow,
        help="fan-out: past the last rate, grow the rate by this factor until p99 reaches 100 ms (default %(default)s)",
    )
    p.add_argument(
        "--max-rate", type=float, default=d.max_rate, help="fan-out: highest rate searched (default %(default)s)"
    )
    p.add_argument(
        "--retries", type=int, default=d.retries, help="fan-out: runs of a step over the bound before it counts"
    )
    p.add_argument(
        "--idle",
        type=_numbers(int),
        default=",".join(map(str, d.idle)),
        help="idle: connection counts (default %(default)s)",
    )
    p.add_argument("--history-messages", type=int, default=d.history_messages, help="history: room size")
    p.add_argument("--history-calls", type=int, default=d.history_calls)
    p.add_argument("--ack-calls", type=int, default=d.ack_calls)
    p.add_argument("--ack-interval", type=float, default=d.ack_interval, help="send ack: pause between sends (s)")
    p.add_argument("--workers", type=int, default=d.workers, help="generator processes (default %(default)s)")
    p.add_argument("--scenarios", default=",".join(d.scenarios), help="subset of " + ",".join(SCENARIOS))
    p.add_argument("--servers", default=",".join(d.kinds), help="subset of reference,real")
    p.add_argument("--out", type=Path, default=d.out, help="where results.json and latency.png go")
    p.add_argument("--data-dir", type=Path, help="reuse a data dir seeded by an earlier run (same sizes)")
    p.add_argument("--no-png", action="store_true")
    p.add_argument("--profile", type=Path, help="profile the real server (pyinstrument text report to this file)")
    a = p.parse_args(argv)
    scenarios = tuple(s for s in a.scenarios.split(",") if s)
    kinds = tuple(k for k in a.servers.split(",") if k)
    if set(scenarios) - set(SCENARIOS) or set(kinds) - set(KINDS):
        p.error("unknown scenario or server")
    if "fanout" in scenarios and not a.rates:
        p.error("--rates: give at least one rate for the fan-out")
    if "idle" in scenarios and not a.idle:
        p.error("--idle: give at least one connection count")
    if a.rates and a.max_rate < max(a.rates):
        p.error(f"--max-rate ({a.max_rate:g}) is below the highest of --rates ({max(a.rates):g})")
    if a.retries < 0:
        p.error("--retries: 0 or more")
    if a.grow <= 1:
        p.error("--grow: above 1 (each searched rate is this many times the last)")
    if a.step_seconds <= 0 or a.users < 1 or a.room_size < 1 or a.workers < 1:
        p.error("--step-seconds, --users, --room-size and --workers must be above 0")
    if a.history_messages <= 50 or a.history_calls < 1 or a.ack_calls < 1:
        p.error("--history-messages must be above 50 (pages of 50), --history-calls and --ack-calls above 0")
    return Options(
        users=a.users,
        room_size=a.room_size,
        rates=a.rates,
        step_seconds=a.step_seconds,
        stop_p99_ms=a.stop_p99_ms,
        grow=a.grow,
        max_rate=a.max_rate,
        retries=a.retries,
        idle=a.idle,
        history_messages=a.history_messages,
        history_calls=a.history_calls,
        ack_calls=a.ack_calls,
        ack_interval=a.ack_interval,
        workers=a.workers,
        scenarios=scenarios,
        kinds=kinds,
        out=a.out,
        data_dir=a.data_dir,
        png=not a.no_png,
        profile=a.profile,
    )


def run(opts: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        data = Bench(opts, Path(tmp)).run()
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "results.json").write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    print(report.table(data))
    if opts.png:
        report.plot(data, opts.out / "latency.png")
    return data


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0

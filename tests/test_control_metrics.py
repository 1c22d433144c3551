"""Prometheus metrics on /metrics: the API key, a real call, the lag probe, the dashboard."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from control.app import create_app
from control.metrics import LAG_TASK_NAME, METRICS_KEY, EventLoopLag
from tests.control_fakes import API_KEY, FakeSfu, Harness, make_settings, running_app
from tests.servers import RunningServer, running_server
from tests.test_sfu_call import join, receiving, wait_for

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana-dashboard.json"

Families = dict[str, Metric]


def parse(text: str) -> Families:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families: Families, sample_name: str, **labels: str) -> float:
    """The sum of the samples called `sample_name` whose labels include `labels`."""
    family_name = re.sub(r"_(total|bucket|count|sum|created)$", "", sample_name)
    family = families.get(family_name) or families[sample_name]
    matching = [
        s.value
        for s in family.samples
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert matching, f"no sample {sample_name} {labels}"
    return sum(matching)


def exported_names(families: Families) -> set[str]:
    """Every series name a PromQL expression may use, also of families without samples yet."""
    names = {sample.name for family in families.values() for sample in family.samples}
    for family in families.values():
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
    return names


async def scrape_harness(harness: Harness) -> Families:
    response = await harness.client.get("/metrics", headers=harness.auth)
    assert response.status == 200
    return parse(await response.text())


async def scrape_server(server: RunningServer) -> Families:
    headers = {"Authorization": f"Bearer {server.settings.api_key}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.base_url}/metrics", headers=headers) as response,
    ):
        assert response.status == 200
        return parse(await response.text())


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-key", f"Basic {API_KEY}", f"Bearer {API_KEY}x"],
)
async def test_metrics_need_the_api_key(tmp_path: Path, authorization: str | None) -> None:
    async with running_app(tmp_path) as harness:
        headers = {} if authorization is None else {"Authorization": authorization}
        response = await harness.client.get("/metrics", headers=headers)
        assert response.status == 401
        body = await response.json()
        assert body["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "balie_" not in json.dumps(body)


async def test_metrics_with_the_key_are_prometheus_text_with_a_worker_label_everywhere(
    tmp_path: Path,
) -> None:
    async with running_app(tmp_path) as harness:
        response = await harness.client.get("/metrics", headers=harness.auth)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        assert response.headers["Cache-Control"] == "no-store"
        families = parse(await response.text())
    expected = {
        "balie_rooms": "gauge",
        "balie_participants": "gauge",
        "balie_published_tracks": "gauge",
        "balie_subscribed_tracks": "gauge",
        "balie_packets_in": "counter",
        "balie_bytes_in": "counter",
        "balie_rtx_packets_in": "counter",
        "balie_packets_out": "counter",
        "balie_bytes_out": "counter",
        "balie_retransmissions": "counter",
        "balie_nacks_received": "counter",
        "balie_nacks_sent": "counter",
        "balie_keyframe_requests": "counter",
        "balie_layer_switches": "counter",
        "balie_packets_dropped": "counter",
        "balie_event_loop_lag_seconds": "histogram",
        "balie_event_loop_lag_max_seconds": "gauge",
        "balie_worker_cpu_seconds": "counter",
        "balie_worker_resident_memory_bytes": "gauge",
    }
    assert {name: families[name].type for name in expected if name in families} == expected
    for family in families.values():
        for sample in family.samples:
            assert sample.labels.get("worker") == "0", sample
    assert value(families, "balie_worker_cpu_seconds_total") > 0
    assert value(families, "balie_worker_resident_memory_bytes") > 1_000_000


async def test_counters_and_gauges_come_from_the_sfu_at_scrape_time(tmp_path: Path) -> None:
    sfu = FakeSfu()
    async with running_app(tmp_path, sfu=sfu) as harness:
        before = await scrape_harness(harness)
        assert value(before, "balie_packets_in_total") == 0
        assert before["balie_packets_dropped"].samples == []
        sfu.media_counters.packets_in = 120
        sfu.media_counters.bytes_out = 9000
        sfu.media_counters.dropped.update({"not_subscribed": 3, "layer_not_selected": 5})
        after = await scrape_harness(harness)
    assert value(after, "balie_packets_in_total") == 120
    assert value(after, "balie_bytes_out_total") == 9000
    dropped = {s.labels["reason"]: s.value for s in after["balie_packets_dropped"].samples}
    assert dropped == {"not_subscribed": 3, "layer_not_selected": 5}


async def test_the_worker_label_is_the_one_passed_to_create_app(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), FakeSfu(), worker="3")
    families = parse(app[METRICS_KEY].exposition().decode())
    assert value(families, "balie_participants", worker="3") == 0
    assert value(families, "balie_worker_cpu_seconds_total", worker="3") > 0


def test_each_application_has_its_own_registry_and_not_the_global_default(
    tmp_path: Path,
) -> None:
    first = create_app(make_settings(tmp_path), FakeSfu())
    second = create_app(make_settings(tmp_path), FakeSfu())  # no duplicate-series error
    assert first[METRICS_KEY].registry is not second[METRICS_KEY].registry
    assert isinstance(first[METRICS_KEY].registry, CollectorRegistry)
    assert not any(name.startswith("balie_") for name in REGISTRY._names_to_collectors)


def test_the_lag_maximum_covers_only_the_last_ten_seconds() -> None:
    lag = EventLoopLag(CollectorRegistry(), "0")
    lag.record(0.5, now=100.0)
    lag.record(0.02, now=105.0)
    assert lag.max_lag(now=109.0) == 0.5
    assert lag.max_lag(now=111.0) == 0.02
    assert lag.max_lag(now=120.0) == 0.0


async def test_a_blocked_event_loop_shows_in_the_lag_histogram_and_maximum(
    tmp_path: Path,
) -> None:
    async with running_app(tmp_path) as harness:
        await asyncio.sleep(0.15)  # the probe is asleep now
        time.sleep(0.3)  # noqa: ASYNC251 -- blocking the loop on purpose
        await asyncio.sleep(0.05)  # let the probe wake up and record
        families = await scrape_harness(harness)
    assert value(families, "balie_event_loop_lag_max_seconds") >= 0.15
    assert value(families, "balie_event_loop_lag_seconds_count") >= 1
    assert value(families, "balie_event_loop_lag_seconds_bucket", le="0.1") < value(
        families, "balie_event_loop_lag_seconds_bucket", le="+Inf"
    )


async def test_no_task_is_left_running_after_the_application_cleanup(tmp_path: Path) -> None:
    def lag_tasks() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == LAG_TASK_NAME]

    async with running_app(tmp_path) as harness:
        metrics = harness.client.app[METRICS_KEY]
        assert len(lag_tasks()) == 1
        task = metrics.lag_task
        assert task is not None and not task.done()
    assert task.cancelled()
    assert metrics.lag_task is None
    assert lag_tasks() == []


# PromQL words that are not metric names.
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
_PROMQL_WORDS |= {"and", "or", "unless", "offset"}


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"[^"]*"', "", expr)  # label values, legend strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = match.group()
        if word in _PROMQL_WORDS or expr[match.end() :].lstrip().startswith("("):
            continue  # a keyword or a function call
        names.add(word)
    return names


def test_metric_names_in_finds_the_selected_series() -> None:
    expr = 'histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="y"}[$__rate_interval]))) / b'
    assert metric_names_in(expr) == {"a_bucket", "b"}


async def test_every_dashboard_expression_uses_only_metrics_that_are_exported(
    tmp_path: Path,
) -> None:
    sfu = FakeSfu()
    sfu.media_counters.dropped["not_subscribed"] = 1
    async with running_app(tmp_path, sfu=sfu) as harness:
        exported = exported_names(await scrape_harness(harness))

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    used: set[str] = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names_in(target["expr"])
            assert names, (panel["title"], target["expr"])
            assert names <= exported, (panel["title"], names - exported)
            used |= names
    balie_families = {
        name for name in exported if name.startswith("balie_") and not name.endswith("_created")
    }
    # Every family is on the dashboard (histograms through their buckets).
    for name in balie_families:
        family = re.sub(r"_(bucket|count|sum)$", "", name)
        assert name in used or any(u.startswith(family) for u in used), name


@pytest.mark.media
async def test_during_a_real_call_metrics_count_the_media_and_never_go_down(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path) as server:
        a = await join(server, "metrics", "a")
        b = await join(server, "metrics", "b")
        try:
            await wait_for(
                lambda: receiving(a, b, "video") and receiving(b, a, "video"), 10, "video"
            )
            first = await scrape_server(server)
            assert value(first, "balie_participants") == 2
            assert value(first, "balie_rooms") == 1
            assert value(first, "balie_published_tracks") == 4
            assert value(first, "balie_subscribed_tracks") == 4
            deadline = time.monotonic() + 10
            while True:
                await asyncio.sleep(0.3)
                second = await scrape_server(server)
                rose = all(
                    value(second, name) > value(first, name)
                    for name in (
                        "balie_packets_in_total",
                        "balie_packets_out_total",
                        "balie_bytes_in_total",
                        "balie_bytes_out_total",
                    )
                )
                if rose:
                    break
                assert time.monotonic() < deadline, "packet counters did not rise"
            dropped = second["balie_packets_dropped"]
            assert dropped.type == "counter"
            for sample in dropped.samples:
                assert sample.name == "balie_packets_dropped_total"
                assert sample.labels["reason"] and sample.labels["worker"] == "0"
                assert sample.value >= 0
            assert value(second, "balie_event_loop_lag_seconds_count") > 0
            assert value(second, "balie_event_loop_lag_max_seconds") >= 0
        finally:
            await a.close()
            await b.close()

        await wait_for(lambda: server.sfu.gauges()["participants"] == 0, 10, "participants gone")
        after = await scrape_server(server)
        assert value(after, "balie_participants") == 0
        assert value(after, "balie_rooms") == 0
        for family in second.values():
            if family.type != "counter":
                continue
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                later = value(after, sample.name, **sample.labels)
                assert later >= sample.value, (sample.name, sample.labels)

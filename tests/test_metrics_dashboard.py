"""The Grafana dashboard and the Prometheus config under deploy/ match what the services expose.

Metric names come from the services' own registries, built by their composition roots, so a
renamed metric breaks this test rather than a panel in production.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from backfill_api.observability import ApiMetrics
from backfill_bus import Names
from backfill_projector.metrics import ProjectorMetrics
from backfill_readmodel.engine import create_engine
from backfill_sim import SimSource
from backfill_worker import Worker, WorkerSettings

DEPLOY = Path(__file__).parent.parent / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "backfill.json"
# Words of PromQL that are not metric names.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "topk", "bottomk", "clamp_min", "clamp_max", "abs", "label_values",
}  # fmt: skip
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}
PROMETHEUS_OWN = {"up"}


def exposed(registries: Iterable[CollectorRegistry]) -> tuple[set[str], set[str]]:
    """(series names, family names) of every metric the registries expose."""
    series: set[str] = set()
    families: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            families.add(family.name)
            series.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return series, families


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    return set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)) - PROMQL_WORDS


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


async def test_every_panel_queries_only_metrics_the_services_expose(
    redis_url: str, tmp_path: Path
) -> None:
    redis = Redis.from_url(redis_url)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        api = ApiMetrics()
        api.watch(redis, engine, Names())  # as the API's lifespan does
        worker = Worker(WorkerSettings(redis_url=redis_url, worker_id="w"), SimSource())
        series, families = exposed(
            [api.registry, ProjectorMetrics().registry, worker.metrics.registry]
        )
        await worker.redis.aclose()
    finally:
        await redis.aclose()
        await engine.dispose()

    dashboard = json.loads(DASHBOARD.read_text())
    used: dict[str, set[str]] = {}
    for panel in panels(dashboard):
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            for name in metric_names(target["expr"]):
                used.setdefault(name, set()).add(panel["title"])
    unknown = set(used) - series - PROMETHEUS_OWN
    assert not unknown, f"panels query metrics no service exposes: {unknown}"
    # And the other way round: every figure of ours is on the dashboard.
    ours = {name for name in families if name.startswith("backfill_")}
    shown = {family for family in ours if any(name.startswith(family) for name in used)}
    assert shown == ours, f"metrics without a panel: {ours - shown}"
    for figure in (
        "backfill_jobs",
        "backfill_chunk_duration_seconds_bucket",
        "backfill_bars_stored_total",
        "backfill_pacing_wait_seconds_sum",
        "backfill_stream_length",
        "backfill_stream_group_pending",
        "backfill_stream_group_lag",
        "backfill_dead_letters_total",
    ):
        assert figure in used, figure


def test_the_dashboard_is_a_grafana_dashboard_with_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "backfill"
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_prometheus_scrapes_the_api_and_every_replica_by_dns() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    found = {
        (name, sd["port"])
        for job in jobs.values()
        for sd in job["dns_sd_configs"]
        for name in sd["names"]
        if sd["type"] == "A"
    }
    assert found == {
        ("api", 8000),
        ("projector", 9100),
        ("sim-worker", 9100),
        ("yahoo-worker", 9100),
        ("ibkr-worker", 9100),
    }
    grafana = DEPLOY / "grafana" / "provisioning"
    source = yaml.safe_load((grafana / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((grafana / "dashboards" / "backfill.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"

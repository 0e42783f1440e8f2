"""Prometheus metrics. Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py)
makes every worker write to a shared directory and /metrics sums them."""
from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("smsguard_http_requests_total", "HTTP requests by endpoint, method and status",
                   ["endpoint", "method", "status"])
LATENCY = Histogram("smsguard_http_request_seconds", "HTTP request latency by endpoint", ["endpoint"],
                    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
VERDICTS = Counter("smsguard_verdicts_total", "Verdicts given, by source and outcome", ["source", "verdict"])
RULE_RELOAD_ERRORS = Counter("smsguard_rule_reload_errors_total", "Rule files that failed to load")
RULES_LOADED = Gauge("smsguard_rules_info", "The ruleset in force (value 1)", ["version"],
                     multiprocess_mode="liveall")


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST

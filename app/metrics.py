"""Prometheus metrics. Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py)
makes every worker write to a shared directory and /metrics sums them."""
from __future__ import annotations

import functools
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
RULES_RELOAD_FAILING = Gauge("smsguard_rules_reload_failing",
                             "1 while the rule files on disk fail to load or fail their self-tests "
                             "(the last good rules stay in force)", multiprocess_mode="max")
RULES_LOADED = Gauge("smsguard_rules_info", "The ruleset in force (value 1)", ["version"],
                     multiprocess_mode="liveall")
MODEL_LOADED = Gauge("smsguard_model_info", "The model in force in each worker (value 1; 'none' without one)",
                     ["version"], multiprocess_mode="liveall")
MODEL_SWITCHES = Counter("smsguard_model_switches_total", "Promoted models put in force (summed over workers)")
MODEL_SWITCH_ERRORS = Counter("smsguard_model_switch_errors_total",
                              "Promoted models refused (unreadable, mismatched or corrupt; the model in force stays)")
MODEL_SWITCH_FAILING = Gauge("smsguard_model_switch_failing",
                             "1 while the promoted model is refused by a worker (the model in force stays)",
                             multiprocess_mode="max")


# Every request updates these: the labelled children are looked up once per label set, not on
# each request (``labels()`` takes a lock and builds the key each time). The label sets are few
# (routes x methods x statuses; sources x verdicts); the caches are bounded all the same.

@functools.lru_cache(maxsize=1024)
def request_metrics(endpoint: str, method: str, status: int):
    """(the request counter, the latency histogram) of one route, method and status."""
    return REQUESTS.labels(endpoint, method, str(status)), LATENCY.labels(endpoint)


@functools.lru_cache(maxsize=64)
def verdict_counter(source: str, verdict: str):
    """smsguard_verdicts_total of one source (presend, moderate) and verdict."""
    return VERDICTS.labels(source, verdict)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def watch_rules(moderator) -> None:
    """Count failed rule reloads (smsguard_rule_reload_errors_total, a broken file or failing
    self-tests), flag a failing state (smsguard_rules_reload_failing) and show the ruleset in
    force (smsguard_rules_info), through the engine's reload listeners (the engine stays free
    of prometheus). Once per engine, however many apps share it."""
    manager = getattr(moderator, "manager", None)
    if manager is None or not hasattr(manager, "listeners") or getattr(manager, "_metrics_wired", False):
        return
    RULES_LOADED.labels(manager.version).set(1)

    def on_event(event: str, info: dict) -> None:
        if event == "error":
            RULE_RELOAD_ERRORS.inc()
            RULES_RELOAD_FAILING.set(1)
        elif event == "recovered":
            RULES_RELOAD_FAILING.set(0)
        elif event == "reloaded":
            RULES_RELOAD_FAILING.set(0)
            RULES_LOADED.labels(info["old_version"]).set(0)
            RULES_LOADED.labels(info["version"]).set(1)

    manager.listeners.append(on_event)
    manager._metrics_wired = True


def watch_model(moderator) -> None:
    """The model in force (smsguard_model_info), switches to a promoted model and refusals
    (smsguard_model_switches_total, smsguard_model_switch_errors_total,
    smsguard_model_switch_failing), through the engine's model listeners. Once per engine."""
    listeners = getattr(moderator, "model_listeners", None)
    if listeners is None or getattr(moderator, "_model_metrics_wired", False):
        return
    MODEL_LOADED.labels(moderator.model_version or "none").set(1)
    if getattr(moderator, "model_last_error", None):
        MODEL_SWITCH_FAILING.set(1)

    def on_event(event: str, info: dict) -> None:
        if event == "error":
            MODEL_SWITCH_ERRORS.inc()
            MODEL_SWITCH_FAILING.set(1)
        elif event == "recovered":
            MODEL_SWITCH_FAILING.set(0)
        elif event == "switched":
            MODEL_SWITCHES.inc()
            MODEL_SWITCH_FAILING.set(0)
            MODEL_LOADED.labels(info.get("old_version") or "none").set(0)
            MODEL_LOADED.labels(info.get("version") or "none").set(1)

    listeners.append(on_event)
    moderator._model_metrics_wired = True

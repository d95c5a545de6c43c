"""kopf's line per retry of a failing watch becomes one line at the failure and one at the
recovery."""

from __future__ import annotations

import logging

from resilient_operator.runtime.logs import KOPF_WATCH_LOGGER, QuietRetries

URL = ("https://127.0.0.1:6443/api/v1/pods?watch=true&allowWatchBookmarks=true"
       "&resourceVersion=487&timeoutSeconds=600")


def record(level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord(KOPF_WATCH_LOGGER, level, __file__, 1, msg, None, None)


def shown(records: list[logging.LogRecord]) -> list[tuple[str, str]]:
    f = QuietRetries()
    return [(r.levelname, r.getMessage()) for r in records if f.filter(r)]


def test_an_outage_is_one_line_down_and_one_line_up() -> None:
    error = "ClientConnectorError(ConnectionKey(host='127.0.0.1', port=6443))"
    records = [record(logging.ERROR, f"Request attempt #{n}/9 failed; will retry: GET {URL}"
                                     f" -> {error}") for n in range(1, 9)]
    records += [record(logging.DEBUG, f"Request attempt #9/9: GET {URL}"),
                record(logging.DEBUG, f"Request attempt #9/9 succeeded: GET {URL}"),
                record(logging.DEBUG, "Starting the watch-stream for pods cluster-wide.")]
    assert shown(records) == [
        ("WARNING", f"API server not answering: GET /api/v1/pods (watch): {error}; will retry"),
        ("INFO", "API server answers again: GET /api/v1/pods (watch) (after 8 failed attempts)"),
    ]


def test_giving_up_and_other_messages_pass() -> None:
    last = record(logging.ERROR, f"Request attempt #9/9 failed; escalating: GET {URL} -> boom")
    other = record(logging.WARNING, "Ignoring an unsupported event type: {}")
    assert [m for _, m in shown([last, other])] == [
        "API server not answering: GET /api/v1/pods (watch): boom; escalating",
        "Ignoring an unsupported event type: {}"]


def test_an_expired_watch_says_so() -> None:
    r = record(logging.DEBUG, "Restarting the watch-stream for pods.v1 cluster-wide.")
    assert shown([r]) == [
        ("INFO", "watch pods.v1 cluster-wide expired (410 Gone: resource version too old); "
                 "relisting")]

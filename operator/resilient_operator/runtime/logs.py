"""One log line when the API server stops answering a watch and one when it answers again,
instead of kopf's line per retry (dozens a minute per watched kind during an outage)."""

from __future__ import annotations

import logging
import re

# kopf logs every attempt of a request on the watching module's logger
KOPF_WATCH_LOGGER = "kopf._cogs.clients.watching"
_ATTEMPT = re.compile(
    r"^Request attempt #(?P<n>\d+)(?:/\d+)? (?P<outcome>failed|succeeded)"
    r"(?:; (?P<next>[^:]+))?: (?P<method>[A-Z]+) (?P<url>\S+)(?: -> (?P<error>.*))?$")
_EXPIRED = "Restarting the watch-stream for "


def _what(method: str, url: str) -> str:
    path, _, query = url.partition("?")
    path = "/" + path.split("://", 1)[-1].partition("/")[2]
    return f"{method} {path}" + (" (watch)" if "watch=true" in query else "")


class QuietRetries(logging.Filter):
    """Keeps the first failure of a request and its recovery; drops the retries between."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(_EXPIRED):
            # kopf restarts a watch only on 410 Gone, and relists: worth saying at INFO
            record.msg, record.args = "watch %s expired (410 Gone: resource version too old); "\
                "relisting", (message.removeprefix(_EXPIRED).rstrip("."),)
            record.levelno, record.levelname = logging.INFO, "INFO"
            return True
        m = _ATTEMPT.match(message)
        if m is None:
            return record.levelno >= logging.INFO  # the logger is set to DEBUG for recoveries
        what = _what(m["method"], m["url"])
        if m["outcome"] == "succeeded":
            failed = int(m["n"]) - 1
            record.msg, record.args = "API server answers again: %s (after %d failed %s)", (
                what, failed, "attempt" if failed == 1 else "attempts")
            record.levelno, record.levelname = logging.INFO, "INFO"
            return True
        if m["n"] == "1" or (m["next"] or "").startswith(("escalating", "TCP", "SSL")):
            record.msg, record.args = "API server not answering: %s: %s; %s", (
                what, m["error"] or "closed", m["next"] or "retrying")
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        return False


def quiet_api_retries() -> None:
    """Install the filter (after logging is configured)."""
    logger = logging.getLogger(KOPF_WATCH_LOGGER)
    logger.setLevel(logging.DEBUG)
    logger.addFilter(QuietRetries())

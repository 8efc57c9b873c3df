"""The WSGI app behind ``[http]`` and the waitress server that runs it on its own threads.

Three things are served (DESIGN "HTTP listener"):

- ``POST /hook/{token}/{provider}``: a provider's callback.  A wrong or missing
  token, an unknown provider or one that is not configured here, or a path
  with ``..`` is a plain 404, the same
  for every failure so nothing can be learnt by probing; tokens are compared
  in constant time (:func:`hmac.compare_digest`).  A good one is answered at
  once with what the provider waits for; the hint it carries is handed to
  ``on_hint``, which only *schedules* the poll or the status check (so a
  callback never waits for one).
- ``GET /healthz``: :func:`faxd.web.health.check_health` as JSON, 200 or 503.
- ``GET /metrics``: :class:`faxd.web.metrics.Metrics` in Prometheus text.

The reverse proxy in front strips the ``public_url`` path, so these are served
from the root.  A callback body longer than its provider's limit
(:attr:`ProviderHooks.max_body`: 64 KiB, or 20 MiB for VoIP.ms, whose
callback carries the fax, taken in but never read) is refused (413) by its
declared length before a byte is read, and waitress itself refuses a body
over :data:`MAX_BODY` or a long header; its ``channel_timeout`` drops clients that go silent, so
slow clients hold a connection, never a worker thread or a poll.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import structlog

from faxd.web.hooks import PROVIDERS, Hint
from faxd.web.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from faxd.web.health import Health
    from faxd.web.metrics import Metrics

log = structlog.get_logger(__name__)

#: Largest body waitress takes at all: the largest any provider's callback may have.
MAX_BODY = max(hooks.max_body for hooks in PROVIDERS.values())
#: Largest request header block waitress accepts.
MAX_HEADER = 16 * 1024
#: A refused token is logged at most this often (it is counted every time).
BAD_TOKEN_LOG_SECONDS = 60.0
#: Worker threads: callbacks are answered in microseconds, so a few are plenty.
THREADS = 4
#: Seconds a silent connection is kept (slow headers, slow bodies, idle keep-alive).
CHANNEL_TIMEOUT = 10
#: Connections open at once, at most (more wait in the listen backlog).
CONNECTION_LIMIT = 100

_NOT_FOUND = b"not found\n"


class WebApp:
    """The WSGI callable: routes a request to a callback, ``/healthz`` or ``/metrics``."""

    def __init__(
        self,
        token: str,
        *,
        on_hint: Callable[[str, Hint], None],
        health: Callable[[], Health],
        metrics: Metrics,
        providers: Collection[str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = token.encode("utf-8")
        #: The configured providers that may call back (``None``: every one that can).
        self.providers = frozenset(PROVIDERS if providers is None else providers)
        self.on_hint = on_hint
        self.health = health
        self.metrics = metrics
        self._monotonic = monotonic
        self._log_lock = threading.Lock()
        self._last_bad_log: float | None = None
        self._bad_since_log = 0

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "") or "/"
        parts = [p for p in path.split("/") if p]
        if ".." in path or "\\" in path or "\0" in path:
            self.metrics.refused.labels("bad_path").inc()
            return _answer(start_response, "404 Not Found", _NOT_FOUND)
        if parts == ["healthz"] and method in ("GET", "HEAD"):
            return self._healthz(start_response)
        if parts == ["metrics"] and method in ("GET", "HEAD"):
            return _answer(
                start_response, "200 OK", self.metrics.render(), METRICS_CONTENT_TYPE
            )
        if len(parts) == 3 and parts[0] == "hook" and method == "POST":
            return self._hook(environ, start_response, parts[1], parts[2])
        return _answer(start_response, "404 Not Found", _NOT_FOUND)

    # -- callbacks -------------------------------------------------------------------

    def _hook(
        self, environ: WSGIEnvironment, start_response: StartResponse, token: str, name: str
    ) -> Iterable[bytes]:
        good = hmac.compare_digest(token.encode("utf-8", "surrogateescape"), self._token)
        provider = PROVIDERS.get(name) if name in self.providers else None
        if not good or provider is None:  # a provider not configured here is no different
            self._refuse_token(environ, name)
            return _answer(start_response, "404 Not Found", _NOT_FOUND)
        length = _content_length(environ)
        if length is None or length > provider.max_body:
            self.metrics.refused.labels("too_large").inc()
            return _answer(start_response, "413 Content Too Large", b"too large\n")
        body = environ["wsgi.input"].read(length) if length and provider.reads_body else b""
        hint = provider.pick(body, environ.get("CONTENT_TYPE", ""))
        self.metrics.callbacks.labels(provider.name, hint.kind.value).inc()
        log.debug("http.callback", provider=provider.name, kind=hint.kind.value, ref=hint.ref)
        try:
            self.on_hint(provider.name, hint)
        except Exception:  # a hint that cannot be scheduled waits for the next interval
            log.exception("http.callback_not_scheduled", provider=provider.name)
        reply = provider.reply
        return _answer(start_response, reply.status, reply.body, reply.content_type)

    def _refuse_token(self, environ: WSGIEnvironment, provider: str) -> None:
        """Count the refusal; log it (address, never the token) at most once a minute."""
        self.metrics.refused.labels("bad_token").inc()
        now = self._monotonic()
        with self._log_lock:
            self._bad_since_log += 1
            last = self._last_bad_log
            if last is not None and now - last < BAD_TOKEN_LOG_SECONDS:
                return
            self._last_bad_log, count, self._bad_since_log = now, self._bad_since_log, 0
        log.warning(
            "http.callback_refused",
            client=environ.get("REMOTE_ADDR", "?"),
            provider=provider[:40],
            refused=count,
            hint="a callback with a wrong token or provider; if it is yours, fix its URL "
            "(`faxd check-config` prints it); further refusals are logged once a minute",
        )

    # -- health ----------------------------------------------------------------------

    def _healthz(self, start_response: StartResponse) -> Iterable[bytes]:
        try:
            health = self.health()
        except Exception as exc:  # e.g. the database is gone: that is unhealthy, not a 500
            body = {"status": "failing", "reason": f"health check failed: {type(exc).__name__}"}
            return _json(start_response, "503 Service Unavailable", body)
        status = "200 OK" if health.ok else "503 Service Unavailable"
        return _json(start_response, status, health.report)


def _content_length(environ: WSGIEnvironment) -> int | None:
    """The declared body length (0 when absent), ``None`` when it is not a number."""
    text = environ.get("CONTENT_LENGTH") or "0"
    return int(text) if text.isascii() and text.isdigit() else None


def _answer(
    start_response: StartResponse,
    status: str,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
) -> list[bytes]:
    start_response(
        status, [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    )
    return [body]


def _json(start_response: StartResponse, status: str, data: dict[str, Any]) -> list[bytes]:
    body = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return _answer(start_response, status, body, "application/json")


class Listener:
    """``app`` served by waitress at ``host:port`` from a daemon thread."""

    def __init__(self, app: WebApp, host: str, port: int) -> None:
        import waitress

        # A burst of callbacks queues a few tasks; that is what the threads are for.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        self.server: Any = waitress.create_server(
            app,
            host=host,
            port=port,
            threads=THREADS,
            channel_timeout=CHANNEL_TIMEOUT,
            cleanup_interval=1,
            connection_limit=CONNECTION_LIMIT,
            max_request_body_size=MAX_BODY,
            max_request_header_size=MAX_HEADER,
            ident="faxd",
            clear_untrusted_proxy_headers=True,
        )
        self.host = host
        self.port = int(self.server.effective_port)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` where it listens."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="faxd-http", daemon=True)
        self._thread.start()
        log.info("http.listening", url=self.url)

    def _serve(self) -> None:
        try:
            self.server.run()
        except Exception:  # closed under it at stop; or a bug: either way, logged
            log.debug("http.server_ended", exc_info=True)

    def stop(self) -> None:
        """Stop accepting, close open connections and the worker threads."""
        server = self.server
        server.close()
        for channel in list(getattr(server, "_map", {}).values()):
            with suppress(OSError):
                channel.close()
        server.task_dispatcher.shutdown(timeout=2)
        if self._thread is not None:
            self._thread.join(timeout=2)

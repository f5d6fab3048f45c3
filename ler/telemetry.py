"""Traces and metrics (OpenTelemetry): one trace per record, from the HTTP request to the stores.

A record's trace: the HTTP request span (``POST /v1/records``) → the outbox relay's publish span
→ each processor's consume span and its store write. The W3C ``traceparent`` rides in Kafka
headers; the outbox keeps it in the row, the relay re-parents it to its publish span, and a
processor re-parents the ``traceparent`` of the events it emits to its consume span.

Exporters (``LER_TELEMETRY_EXPORTER``): ``otlp`` (``OTEL_EXPORTER_OTLP_ENDPOINT``, OTLP over HTTP),
``memory`` (kept in the process for tests: :func:`finished_spans`, :func:`metrics_data`) or
``none`` (the embedded default: spans and trace ids still exist so ``traceparent`` propagates,
nothing is exported).

Spans and metrics carry ids, names of routes, topics and queues, and counts: never personal data
(no names, e-mails, birth dates, tokens, request paths or bodies).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import Counter, Histogram, Meter
from opentelemetry.metrics import _Gauge as Gauge
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ler.envelope import TRACEPARENT, parse_traceparent

log = logging.getLogger(__name__)

Exporter = Literal["otlp", "memory", "none"]
Headers = Sequence[tuple[str, bytes | None]]
MAX_TRACES_PER_BATCH = 32
MAX_LINKS = 128
_PROPAGATOR = TraceContextTextMapPropagator()


class TelemetrySettings(BaseSettings):
    """Where traces and metrics go (standard OpenTelemetry variable names where they exist)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    exporter: Exporter = Field(default="none", validation_alias="LER_TELEMETRY_EXPORTER")
    otlp_endpoint: str = Field(
        default="http://127.0.0.1:4318", validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    service_name: str | None = Field(default=None, validation_alias="OTEL_SERVICE_NAME")
    metric_interval_ms: int = Field(
        default=15_000, ge=1_000, validation_alias="OTEL_METRIC_EXPORT_INTERVAL"
    )


@dataclass
class _Instruments:
    events_in: Counter
    events_out: Counter
    dead_letters: Counter
    processing_time: Histogram
    consumer_lag: Gauge
    sla_warnings: Counter
    sla_breaches: Counter
    webhooks: Counter
    http_rejections: Counter
    stalled: Gauge
    retries: Counter

    @classmethod
    def on(cls, meter: Meter) -> _Instruments:
        return cls(
            events_in=meter.create_counter(
                "ler.events.in", unit="{event}", description="Events consumed, per topic"
            ),
            events_out=meter.create_counter(
                "ler.events.out", unit="{event}", description="Events published, per topic"
            ),
            dead_letters=meter.create_counter(
                "ler.events.dead_lettered", unit="{event}", description="Inputs dead-lettered"
            ),
            processing_time=meter.create_histogram(
                "ler.processing.duration",
                unit="s",
                description="Processing time per queue (a processor's batch, a review, ...)",
            ),
            consumer_lag=meter.create_gauge(
                "ler.consumer.lag",
                unit="{message}",
                description="Fetch high-water mark minus the next offset to apply",
            ),
            sla_warnings=meter.create_counter("ler.sla.warnings", unit="{item}"),
            sla_breaches=meter.create_counter("ler.sla.breaches", unit="{item}"),
            webhooks=meter.create_counter(
                "ler.webhooks.deliveries", unit="{delivery}", description="Webhook outcomes"
            ),
            http_rejections=meter.create_counter(
                "ler.http.rejections", unit="{request}", description="413 and 429 answers"
            ),
            stalled=meter.create_gauge(
                "ler.processor.stalled",
                unit="s",
                description="How long a processor has been stopped on a failure (0: running)",
            ),
            retries=meter.create_counter(
                "ler.processor.retries",
                unit="{attempt}",
                description="Failed attempts to apply a batch, retried (never dead-lettered)",
            ),
        )


@dataclass
class _State:
    exporter: Exporter
    service_name: str
    tracer_provider: TracerProvider
    tracer: Tracer
    meter_provider: MeterProvider | None
    instruments: _Instruments
    spans: InMemorySpanExporter | None = None
    metric_reader: InMemoryMetricReader | None = None
    lag: dict[tuple[str, str, int], int] = field(default_factory=dict)
    explicit: bool = True


_lock = threading.Lock()
_state: _State | None = None


def configure(service_name: str, settings: TelemetrySettings | None = None) -> None:
    """Set up tracing and metrics for this process. A second call with the same exporter keeps
    the set-up; one with another exporter replaces it (tests switch to ``memory``)."""
    global _state
    settings = settings or TelemetrySettings()
    with _lock:
        if _state is not None and _state.exporter == settings.exporter:
            _state.explicit = True
            return
        previous, _state = _state, _build(settings.service_name or service_name, settings)
    if previous is not None:
        _shutdown(previous)
    log.info("telemetry: %s exporter for %s", settings.exporter, _state.service_name)


def configure_from_environment(service_name: str) -> None:
    """What each deployable calls at start: set up from the environment unless this process
    already set telemetry up (a test that chose the ``memory`` exporter, say)."""
    from ler.settings import load

    current = _state
    if current is not None and current.explicit:
        return
    configure(service_name, load(TelemetrySettings))


def _build(service_name: str, settings: TelemetrySettings) -> _State:
    resource = Resource.create({"service.name": service_name, "service.namespace": "ler"})
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=True)
    spans = None
    metric_reader: InMemoryMetricReader | None = None
    meter_provider: MeterProvider | None = None
    if settings.exporter == "memory":
        spans = InMemorySpanExporter()
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        metric_reader = InMemoryMetricReader()
        meter_provider = MeterProvider(resource=resource, metric_readers=[metric_reader])
    elif settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        base = settings.otlp_endpoint.rstrip("/")
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces"))
        )
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
            export_interval_millis=settings.metric_interval_ms,
        )
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = (
        meter_provider.get_meter("ler")
        if meter_provider is not None
        else metrics.NoOpMeterProvider().get_meter("ler")
    )
    return _State(
        exporter=settings.exporter,
        service_name=service_name,
        tracer_provider=tracer_provider,
        tracer=tracer_provider.get_tracer("ler"),
        meter_provider=meter_provider,
        instruments=_Instruments.on(meter),
        spans=spans,
        metric_reader=metric_reader,
    )


def _shutdown(state: _State) -> None:
    state.tracer_provider.shutdown()
    if state.meter_provider is not None:
        state.meter_provider.shutdown()


def _current() -> _State:
    global _state
    if _state is None:
        with _lock:
            if _state is None:
                _state = _build("ler", TelemetrySettings(exporter="none"))
                _state.explicit = False
    return _state


def tracer() -> Tracer:
    """The platform's tracer (set up with ``none`` if :func:`configure` was not called)."""
    return _current().tracer


def finished_spans() -> tuple[ReadableSpan, ...]:
    """Spans ended so far (``memory`` exporter only; empty otherwise)."""
    spans = _current().spans
    return tuple(spans.get_finished_spans()) if spans is not None else ()


def metrics_data() -> MetricsData | None:
    """A snapshot of every metric (``memory`` exporter only)."""
    reader = _current().metric_reader
    return reader.get_metrics_data() if reader is not None else None


# --- trace context -------------------------------------------------------------------------


def context_of(traceparent: str | bytes | None) -> otel_context.Context | None:
    """The OpenTelemetry context a valid ``traceparent`` names (None for a missing or bad one)."""
    if parse_traceparent(traceparent) is None:
        return None
    assert traceparent is not None
    text = traceparent.decode("ascii") if isinstance(traceparent, bytes) else traceparent
    return _PROPAGATOR.extract({TRACEPARENT: text.strip()})


def traceparent_of(span: Span) -> str | None:
    """The ``traceparent`` header naming ``span`` as the parent."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, trace.set_span_in_context(span))
    return carrier.get(TRACEPARENT)


def current_traceparent() -> str | None:
    """The ``traceparent`` of the span current in this task (an HTTP request's, say)."""
    span = trace.get_current_span()
    return traceparent_of(span) if span.get_span_context().is_valid else None


def header_traceparent(headers: Headers) -> bytes | None:
    for key, value in headers:
        if key == TRACEPARENT:
            return value
    return None


def with_traceparent(headers: Headers, traceparent: str | None) -> list[tuple[str, bytes]]:
    """``headers`` with their ``traceparent`` replaced (or added)."""
    out = [(k, v) for k, v in headers if k != TRACEPARENT and v is not None]
    if traceparent:
        out.append((TRACEPARENT, traceparent.encode("ascii")))
    return out


def _link(traceparent: bytes | str) -> Link | None:
    ctx = context_of(traceparent)
    if ctx is None:
        return None
    span_context = trace.get_current_span(ctx).get_span_context()
    return Link(span_context) if span_context.is_valid else None


class TraceGroups:
    """Spans for work done on many messages at once, one span per trace among them.

    Each distinct ``traceparent`` (up to :data:`MAX_TRACES_PER_BATCH`) gets a span parented to
    it, so every record's trace shows the step; messages of further traces are linked from the
    first span. :meth:`traceparent_for` gives the header that continues a message's trace from
    here (what an emitted event or a published message carries).
    """

    def __init__(
        self,
        name: str,
        kind: SpanKind,
        traceparents: Sequence[bytes | str | None],
        attributes: Mapping[str, Any],
    ) -> None:
        self._tracer = tracer()
        self._spans: dict[bytes | str | None, Span] = {}
        self._first: Span | None = None
        self._name = name
        self._kind = kind
        self._attributes = dict(attributes)
        counts: dict[bytes | str | None, int] = {}
        for tp in traceparents:
            key = tp if parse_traceparent(tp) is not None else None
            counts[key] = counts.get(key, 0) + 1
        self._counts = counts
        self._start_ns = time.time_ns()

    def __enter__(self) -> TraceGroups:
        traced = [k for k in self._counts if k is not None]
        keys: list[bytes | str | None] = list(traced[:MAX_TRACES_PER_BATCH])
        overflow = traced[MAX_TRACES_PER_BATCH:]
        if None in self._counts or not keys:
            keys.append(None)  # messages without a trace: a new trace starts here
        for key in keys:
            links = []
            if not self._spans:
                links = [link for k in overflow[:MAX_LINKS] if (link := _link(k)) is not None]
            span = self._tracer.start_span(
                self._name,
                context=context_of(key) if key is not None else otel_context.Context(),
                kind=self._kind,
                attributes={
                    **self._attributes,
                    "messaging.batch.message_count": self._counts.get(key, 0),
                },
                links=links,
                start_time=self._start_ns,
            )
            self._spans[key] = span
            if self._first is None:
                self._first = span
        return self

    def traceparent_for(self, traceparent: bytes | str | None) -> str | None:
        """The ``traceparent`` that continues ``traceparent``'s trace from this step."""
        key = traceparent if parse_traceparent(traceparent) is not None else None
        span = self._spans.get(key) or self._first
        return traceparent_of(span) if span is not None else None

    @contextlib.contextmanager
    def step(self, name: str, **attributes: Any) -> Iterator[None]:
        """A child span of every group span (a store write, say), timed around the block."""
        start = time.time_ns()
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            end = time.time_ns()
            for span in {id(s): s for s in self._spans.values()}.values():
                child = self._tracer.start_span(
                    name,
                    context=trace.set_span_in_context(span),
                    attributes=attributes,
                    start_time=start,
                )
                if error is not None:
                    child.set_status(Status(StatusCode.ERROR, type(error).__name__))
                child.end(end_time=end)

    def set_attribute(self, key: str, value: Any) -> None:
        for span in self._spans.values():
            span.set_attribute(key, value)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        end = time.time_ns()
        for span in {id(s): s for s in self._spans.values()}.values():
            if exc is not None:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end(end_time=end)


# --- metrics hooks -------------------------------------------------------------------------


def events_in(topic: str, count: int, *, consumer: str) -> None:
    """``count`` events of ``topic`` consumed by ``consumer``."""
    if count:
        _current().instruments.events_in.add(count, {"topic": topic, "consumer": consumer})


def events_out(topic: str, count: int, *, producer: str) -> None:
    """``count`` events published to ``topic`` by ``producer``."""
    if count:
        _current().instruments.events_out.add(count, {"topic": topic, "producer": producer})


def dead_lettered(topic: str, count: int, *, consumer: str) -> None:
    if count:
        _current().instruments.dead_letters.add(count, {"topic": topic, "consumer": consumer})


def processor_stalled(consumer: str, seconds: float) -> None:
    """How long ``consumer`` has been stopped on a failure it retries (0 once it applies again)."""
    _current().instruments.stalled.set(seconds, {"consumer": consumer})


def processor_retry(consumer: str, error: str) -> None:
    """One failed attempt of ``consumer`` to apply a batch (``error``: the exception's type)."""
    _current().instruments.retries.add(1, {"consumer": consumer, "error": error})


def processing_time(queue: str, seconds: float) -> None:
    """Time one item (or batch) of ``queue`` took, e.g. a processor batch or a review decision."""
    _current().instruments.processing_time.record(seconds, {"queue": queue})


def consumer_lag(group: str, topic: str, partition: int, lag: int) -> None:
    """Messages behind the fetch high-water mark for one partition of a consumer group."""
    state = _current()
    state.lag[(group, topic, partition)] = lag
    state.instruments.consumer_lag.set(
        lag, {"group": group, "topic": topic, "partition": partition}
    )


def lag_snapshot() -> dict[tuple[str, str, int], int]:
    """The latest lag measured in this process per (group, topic, partition)."""
    return dict(_current().lag)


def sla_warning(queue: str, count: int = 1) -> None:
    """Items of ``queue`` that passed their SLA warning threshold."""
    _current().instruments.sla_warnings.add(count, {"queue": queue})


def sla_breach(queue: str, count: int = 1) -> None:
    """Items of ``queue`` that breached their SLA."""
    _current().instruments.sla_breaches.add(count, {"queue": queue})


def webhook_outcome(outcome: str, *, status_code: int | None = None) -> None:
    """One webhook delivery attempt: ``delivered``, ``failed``, ``retrying``, ``gave_up``, ..."""
    attributes: dict[str, Any] = {"outcome": outcome}
    if status_code is not None:
        attributes["http.response.status_code"] = status_code
    _current().instruments.webhooks.add(1, attributes)


def http_rejection(service: str, status_code: int) -> None:
    _current().instruments.http_rejections.add(
        1, {"service": service, "http.response.status_code": status_code}
    )


def metric_points(name: str) -> list[tuple[dict[str, Any], Any]]:
    """``(attributes, value)`` of each point of metric ``name`` (``memory`` exporter only);
    histograms give their sum and count."""
    data = metrics_data()
    out: list[tuple[dict[str, Any], Any]] = []
    if data is None:
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = (getattr(point, "sum", 0), getattr(point, "count", 0))
                    out.append((dict(point.attributes or {}), value))
    return out

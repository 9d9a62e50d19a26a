"""OTel spans to Langfuse observations: the server mapping rules of reference/langfuse-api.md.

Every rule is "first match wins", in the order written in each function. The raw span and
resource attributes are kept beside the mapped fields (as JSON) for later queries.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ._errors import BadRequest
from ._time import MAX_NS, MIN_NS, TimeOutOfRange, check_ns, parse_iso

OBSERVATION_TYPES = frozenset(
    {
        "SPAN",
        "GENERATION",
        "EVENT",
        "AGENT",
        "TOOL",
        "CHAIN",
        "RETRIEVER",
        "EVALUATOR",
        "GUARDRAIL",
        "EMBEDDING",
    }
)
OPENINFERENCE_KINDS = {
    "LLM": "GENERATION",
    "EMBEDDING": "EMBEDDING",
    "CHAIN": "CHAIN",
    "TOOL": "TOOL",
    "AGENT": "AGENT",
    "RETRIEVER": "RETRIEVER",
    "RERANKER": "RETRIEVER",
    "GUARDRAIL": "GUARDRAIL",
    "EVALUATOR": "EVALUATOR",
}
GEN_AI_OPERATIONS = {
    "chat": "GENERATION",
    "completion": "GENERATION",
    "text_completion": "GENERATION",
    "generate_content": "GENERATION",
    "embeddings": "EMBEDDING",
    "execute_tool": "TOOL",
    "invoke_agent": "AGENT",
    "create_agent": "AGENT",
}
MODEL_KEYS = (
    "langfuse.observation.model.name",
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.model_name",
)
USAGE_KEYS = (
    ("gen_ai.usage.input_tokens", "input"),
    ("gen_ai.usage.prompt_tokens", "input"),
    ("llm.token_count.prompt", "input"),
    ("gen_ai.usage.output_tokens", "output"),
    ("gen_ai.usage.completion_tokens", "output"),
    ("llm.token_count.completion", "output"),
    ("gen_ai.usage.total_tokens", "total"),
    ("llm.token_count.total", "total"),
)
GEN_AI_PARAMETERS = (
    "temperature",
    "max_tokens",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "stop_sequences",
)
LEVELS = frozenset({"DEBUG", "DEFAULT", "WARNING", "ERROR"})
GENERATION_TYPES = frozenset({"GENERATION"})
STATUS_CODE_ERROR = 2

_OBS_META = "langfuse.observation.metadata."
_TRACE_META = "langfuse.trace.metadata."

OBSERVATION_COLUMNS = (
    "trace_id",
    "id",
    "parent_observation_id",
    "is_root",
    "type",
    "name",
    "start_ns",
    "end_ns",
    "completion_start_ns",
    "level",
    "status_message",
    "version",
    "environment",
    "input",
    "output",
    "metadata",
    "model",
    "model_parameters",
    "usage_details",
    "cost_details",
    "total_cost",
    "prompt_name",
    "prompt_version",
    "user_id",
    "session_id",
    "release",
    "scope_name",
    "scope_version",
    "attributes",
    "resource_attributes",
    "created_ns",
    "updated_ns",
)


Root = tuple[int, str, str | None, str | None, str | None, int]
"""(rank, observation id, name, input, output, start_ns) of a trace's root candidate. Rank 2: no
parent (or `langfuse.internal.as_root`); 1: an SDK app root; 0: any other span (the earliest
stands in while no root has arrived, e.g. when the real root is in another service)."""
ROOT_RANK_PHYSICAL, ROOT_RANK_APP, ROOT_RANK_ANY = 2, 1, 0


@dataclass(slots=True)
class TracePatch:
    """What one request says about one trace; merged into the stored trace row."""

    start_ns: int
    end_ns: int | None = None
    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    public: bool | None = None
    input: str | None = None
    output: str | None = None
    release: str | None = None
    version: str | None = None
    environment: str | None = None
    root: Root | None = None
    """The observation that speaks for the trace (its name, input and output)."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(any_value.bytes_value).decode()
    return getattr(any_value, kind)


def _attributes(key_values: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


def _decode(value: Any) -> Any:
    """A JSON-encoded attribute value (as SDK 5 writes metadata), or the value itself."""
    if isinstance(value, str) and value:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _text(value: Any) -> str | None:
    """Input/output are kept as raw strings; structured values are JSON-encoded."""
    if value is None or isinstance(value, str):
        return value
    return _dumps(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    """An attribute as a 64-bit integer (what SQLite stores), else None."""
    number: int | None = None
    if isinstance(value, bool | int):
        number = int(value)
    elif isinstance(value, float):
        number = int(value) if value == value and abs(value) != float("inf") else None
    elif isinstance(value, str):
        try:
            number = int(float(value))
        except (ValueError, OverflowError):
            return None
    return number if number is not None and MIN_NS <= number <= MAX_NS else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _unflatten(attrs: dict[str, Any], prefix: str) -> Any:
    """`{p.0.message.role: r, p.0.message.content: c}` -> `[{"message": {"role": r, ...}}]`."""
    tree: dict[str, Any] = {}
    start = len(prefix) + 1
    found = False
    for key, value in attrs.items():
        if key.startswith(prefix) and key[len(prefix) : start] == ".":
            found = True
            node = tree
            parts = key[start:].split(".")
            for part in parts[:-1]:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
            node[parts[-1]] = value
    return _listify(tree) if found else None


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {key: _listify(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def _messages(attrs: dict[str, Any], prefix: str) -> Any:
    """OpenInference's flattened `llm.input_messages.N.message.*` as a list of messages."""
    messages = _unflatten(attrs, prefix)
    if not isinstance(messages, list):
        return messages
    return [m.get("message", m) if isinstance(m, dict) else m for m in messages]


def _io(attrs: dict[str, Any], which: str) -> str | None:
    """input/output: langfuse > OpenInference value > OpenInference messages > gen_ai messages."""
    get = attrs.get
    value = get(f"langfuse.observation.{which}")
    if value is not None:
        return _text(value)
    value = get(f"{which}.value")
    if value is not None:
        return _text(value)
    if which == "input":
        candidates = ("gen_ai.input.messages", "gen_ai.prompt", "gen_ai.tool.call.arguments")
        flattened = ("llm.input_messages", "gen_ai.prompt")
    else:
        candidates = ("gen_ai.output.messages", "gen_ai.completion", "gen_ai.tool.call.result")
        flattened = ("llm.output_messages", "gen_ai.completion")
    if not any(key.startswith(flattened) or key in candidates for key in attrs):
        return None
    value = _messages(attrs, flattened[0])
    if value is None:
        for key in candidates:
            value = get(key)
            if value is not None:
                break
    if value is None:
        value = _unflatten(attrs, flattened[1])
    return _text(value)


def _observation_type(attrs: dict[str, Any]) -> str:
    get = attrs.get
    declared = get("langfuse.observation.type")
    if isinstance(declared, str) and declared.upper() in OBSERVATION_TYPES:
        return declared.upper()
    kind = get("openinference.span.kind")
    if isinstance(kind, str) and kind.upper() in OPENINFERENCE_KINDS:
        return OPENINFERENCE_KINDS[kind.upper()]
    operation = get("gen_ai.operation.name")
    if isinstance(operation, str) and operation.lower() in GEN_AI_OPERATIONS:
        return GEN_AI_OPERATIONS[operation.lower()]
    for key in MODEL_KEYS:
        if key in attrs:
            return "GENERATION"
    return "SPAN"


def _model(attrs: dict[str, Any]) -> str | None:
    for key in MODEL_KEYS:
        value = attrs.get(key)
        if value is not None and value != "":
            return str(value)
    return None


def _model_parameters(attrs: dict[str, Any]) -> str | None:
    get = attrs.get
    value = get("langfuse.observation.model.parameters")
    if value is None:
        value = get("llm.invocation_parameters")
    if value is not None:
        decoded = _decode(value)
        return _dumps(decoded) if decoded not in (None, "", {}) else None
    found = {
        name: get(f"gen_ai.request.{name}")
        for name in GEN_AI_PARAMETERS
        if get(f"gen_ai.request.{name}") is not None
    }
    return _dumps(found) if found else None


def _usage(attrs: dict[str, Any]) -> dict[str, int] | None:
    usage: dict[str, int] = {}
    raw = attrs.get("langfuse.observation.usage_details")
    if raw is not None:
        decoded = _decode(raw)
        if isinstance(decoded, dict):
            for key, value in decoded.items():
                number = _int(value)
                if number is not None:
                    usage[str(key)] = number
    else:
        for key, name in USAGE_KEYS:
            if name not in usage and key in attrs:
                number = _int(attrs[key])
                if number is not None:
                    usage[name] = number
    if not usage:
        return None
    if "total" not in usage:
        usage["total"] = sum(usage.values())
    return usage


def _cost(attrs: dict[str, Any]) -> tuple[dict[str, float] | None, float | None]:
    cost: dict[str, float] = {}
    raw = attrs.get("langfuse.observation.cost_details")
    if raw is not None:
        decoded = _decode(raw)
        if isinstance(decoded, dict):
            for key, value in decoded.items():
                number = _float(value)
                if number is not None:
                    cost[str(key)] = number
    elif "gen_ai.usage.cost" in attrs:
        number = _float(attrs["gen_ai.usage.cost"])
        if number is not None:
            cost["total"] = number
    if not cost:
        return None, None
    total = cost.get("total")
    if total is None:
        total = sum(cost.values())
    return cost, total


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(tag) for tag in value if tag is not None]
    if isinstance(value, str) and value:
        decoded = _decode(value)
        if isinstance(decoded, list):
            return [str(tag) for tag in decoded if tag is not None]
        return [part.strip() for part in value.split(",") if part.strip()]
    return []


def _completion_start(value: Any) -> int | None:
    decoded = _decode(value)
    if isinstance(decoded, str):
        try:
            return parse_iso(decoded)
        except ValueError:
            return None
    if isinstance(decoded, int | float) and decoded == decoded:  # epoch seconds or nanoseconds
        try:
            ns = int(decoded * 1e9) if abs(decoded) < 1e12 else int(decoded)
            return check_ns(ns, decoded)
        except (TimeOutOfRange, OverflowError):
            return None
    return None


def _exception_message(span: Any) -> str | None:
    for event in span.events:
        if event.name == "exception":
            attrs = _attributes(event.attributes)
            message = attrs.get("exception.message") or attrs.get("exception.type")
            if message:
                return str(message)
    return None


def _bad_id(where: str, name: str, what: str, size: int, got: int) -> BadRequest:
    return BadRequest(
        f"{where} ('{name}') has a {got}-byte {what}; OTLP {what}s are {size} bytes. "
        "Nothing was stored."
    )


def map_request(
    request: ExportTraceServiceRequest, now_ns: int | None = None
) -> tuple[list[tuple[Any, ...]], dict[str, TracePatch]]:
    """Observation rows (in `OBSERVATION_COLUMNS` order) and per-trace patches for a request.

    Raises BadRequest on the first span that cannot be stored (bad ids), so that nothing of the
    request is stored.
    """
    now = now_ns if now_ns is not None else time.time_ns()
    rows: list[tuple[Any, ...]] = []
    traces: dict[str, TracePatch] = {}
    for r, resource_spans in enumerate(request.resource_spans):
        resource = _Source.of_resource(_attributes(resource_spans.resource.attributes))
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            source = replace(
                resource,
                scope_name=scope_spans.scope.name or None,
                scope_version=scope_spans.scope.version or None,
            )
            for i, span in enumerate(scope_spans.spans):
                ids = _span_ids(span, f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]")
                row, patch = _map_span(span, _attributes(span.attributes), ids, source, now)
                rows.append(row)
                known = traces.get(row[0])
                traces[row[0]] = patch if known is None else merge_patches(known, patch)
    return rows, traces


@dataclass(frozen=True, slots=True)
class _Source:
    """What the spans of one resource and instrumentation scope share."""

    resource_json: str
    """The resource's attributes (JSON), kept beside each observation."""
    version: Any
    release: Any
    environment: Any
    scope_name: str | None = None
    scope_version: str | None = None

    @classmethod
    def of_resource(cls, resource: dict[str, Any]) -> _Source:
        """What a resource's attributes say (its scope is filled in per scope)."""
        return cls(
            resource_json=_dumps(resource),
            version=resource.get("service.version"),
            release=resource.get("langfuse.release"),
            environment=resource.get("langfuse.environment")
            or resource.get("deployment.environment.name")
            or resource.get("deployment.environment"),
        )


def _span_ids(span: Any, where: str) -> tuple[str, str, str | None]:
    """The span's trace id, span id and parent span id (None for none), in hex; BadRequest
    naming `where` the span is when one has the wrong size."""
    trace_bytes, span_bytes, parent_bytes = span.trace_id, span.span_id, span.parent_span_id
    if len(trace_bytes) != 16:
        raise _bad_id(where, span.name, "traceId", 16, len(trace_bytes))
    if len(span_bytes) != 8:
        raise _bad_id(where, span.name, "spanId", 8, len(span_bytes))
    if len(parent_bytes) not in (0, 8):
        raise _bad_id(where, span.name, "parentSpanId", 8, len(parent_bytes))
    return trace_bytes.hex(), span_bytes.hex(), parent_bytes.hex() if parent_bytes else None


def _root_rank(attrs: dict[str, Any], parent_id: str | None) -> int:
    """How strongly a span claims to be its trace's root (physical, app root, or not)."""
    if parent_id is None or attrs.get("langfuse.internal.as_root"):
        return ROOT_RANK_PHYSICAL
    if attrs.get("langfuse.internal.is_app_root"):
        return ROOT_RANK_APP
    return ROOT_RANK_ANY


def _times(span: Any, now: int) -> tuple[int, int | None]:
    """Start and end in nanoseconds, refused beyond what the database stores."""
    start_ns = span.start_time_unix_nano or now
    end_ns = span.end_time_unix_nano or None
    for what, ns in (("startTimeUnixNano", start_ns), ("endTimeUnixNano", end_ns)):
        if ns is not None and ns > MAX_NS:
            raise BadRequest(
                f"Span '{span.name}' has {what} {ns}, beyond 2262-04-11 (the 64-bit nanoseconds "
                "this server stores). Nothing was stored."
            )
    return start_ns, end_ns


def _level(span: Any, attrs: dict[str, Any]) -> tuple[str, Any]:
    """The observation's level and status message (an ERROR status makes an ERROR level)."""
    level = attrs.get("langfuse.observation.level")
    level = level.upper() if isinstance(level, str) else None
    error = span.status.code == STATUS_CODE_ERROR
    if level not in LEVELS:
        level = "ERROR" if error else "DEFAULT"
    message = attrs.get("langfuse.observation.status_message") or span.status.message or None
    if message is None and error:
        message = _exception_message(span)
    return level, message


def _metadata(attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Observation and trace metadata (SDK 5 JSON-encodes every value), in one pass."""
    metadata: dict[str, Any] = {}
    trace_metadata: dict[str, Any] = {}
    for key, value in attrs.items():
        if key.startswith(_OBS_META):
            metadata[key[len(_OBS_META) :]] = _decode(value)
        elif key.startswith(_TRACE_META):
            trace_metadata[key[len(_TRACE_META) :]] = _decode(value)
    for whole, target in (
        ("langfuse.observation.metadata", metadata),
        ("metadata", metadata),
        ("langfuse.trace.metadata", trace_metadata),
    ):
        if whole in attrs:
            decoded = _decode(attrs[whole])
            if isinstance(decoded, dict):
                target.update(decoded)
            elif decoded is not None:
                target[whole.rsplit(".", 1)[-1]] = decoded
    return metadata, trace_metadata


@dataclass(slots=True)
class _Common:
    """What a span's observation row and its trace's patch both hold, read once."""

    trace_id: str
    span_id: str
    parent_id: str | None
    rank: int
    start_ns: int
    end_ns: int | None
    version: str | None
    release: str | None
    environment: str
    user_id: str | None
    session_id: str | None
    input: str | None
    output: str | None


def _map_span(
    span: Any,
    attrs: dict[str, Any],
    ids: tuple[str, str, str | None],
    source: _Source,
    now: int,
) -> tuple[tuple[Any, ...], TracePatch]:
    """One span's observation row (in `OBSERVATION_COLUMNS` order) and what it says about its
    trace. `ids` are its trace, span and parent span ids in hex; `now` is the time of the
    request (the start of a span without one, and the row's created and updated time)."""
    common = _common(span, attrs, ids, source, now)
    metadata, trace_metadata = _metadata(attrs)
    return (
        _observation_row(span, attrs, common, metadata, source, now),
        _trace_patch(span, attrs, common, trace_metadata),
    )


def _common(
    span: Any, attrs: dict[str, Any], ids: tuple[str, str, str | None], source: _Source, now: int
) -> _Common:
    """The fields the row and the patch share: ids (`langfuse.internal.as_root` drops the
    parent), root rank, times, version, release, environment, user, session, input, output."""
    get = attrs.get
    trace_id, span_id, parent_id = ids
    rank = _root_rank(attrs, parent_id)
    start_ns, end_ns = _times(span, now)
    return _Common(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=None if get("langfuse.internal.as_root") else parent_id,
        rank=rank,
        start_ns=start_ns,
        end_ns=end_ns,
        version=_str(get("langfuse.version") or source.version),
        release=_str(get("langfuse.release") or source.release),
        environment=_environment(attrs, source.environment),
        user_id=_str(get("user.id") or get("langfuse.user.id")),
        session_id=_str(get("session.id") or get("langfuse.session.id")),
        input=_io(attrs, "input"),
        output=_io(attrs, "output"),
    )


def _environment(attrs: dict[str, Any], resource_environment: Any) -> str:
    """The span's environment, else the resource's, else the span's deployment environment."""
    get = attrs.get
    return str(
        get("langfuse.environment")
        or resource_environment
        or get("deployment.environment.name")
        or get("deployment.environment")
        or "default"
    )


def _observation_row(
    span: Any,
    attrs: dict[str, Any],
    common: _Common,
    metadata: dict[str, Any],
    source: _Source,
    now: int,
) -> tuple[Any, ...]:
    """The observation's row, in `OBSERVATION_COLUMNS` order: a generation also gets its prompt
    and model parameters (any span naming a model gets those too)."""
    get = attrs.get
    obs_type = _observation_type(attrs)
    level, status_message = _level(span, attrs)
    model = _model(attrs)
    usage = _usage(attrs)
    cost, total_cost = _cost(attrs)
    prompt_name = prompt_version = None
    if obs_type in GENERATION_TYPES:
        prompt_name = get("langfuse.observation.prompt.name") or None
        prompt_version = _int(get("langfuse.observation.prompt.version"))
    completion_start = get("langfuse.observation.completion_start_time")
    return (
        common.trace_id,
        common.span_id,
        common.parent_id,
        0 if common.rank == ROOT_RANK_ANY else 1,
        obs_type,
        span.name,
        common.start_ns,
        common.end_ns,
        _completion_start(completion_start) if completion_start is not None else None,
        level,
        _str(status_message),
        common.version,
        common.environment,
        common.input,
        common.output,
        _dumps(metadata) if metadata else None,
        model,
        _model_parameters(attrs) if model is not None or obs_type in GENERATION_TYPES else None,
        _dumps(usage) if usage else None,
        _dumps(cost) if cost else None,
        total_cost,
        _str(prompt_name),
        prompt_version,
        common.user_id,
        common.session_id,
        common.release,
        source.scope_name,
        source.scope_version,
        _dumps(attrs),
        source.resource_json,
        now,
        now,
    )


def _trace_patch(
    span: Any, attrs: dict[str, Any], common: _Common, trace_metadata: dict[str, Any]
) -> TracePatch:
    """What the span says about its trace: the `langfuse.trace.*` attributes, the shared
    fields, and the span as a root candidate."""
    get = attrs.get
    tags = get("langfuse.trace.tags")
    public = get("langfuse.trace.public")
    trace_name = get("langfuse.trace.name")
    return TracePatch(
        start_ns=common.start_ns,
        end_ns=common.end_ns,
        name=str(trace_name) if trace_name else None,
        user_id=common.user_id,
        session_id=common.session_id,
        tags=_tags(tags if tags is not None else get("tag.tags")),  # tag.tags: OpenInference
        metadata=trace_metadata,
        public=bool(public) if public is not None else None,
        input=_text(get("langfuse.trace.input")),
        output=_text(get("langfuse.trace.output")),
        release=common.release,
        version=common.version,
        environment=common.environment,
        root=(
            common.rank,
            common.span_id,
            span.name,
            common.input,
            common.output,
            common.start_ns,
        ),
    )


def _better_root(old: Root | None, new: Root | None) -> Root | None:
    """The higher rank wins; the same observation is updated; between equals, the earliest."""
    if new is None:
        return old
    if old is None or old[1] == new[1]:
        return new
    if new[0] != old[0]:
        return new if new[0] > old[0] else old
    return new if new[5] < old[5] else old


def merge_patches(old: TracePatch, new: TracePatch) -> TracePatch:
    """Fold `new` into `old`: later values win, tags are a union, metadata is merged."""
    old.start_ns = min(old.start_ns, new.start_ns)
    if new.end_ns is not None and (old.end_ns is None or new.end_ns > old.end_ns):
        old.end_ns = new.end_ns
    for name in ("name", "user_id", "session_id", "public", "input", "output", "release"):
        value = getattr(new, name)
        if value is not None:
            setattr(old, name, value)
    for tag in new.tags:
        if tag not in old.tags:
            old.tags.append(tag)
    old.metadata.update(new.metadata)
    root = _better_root(old.root, new.root)
    if root is not old.root:
        # the root observation speaks for the trace's version and environment
        old.version = new.version or old.version
        old.environment = new.environment or old.environment
    else:
        old.version = old.version or new.version
        old.environment = old.environment or new.environment
    old.root = root
    return old

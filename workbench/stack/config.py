"""Where things are and which knobs a start uses: project, home, binary, ports, commands."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BinaryNotFoundError


def dotenv_values(project: Path) -> dict[str, str]:
    """KEY=VALUE settings of `<project>/.env` (e.g. LANGFUSE_BASE_URL and keys), if it exists."""
    path = project / ".env"
    if not path.is_file():
        return {}
    from dotenv import dotenv_values as parse

    return {k: v for k, v in parse(path).items() if v is not None}


HOST = "127.0.0.1"

# Port names and their defaults. The environment variable for each is WORKBENCH_<NAME>_PORT.
DEFAULT_PORTS: dict[str, int] = {
    "langfuse": 3000,
    "llm": 8788,
    "ingress": 8080,
    "admin": 9070,
    "node": 5122,
    "services": 9080,
    "supervisor": 9001,
}

DEFAULT_LLM_COMMAND: tuple[str, ...] = (
    sys.executable,
    "-m",
    "workbench.local.llm",
    "--host",
    "{host}",
    "--port",
    "{port}",
)
DEFAULT_SERVICES_COMMAND: tuple[str, ...] = (
    sys.executable,
    "-m",
    "services",
    "--host",
    "{host}",
    "--port",
    "{port}",
)
DEFAULT_LANGFUSE_COMMAND: tuple[str, ...] = (
    sys.executable,
    "-m",
    "workbench.local.langfuse",
    "--host",
    "{host}",
    "--port",
    "{port}",
)
LOCAL_OPENAI_API_KEY = "workbench-local"
# fixed keys for a standalone embedded Langfuse (benchmarks, tests); a stack generates its own
LOCAL_LANGFUSE_PUBLIC_KEY = "pk-lf-local"
LOCAL_LANGFUSE_SECRET_KEY = "sk-lf-local"


NODE_PORTS = ("ingress", "admin", "node")
"""The ports each Restate node of a cluster has: node k > 1 names them `ingress_k`, ... with the
defaults of node 1 plus k - 1 (8081, 9071, 5123 for node 2)."""
MAX_NODES = 9


def port_env_var(name: str) -> str:
    return f"WORKBENCH_{name.upper()}_PORT"


def node_port_name(kind: str, node: int) -> str:
    """The port name of a cluster node's `kind` port: `ingress` for node 1, `ingress_2`, ..."""
    return kind if node == 1 else f"{kind}_{node}"


def check_nodes(value: object, source: str = "nodes") -> int:
    """The number of Restate nodes asked for: 1 (a single server) or 3..MAX_NODES (a cluster
    that survives a node down); ValueError saying what is valid otherwise."""
    try:
        nodes = int(str(value))
    except ValueError:
        nodes = 0
    if str(value).strip() != str(nodes) or not (nodes == 1 or 3 <= nodes <= MAX_NODES):
        raise ValueError(
            f"{source}={value!r} is not a valid number of Restate nodes: use 1 (one server, the "
            f"default) or 3 to {MAX_NODES} (a cluster; 2 nodes cannot lose one, since its "
            "metadata needs a majority)."
        )
    return nodes


def find_project(start: Path | None = None) -> Path:
    """The folder holding pyproject.toml above this package; the current directory otherwise."""
    here = (start or Path(__file__)).resolve()
    for folder in [here, *here.parents]:
        if (folder / "pyproject.toml").is_file():
            return folder
    return Path.cwd()


def default_home(project: Path, environ: Mapping[str, str]) -> Path:
    configured = environ.get("WORKBENCH_HOME")
    if configured:
        return Path(configured).expanduser().resolve()
    return project / ".workbench"


def _npm_binary(
    project: Path, environ: Mapping[str, str], name: str, variable: str, unset_hint: str
) -> Path | None:
    """A binary of the Restate npm packages: `variable` (an executable file, else
    BinaryNotFoundError saying so), the npm package in the project, then PATH; None otherwise."""
    configured = environ.get(variable)
    if configured:
        path = Path(configured).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise BinaryNotFoundError(
            f"{variable}={configured} is not an executable file. Point it at {name}, or "
            f"unset it {unset_hint}."
        )
    package = restate_platform_package().replace("restate-server", name)
    in_project = project / "node_modules" / "@restatedev" / package / "bin" / name
    if in_project.is_file() and os.access(in_project, os.X_OK):
        return in_project
    on_path = shutil.which(name, path=environ.get("PATH", os.defpath))
    return Path(on_path) if on_path else None


def find_restatectl(project: Path, environ: Mapping[str, str]) -> Path | None:
    """restatectl (the cluster's admin tool, npm `@restatedev/restatectl`): RESTATECTL_BIN, the
    npm package in the project, then PATH; None when there is none."""
    hint = "to use the one from npm (`npm ci` in the project)"
    return _npm_binary(project, environ, "restatectl", "RESTATECTL_BIN", hint)


def restate_platform_package() -> str:
    """The npm platform package shipping the binary, e.g. `restate-server-linux-x64`."""
    system = platform.system().lower()  # linux, darwin
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    return f"restate-server-{system}-{arch or machine}"


def find_restate_server(project: Path, environ: Mapping[str, str]) -> Path:
    """Resolve restate-server: RESTATE_SERVER_BIN, the npm package in the project, then PATH."""
    hint = "to use the one from npm (`make lab` or `npm ci` in the project)"
    found = _npm_binary(project, environ, "restate-server", "RESTATE_SERVER_BIN", hint)
    if found is not None:
        return found
    package = restate_platform_package()
    in_project = project / "node_modules" / "@restatedev" / package / "bin" / "restate-server"
    raise BinaryNotFoundError(
        f"restate-server not found: RESTATE_SERVER_BIN is not set, {in_project} does not exist "
        "and there is no restate-server on PATH. Run `make lab` (or `npm ci` in "
        f"{project}) to install it from npm, or `brew install restatedev/tap/restate-server` "
        "on macOS, or set RESTATE_SERVER_BIN to the binary."
    )


@dataclass(frozen=True)
class PortRequest:
    """The port a start asks for: an explicit one (which must be free) or a default."""

    name: str
    default: int
    explicit: int | None = None
    source: str | None = None  # what set it explicitly, e.g. "WORKBENCH_INGRESS_PORT"


def _parse_port(value: object, source: str) -> int:
    try:
        port = int(str(value))
    except ValueError:
        raise ValueError(f"{source}={value!r} is not a port number; set it to 1-65535.") from None
    if not 0 < port < 65536:
        raise ValueError(f"{source}={port} is out of range; set it to 1-65535.")
    return port


@dataclass
class StackConfig:
    """Everything a fresh start needs. Built by `resolve()` from the environment + overrides."""

    home: Path
    project: Path
    ports: dict[str, PortRequest]
    persistent: bool = True
    openai_base_url: str | None = None  # set: a real model endpoint, no embedded llm
    restate_admin_url: str | None = None  # both set: an existing Restate server (or cluster:
    restate_ingress_url: str | None = None  # several URLs, comma-separated)
    restate_token: str | None = None  # Restate Cloud's API key (RESTATE_AUTH_TOKEN)
    nodes: int = 1  # Restate nodes the stack runs: 1, or 3+ (a cluster)
    nodes_asked: bool = False  # nodes given (start(nodes=), WORKBENCH_RESTATE_NODES), not defaulted
    tracing: bool = True  # False: no Langfuse at all (no embedded server, no span export)
    langfuse_base_url: str | None = None  # set: a real Langfuse, no embedded one
    # a real Langfuse's keys (LANGFUSE_PUBLIC_KEY/SECRET_KEY); for the embedded one they are
    # generated per home at its first start (home.json) and filled in by the start
    langfuse_public_key: str | None = None
    langfuse_secret_key: str | None = None
    restate_bin: Path | None = None
    restate_args: tuple[str, ...] = ()
    llm_command: tuple[str, ...] = DEFAULT_LLM_COMMAND
    langfuse_command: tuple[str, ...] = DEFAULT_LANGFUSE_COMMAND
    services_command: tuple[str, ...] = DEFAULT_SERVICES_COMMAND
    env: dict[str, dict[str, str]] = field(default_factory=dict)  # extra env per process
    llm_latency_ms: float | None = None  # simulated latency of the embedded model per completion
    services_workers: int = 1  # services worker processes (`--workers`, WORKBENCH_SERVICES_WORKERS)
    service_version: str = "v1"
    register: bool = True
    poll_interval_s: float = 0.05
    registration_timeout_s: float = 15.0
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def embedded_llm(self) -> bool:
        return not self.openai_base_url

    @property
    def embedded_langfuse(self) -> bool:
        return self.tracing and not self.langfuse_base_url

    @property
    def embedded_restate(self) -> bool:
        return not (self.restate_admin_url and self.restate_ingress_url)

    @property
    def data_dir(self) -> Path:
        return self.project / "data"

    @classmethod
    def resolve(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **overrides: object,
    ) -> StackConfig:
        env = dict(os.environ if environ is None else environ)
        unknown = set(overrides) - OVERRIDES
        if unknown:
            raise TypeError(
                f"start() got unknown option(s) {sorted(unknown)}; valid: {sorted(OVERRIDES)}"
            )
        project_override = overrides.pop("project", None)
        project = Path(project_override).resolve() if project_override else find_project()  # type: ignore[arg-type]
        if environ is None:  # settings in <project>/.env apply where the environment is silent
            env = {**dotenv_values(project), **env}
        home_path = Path(home).expanduser().resolve() if home else default_home(project, env)

        asked = overrides.pop("nodes", None)
        if asked is not None:
            nodes = check_nodes(asked, "nodes")
        else:
            nodes = check_nodes(env.get("WORKBENCH_RESTATE_NODES") or 1, "WORKBENCH_RESTATE_NODES")
        defaults = dict(DEFAULT_PORTS)
        for node in range(2, nodes + 1):
            for kind in NODE_PORTS:
                defaults[node_port_name(kind, node)] = DEFAULT_PORTS[kind] + node - 1
        ports: dict[str, PortRequest] = {}
        for name, default in defaults.items():
            key = f"{name}_port"
            if overrides.get(key) is not None:
                source = f"start({key}=...)"
                explicit: int | None = _parse_port(overrides.pop(key), source)
            elif env.get(port_env_var(name)):
                source = port_env_var(name)
                explicit = _parse_port(env[source], source)
            else:
                overrides.pop(key, None)
                source, explicit = None, None
            ports[name] = PortRequest(name, default, explicit, source)

        def text(key: str, env_key: str) -> str | None:
            value = overrides.pop(key, None) or env.get(env_key) or None
            if isinstance(value, list | tuple):  # several URLs (a cluster's nodes)
                value = ",".join(str(v).strip().rstrip("/") for v in value) or None
            return str(value).rstrip("/") if value else None

        config = cls(
            home=home_path,
            project=project,
            ports=ports,
            openai_base_url=text("openai_base_url", "OPENAI_BASE_URL"),
            restate_admin_url=text("restate_admin_url", "RESTATE_ADMIN_URL"),
            restate_ingress_url=text("restate_ingress_url", "RESTATE_INGRESS_URL"),
            langfuse_base_url=text("langfuse_base_url", "LANGFUSE_BASE_URL")
            or text("langfuse_host", "LANGFUSE_HOST"),
            restate_token=text("restate_token", "RESTATE_AUTH_TOKEN"),
            nodes=nodes,
            nodes_asked=asked is not None or bool(env.get("WORKBENCH_RESTATE_NODES")),
            environ=env,
        )
        if config.langfuse_base_url:  # a real Langfuse: its keys are required
            keys = (env.get("LANGFUSE_PUBLIC_KEY"), env.get("LANGFUSE_SECRET_KEY"))
            if not all(keys):
                raise ValueError(
                    f"LANGFUSE_BASE_URL={config.langfuse_base_url} is set but "
                    "LANGFUSE_PUBLIC_KEY/LANGFUSE_SECRET_KEY are not: set both (Langfuse project "
                    "settings > API keys), or unset LANGFUSE_BASE_URL to use the embedded one."
                )
            config.langfuse_public_key, config.langfuse_secret_key = keys  # type: ignore[assignment]
        if overrides.get("restate_bin") is not None:
            config.restate_bin = Path(str(overrides.pop("restate_bin")))
        for key in ("llm_command", "langfuse_command", "services_command", "restate_args"):
            if overrides.get(key) is not None:
                value = overrides.pop(key)
                if isinstance(value, str) or not isinstance(value, Sequence):
                    raise TypeError(f"{key} must be a list of strings, got {value!r}")
                setattr(config, key, tuple(str(part) for part in value))
        if overrides.get("env") is not None:
            config.env = {k: {**v} for k, v in overrides.pop("env").items()}  # type: ignore[union-attr]
        latency = overrides.pop("llm_latency_ms", None) or env.get("WORKBENCH_LLM_LATENCY_MS")
        if latency is not None:
            config.llm_latency_ms = float(latency)  # type: ignore[arg-type]
        workers = overrides.pop("services_workers", None) or env.get("WORKBENCH_SERVICES_WORKERS")
        if workers is not None:
            config.services_workers = _parse_workers(workers)
        for key in (
            "tracing",
            "persistent",
            "service_version",
            "register",
            "poll_interval_s",
            "registration_timeout_s",
        ):
            if overrides.get(key) is not None:
                setattr(config, key, overrides.pop(key))
        return config

    @property
    def restate_admin_urls(self) -> list[str]:
        """The configured Restate admin URLs (several for a cluster), empty when embedded."""
        return _split(self.restate_admin_url)

    @property
    def restate_ingress_urls(self) -> list[str]:
        """The configured Restate ingress URLs (several for a cluster), empty when embedded."""
        return _split(self.restate_ingress_url)

    def restatectl(self) -> Path | None:
        """restatectl, for the cluster's nodes and partitions (None: not installed)."""
        return find_restatectl(self.project, self.environ)

    def restate_server(self) -> Path:
        if self.restate_bin is not None:
            return find_restate_server(self.project, {"RESTATE_SERVER_BIN": str(self.restate_bin)})
        return find_restate_server(self.project, self.environ)


def _split(urls: str | None) -> list[str]:
    return [u.strip().rstrip("/") for u in (urls or "").split(",") if u.strip()]


def _parse_workers(value: object) -> int:
    try:
        workers = int(str(value))
    except ValueError:
        workers = 0
    if workers < 1:
        raise ValueError(
            f"services_workers / WORKBENCH_SERVICES_WORKERS must be a whole number of 1 or more, "
            f"got {value!r}"
        )
    return workers


OVERRIDES = frozenset(
    {
        "project",
        "nodes",
        "restate_token",
        *(f"{name}_port" for name in DEFAULT_PORTS),
        "persistent",
        "tracing",
        "openai_base_url",
        "restate_admin_url",
        "restate_ingress_url",
        "langfuse_base_url",
        "langfuse_host",
        "langfuse_command",
        "restate_bin",
        "restate_args",
        "llm_command",
        "llm_latency_ms",
        "services_command",
        "services_workers",
        "env",
        "service_version",
        "register",
        "poll_interval_s",
        "registration_timeout_s",
    }
)

"""What every benchmark shares: scales, databases, timing and the machine's facts."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / "data"  # generated files (git-ignored): the camera JPEG, media, logs
DATABASE_PREFIX = "imagemonkey_bench"
LOAD_AT_START = os.getloadavg()  # bench.run imports this module first thing


@dataclass(frozen=True)
class Scale:
    """How big and how long: the pair counts of the three datasets and the repetitions."""

    name: str
    small: int  # pairs
    medium: int
    large: int
    huge: int = 0  # a further dataset for the scale figures (bench/at_scale.py); 0: none
    select_rounds: int = 20  # rounds visiting every dataset in turn
    select_calls: int = 10  # timed next_task calls per dataset and round
    original_repeats: int = 7  # the original's slow queries, timed runs each
    export_repeats: int = 3
    ingest_repeats: int = 5
    load_seconds: float = 10.0  # each vote / hello load
    load_connections: int = 8
    mixed_seconds: float = 30.0
    mixed_clients: int = 8
    warmup: int = 10

    def database(self, pairs: int) -> str:
        return f"{DATABASE_PREFIX}_{pairs}"


SCALES = {
    "full": Scale("full", 10_000, 100_000, 1_000_000, huge=10_000_000),
    "quick": Scale(
        "quick",
        2_000,
        10_000,
        50_000,
        select_rounds=8,
        select_calls=10,
        original_repeats=5,
        export_repeats=2,
        ingest_repeats=3,
        load_seconds=5.0,
        mixed_seconds=10.0,
    ),
    # For tests/test_bench_smoke.py: everything runs, nothing is measured seriously.
    "tiny": Scale(
        "tiny",
        300,
        300,
        300,
        huge=300,  # the scale figures run too, on the same dataset
        select_rounds=1,
        select_calls=3,
        original_repeats=1,
        export_repeats=1,
        ingest_repeats=1,
        load_seconds=1.0,
        load_connections=2,
        mixed_seconds=2.0,
        mixed_clients=2,
        warmup=1,
    ),
}


@dataclass
class Context:
    """A benchmark's inputs: the scale and the database holding each dataset."""

    scale: Scale
    databases: dict[int, str]  # pairs → database name
    details: dict = field(default_factory=dict)  # what benchmarks report beside their figures

    @property
    def small(self) -> str:
        return self.databases[self.scale.small]

    @property
    def medium(self) -> str:
        return self.databases[self.scale.medium]

    @property
    def large(self) -> str:
        return self.databases[self.scale.large]

    @property
    def huge(self) -> str | None:
        return self.databases.get(self.scale.huge) if self.scale.huge else None


# --- Databases ------------------------------------------------------------------


def base_database_url() -> str:
    """The server to use: DATABASE_URL's, or the private cluster's socket under DATA_DIR."""
    if url := os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL"):
        return url
    return private_cluster_url("imagemonkey")


def private_cluster_url(name: str) -> str:
    """Database `name` on the private cluster of tools/services.sh, with its password."""
    data_dir = Path(os.environ.get("DATA_DIR", ROOT / "var")).resolve()
    socket = quote(str(data_dir / "pg" / "run"), safe="")
    try:
        password = (data_dir / "pg" / "password").read_text().strip()
    except OSError:
        password = ""
    return f"postgres://imagemonkey:{quote(password, safe='')}@{socket}/{name}"


def database_url(name: str, base: str | None = None) -> str:
    """The URL of database `name` on the same server as `base`."""
    return urlunsplit(urlsplit(base or base_database_url())._replace(path="/" + name))


def current_database_url() -> str:
    """The URL of the database Django is connected to now (the test database in tests)."""
    from django.db import connection

    conf = connection.settings_dict
    user = quote(conf.get("USER") or "", safe="")
    password = conf.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = quote(conf.get("HOST") or "", safe="")
    port = f":{conf['PORT']}" if conf.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{conf['NAME']}"


def is_bench_database(name: str) -> bool:
    """Benchmarks empty and fill tables: only in their own databases or a test database."""
    return name.startswith(DATABASE_PREFIX) or name.startswith("test")


def ensure_database(
    url: str,
    allowed: Callable[[str], bool] = is_bench_database,
    purpose: str = "benchmark",
    throw_away: bool = False,
) -> bool:
    """Create the database `url` names when it is missing; True when it was created.

    Only a database whose name `allowed` accepts: the caller empties its tables.
    A `throw_away` database commits without waiting for the disk.
    """
    import dj_database_url
    import psycopg2

    conf = dj_database_url.parse(url)
    name = conf["NAME"]
    if not allowed(name):
        raise SystemExit(f"refusing to {purpose} in database {name!r}")
    connection = psycopg2.connect(
        dbname="postgres",
        user=conf.get("USER") or None,
        password=conf.get("PASSWORD") or None,
        host=conf.get("HOST") or None,
        port=conf.get("PORT") or None,
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is not None:
                return False
            print(f"==> creating database {name}", flush=True)
            cursor.execute(f'CREATE DATABASE "{name}"')
            if throw_away:
                cursor.execute(f'ALTER DATABASE "{name}" SET synchronous_commit TO off')
            return True
    finally:
        connection.close()


def setup_django(database: str) -> None:
    """Point Django at the bench database `database` and start it (once per process)."""
    os.environ["DATABASE_URL"] = database_url(database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagemonkey.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("CACHE_KEY_PREFIX", "bench")
    os.environ.setdefault("MEDIA_ROOT", str(DATA / "media"))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


_WRAPPERS: dict[str, object] = {}


def use_database(name: str) -> None:
    """Make `name` (on the same server) the default database, keeping the others connected.

    Each database keeps a connection of its own, so that benchmarks can switch
    between datasets call by call, and a burst of load on the shared machine
    falls on every dataset alike.
    """
    from django.db import connections

    current = connections["default"]
    if current.settings_dict["NAME"] == name:
        return
    _WRAPPERS.setdefault(current.settings_dict["NAME"], current)
    wrapper = _WRAPPERS.get(name)
    if wrapper is None:
        wrapper = connections.create_connection("default")
        wrapper.settings_dict = {**current.settings_dict, "NAME": name}
        _WRAPPERS[name] = wrapper
    connections["default"] = wrapper


def current_database() -> str:
    from django.db import connection

    return connection.settings_dict["NAME"]


# --- Timing -----------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def timed(function: Callable[[], object], calls: int) -> list[float]:
    """Seconds per call of `function`, each call timed on its own."""
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


# --- The machine ----------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    import django
    import PIL

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(_memory_kb() / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": _postgresql_version(),
        "django": django.get_version(),
        "pillow": PIL.__version__,
        "load_average_at_start": [round(x, 2) for x in LOAD_AT_START],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _memory_kb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _postgresql_version() -> str:
    try:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return cursor.fetchone()[0]
    except Exception:
        return "unknown"

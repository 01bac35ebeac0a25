"""Through gunicorn: vote_vs_hello and the mixed load.

Both start gunicorn themselves with deploy/gunicorn.conf.py (4 sync workers,
the production settings), bound to 127.0.0.1 on a free port, pointed at the
large bench dataset, and stop it in a `finally`. Clients send X-Real-IP with
RATELIMIT_IP_META_KEY=HTTP_X_REAL_IP, as nginx does in production, so that
votes come from many networks rather than all from 127.0.0.1 (which would
trip the burst alerts, a different code path).

vote_vs_hello: with RATELIMIT_ENABLE=0, `wrk` (Debian's, installed when
missing and root; else a threaded Python client) drives GET /ping, the
trivial view, and then POST /v1/donation/<uuid>/validate/yes, each for the
same time with the same connections, in alternating rounds. Every vote is a
distinct (voter, pair): fresh trusted API voters (X-Voter-Token) and
servable public pairs, each pair voted on once. The ratio is votes per second
÷ pings per second, both counting 2xx answers only.

The mixed load: rate limits on (the defaults), a closed loop of simulated
users in Python threads for a bounded time and count: 70 % browsing (the
first page, the next page, a label's page, a picture's page), 25 % votes
through the API, 5 % donations (a unique 1024 × 768 photo through POST
/v1/donate). p50 and p95 per kind; errors (not 2xx/3xx) and 429s apart.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

from .common import DATA, ROOT, Context, current_database_url, median, ratio, use_database
from .dataset import public_open_pairs, remember_pairs

WORKERS = 4
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"


# --- gunicorn ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _gunicorn_command() -> list[str]:
    script = Path(sys.executable).with_name("gunicorn")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "gunicorn"]


@contextmanager
def gunicorn(
    database_url: str, *, ratelimit: bool, workers: int = WORKERS, page_cache_seconds: int = 10
):
    """A gunicorn serving the site on 127.0.0.1:<free port>; yields (host, port).

    The anonymous page cache keeps its default lifetime (10 s) unless told otherwise.
    """
    from django.conf import settings

    port = free_port()
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PORT": str(port),
        "WORKERS": str(workers),
        "DATABASE_URL": database_url,
        "RATELIMIT_ENABLE": "1" if ratelimit else "0",
        "RATELIMIT_IP_META_KEY": "HTTP_X_REAL_IP",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CACHE_KEY_PREFIX": "bench",
        "PAGE_CACHE_SECONDS": str(page_cache_seconds),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "imagemonkey.settings",
    }
    DATA.mkdir(parents=True, exist_ok=True)
    log = (DATA / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [*_gunicorn_command(), "imagemonkey.wsgi", "-c", str(GUNICORN_CONF)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the workers and decoders go with it
    )
    try:
        _wait_ready("127.0.0.1", port, process, workers)
        yield "127.0.0.1", port
    finally:
        _stop(process)
        log.close()


def _wait_ready(host: str, port: int, process: subprocess.Popen, workers: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited ({process.returncode}); see {DATA / 'gunicorn.log'}"
            )
        try:
            if _request(host, port, "GET", "/ping")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    else:
        raise RuntimeError("gunicorn did not answer /ping within 90 s")
    # Every worker answers a few pings before anything is measured.
    for _ in range(workers * 5):
        _request(host, port, "GET", "/ping")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    # Whatever is left of its group (a decoder that outlived its worker).
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _request(
    host: str, port: int, method: str, path: str, body: bytes | None = None, headers=None
) -> tuple[int, bytes]:
    status, content, _ = _exchange(host, port, method, path, body, headers)
    return status, content


def _exchange(
    host: str, port: int, method: str, path: str, body: bytes | None = None, headers=None
) -> tuple[int, bytes, http.client.HTTPMessage | None]:
    """One request on a new connection: status, body and the answer's headers."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), response.headers
    finally:
        connection.close()


# --- Voters and votes -----------------------------------------------------------------------


def api_voters(count: int, seed: int) -> list[dict]:
    """`count` new trusted API voters: token and the address their requests come from."""
    import secrets

    from people.models import Voter

    rng = random.Random(seed)
    voters = []
    for _ in range(count):
        token = secrets.token_urlsafe(24)
        ip = f"198.{18 + rng.randint(0, 1)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        voters.append({"token": token, "ip": ip})
    created = Voter.objects.bulk_create(
        [
            Voter(
                token_sha256=Voter.hash_token(v["token"]),
                trusted=True,
                gold_correct=8,
                first_ip_prefix=v["ip"].rsplit(".", 1)[0] + ".0/24",
            )
            for v in voters
        ]
    )
    for voter, row in zip(voters, created, strict=True):
        voter["id"] = row.pk
    return voters


def vote_requests(pairs: list[dict], voters: list[dict]) -> list[tuple[str, dict, bytes]]:
    """One POST per pair, voters taking turns: every (voter, pair) is distinct. Each carries
    the ticket the site would have put in the task that served the pair to that voter."""
    from donations.models import ImageLabel
    from people.models import Voter
    from validation import tickets

    out = []
    for index, pair in enumerate(pairs):
        voter = voters[index % len(voters)]
        ticket = tickets.issue(Voter(pk=voter["id"]), ImageLabel(pk=pair["pair"]))
        body = json.dumps(
            {"label": pair["label"], "sublabel": pair["sublabel"], "ticket": ticket}
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Voter-Token": voter["token"],
            "X-Real-IP": voter["ip"],
        }
        out.append((f"/v1/donation/{pair['uuid']}/validate/yes", headers, body))
    return out


def _statements_per_vote(pair: dict, voter: dict) -> tuple[int, int]:
    """SQL statements one vote runs (in this process, test Client), BEGIN and COMMIT included.

    Counted once the vote's label is in the process's label map, as it is for every
    vote but a label's first in each gunicorn worker.
    """
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from labels import lookup

    lookup.resolve(f"{pair['label']}/{pair['sublabel']}" if pair["sublabel"] else pair["label"])
    path, headers, body = vote_requests([pair], [voter])[0]
    client = Client(HTTP_HOST="127.0.0.1")
    with override_settings(RATELIMIT_ENABLE=False), CaptureQueriesContext(connection) as seen:
        response = client.post(
            path,
            body,
            content_type="application/json",
            headers={"X-Voter-Token": headers["X-Voter-Token"]},
        )
    return len(seen.captured_queries), response.status_code


def _worker_class() -> str:
    """What gunicorn said it uses (deploy/gunicorn.conf.py leaves gunicorn's default)."""
    try:
        found = re.search(r"Using worker: (\S+)", (DATA / "gunicorn.log").read_text())
    except OSError:
        return "unknown"
    return found[1] if found else "unknown"


# --- wrk, or a Python client ---------------------------------------------------------------

HELLO_LUA = """
local done = 0
local max = tonumber(os.getenv("BENCH_MAX_PER_THREAD") or "0")
function response(status, headers, body)
  done = done + 1
  if max > 0 and done >= max then wrk.thread:stop() end
end
"""

VOTES_LUA = """
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local requests = {}
local index = 0
function init(args)
  local threads = tonumber(os.getenv("BENCH_THREADS"))
  local n = 0
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    if n % threads == id then
      local path, token, ip, body = line:match("^([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["X-Voter-Token"] = token,
        ["X-Real-IP"] = ip,
      }, body)
    end
    n = n + 1
  end
end

function request()
  index = index + 1
  if index >= #requests then wrk.thread:stop() end
  return requests[math.min(index, #requests)]
end
"""


BROWSE_LUA = """
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local paths = {}
local index = 0
function init(args)
  for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
  index = id * 7
end

function request()
  index = index + 1
  return wrk.format("GET", paths[(index % #paths) + 1])
end
"""


def ensure_wrk() -> str | None:
    """wrk's path, or None for the Python client.

    Installed from Debian when missing and we are root, unless BENCH_NO_INSTALL
    is set (the smoke test); BENCH_NO_WRK forces the Python client.
    """
    if os.environ.get("BENCH_NO_WRK"):
        return None
    found = shutil.which("wrk")
    if found or os.environ.get("BENCH_NO_INSTALL"):
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("==> installing wrk (Debian package)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        for command in (install, ["apt-get", "update", "-qq"], install):
            subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
            if shutil.which("wrk"):
                break
    return shutil.which("wrk")


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _wrk(
    wrk: str, host: str, port: int, path: str, seconds: float, connections: int, script: str, env
) -> dict:
    threads = min(2, connections)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        completed = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "30s",
                "-s",
                handle.name,
                f"http://{host}:{port}{path}",
            ],
            env={**os.environ, **env, "BENCH_THREADS": str(threads)},
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    text = completed.stdout
    match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise RuntimeError(f"cannot read wrk's output:\n{text}\n{completed.stderr}")
    requests, duration = int(match[1]), float(match[2]) * _UNITS[match[3]]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    errors = sum(int(x) for x in socket_errors.groups()) if socket_errors else 0
    failed = int(bad[1]) if bad else 0
    return {
        "requests": requests,
        "ok": requests - failed,
        "failed": failed,
        "socket_errors": errors,
        "seconds": duration,
        "per_s": (requests - failed) / duration if duration else 0.0,
    }


def _python_load(host, port, seconds, connections, next_request, max_requests) -> dict:
    """A closed loop of `connections` threads, each sending next_request() until time or count."""
    lock = threading.Lock()
    state = {"sent": 0, "ok": 0, "failed": 0}
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        while time.perf_counter() < deadline:
            with lock:
                if state["sent"] >= max_requests:
                    return
                state["sent"] += 1
                request = next_request()
            if request is None:
                return
            method, path, headers, body = request
            try:
                status, _ = _request(host, port, method, path, body, headers)
            except OSError:
                status = 0
            with lock:
                state["ok" if 200 <= status < 400 else "failed"] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    duration = time.perf_counter() - started
    return {
        "requests": state["ok"] + state["failed"],
        "ok": state["ok"],
        "failed": state["failed"],
        "socket_errors": 0,
        "seconds": duration,
        "per_s": state["ok"] / duration if duration else 0.0,
    }


class _Feed:
    """Hands out prepared requests once each, across threads and rounds."""

    def __init__(self, requests: list):
        self.requests = requests
        self.next = 0
        self.lock = threading.Lock()

    def take(self, count: int) -> list:
        with self.lock:
            chunk = self.requests[self.next : self.next + count]
            self.next += len(chunk)
            return chunk

    def one(self):
        chunk = self.take(1)
        return chunk[0] if chunk else None

    @property
    def left(self) -> int:
        return len(self.requests) - self.next


def _hello(wrk, host, port, seconds, connections) -> dict:
    if wrk:
        env = {"BENCH_MAX_PER_THREAD": "2000000"}
        return _wrk(wrk, host, port, "/ping", seconds, connections, HELLO_LUA, env)
    ping = ("GET", "/ping", {}, None)
    return _python_load(host, port, seconds, connections, lambda: ping, 10_000_000)


def _votes(wrk, host, port, seconds, connections, feed: _Feed, budget: int) -> dict:
    batch = feed.take(budget)
    if not batch:
        raise RuntimeError("no vote requests left")
    if wrk:
        with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as handle:
            for path, headers, body in batch:
                handle.write(
                    f"{path}\t{headers['X-Voter-Token']}\t{headers['X-Real-IP']}\t{body.decode()}\n"
                )
        try:
            result = _wrk(
                wrk,
                host,
                port,
                "/",
                seconds,
                connections,
                VOTES_LUA,
                {"BENCH_REQUESTS": handle.name},
            )
        finally:
            os.unlink(handle.name)
    else:
        local = _Feed(batch)

        def next_vote():
            item = local.one()
            return None if item is None else ("POST", item[0], item[1], item[2])

        result = _python_load(host, port, seconds, connections, next_vote, len(batch))
    result["exhausted"] = result["requests"] >= len(batch) - connections
    return result


def vote_vs_hello(ctx: Context) -> dict:
    scale = ctx.scale
    use_database(ctx.large)
    wrk = ensure_wrk()
    rounds = max(1, min(3, scale.select_rounds))
    # Enough distinct pairs for ~1500 votes per second in every round, and a warm-up.
    per_round = max(200, int(1500 * scale.load_seconds))
    pairs = public_open_pairs(per_round * (rounds + 1), seed=21)
    remember_pairs(p["pair"] for p in pairs)
    voters = api_voters(max(10, min(400, len(pairs) // 20)), seed=22)
    statements, status = _statements_per_vote(pairs.pop(), voters[0])
    feed = _Feed(vote_requests(pairs, voters))
    per_round = len(pairs) // (rounds + 1)
    hello_runs, vote_runs = [], []
    with gunicorn(current_database_url(), ratelimit=False) as (host, port):
        warm = max(1.0, scale.load_seconds / 5)
        _hello(wrk, host, port, warm, scale.load_connections)
        _votes(wrk, host, port, warm, scale.load_connections, feed, per_round)
        for _ in range(rounds):
            hello_runs.append(_hello(wrk, host, port, scale.load_seconds, scale.load_connections))
            vote_runs.append(
                _votes(wrk, host, port, scale.load_seconds, scale.load_connections, feed, per_round)
            )
    hello = median([r["per_s"] for r in hello_runs])
    votes = median([r["per_s"] for r in vote_runs])
    # Each round is a hello run then a vote run; the headline is the median per-round ratio.
    per_round = [ratio(v["per_s"], h["per_s"]) for h, v in zip(hello_runs, vote_runs, strict=True)]
    ctx.details["vote_vs_hello"] = {
        "client": "wrk" if wrk else "python threads",
        "gunicorn_worker_class": _worker_class(),
        "one_vote_in_process_status": status,
        "connections": scale.load_connections,
        "workers": WORKERS,
        "hello_runs": hello_runs,
        "vote_runs": vote_runs,
    }
    failed = sum(r["failed"] for r in vote_runs)
    if failed:
        print(f"    warning: {failed} votes were not 2xx (see bench/data/gunicorn.log)")
    return {
        "hello_per_s": hello,
        "votes_per_s": votes,
        "vote_sql_statements": statements,
        "vote_failures": failed,
        "vote_vs_hello": median(per_round),
    }


# --- browse_vs_hello ----------------------------------------------------------------------------


def browse_paths(host: str, port: int) -> list[str]:
    """What anonymous visitors browse: the first page, the next pages, label pages."""
    _, labels = _browse_targets()
    paths = ["/browse"] + [f"/browse?label={slug}" for slug in labels]
    path = "/browse"
    for _ in range(8):
        _, content = _request(host, port, "GET", path)
        found = NEXT_PAGE.search(content)
        if not found:
            break
        path = f"/browse?after={found[1].decode()}"
        paths.append(path)
    return paths


def _browse(wrk, host, port, seconds, connections, paths: list[str]) -> dict:
    if wrk:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
            handle.write("\n".join(paths) + "\n")
        try:
            return _wrk(
                wrk, host, port, "/", seconds, connections, BROWSE_LUA, {"BENCH_PATHS": handle.name}
            )
        finally:
            os.unlink(handle.name)
    cycle = itertools.cycle(paths)
    lock = threading.Lock()

    def next_page():
        with lock:
            return ("GET", next(cycle), {}, None)

    return _python_load(host, port, seconds, connections, next_page, 10_000_000)


def browse_vs_hello(ctx: Context) -> dict:
    """Anonymous browse pages per second ÷ pings per second, on the same gunicorn.

    Visitors bring no cookie, as a first visit or a crawler does, so the anonymous page
    cache (PAGE_CACHE_SECONDS, 10 s) answers most of them; each of the pages (first, next,
    label pages) is rendered again whenever its 10 s run out. The same load without the
    cache (PAGE_CACHE_SECONDS=0) is the supporting figure `browse_vs_hello_uncached`.
    """
    scale = ctx.scale
    use_database(ctx.large)
    wrk = ensure_wrk()
    rounds = max(1, min(3, scale.select_rounds))
    results: dict = {}
    runs: dict = {}
    for name, lifetime, count in (("cached", 10, rounds), ("uncached", 0, 1)):
        hello_runs, browse_runs = [], []
        with gunicorn(current_database_url(), ratelimit=False, page_cache_seconds=lifetime) as (
            host,
            port,
        ):
            paths = browse_paths(host, port)
            warm = max(1.0, scale.load_seconds / 5)
            _hello(wrk, host, port, warm, scale.load_connections)
            _browse(wrk, host, port, warm, scale.load_connections, paths)
            for _ in range(count):
                hello_runs.append(
                    _hello(wrk, host, port, scale.load_seconds, scale.load_connections)
                )
                browse_runs.append(
                    _browse(wrk, host, port, scale.load_seconds, scale.load_connections, paths)
                )
        per_round = [
            ratio(b["per_s"], h["per_s"]) for h, b in zip(hello_runs, browse_runs, strict=True)
        ]
        suffix = "" if name == "cached" else "_uncached"
        results[f"browse_vs_hello{suffix}"] = median(per_round)
        results[f"browse_per_s{suffix}"] = median([r["per_s"] for r in browse_runs])
        results[f"browse_hello_per_s{suffix}"] = median([r["per_s"] for r in hello_runs])
        results[f"browse{suffix}_failures"] = sum(r["failed"] for r in browse_runs)
        runs[name] = {"paths": len(paths), "hello_runs": hello_runs, "browse_runs": browse_runs}
    ctx.details["browse_vs_hello"] = {
        "client": "wrk" if wrk else "python threads",
        "connections": scale.load_connections,
        "workers": WORKERS,
        **runs,
    }
    return results


# --- The mixed load ------------------------------------------------------------------------------

MIX = (("browse", 0.70), ("vote", 0.25), ("donate", 0.05))
# Each simulated user walks this cycle of 20 (14 browse, 5 vote, 1 donate) from its own
# starting point (the first user starts with a donation): exactly the mix, spread out.
CYCLE = "bbvbbbvbdbbvbbbvbbvb"
KINDS = {"b": "browse", "v": "vote", "d": "donate"}
# The load runs for the scale's seconds, and on (up to GRACE seconds more) until every
# kind has at least this many answered requests: a short run on a slow machine still
# reports a figure for each, never a percentile of nothing.
AT_LEAST = {"browse": 5, "vote": 5, "donate": 1}
GRACE = 60.0
NEXT_PAGE = re.compile(rb'rel="next" href="\?[^"]*after=(\d+-\d+)"')


def _multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = f"bench{random.getrandbits(64):016x}"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _donation_photos(count: int) -> list[bytes]:
    from .ingesting import _make_photo

    return [_make_photo((1024, 768), seed=1000 + n, quality=85) for n in range(count)]


def _browse_targets() -> tuple[list[str], list[str]]:
    from donations.models import Image
    from labels.models import Label

    images = list(
        Image.objects.public()
        .filter(pk__in=_random_ids(Image, 400))
        .values_list("uuid", flat=True)[:200]
    )
    labels = list(
        Label.objects.filter(parent__isnull=True, is_meta=False)
        .filter(slug__in=["dog", "cat", "car", "tree", "flower", "sky", "person", "building"])
        .values_list("slug", flat=True)
    )
    return [str(u) for u in images], labels or ["dog"]


def _random_ids(model, count: int) -> list[int]:
    from django.db.models import Max

    top = model.objects.aggregate(top=Max("pk"))["top"] or 0
    rng = random.Random(31)
    return [rng.randint(1, top) for _ in range(count)] if top else []


def mixed_load(ctx: Context, in_front=None, name: str = "mixed_load") -> dict:
    """The mixed load straight to gunicorn, or through `in_front(port)`: a context manager
    that yields the port of a proxy before gunicorn's (bench/micro_cache.py's nginx)."""
    scale = ctx.scale
    use_database(ctx.large)
    seconds = scale.mixed_seconds
    max_requests = int(400 * seconds)  # far above what 4 workers on this machine answer
    users = api_voters(64, seed=41)
    pairs = public_open_pairs(int(max_requests * 0.3) + 50, seed=42)
    remember_pairs(p["pair"] for p in pairs)
    votes = _Feed(vote_requests(pairs, users))
    photos = _Feed(_donation_photos(max(4, int(seconds * 4))))
    image_uuids, labels = _browse_targets()
    records: list[tuple[str, int, float]] = []
    browsed: list[tuple[str, str, float]] = []  # page kind, X-Page-Cache, seconds
    lock = threading.Lock()
    state = {"sent": 0}
    answered = dict.fromkeys(AT_LEAST, 0)

    def going_on() -> bool:
        now = time.perf_counter()
        if now < deadline:
            return True
        with lock:
            short = any(answered[kind] < need for kind, need in AT_LEAST.items())
        return short and now < deadline + GRACE

    with (
        gunicorn(current_database_url(), ratelimit=True) as (host, upstream),
        in_front(upstream) if in_front else nullcontext(upstream) as port,
    ):
        deadline = time.perf_counter() + seconds

        def browse_request(rng: random.Random, cursor: list) -> tuple:
            roll = rng.random()
            if roll < 0.35 or (roll < 0.6 and not cursor):
                return "GET", "/browse", {}, None
            if roll < 0.6:
                return "GET", f"/browse?after={cursor[0]}", {}, None
            if roll < 0.8:
                return "GET", f"/browse?label={rng.choice(labels)}", {}, None
            return "GET", f"/image/{rng.choice(image_uuids)}", {}, None

        def user(number: int) -> None:
            rng = random.Random(500 + number)
            cursor: list[str] = []
            step = CYCLE.index("d") + number * len(CYCLE) // scale.mixed_clients
            while going_on():
                with lock:
                    if state["sent"] >= max_requests and time.perf_counter() < deadline:
                        return
                    state["sent"] += 1
                kind = KINDS[CYCLE[step % len(CYCLE)]]
                step += 1
                request = None
                if kind == "vote":
                    request = votes.one()
                    if request is not None:
                        path, headers, body = request
                        request = ("POST", path, headers, body)
                elif kind == "donate":
                    photo = photos.one()
                    if photo is not None:
                        who = users[rng.randrange(len(users))]
                        body, content_type = _multipart({"label": "dog"}, "photo.jpg", photo)
                        headers = {
                            "Content-Type": content_type,
                            "X-Voter-Token": who["token"],
                            "X-Real-IP": who["ip"],
                        }
                        request = ("POST", "/v1/donate", headers, body)
                if request is None:
                    kind, request = "browse", browse_request(rng, cursor)
                method, path, headers, body = request
                started = time.perf_counter()
                try:
                    status, content, answer = _exchange(host, port, method, path, body, headers)
                except OSError:
                    status, content, answer = 0, b"", None
                elapsed = time.perf_counter() - started
                if kind == "browse" and path.startswith("/browse"):
                    found = NEXT_PAGE.search(content)
                    cursor[:] = [found[1].decode()] if found else []
                cached = _cache_state(answer)
                with lock:
                    records.append((kind, status, elapsed))
                    if kind == "browse":
                        browsed.append((_page_kind(path), cached, elapsed))
                    if 200 <= status < 400:
                        answered[kind] += 1

        # Warm-up: one of each kind, not recorded.
        _request(host, port, "GET", "/browse")
        started = time.perf_counter()
        threads = [
            threading.Thread(target=user, args=(n,), daemon=True)
            for n in range(scale.mixed_clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + GRACE + 120)
        duration = time.perf_counter() - started

    results: dict = {}
    total = len(records)
    for kind, _ in MIX:
        times = sorted(e for k, s, e in records if k == kind and 200 <= s < 400)
        results[f"mixed_{kind}_requests"] = sum(1 for k, _, _ in records if k == kind)
        results[f"mixed_{kind}_p50_ms"] = _percentile(times, 50) * 1000
        results[f"mixed_{kind}_p95_ms"] = _percentile(times, 95) * 1000
    errors = sum(1 for _, s, _ in records if not (200 <= s < 400) and s != 429)
    limited = sum(1 for _, s, _ in records if s == 429)
    results["mixed_requests_per_s"] = total / duration if duration else 0.0
    results["mixed_error_rate"] = errors / total if total else 0.0
    results["mixed_429_rate"] = limited / total if total else 0.0
    statuses: dict[str, int] = {}
    for kind, status, _ in records:
        statuses[f"{kind} {status}"] = statuses.get(f"{kind} {status}", 0) + 1
    ctx.details[name] = {
        "gunicorn_worker_class": _worker_class(),
        "seconds": round(duration, 1),
        "clients": scale.mixed_clients,
        "workers": WORKERS,
        "requests": total,
        "statuses": statuses,
        "browse_by_page": _browse_breakdown(browsed),
    }
    return results


CACHE_HEADER = "X-Page-Cache"  # people/pagecache.py: hit, miss (stored), absent (not cacheable)


def _cache_state(answer) -> str:
    """What answered: nginx's micro-cache (bench/micro_cache.py says so), else the page cache."""
    if answer is None:
        return "none"
    if answer.get("X-Nginx-Cache") in ("HIT", "STALE", "UPDATING"):
        return "nginx"
    return answer.get(CACHE_HEADER) or "none"


def _page_kind(path: str) -> str:
    if path.startswith("/image/"):
        return "image"
    if "label=" in path:
        return "label"
    return "next" if "after=" in path else "first"


def _browse_breakdown(browsed: list[tuple[str, str, float]]) -> dict:
    """p50/p95 of the browse requests by kind of page and by what the page cache did."""
    out: dict = {}
    groups: dict[str, list[float]] = {}
    for page, cached, seconds in browsed:
        groups.setdefault(f"{page} {cached}", []).append(seconds)
        groups.setdefault(f"cache {cached}", []).append(seconds)
    for name, times in sorted(groups.items()):
        times.sort()
        out[name] = {
            "requests": len(times),
            "p50_ms": round(_percentile(times, 50) * 1000, 1),
            "p95_ms": round(_percentile(times, 95) * 1000, 1),
        }
    return out


def _percentile(values: list[float], percent: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    position = (len(values) - 1) * percent / 100
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)

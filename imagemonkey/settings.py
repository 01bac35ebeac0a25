"""ImageMonkey settings, read from the environment.

Every variable is listed in the README's configuration table. Nothing here
holds a secret: SECRET_KEY comes from the environment or from the file that
`make run` writes under DATA_DIR.
"""

import os
import re
from pathlib import Path
from urllib.parse import quote

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var"))).resolve()


def _secret_key() -> str:
    if key := env_str("SECRET_KEY"):
        return key
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    if DEBUG:
        return "insecure-development-key-only-used-with-DEBUG-on"
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
        f"(or run `make run`, which keeps one in {key_file})."
    )


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Sign-in with an OAuth provider is off unless named here (e.g. "github,google"); each
# needs OAUTH_<NAME>_CLIENT_ID and OAUTH_<NAME>_SECRET (see SOCIALACCOUNT_PROVIDERS).
OAUTH_PROVIDERS = env_list("OAUTH_PROVIDERS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_ratelimit",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    *(f"allauth.socialaccount.providers.{name}" for name in OAUTH_PROVIDERS),
    "people",
    "labels",
    "donations",
    "validation",
    "annotations",
    "exports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "donations.middleware.MediaOriginCSPMiddleware",
    "people.middleware.StorableQueryMiddleware",
    "people.middleware.VoterMiddleware",
    "people.middleware.ReplicaRoutingMiddleware",
]

ROOT_URLCONF = "imagemonkey.urls"
WSGI_APPLICATION = "imagemonkey.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "imagemonkey.context_processors.site",
                "people.context_processors.page_cache",
            ],
        },
    },
]


# --- Database -------------------------------------------------------------
# Without DATABASE_URL we talk to the private cluster that `make run` starts
# under DATA_DIR, over its unix socket (it listens on no TCP port), with the
# password tools/services.sh keeps beside it.
def _private_cluster_password() -> str:
    try:
        return (DATA_DIR / "pg" / "password").read_text().strip()
    except OSError:
        return ""


_default_database_url = (
    f"postgres://imagemonkey:{quote(_private_cluster_password(), safe='')}"
    f"@{quote(str(DATA_DIR / 'pg' / 'run'), safe='')}/imagemonkey"
)
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", _default_database_url), conn_max_age=60, conn_health_checks=True
    )
}
# Several test runs may share one server; each names its own test database.
if test_name := env_str("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": test_name}
# Streaming replicas of that primary: reads of GET requests go to them (people/replicas.py),
# while they are no more than REPLICA_MAX_LAG_S behind. Tests read them as the primary.
DATABASE_REPLICAS = []
for _number, _url in enumerate(env_list("DATABASE_REPLICA_URLS", ""), start=1):
    _replica = dj_database_url.parse(_url, conn_max_age=60, conn_health_checks=True)
    # A replica that is down must not hold a request for long: it is skipped.
    _replica["OPTIONS"] = {"connect_timeout": 2, "application_name": "imagemonkey"} | _replica[
        "OPTIONS"
    ]
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica{_number}"] = _replica
    DATABASE_REPLICAS.append(f"replica{_number}")
DATABASE_ROUTERS = ["people.replicas.ReplicaRouter"]
REPLICA_MAX_LAG_S = env_int("REPLICA_MAX_LAG_S", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, sessions, rate limits -----------------------------------
REDIS_URL = env_str("REDIS_URL", f"unix://{DATA_DIR / 'redis' / 'redis.sock'}?db=0")
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "im")
# Values are stored as JSON, never pickled: whoever can write to Redis must not be able to
# run code in a web worker by planting a value (django-redis unpickles what it reads).
# Counters (rate limits) are stored as plain integers either way. VERSION 2 (part of
# every key): the pickles earlier releases wrote are never read, only left to expire.
_REDIS_SERIALIZER = "django_redis.serializers.json.JSONSerializer"
CACHES = {
    # Pages degrade gracefully when Redis is down: errors are swallowed.
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "VERSION": 2,
        "OPTIONS": {
            "SERIALIZER": _REDIS_SERIALIZER,
            "IGNORE_EXCEPTIONS": True,
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
        },
    },
    # Rate limits must never fail open: errors surface, and the views that
    # are limited answer 503 instead (see imagemonkey/ratelimits.py).
    "ratelimit": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX + ":rl",
        "VERSION": 2,
        "OPTIONS": {
            "SERIALIZER": _REDIS_SERIALIZER,
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
        },
    },
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
# Public pages for visitors without a session are kept this long (people/pagecache.py).
PAGE_CACHE_SECONDS = env_int("PAGE_CACHE_SECONDS", 10)
# Sessions live in PostgreSQL only. A cached session would sit in Redis under a key that
# holds the session id itself, so anyone who can list Redis's keys could sign in as its
# owner (an admin). `manage.py clearsessions` (a daily job in deploy/) purges expired ones.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
RATELIMIT_USE_CACHE = "ratelimit"
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
RATELIMIT_VIEW = "people.ratelimits.ratelimited"
# Behind nginx the real client address is the one nginx writes into
# X-Real-IP after checking the trusted proxy list (deploy/nginx); gunicorn
# listens on a unix socket, so nothing else can set it.
RATELIMIT_IP_META_KEY = env_str("RATELIMIT_IP_META_KEY", "REMOTE_ADDR")

# --- Files -----------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media"))).resolve()
MEDIA_URL = "/media/"
# Image files go through Django's storage API (donations/storage.py), in two stores:
# "private_media" (pending, quarantined and hidden images; never served by a public URL)
# and "public_media" (approved images). MEDIA_BACKEND=filesystem keeps them in
# MEDIA_ROOT (public ones served at MEDIA_URL by nginx in production, by Django under
# `make run`); MEDIA_BACKEND=s3 under private/ and public/ of one S3-compatible bucket
# (AWS S3, MinIO, Ceph RGW, Garage), public/ read from the bucket or MEDIA_PUBLIC_URL.
MEDIA_BACKEND = env_str("MEDIA_BACKEND", "filesystem")
if MEDIA_BACKEND not in ("filesystem", "s3"):
    raise ImproperlyConfigured("MEDIA_BACKEND must be filesystem or s3")
_MEDIA_STORAGES = {
    "filesystem": ("donations.storage.PrivateImageStorage", "donations.storage.PublicImageStorage"),
    "s3": ("donations.storage.PrivateS3Storage", "donations.storage.PublicS3Storage"),
}[MEDIA_BACKEND]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "private_media": {"BACKEND": _MEDIA_STORAGES[0]},
    "public_media": {"BACKEND": _MEDIA_STORAGES[1]},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Read by django-storages. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY come from the
# environment (or the host's instance role) and are never copied into settings.
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None  # None: AWS itself
AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME") or None
AWS_S3_ADDRESSING_STYLE = env_str("AWS_S3_ADDRESSING_STYLE") or None  # path or virtual
AWS_S3_SIGNATURE_VERSION = "s3v4"
# Where public/ of the bucket is reached by browsers (a CDN whose origin is the
# bucket's public/ prefix); empty: the bucket's own URL.
MEDIA_PUBLIC_URL = env_str("MEDIA_PUBLIC_URL")
if MEDIA_BACKEND == "s3" and not AWS_STORAGE_BUCKET_NAME:
    raise ImproperlyConfigured("MEDIA_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME")
if AWS_S3_ADDRESSING_STYLE not in (None, "path", "virtual", "auto"):
    raise ImproperlyConfigured("AWS_S3_ADDRESSING_STYLE must be path, virtual or auto")
# Behind nginx, the moderator's view of a private image answers with
# X-Accel-Redirect to nginx's internal location instead of sending the bytes.
PRIVATE_MEDIA_X_ACCEL = env_bool("PRIVATE_MEDIA_X_ACCEL", False)
MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 20)
MAX_FILES_PER_DONATION = 20
# One more than a donation may hold, so that the form can say so in words.
DATA_UPLOAD_MAX_NUMBER_FILES = MAX_FILES_PER_DONATION + 1
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_MEGAPIXELS", 50) * 1_000_000
IMAGE_MASTER_MAX_SIDE = env_int("IMAGE_MASTER_MAX_SIDE", 4096)
# Each scan of a progressive JPEG is a pass over the whole picture; photos have about 10.
IMAGE_MAX_JPEG_SCANS = env_int("IMAGE_MAX_JPEG_SCANS", 64)
IMAGE_WORKER_MEMORY_MB = env_int("IMAGE_WORKER_MEMORY_MB", 2048)
# A 48-megapixel photo takes 1–3 s; a file holds the decoder at most this long …
IMAGE_WORKER_TIMEOUT = env_int("IMAGE_WORKER_TIMEOUT", 15)
# … and one request (all its files, waiting included) at most this long.
IMAGE_REQUEST_DECODE_SECONDS = env_int("IMAGE_REQUEST_DECODE_SECONDS", 30)
IMAGE_WORKER_CPU_SECONDS = env_int("IMAGE_WORKER_CPU_SECONDS", 30)
# Bytes that timed out are refused without decoding for this long (in Redis).
IMAGE_TIMEOUT_MEMORY_HOURS = env_int("IMAGE_TIMEOUT_MEMORY_HOURS", 24)
IMAGE_WORKER_MAX_TASKS = 500  # uploads per decoding process before it is replaced
# Without libseccomp the decoder refuses to start (uploads answer 503), unless this is off.
IMAGE_WORKER_REQUIRE_SECCOMP = env_bool("IMAGE_WORKER_REQUIRE_SECCOMP", True)
# Perceptual hashes within this Hamming distance flag a possible duplicate.
# The four 16-bit band indexes find every match up to 3 without a scan.
NEAR_DUPLICATE_DISTANCE = 3
MAX_PENDING_ANONYMOUS = env_int("MAX_PENDING_ANONYMOUS", 2000)  # anonymous, site-wide
MAX_PENDING_PER_NETWORK = env_int("MAX_PENDING_PER_NETWORK", 200)  # … and per /24 or /48
REPORTS_TO_HIDE = env_int("REPORTS_TO_HIDE", 3)
# A rejected picture's files are kept (private) this long, so that the rejection can be undone.
REJECT_UNDO_HOURS = env_int("REJECT_UNDO_HOURS", 24)
DONATION_RATE = env_str("DONATION_RATE", "60/h")
REPORT_RATE = env_str("REPORT_RATE", "20/h")
EXPORT_RATE = env_str("EXPORT_RATE", "30/m")  # downloads, counts, previews, statistics
# The planner's estimate above which an export query is refused (400). Ordinary
# queries of up to 50 labels estimate ≤ 250,000 on a million images; 50 negations
# joined by | estimate 130 million there (bench/EXPORT_COST.md).
EXPORT_MAX_COST = env_int("EXPORT_MAX_COST", 10_000_000)
EXPORT_COUNT_TIMEOUT_MS = env_int("EXPORT_COUNT_TIMEOUT_MS", 5000)  # counts and previews
EXPORT_STREAM_TIMEOUT_S = env_int("EXPORT_STREAM_TIMEOUT_S", 1800)  # one download's statements
# The largest shard of an hf or webdataset export (an hf shard is spooled to a temporary file).
EXPORT_SHARD_BYTES = env_int("EXPORT_SHARD_BYTES", 1_000_000_000)
VOTER_RATE = env_str("VOTER_RATE", "10/h")  # new voter tokens per client address
VOTER_NETWORK_RATE = env_str("VOTER_NETWORK_RATE", "30/h")  # … and per /24 or /48 network

# --- Crowd validation (see README: "Votes, trust and settling") ------------
VOTE_RATE = env_str("VOTE_RATE", "60/m")
# Failed sign-ins per client address and per user name (the admin's today).
LOGIN_FAILURE_RATE = env_str("LOGIN_FAILURE_RATE", "10/h")


def _env_probability(name: str, default: float) -> float:
    value = env_str(name, str(default)).strip()
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0.5 < number < 1:
        raise ImproperlyConfigured(f"{name} must be a number between 0.5 and 1, not {value!r}")
    return number


def _env_share(name: str, default: float) -> float:
    value = env_str(name, str(default)).strip()
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0 <= number <= 1:
        raise ImproperlyConfigured(f"{name} must be a number from 0 to 1, not {value!r}")
    return number


# A pair is validated when the probability that its label is present, from its
# counted votes weighted by each voter's gold accuracy, reaches this; rejected
# when it falls to 1 − this. bench/CROWD.md shows what other values would give.
VALIDATION_POSTERIOR = _env_probability("VALIDATION_POSTERIOR", 0.995)
VOTER_ACCURACY_PRIOR = (2, 1)  # pseudo-counts (right, wrong) added to every gold record
VOTER_ACCURACY_MAX = 0.9  # a vote multiplies the odds by 9 at most: no two votes settle a pair
VOTER_LABEL_PRIOR = 3  # a voter's gold on one label counts beside 3 answers at their overall rate
TRAINING_GOLD_REQUIRED = env_int("TRAINING_GOLD_REQUIRED", 3)
TRAINING_MIN_ACCURACY = 0.75  # 3 gold with at most 1 wrong
GOLD_EVERY = env_int("GOLD_EVERY", 10)  # trusted voters meet gold 1 task in this many, at random
# The blind re-vote sample: the share of newly settled pairs drawn into it, and how often
# (1 task in this many) a trusted voter is asked one again; 0 asks none.
REVOTE_SAMPLE_RATE = _env_share("REVOTE_SAMPLE_RATE", 0.02)
REVOTE_EVERY = env_int("REVOTE_EVERY", 20)
GOLD_PROBATION = 10  # until a trusted voter has answered this many gold, 1 task in 3 is gold
GOLD_MIN_POOL = env_int("GOLD_MIN_POOL", 20)  # below this, moderators' answers become gold
GOLD_PROMOTE_MIN_VOTES = 8  # a settled pair with this many unanimous trusted votes becomes gold
CONSENSUS_EVIDENCE = 0.5  # an answer that agreed (or not) with a settled outcome, in gold answers
GOLD_PROMOTE_MIN_NETWORKS = 4  # … from at least this many networks (/24 or /48)
SETTLE_MIN_VOTERS = env_int("SETTLE_MIN_VOTERS", 3)  # weighing voters a pair needs to settle
SETTLE_MIN_NETWORKS = env_int("SETTLE_MIN_NETWORKS", 2)  # … from at least this many networks
GOLD_REPORT_DELAY_HOURS = 24  # /me reports gold answers only once they are this old
GOLD_REPORT_STEP = 10  # … and rounded down to this many
REOPEN_EXTRA_VOTES = 3
ALERT_WINDOW_MINUTES = 10
ALERT_SWING = 0.5
ALERT_BURST_VOTES = env_int("ALERT_BURST_VOTES", 30)
ALERT_BURST_SHARE = 0.5  # … and at least this share of all recent votes on the label
ALERT_QUARANTINE_HOURS = 24  # a burst's network's votes on the label stay out of counts this long
TASK_TICKET_SECONDS = env_int("TASK_TICKET_SECONDS", 3600)  # how long a served task may be answered

# --- Annotations (see README: "Outlines") -------------------------------------
ANNOTATION_RATE = env_str("ANNOTATION_RATE", "30/m")  # outlines drawn or edited
# Trusted voters who say a pair cannot be outlined before it stops being offered.
NOT_ANNOTATABLE_TO_CLOSE = env_int("NOT_ANNOTATABLE_TO_CLOSE", 3)
# Two independent outlines of one pair agree when their matched IoU reaches this.
AGREEMENT_IOU = 0.75
UNDO_SECONDS = 60  # how long a voter may take their last answer back
FILE_UPLOAD_PERMISSIONS = 0o644

# --- Security --------------------------------------------------------------
# HTTPS=1 is set on real hosts behind nginx (deploy/); `make run` serves plain
# HTTP on loopback, where secure-only cookies would never be sent back.
HTTPS = env_bool("HTTPS", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True  # no script reads it: forms carry the token
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # A browser takes a __Host- cookie only from HTTPS, with Path=/ and no Domain (Django's
    # defaults, kept): no sibling subdomain and no plain-HTTP answer can set or shadow it.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]


def env_origins(name: str) -> list[str]:
    """Comma-separated origins (scheme://host[:port]); anything else refuses to start, since
    each one is written into a Content-Security-Policy header."""
    origins = env_list(name, "")
    for origin in origins:
        if not re.fullmatch(r"[a-z][a-z0-9+.-]*://[A-Za-z0-9.\-\[\]:]+", origin):
            raise ImproperlyConfigured(
                f"{name} holds origins such as https://example.org or chrome-extension://<id>, "
                f"not {origin!r}"
            )
    return origins


# The only page that may be framed (/verify, the browser extensions' one question), and
# only by these origins; every other page refuses framing.
EMBED_ALLOWED_ORIGINS = env_origins("EMBED_ALLOWED_ORIGINS")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Accounts (django-allauth) ---------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "people:settings"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
# An account signs in only once its address is verified: until then it is nobody's.
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False  # a link scanner's GET confirms nothing: a POST does
# Sign-up, sign-in and reset answer alike whether or not an address is registered.
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_USERNAME_MIN_LENGTH = 2
ACCOUNT_USERNAME_BLACKLIST = ["admin", "root", "imagemonkey", "moderator", "curator", "me"]
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[ImageMonkey] "
# Failed sign-ins and reset requests are limited by people.ratelimits (per address and per
# account, failing closed when Redis is away); allauth's own limits stay on for the rest.
ACCOUNT_RATE_LIMITS = {"login_failed": False}
SOCIALACCOUNT_PROVIDERS = {
    name: {
        "APPS": [
            {
                "client_id": env_str(f"OAUTH_{name.upper()}_CLIENT_ID"),
                "secret": env_str(f"OAUTH_{name.upper()}_SECRET"),
            }
        ]
    }
    for name in OAUTH_PROVIDERS
}
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # a provider's word alone never claims an account
PASSWORD_RESET_RATE = env_str("PASSWORD_RESET_RATE", "5/h")  # per address and per e-mail
API_TOKEN_DAYS = 365  # the default lifetime of an API token


# --- E-mail ------------------------------------------------------------------
def _email_settings() -> dict:
    """EMAIL_URL (smtp://user:pass@host:port, smtps://… for TLS on connect, console:) or the
    usual EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS."""
    from urllib.parse import unquote, urlsplit

    url = env_str("EMAIL_URL")
    if url.startswith("console:"):
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps", "submission"):
            raise ImproperlyConfigured(
                f"EMAIL_URL must start with smtp://, smtps:// or console:, not {parts.scheme}://"
            )
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured("EMAIL_URL holds a port that is not a number") from None
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": parts.hostname or "localhost",
            "EMAIL_PORT": port
            or (465 if parts.scheme == "smtps" else 587 if parts.username else 25),
            "EMAIL_HOST_USER": unquote(parts.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
            "EMAIL_USE_SSL": parts.scheme == "smtps",
            "EMAIL_USE_TLS": parts.scheme != "smtps"
            and env_bool("EMAIL_USE_TLS", bool(parts.username)),
        }
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": env_str("EMAIL_HOST", "localhost"),
        "EMAIL_PORT": env_int("EMAIL_PORT", 25),
        "EMAIL_HOST_USER": env_str("EMAIL_HOST_USER"),
        "EMAIL_HOST_PASSWORD": env_str("EMAIL_HOST_PASSWORD"),
        "EMAIL_USE_TLS": env_bool("EMAIL_USE_TLS", False),
        "EMAIL_USE_SSL": env_bool("EMAIL_USE_SSL", False),
    }


globals().update(_email_settings())
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ImageMonkey <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django_redis": {"level": "WARNING"}},
}

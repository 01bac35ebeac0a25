"""gunicorn settings for ImageMonkey (used by `make run` and by supervisor in production).

Everything can be overridden from the environment: GUNICORN_BIND, WORKERS,
GUNICORN_TIMEOUT.
"""

import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WORKERS", "3"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Restart workers now and then so that slow leaks never add up.
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
errorlog = "-"
capture_output = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker):
    """Start the isolated image decoder now, so no upload waits for a process start.

    It must start in each worker, never in the master: a decoder started
    before the fork would be shared by every worker.
    """
    from donations.decoding import warm_up

    warm_up()

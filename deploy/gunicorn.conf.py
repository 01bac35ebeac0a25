"""gunicorn settings for ImageMonkey (used by `make run` and by supervisor in production).

Everything can be overridden from the environment: GUNICORN_BIND, WORKERS, THREADS,
GUNICORN_TIMEOUT. `make run` binds 127.0.0.1:$PORT; production binds the unix socket
that nginx proxies to (GUNICORN_BIND=unix:/run/imagemonkey/gunicorn.sock, see deploy/).
"""

import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
# A unix socket is made for its owner and group only (0660; gunicorn's default is 0777).
# In production the group is the app's, which nginx's user belongs to (deploy/install.sh),
# so nginx connects and other local users cannot. gunicorn applies this umask to the
# socket (and its workers' heartbeat files) only, not to the files the app writes.
umask = 0o117
workers = int(os.environ.get("WORKERS", "3"))
# Threaded workers keep reporting to the master while a thread streams a long
# export; a sync worker busy for longer than `timeout` would be killed mid-download.
worker_class = "gthread"
threads = int(os.environ.get("THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Restart workers now and then so that slow leaks never add up.
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
# No header is logged (no Authorization, X-Api-Token or X-Voter-Token), nor the user name
# of HTTP Basic (gunicorn's %(u)s): a line of the log never holds a credential.
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'
errorlog = "-"
capture_output = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# No gunicornc control socket: reloads go through `supervisorctl signal HUP` (deploy/), and
# the socket's default place, $HOME/.gunicorn/, is shared by every instance a user runs
# (each new one would replace the last one's) and is /root under supervisor.
control_socket_disable = True


def post_worker_init(worker):
    """Start the isolated image decoder now, so no upload waits for a process start.

    It must start in each worker, never in the master: a decoder started
    before the fork would be shared by every worker.
    """
    from donations.decoding import warm_up

    warm_up()

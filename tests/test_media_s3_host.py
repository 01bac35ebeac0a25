"""An app host set up from the environment alone keeps its pictures in the bucket: a real
gunicorn (deploy/gunicorn.conf.py) with MEDIA_BACKEND=s3 and the AWS_* variables, talking to
moto's S3 server on loopback (tests/s3.py) and to the test database, whose rows the test
reads and moderates in this process."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.conf import settings
from django_redis import get_redis_connection

from donations.models import Image
from donations.storage import PUBLIC_FILE_CACHE_CONTROL, RENDITIONS
from tests.helpers import photo_bytes

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    conf = settings.DATABASES["default"]
    password = f":{quote(conf['PASSWORD'], safe='')}" if conf.get("PASSWORD") else ""
    port = f":{conf['PORT']}" if conf.get("PORT") else ""
    host = quote(conf.get("HOST") or "", safe="")
    return f"postgres://{quote(conf['USER'], safe='')}{password}@{host}{port}/{conf['NAME']}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def host(s3_media):
    """http://127.0.0.1:<port> of a gunicorn whose media is the test's bucket."""
    data_dir = Path(tempfile.mkdtemp(prefix="imagemonkey-s3-host-"))
    port = free_port()
    prefix = f"s3host{secrets.token_hex(4)}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data_dir),
        "LANG": "C.UTF-8",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_KEY_PREFIX": prefix,
        "DATA_DIR": str(data_dir),
        "RATELIMIT_ENABLE": "0",
        "PRIVATE_MEDIA_X_ACCEL": "1",  # as deployed: the bucket must not be bypassed by it
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WORKERS": "2",
        "LOG_LEVEL": "WARNING",
        # The test moderates from its own process, under another cache prefix: the host's
        # anonymous page cache would not hear of it (tests/test_page_cache.py covers that).
        "PAGE_CACHE_SECONDS": "0",
        **s3_media.server.environment(s3_media.bucket),
    }
    # DEBUG off serves the manifest's hashed static names, as in production.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    log = data_dir / "gunicorn.log"
    with open(log, "w") as output:
        gunicorn = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "imagemonkey.wsgi",
             "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:  # not listening, or still starting
                pass
            if gunicorn.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base, data_dir
    finally:
        print(log.read_text()[-5000:])  # shown when the test fails
        os.killpg(gunicorn.pid, signal.SIGTERM)
        try:
            gunicorn.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(gunicorn.pid, signal.SIGKILL)
            gunicorn.wait()
        redis = get_redis_connection("default")
        for key in redis.scan_iter(f"{prefix}*"):
            redis.delete(key)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_a_host_configured_by_environment_keeps_donations_private_and_serves_approved_ones_from_the_bucket(
    host, s3_media
):
    base, data_dir = host
    answer = requests.post(
        f"{base}/v1/donate",
        files={"image": ("p.jpg", photo_bytes(320, 240), "image/jpeg")},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    image = Image.objects.get(uuid=answer.json()["uuid"])
    private = sorted(f"private/{image.file_name(kind)}" for kind in RENDITIONS)
    assert s3_media.stored() == private
    assert not [path for path in (data_dir / "media").rglob("*") if path.is_file()]
    bucket_url = f"{s3_media.server.endpoint}/{s3_media.bucket}"
    assert requests.get(f"{bucket_url}/{private[0]}", timeout=5).status_code == 403
    assert requests.get(f"{base}/image/{image.uuid}", timeout=5).status_code == 404

    image.decide("approve")
    page = requests.get(f"{base}/image/{image.uuid}", timeout=5).text
    display = image.url("display")
    assert display.startswith(f"{bucket_url}/public/") and display in page
    served = requests.get(display, timeout=5)
    assert served.status_code == 200
    assert served.headers["Cache-Control"] == PUBLIC_FILE_CACHE_CONTROL
    master = requests.get(image.url("master"), timeout=5).content
    assert requests.get(f"{base}/v1/donation/{image.uuid}", timeout=5).content == master

    image.decide("hide")
    assert requests.get(display, timeout=5).status_code in (403, 404)
    assert requests.get(f"{base}/image/{image.uuid}", timeout=5).status_code == 404
    assert s3_media.stored() == private

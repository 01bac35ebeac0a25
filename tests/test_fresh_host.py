"""deploy/install.sh, run for real on a fresh Debian 12 host (tests/fresh_host.py).

`make deploy-test` runs this (CI runs it after `make test`); elsewhere it is skipped, since
it needs root, systemd-nspawn and about ten minutes. The tests share one host and run in
order: install, look, install again, reboot, back up under load, update and roll back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.fresh_host import WHEELS_INSIDE, Host

pytestmark = pytest.mark.skipif(
    os.environ.get("FRESH_HOST") != "1" or os.geteuid() != 0,
    reason="the fresh-host test runs as root through `make deploy-test`",
)

APP = "/home/imagemonkey/app"
ENV_FILE = "/etc/imagemonkey/env"
OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELS_INSIDE}
# What install.sh writes, and what a second run must leave alone.
CONFIGURATION = [
    "/etc/nginx/sites-available/imagemonkey",
    "/etc/nginx/snippets/imagemonkey-file-headers.conf",
    "/etc/supervisor/conf.d/imagemonkey.conf",
    "/etc/tmpfiles.d/imagemonkey.conf",
    "/etc/redis/imagemonkey.conf",
    "/etc/redis/redis.conf",
    "/etc/iptables/rules.v4",
    ENV_FILE,
]
TIMERS = [
    "imagemonkey-backup.timer",
    "imagemonkey-orphans.timer",
    "imagemonkey-clearsessions.timer",
]


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    kept = os.environ.get("FRESH_HOST_DIR")  # keep the container's files to look at them
    folder = Path(kept or tmp_path_factory.mktemp("fresh-host"))
    host = Host(folder)
    host.prepare()
    host.boot()
    try:
        host.install = install(host)
        yield host
    finally:
        host.stop()
        if not kept:
            shutil.rmtree(folder, ignore_errors=True)


def install(host: Host) -> str:
    result = host.run(
        "/src/deploy/install.sh", "--repo", "/src", env=OFFLINE_PIP, check=False, timeout=1500
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def site(host: Host, path: str = "/", *options: str) -> tuple[int, str]:
    """GET a page through nginx over HTTPS, as a browser on the host would."""
    result = host.run(
        "curl", "-sk", "--max-time", "20", "--resolve", f"{host.name}:443:127.0.0.1",
        "-o", "/tmp/page", "-w", "%{http_code}", *options, f"https://{host.name}{path}",
    )  # fmt: skip
    return int(result.stdout), host.run("cat", "/tmp/page").stdout


def manage(host: Host, *arguments: str, input: str | None = None) -> str:
    """The output of a manage.py command run as the app's user (its last line for shell)."""
    return host.run(
        "runuser", "-u", "imagemonkey", "--", "env", "-C", APP,
        f"{APP}/deploy/with-env", ENV_FILE, f"{APP}/.venv/bin/python", "manage.py", *arguments,
        input=input, timeout=600,
    ).stdout  # fmt: skip


def fingerprint(host: Host) -> dict[str, str]:
    paths = [*CONFIGURATION, *(f"/etc/systemd/system/{t}" for t in TIMERS)]
    sums = host.run("sha256sum", *paths).stdout
    packages = host.run("dpkg-query", "-W", "-f", "${Package} ${Version}\\n").stdout
    roles = host.run(
        "runuser", "-u", "postgres", "--", "psql", "-tAc",
        "SELECT rolname, rolcanlogin FROM pg_roles ORDER BY 1",
    ).stdout  # fmt: skip
    return {
        "files": sums,
        "packages": hashlib.sha256(packages.encode()).hexdigest(),
        "roles": roles,
        "rules": host.run("iptables", "-S").stdout,
    }


def test_install_sets_up_a_fresh_host_without_the_network(host):
    assert f"ImageMonkey runs at https://{host.name}/" in host.install
    # The container has no way out: everything came from its cache and the wheelhouse.
    links = host.run("ip", "-o", "link").stdout.splitlines()
    assert len(links) == 1 and links[0].startswith("1: lo:"), links


def test_the_site_answers_through_nginx_over_https(host):
    status, page = site(host)
    assert status == 200 and "ImageMonkey" in page
    status, _ = site(host, "/healthz")
    assert status == 200
    redirect = host.run(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
        "-H", f"Host: {host.name}", "http://127.0.0.1/",
    ).stdout  # fmt: skip
    assert redirect == f"301 https://{host.name}/"


def test_gunicorn_runs_under_supervisor(host):
    # supervisor says STARTING until the program has run for its startsecs.
    for _ in range(60):
        status = host.run("supervisorctl", "status", check=False).stdout
        if not re.search(r"^imagemonkey\s+STARTING", status, re.MULTILINE):
            break
        time.sleep(1)
    assert re.search(r"^imagemonkey\s+RUNNING", status, re.MULTILINE), status


def test_the_daily_jobs_are_systemd_timers(host):
    timers = host.run("systemctl", "list-timers", "--all", "--no-pager").stdout
    for timer in TIMERS:
        assert timer in timers


def accepts(rule: str, port: int) -> bool:
    if not (rule.startswith("-A INPUT -p tcp") and rule.endswith("-j ACCEPT")):
        return False
    ports = re.search(r"--dports? ([\d,]+)", rule)
    return bool(ports) and str(port) in ports.group(1).split(",")


def firewall_policy(host: Host) -> list[str]:
    rules = host.run("iptables", "-S").stdout.splitlines()
    assert "-P INPUT DROP" in rules, rules
    assert "-A INPUT -i lo -j ACCEPT" in rules, rules
    assert "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" in rules, rules
    for port in (22, 80, 443):
        assert any(accepts(rule, port) for rule in rules), (port, rules)
    assert not any(accepts(rule, 5432) or accepts(rule, 6379) for rule in rules)
    return rules


def test_the_firewall_drops_what_is_not_ssh_or_the_web(host):
    firewall_policy(host)


def test_a_second_install_changes_nothing(host):
    before = fingerprint(host)
    pid = host.run("supervisorctl", "pid", "imagemonkey").stdout.strip()
    output = install(host)
    assert fingerprint(host) == before
    assert "all installed" in output
    # The app is reloaded in place (HUP), not restarted.
    assert host.run("supervisorctl", "pid", "imagemonkey").stdout.strip() == pid


def test_the_firewall_and_the_site_survive_a_reboot(host):
    rules = firewall_policy(host)
    host.reboot()
    assert firewall_policy(host) == rules
    status, _ = site(host)
    assert status == 200


VOTES_ARRIVE = """
import random, time
from django.db import connection
from donations.models import ImageLabel
from people.models import Voter
from validation import tickets, voting
pairs = list(ImageLabel.objects.all())
for i in range(int(__import__('os').environ.get('VOTES', '150'))):
    voter = Voter.objects.create()
    pair = random.choice(pairs)
    voting.record_vote(pair, voter, 1, ticket=tickets.issue(voter, pair))
    if i == 0:
        open('/tmp/votes-started', 'w').close()
"""

COUNTS = """
import json
from donations.models import ImageLabel
from people.models import Voter
from validation.models import Vote
print(json.dumps({
    "votes": Vote.objects.count(),
    "pairs": ImageLabel.objects.count(),
    "voters": Voter.objects.count(),
}))
"""


def donate(host: Host, n: int) -> None:
    make = (
        "import random, sys\nfrom PIL import Image\n"
        "for i in range(int(sys.argv[1])):\n"
        "    Image.effect_noise((320, 240), 60 + i).convert('RGB').save(f'/tmp/p{i}.jpg')\n"
    )
    host.run(f"{APP}/.venv/bin/python", "-c", make, str(n))
    for i in range(n):
        status = host.run(
            "curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
            "--resolve", f"{host.name}:443:127.0.0.1",
            "-F", f"image=@/tmp/p{i}.jpg", "-F", "label=dog", f"https://{host.name}/v1/donate",
        ).stdout  # fmt: skip
        assert status in ("200", "201"), status
    manage(
        host, "shell", "-c",
        "from django.db import transaction\nfrom donations.models import Image\n"
        "for image in Image.objects.pending():\n"
        "    with transaction.atomic(): image.decide('approve')",
    )  # fmt: skip


def test_a_backup_taken_while_votes_arrive_restores(host):
    donate(host, 3)
    # Votes arrive from a second process for the whole time the backup runs.
    voters = host.run(
        "sh", "-c",
        f"cd {APP} && nohup runuser -u imagemonkey -- env VOTES=400 {APP}/deploy/with-env "
        f"{ENV_FILE} {APP}/.venv/bin/python manage.py shell -c \"$SCRIPT\" "
        ">/tmp/voters.log 2>&1 & echo $!",
        env={"SCRIPT": VOTES_ARRIVE},
    ).stdout.strip()  # fmt: skip
    # The backup starts once the first vote is in (a fixed sleep was too short under load:
    # the dump then held no vote at all).
    host.run("sh", "-c", "until [ -e /tmp/votes-started ]; do sleep 0.2; done", timeout=300)
    host.run("runuser", "-u", "imagemonkey", "--", f"{APP}/deploy/backup.sh", timeout=600)
    still_voting = host.run("kill", "-0", voters, check=False).returncode == 0
    host.run("sh", "-c", f"while kill -0 {voters} 2>/dev/null; do sleep 0.5; done", timeout=600)
    assert "Traceback" not in host.run("cat", "/tmp/voters.log").stdout
    live = json.loads(manage(host, "shell", "-c", COUNTS).splitlines()[-1])
    dump = host.run("sh", "-c", "ls /var/backups/imagemonkey/db-*.dump | tail -1").stdout.strip()

    # Restore into a second database, as onto a replacement host.
    host.run("runuser", "-u", "postgres", "--", "createdb", "-O", "imagemonkey", "restored")
    url = manage(
        host,
        "shell",
        "-v",
        "0",
        "-c",
        "from django.conf import settings; "
        "d = settings.DATABASES['default']; "
        "print(f\"postgres://{d['USER']}:{d['PASSWORD']}@{d['HOST']}:{d['PORT']}/restored\")",
    )
    host.run("runuser", "-u", "imagemonkey", "--", f"{APP}/deploy/restore.sh",
             "--dump", dump, "--database-url", url.strip(), timeout=600)  # fmt: skip
    on_restored = ["runuser", "-u", "imagemonkey", "--", "env", "-C", APP,
                   f"{APP}/deploy/with-env", ENV_FILE, "env", f"DATABASE_URL={url.strip()}",
                   f"{APP}/.venv/bin/python", "manage.py"]  # fmt: skip
    host.run(*on_restored, "migrate", "--check")
    restored = json.loads(host.run(*on_restored, "shell", "-c", COUNTS).stdout.splitlines()[-1])
    # The dump is one snapshot taken in the middle of the voting: each vote came from a
    # voter made just before it, so no vote is there without its voter; it holds some
    # but (when the voters were still at it) not all of the votes.
    assert restored["pairs"] == live["pairs"] == 3
    assert restored["voters"] >= restored["votes"]
    assert 0 < restored["votes"] <= live["votes"]
    if still_voting:
        assert restored["votes"] < live["votes"]


def test_update_deploys_a_newer_commit_and_rolls_back_a_broken_one(host):
    about = (host.source / "templates/about.html").read_text()
    newer = host.commit("Say hello from the fresh host", "templates/about.html",
                        about.replace("</h1>", "</h1>\n<p>Hello from the fresh host.</p>", 1))  # fmt: skip
    result = host.run(f"{APP}/deploy/update.sh", "--ref", newer, env=OFFLINE_PIP, timeout=900)
    assert "Done:" in result.stdout
    status, page = site(host, "/about")
    assert status == 200 and "Hello from the fresh host." in page

    settings = (host.source / "imagemonkey/settings.py").read_text()
    broken = host.commit("Break the settings", "imagemonkey/settings.py",
                         settings + "\nraise RuntimeError('broken on purpose')\n")  # fmt: skip
    result = host.run(
        f"{APP}/deploy/update.sh", "--ref", broken, env=OFFLINE_PIP, check=False, timeout=900
    )
    assert result.returncode != 0
    assert f"rolled back to {newer}" in result.stderr
    head = host.run("runuser", "-u", "imagemonkey", "--", "git", "-C", APP, "rev-parse", "HEAD")
    assert head.stdout.strip() == newer
    status, page = site(host, "/about")
    assert status == 200 and "Hello from the fresh host." in page

"""Where reads go: the router's decisions. A real streaming replica is in tests/test_stack.py."""

import pytest
from django.db import transaction
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from donations.models import Image
from people import replicas
from people.middleware import ReplicaRoutingMiddleware
from tests.helpers import make_image

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_fresh_replica(monkeypatch):
    """A replica alias that claims to be fresh; no query is ever sent to it here."""
    asked = []

    def fresh(alias):
        asked.append(alias)
        return True

    monkeypatch.setattr(replicas, "is_fresh", fresh)
    with override_settings(DATABASE_REPLICAS=["replica1"]):
        yield asked


def where_reads_go(request, view=None) -> list[str]:
    seen = []

    def respond(request):
        seen.append(replicas.read_alias())
        if view is not None:
            view(request)
            seen.append(replicas.read_alias())
        return HttpResponse("ok")

    ReplicaRoutingMiddleware(respond)(request)
    return seen


def test_a_get_reads_on_a_fresh_replica(one_fresh_replica):
    assert where_reads_go(RequestFactory().get("/browse")) == ["replica1"]


def test_a_post_reads_on_the_primary_and_marks_the_visitor(one_fresh_replica):
    request = RequestFactory().post("/image/x/report")
    seen = []

    def respond(request):
        seen.append(replicas.read_alias())
        return HttpResponse("ok")

    response = ReplicaRoutingMiddleware(respond)(request)
    assert seen == ["default"]
    assert response.cookies["wrote"]["max-age"] == 10
    # The same visitor's next GET reads on the primary too, by cookie or by address.
    again = RequestFactory().get("/image/x")
    again.COOKIES["wrote"] = response.cookies["wrote"].value
    assert where_reads_go(again) == ["default"]
    assert where_reads_go(RequestFactory().get("/image/x")) == ["default"]
    assert where_reads_go(RequestFactory().get("/image/x", REMOTE_ADDR="192.0.2.9")) == ["replica1"]


def test_a_forged_recent_write_cookie_counts_for_nothing(one_fresh_replica):
    request = RequestFactory().get("/browse", REMOTE_ADDR="192.0.2.10")
    request.COOKIES["wrote"] = "1"
    assert where_reads_go(request) == ["replica1"]


def test_once_a_get_writes_its_reads_stay_on_the_primary(one_fresh_replica):
    def writes(request):
        make_image()

    assert where_reads_go(RequestFactory().get("/browse"), writes) == ["replica1", "default"]


def test_a_transaction_on_the_primary_reads_on_the_primary(one_fresh_replica):
    def in_transaction(request):
        with transaction.atomic():
            assert replicas.read_alias() == "default"
            assert Image.objects.db == "default"

    assert where_reads_go(RequestFactory().get("/browse"), in_transaction)[0] == "replica1"


def test_without_a_fresh_replica_reads_go_to_the_primary(monkeypatch):
    monkeypatch.setattr(replicas, "is_fresh", lambda alias: False)
    with override_settings(DATABASE_REPLICAS=["replica1", "replica2"]):
        assert where_reads_go(RequestFactory().get("/browse")) == ["default"]


def test_outside_a_request_everything_reads_on_the_primary(one_fresh_replica):
    assert replicas.read_alias() == "default"
    assert Image.objects.db == "default"
    assert one_fresh_replica == []


def test_writes_always_go_to_the_primary(one_fresh_replica):
    router = replicas.ReplicaRouter()
    with replicas.replica_reads(True):
        assert router.db_for_read(Image) == "replica1"
        assert router.db_for_write(Image) == "default"
        assert router.db_for_read(Image) == "default"
    assert not router.allow_migrate("replica1", "donations")


@pytest.mark.parametrize(
    ("standing", "fresh"),
    [
        # An idle primary: nothing to replay, however old the last replayed transaction.
        (replicas.Standing(True, True, True, 3600.0), True),
        (replicas.Standing(True, True, False, 2.0), True),
        (replicas.Standing(True, True, False, 9.0), False),
        # Cut off from the primary: "caught up" with what it received says nothing.
        (replicas.Standing(True, False, True, 9.0), False),
        (replicas.Standing(True, False, True, None), False),
        # Promoted: no longer a replica of this primary.
        (replicas.Standing(False, False, False, None), False),
    ],
)
def test_a_replica_is_fresh_when_caught_up_or_little_behind(standing, fresh):
    assert standing.is_fresh(max_lag_s=5) is fresh


def test_the_primary_itself_is_never_taken_for_a_fresh_replica():
    replicas.health.forget()
    assert replicas.check("default") is False


def test_an_export_takes_its_snapshot_where_the_request_that_made_it_reads(one_fresh_replica):
    from exports.export import Export
    from exports.query import LabelQuery
    from tests.helpers import make_label

    make_label("dog")
    query = LabelQuery.parse("dog")
    with replicas.replica_reads(True):
        streamed_later = Export(query)
    assert streamed_later.database == "replica1"  # though the rows are read after the view
    assert Export(query).database == "default"

"""Image collections per account (the original's), and image.collection='owner/name' in
export queries."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from donations.models import Image, ImageCollection
from exports.query import LabelQuery, QueryError
from people.models import ApiToken
from tests.helpers import make_image, make_pair

pytestmark = pytest.mark.django_db


def bearer(user: User, scopes=("annotate",)) -> dict:
    _, plaintext = ApiToken.issue(user, list(scopes))
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


@pytest.fixture
def ada() -> User:
    return User.objects.create_user("ada", "ada@example.org", "a long enough password 42")


def create(user: User, name: str, **headers):
    return Client().post(
        f"/v1/user/{user.username}/imagecollection",
        {"name": name, "description": "for a test"},
        content_type="application/json",
        **(headers or bearer(user)),
    )


def test_an_account_makes_a_collection_adds_public_pictures_and_lists_it(ada):
    headers = bearer(ada)
    assert create(ada, "trees", **headers).status_code == 201
    assert create(ada, "Trees", **headers).status_code == 409, "one name per account"
    public, pending = make_image(), make_image(status=Image.Status.PENDING)
    add = f"/v1/user/ada/imagecollection/trees/image/{public.uuid}"
    assert Client().post(add, **headers).status_code == 200
    refused = Client().post(f"/v1/user/ada/imagecollection/trees/image/{pending.uuid}", **headers)
    assert refused.status_code == 404, "an unapproved picture is nobody's to collect"
    listing = Client().get("/v1/user/ada/imagecollections").json()
    assert [(c["name"], c["images"]) for c in listing] == [("trees", 1)]
    one = Client().get("/v1/user/ada/imagecollection/trees").json()
    assert one["uuids"] == [str(public.uuid)]


def test_a_collection_is_made_only_by_its_own_account_with_the_annotate_scope(ada):
    eve = User.objects.create_user("eve", password="x" * 20)
    assert create(ada, "trees", **bearer(eve)).status_code == 403
    assert create(ada, "trees", **bearer(ada, ["read"])).status_code == 403
    assert create(ada, "trees", HTTP_X_VOTER_TOKEN="nothing").status_code == 401
    assert create(ada, "a/b").status_code == 400
    assert not ImageCollection.objects.exists()


def test_a_query_names_a_collection_with_its_owner(ada):
    collection = ImageCollection.objects.create(owner=ada, name="trees")
    inside = make_image()
    make_pair("dog", image=inside)
    outside = make_image()
    make_pair("dog", image=outside)
    collection.images.add(inside)
    query = LabelQuery.parse("image.collection = 'ADA/Trees' | dog")
    assert str(query) == "image.collection='ada/trees' | dog"
    assert str(LabelQuery.parse(str(query))) == str(query), "the canonical form reads back"
    sql = LabelQuery.parse("image.collection='ada/trees'").image_ids_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        assert [row[0] for row in cursor.fetchall()] == [inside.pk]
    with pytest.raises(QueryError, match="owner"):
        LabelQuery.parse("image.collection='trees'")
    with pytest.raises(QueryError, match="unknown collection"):
        LabelQuery.parse("image.collection='ada/bushes'")


def test_the_export_count_takes_a_collection(client, ada):
    collection = ImageCollection.objects.create(owner=ada, name="trees")
    image = make_image()
    make_pair("dog", image=image)
    make_image()
    collection.images.add(image)
    response = client.get("/v1/export/count", {"query": "image.collection='ada/trees'"})
    assert response.status_code == 200 and response.json() == {"images": 1}
    unknown = client.get("/v1/export/count", {"query": "image.collection='ada/none'"})
    assert unknown.status_code == 400 and "unknown collection" in unknown.json()["error"]


def test_names_no_database_can_store_in_a_path_answer_404():
    for url in (
        "/v1/user/a%00b/imagecollections",
        "/v1/user/ada/imagecollection/a%00b",
        "/v1/user/a%00b/profile",
        "/people/a%00b",
    ):
        assert Client().get(url).status_code == 404, url

"""/v1/export?tags=a,b: the 2017 form of the export, beside ?query=."""

import json

import pytest

from tests.helpers import make_image, make_label, make_pair

pytestmark = pytest.mark.django_db(transaction=True)  # an export reads its own snapshot


def rows(response):
    assert response.status_code == 200, response.content
    return json.loads(b"".join(response.streaming_content))


@pytest.fixture
def pictures():
    dog, cat, tree = make_label("dog"), make_label("cat"), make_label("tree")
    eye = make_label("eye", parent=dog)
    one, two, three = make_image(), make_image(), make_image()
    make_pair(dog, one, num_yes=3, num_no=1, probability=0.75)
    make_pair(eye, one)
    make_pair(tree, one)
    make_pair(cat, two, status="rejected", num_no=4)
    make_pair(tree, three)
    make_pair(dog, make_image(status="pending"))
    return one, two


def test_tags_are_label_names_joined_with_or_one_row_per_pair(client, pictures):
    one, two = pictures
    answer = rows(client.get("/v1/export?tags=dog,cat"))
    assert answer == [
        {
            "uuid": str(one.uuid),
            "label": "dog",
            "sublabel": "",
            "provider": "donation",
            "probability": 0.75,
            "num_yes": 3,
            "num_no": 1,
            "annotations": [],
        },
        {
            "uuid": str(two.uuid),
            "label": "cat",
            "sublabel": "",
            "provider": "donation",
            "probability": 0.0,
            "num_yes": 0,
            "num_no": 4,
            "annotations": [],
        },
    ], "every pair of the tags, settled or not, and only public pictures"


def test_a_name_is_never_read_as_query_syntax(client, pictures):
    make_label("rock & roll")
    assert rows(client.get("/v1/export", {"tags": "rock & roll"})) == []
    response = client.get("/v1/export", {"tags": "dog) | (cat"})
    assert response.status_code == 400 and "unknown label" in response.json()["error"]


@pytest.mark.parametrize("query", ["tags=", "tags=,", "tags=%20"])
def test_no_tags_is_422_as_in_the_original(client, query):
    assert client.get(f"/v1/export?{query}").status_code == 422


def test_tags_take_no_other_parameter(client, pictures):
    response = client.get("/v1/export?tags=dog&query=cat")
    assert response.status_code == 400 and "query" in response.json()["error"]

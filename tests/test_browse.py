"""Browsing public pictures: keyset pages, filters, and query counts that do not grow."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.helpers import make_image, make_label, make_pair

pytestmark = pytest.mark.django_db


def public_images(count: int, label=None):
    start = timezone.now() - timedelta(days=1)
    images = []
    for n in range(count):
        image = make_image(created=start + timedelta(seconds=n))
        if label is not None:
            make_pair(label, image)
        images.append(image)
    return images


def test_browse_shows_newest_public_pictures_first(client):
    older, newer = public_images(2)
    make_image(status="pending")
    body = client.get("/browse").content.decode()
    assert body.index(str(newer.uuid)) < body.index(str(older.uuid))
    assert body.count('loading="lazy"') == 2
    assert 'width="256" height="192"' in body, (
        "thumbnails carry their size, so the page does not jump"
    )


def test_a_card_names_every_label_in_its_alt_text_and_shows_four_as_badges(client):
    image = make_image()
    dog = make_label("dog")
    names = ["apple", "bird", "car", "dog/eye", "tree"]
    make_pair("apple", image, status="validated")
    make_pair("bird", image, status="rejected")
    make_pair("car", image)
    make_pair(make_label("eye", parent=dog), image)
    make_pair("tree", image)
    body = client.get("/browse").content.decode()
    assert f'alt="Picture 1, labelled {", ".join(names)}"' in body
    assert '<span class="badge ok">apple</span> <span class="badge bad">bird</span> ' in body
    assert '<span class="badge">car</span> <span class="badge">dog/eye</span> </p>' in body
    assert '<span class="badge">tree</span>' not in body
    assert f'<a href="/image/{image.uuid}">' in body


def test_a_card_escapes_what_a_label_name_holds(client):
    image = make_image()
    make_pair(make_label('"><script>alert(1)</script>'), image)
    body = client.get("/browse").content.decode()
    assert "<script>alert" not in body
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_pages_follow_each_other_without_gaps_or_repeats(client):
    images = public_images(100)
    seen, url = [], "/browse"
    while url:
        response = client.get(url)
        seen += [img.uuid for img in response.context["images"]]
        cursor = response.context["next_cursor"]
        url = f"/browse?after={cursor}" if cursor else None
    assert seen == [img.uuid for img in reversed(images)]


def test_a_garbled_cursor_starts_from_the_newest(client):
    public_images(3)
    for cursor in ("abc", "1-", "99999999999999999999-1", "-5-3"):
        assert client.get(f"/browse?after={cursor}").status_code == 200


def test_the_label_filter_and_vote_state(client):
    dog, cat = make_label("dog"), make_label("cat")
    dogs = public_images(2, dog)
    public_images(1, cat)
    make_pair(dog, make_image(status="pending"))
    response = client.get("/browse?label=dog")
    assert {i.uuid for i in response.context["images"]} == {i.uuid for i in dogs}
    dogs[0].pairs.update(status="validated")
    response = client.get("/browse?label=dog&state=validated")
    assert [i.uuid for i in response.context["images"]] == [dogs[0].uuid]
    unknown = client.get("/browse?label=unicorn", follow=True)
    assert "There is no label called “unicorn”" in unknown.content.decode()


def test_a_browse_page_costs_the_same_queries_for_few_or_many_pictures(client):
    dog = make_label("dog")
    public_images(3, dog)
    client.get("/browse")  # the label field's names are read once a minute, not per page
    with CaptureQueriesContext(connection) as few:
        client.get("/browse")
    public_images(60, dog)
    with CaptureQueriesContext(connection) as many:
        client.get("/browse")
    assert len(many) == len(few)


def test_an_image_page_shows_labels_votes_and_the_cc0_notice(client):
    image = make_image()
    pair = make_pair("dog", image)
    pair.num_yes, pair.num_no = 3, 1
    pair.save()
    body = client.get(f"/image/{image.uuid}").content.decode()
    assert "CC0 1.0" in body and "Download the full picture" in body
    assert '<td class="num">3</td>' in body
    assert "Report this picture" in body


def test_the_image_page_query_count_does_not_depend_on_its_labels(client):
    image = make_image()
    make_pair("dog", image)
    with CaptureQueriesContext(connection) as few:
        client.get(f"/image/{image.uuid}")
    for name in ("cat", "ball", "tree", "car"):
        make_pair(name, image)
    with CaptureQueriesContext(connection) as many:
        client.get(f"/image/{image.uuid}")
    assert len(many) == len(few)

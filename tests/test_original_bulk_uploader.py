"""The original bulk uploader (imagemonkey-libs, python/snippets/donate_and_label.py),
request for request, over real HTTP: each picture is donated (the script counts only a
200 as success), then labelled by the uuid the donation answered.

The script authenticates with `X-Api-Token: <account token>`, as here: an account's API
token, with the scopes the site's settings page gives by default.
"""

import io

import pytest
import requests
from django.contrib.auth import get_user_model
from PIL import Image as PILImage

from donations.models import Image, ImageCollection, ImageLabel
from labels.models import LabelSuggestion
from people.models import ApiToken
from tests.helpers import make_label

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN_HEADER = "X-Api-Token"


def resized_jpeg(seed: int) -> bytes:
    """What _load_img_and_resize sends: the picture at most 1024 px, saved as JPEG."""
    picture = PILImage.new("RGB", (1600, 1200), (seed * 40 % 256, 90, 160))
    for x in range(0, 1600, 16):
        picture.putpixel((x, (x * seed) % 1200), (255, 255, 255))
    picture = picture.resize((1024, 768), PILImage.LANCZOS)
    output = io.BytesIO()
    picture.save(output, format="JPEG")
    return output.getvalue()


def push(base: str, token: str, img_bytes: bytes, image_collection, labels) -> list:
    """_push, then _add_labels, with the script's exact requests; the answers it reads."""
    answers = []
    formdata = {}
    if image_collection is not None:
        formdata["image_collection"] = image_collection
    response = requests.post(
        base + "/v1/donate?add_sublabels=false",
        files={"image": ("file.jpg", img_bytes, "image/jpg")},
        data=formdata,
        headers={TOKEN_HEADER: token},
        timeout=60,
    )
    answers.append(response)
    if response.status_code == 200 and len(labels) > 0:
        body = [{"label": elem["label"], "annotatable": elem["annotatable"]} for elem in labels]
        answers.append(
            requests.post(
                base + "/v1/donation/" + response.json()["uuid"] + "/labelme",
                json=body,
                headers={TOKEN_HEADER: token},
                timeout=60,
            )
        )
    return answers


def test_the_original_bulk_uploader_donates_and_labels_its_pictures(live_server):
    make_label("apple")
    make_label("table")
    user = get_user_model().objects.create_user("bulk", "bulk@example.org", "a long passphrase")
    _, token = ApiToken.issue(user, ["read", "donate", "annotate"], "bulk uploader")
    labels = [
        {"label": "apple", "annotatable": True},
        {"label": "table", "annotatable": True},
        {"label": "knife", "annotatable": False},
    ]
    kitchen = ImageCollection.objects.create(owner=user, name="kitchen")
    for seed, collection in ((1, None), (2, "kitchen")):
        donated, labelled = push(live_server.url, token, resized_jpeg(seed), collection, labels)
        assert donated.status_code == 200, donated.text
        assert labelled.status_code == 200, labelled.text
        image = Image.objects.get(uuid=donated.json()["uuid"])
        assert image.status == Image.Status.PENDING and (image.width, image.height) == (1024, 768)
        names = set(ImageLabel.objects.filter(image=image).values_list("label__name", flat=True))
        assert names == {"apple", "table"}
        assert labelled.json()["suggested"] == ["knife"]
    assert LabelSuggestion.objects.get().name == "knife"
    assert kitchen.images.count() == 1, "the second picture went into the account's collection"
    assert not ImageLabel.objects.filter(ask_parts=True).exists(), "add_sublabels=false"

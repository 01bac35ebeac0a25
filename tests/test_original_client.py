"""The original ImageMonkey Python client (pyimagemonkey.API), call for call.

The class below makes exactly the HTTP requests the client makes and reads the
answers exactly as it does (labels joined with "|" into `query`, probability
computed from num_yes/num_no), against a live server, over real HTTP.
"""

import os

import pytest
import requests

from donations.models import ImageLabel
from labels.models import Label
from tests.helpers import make_label, real_public_image

pytestmark = pytest.mark.django_db(transaction=True)


class Rectangle:
    def __init__(self, top, left, width, height):
        self.top, self.left, self.width, self.height, self.angle = top, left, width, height, 0


class Ellipse:
    def __init__(self, left, top, rx, ry):
        self.left, self.top, self.rx, self.ry, self.angle = left, top, rx, ry, 0
        self.cx, self.cy = left + rx, top + ry


class Polygon:
    def __init__(self, points):
        self.points = [(point["x"], point["y"]) for point in points]
        self.angle = 0


def parse_annotations(raw_annotations):
    """pyimagemonkey's _parse_result, for the annotations: (label, shape) per shape."""
    annotations = []
    for raw in raw_annotations:
        if raw["type"] == "polygon":
            shape = Polygon(raw["points"])
        elif raw["type"] == "rect":
            shape = Rectangle(raw["top"], raw["left"], raw["width"], raw["height"])
        elif raw["type"] == "ellipse":
            shape = Ellipse(raw["left"], raw["top"], raw["rx"], raw["ry"])
        else:
            continue
        if "angle" in raw:
            shape.angle = raw["angle"]
        annotations.append((raw["label"], shape))
    return annotations


class OriginalClient:
    """The calls of pyimagemonkey.API(api_version=1)."""

    def __init__(self, base_url: str):
        self.base = base_url + "/v1"

    def labels(self, show_accessors=False):
        url = self.base + ("/label/accessors" if show_accessors else "/label")
        response = requests.get(url, timeout=30)
        assert response.status_code == 200
        return response.json()

    def list_validations(self, min_probability=0.8, min_count=0):
        response = requests.get(
            self.base + "/statistics/validations/count",
            params={"min_probability": min_probability, "min_count": min_count},
            timeout=30,
        )
        assert response.status_code == 200
        return response.json()

    def export(self, labels, min_probability=0.8, only_annotated=False):
        params = {"query": "|".join(labels)}
        if only_annotated:
            params["annotations_only"] = "true"
        response = requests.get(self.base + "/export", params=params, timeout=60)
        if response.status_code != 200:
            raise RuntimeError(response.json()["error"])
        result = []
        for element in response.json():
            validations = []
            for raw in element["validations"]:
                total = raw["num_yes"] + raw["num_no"]
                probability = float(raw["num_yes"]) / total if total else 0
                if probability >= min_probability:
                    validations.append((raw["label"], raw["num_yes"], raw["num_no"]))
            result.append(
                (
                    element["uuid"],
                    element["width"],
                    element["height"],
                    parse_annotations(element["annotations"]),
                    validations,
                )
            )
        return result

    def download_image(self, uuid, folder, extension=".jpg"):
        filename = folder + os.path.sep + uuid + extension
        response = requests.get(self.base + "/donation/" + uuid, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"couldn't download image {uuid}")
        with open(filename, "wb") as handle:
            handle.write(response.content)
        return filename


def test_the_original_client_works_unchanged(live_server, tmp_path):
    dog_image = real_public_image("dog", size=(400, 300))
    cat_image = real_public_image("cat", "dog")
    real_public_image("tree")
    ImageLabel.objects.filter(image=dog_image).update(num_yes=9, num_no=1, probability=0.9)
    ImageLabel.objects.filter(image=cat_image, label__name="cat").update(
        num_yes=3, num_no=3, probability=0.5
    )
    client = OriginalClient(live_server.url)

    assert {"dog", "cat", "tree"} <= set(client.labels())
    assert "dog" in client.labels(show_accessors=True)
    counts = {
        row["label"]: row["count"]
        for row in client.list_validations(min_probability=0.8, min_count=0)
    }
    assert counts["dog"] == 1 and "cat" not in counts, "the original listed no zero rows"

    exported = {uuid: row for uuid, *row in client.export(["dog", "cat"], min_probability=0.8)}
    assert set(exported) == {str(dog_image.uuid), str(cat_image.uuid)}
    width, height, annotations, validations = exported[str(dog_image.uuid)]
    assert (width, height, annotations, validations) == (400, 300, [], [("dog", 9, 1)])
    assert exported[str(cat_image.uuid)][3] == [], (
        "the client drops validations under its threshold"
    )
    assert client.export(["dog"], only_annotated=True) == []

    path = client.download_image(str(dog_image.uuid), str(tmp_path))
    from PIL import Image as PILImage

    with PILImage.open(path) as picture:
        assert picture.format == "JPEG" and picture.size == (400, 300)


def outlined_dog(**counts):
    """A 320 × 240 public picture whose validated dog pair has an accepted outline of a
    turned rectangle, an ellipse and a triangle."""
    from tests.test_export_outlines import ELLIPSE, POLYGON, TURNED, accepted

    image = real_public_image(size=(320, 240))
    pair = ImageLabel.objects.create(
        image=image,
        label=Label.objects.top_level().named("dog").first() or make_label("dog"),
        status=ImageLabel.Status.VALIDATED,
        confidence=1,
        **counts,
    )
    accepted(pair, [TURNED, ELLIPSE, POLYGON])
    return image


def test_the_original_client_reads_accepted_outlines_as_its_own_shapes(live_server):
    image = outlined_dog(num_yes=3, probability=1)
    client = OriginalClient(live_server.url)

    ((uuid, width, height, annotations, _),) = client.export(["dog"], only_annotated=True)
    assert (uuid, width, height) == (str(image.uuid), 320, 240)
    (label, rect), (_, ellipse), (_, polygon) = annotations
    assert label == "dog" and isinstance(rect, Rectangle)
    assert (rect.left, rect.top, rect.width, rect.height, rect.angle) == (150, 40, 60, 30, 30)
    assert (ellipse.cx, ellipse.cy, ellipse.rx, ellipse.ry) == (240, 145, 40, 25)
    assert polygon.points == [(20, 150), (120, 160), (70, 230)]


def test_pypi_pyimagemonkey_itself_reads_our_export_over_http(live_server):
    """The published client (PyPI's pyimagemonkey 0.1, installed unchanged by
    tools/bootstrap.sh) pointed at this server: its export() returns its own Image,
    Validation and Polygon objects with the drawn points. 0.1 knows polygons only and skips
    the other shapes; the GitHub version's rect and ellipse parsing is the test above."""
    import pyimagemonkey
    from pyimagemonkey.api import Polygon as ClientPolygon

    image = outlined_dog(num_yes=4, num_no=1, probability=0.8)
    real_public_image("cat")
    api = pyimagemonkey.API(api_version=1)
    api._base_url = live_server.url + "/"  # the client's only setting: where the API is

    (entry,) = api.export(["dog"], min_probability=0.8)

    assert (entry.image.uuid, entry.image.width, entry.image.height) == (str(image.uuid), 320, 240)
    ((validation),) = entry.validations
    assert (validation.label, validation.num_yes, validation.num_no) == ("dog", 4, 1)
    (annotation,) = entry.annotations
    assert annotation.label == "dog" and isinstance(annotation._data, ClientPolygon)
    assert [(point.x, point.y) for point in annotation._data.points] == [
        (20, 150),
        (120, 160),
        (70, 230),
    ]
    assert api.export(["cat"], min_probability=0.8)[0].annotations == []

"""On a phone and a desktop: an answer is followed by what the crowd said, can be undone for a
minute, screen readers hear the next question, and the first-visit explanation goes away."""

import pytest

from donations.models import ImageLabel
from tests.helpers import real_public_image
from validation.models import Vote

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def current_pair(page) -> ImageLabel:
    action = page.locator("#vote-form").get_attribute("action")
    return ImageLabel.objects.get(pk=int(action.split("/")[2]))


def answer_and_wait(page, key: str) -> ImageLabel:
    pair = current_pair(page)
    page.locator("#task-image[data-shown]").wait_for()
    page.keyboard.press(key)
    page.wait_for_function(
        "previous => document.querySelector('#vote-form').action.split('/')[4] !== previous",
        arg=str(pair.pk),
    )
    return pair


@pytest.mark.parametrize("width", [390, 1366])
def test_undo_takes_the_answer_back_and_asks_the_same_question_again(page, width, screenshot_dir):
    for _ in range(4):
        real_public_image("dog")
    page.set_viewport_size({"width": width, "height": 844})
    page.goto("/validate")
    answered = answer_and_wait(page, "n")
    assert page.locator("#feedback").inner_text().startswith("Answer saved.")
    undo = page.get_by_role("button", name="Undo that answer")
    assert undo.is_visible()
    box = undo.bounding_box()
    assert box["x"] + box["width"] <= width
    page.screenshot(path=str(screenshot_dir / f"validate-undo-{width}.png"))
    undo.click()
    page.wait_for_function(
        "pair => document.querySelector('#vote-form').action.split('/')[4] === pair",
        arg=str(answered.pk),
    )
    assert Vote.objects.get(pair=answered).undone
    assert "taken back" in page.locator("#vote-status").inner_text()
    answer_and_wait(page, "y")
    vote = Vote.objects.get(pair=answered)
    assert vote.answer == Vote.Answer.YES and not vote.undone


def test_the_u_key_undoes(page):
    for _ in range(3):
        real_public_image("dog")
    page.goto("/validate")
    answered = answer_and_wait(page, "y")
    page.keyboard.press("u")
    page.wait_for_function(
        "pair => document.querySelector('#vote-form').action.split('/')[4] === pair",
        arg=str(answered.pk),
    )
    assert Vote.objects.get(pair=answered).undone


def test_screen_readers_hear_the_feedback_and_the_next_question(page):
    for _ in range(3):
        real_public_image("dog")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/validate")
    status = page.locator("#vote-status")
    assert status.get_attribute("aria-live") == "polite"
    answer_and_wait(page, "y")
    said = status.inner_text()
    assert said.startswith("Answer saved.")
    assert "Next question: Is there a dog in this picture?" in said


def test_the_first_visit_explanation_goes_away_and_stays_away(page):
    shown = real_public_image("dog")
    shown.pairs.update(status=ImageLabel.Status.VALIDATED, servable=False)
    for _ in range(2):
        real_public_image("dog")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/validate")
    tutorial = page.locator("#tutorial")
    assert tutorial.is_visible()
    assert tutorial.locator("img").count() == 1, "an example the crowd settled"
    pair = current_pair(page)
    page.get_by_role("button", name="Got it, hide this").click()
    tutorial.wait_for(state="hidden")
    assert current_pair(page) == pair, "the picture stays"
    page.reload()
    assert page.locator("#tutorial").count() == 0

"""A new visitor in a real browser: votes with the keyboard, passes training, uses the grid."""

import pytest

from donations.models import ImageLabel
from people.models import Voter
from tests.helpers import real_public_image
from validation.models import Vote

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def current_pair(page) -> ImageLabel:
    action = page.locator("#vote-form").get_attribute("action")
    return ImageLabel.objects.get(pk=int(action.split("/")[2]))


def test_a_new_visitor_validates_with_the_keyboard_passes_training_and_uses_the_grid(
    page, screenshot_dir
):
    for answer in (True, True, False):
        image = real_public_image("dog")
        image.pairs.update(is_gold=True, gold_answer=answer)
    for _ in range(16):
        real_public_image("dog")

    page.goto("/validate")
    assert "Is there a dog in this picture?" in page.get_by_role("heading", level=1).inner_text()
    page.screenshot(path=str(screenshot_dir / "validate.png"), full_page=True)
    # Gold comes at random moments: answer until the three gold pairs have been met (there
    # are 19 tasks; a trainee is served gold once nothing else is left).
    for step in range(19):
        if Voter.objects.filter(trusted=True).exists():
            break
        pair = current_pair(page)
        truth = pair.gold_answer if pair.is_gold else True
        before = Vote.objects.count()
        page.locator("#task-image[data-shown]").wait_for()
        page.keyboard.press("y" if truth else "n")
        page.wait_for_function(
            "previous => document.querySelector('#vote-form').action.split('/')[4] !== previous",
            arg=str(pair.pk),
        )
        assert Vote.objects.count() == before + 1, (
            f"step {step}: the vote was saved without a reload"
        )
    voter = Voter.objects.get()
    assert voter.trusted, "three gold answers right: the visitor's votes now count"
    assert Vote.objects.filter(voter=voter, counted=False).count() == 0

    page.goto("/validate/grid?label=dog")
    picks = page.locator(".grid-choice")
    assert picks.count() >= 8
    picks.nth(0).click()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    assert "(2 marked)" in page.get_by_role("button", name="Send").inner_text()
    page.screenshot(path=str(screenshot_dir / "grid.png"), full_page=True)
    shown = picks.count()
    before = Vote.objects.count()
    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/validate/grid?label=dog&answered=*")
    assert "answers recorded" in page.content()
    assert Vote.objects.count() == before + shown
    page.get_by_role("button", name=f"Undo those {shown} answers").click()
    page.wait_for_url("**/validate/grid?label=dog&again=*")
    assert Vote.objects.filter(undone=True).count() == shown
    assert page.locator(".grid-choice").count() == shown, "the same pictures, to answer again"
    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/validate/grid?label=dog&answered=*")
    assert not Vote.objects.filter(undone=True).exists()

    page.get_by_role("link", name="My numbers").first.click() if page.get_by_role(
        "link", name="My numbers"
    ).count() else page.goto("/me")
    page.goto("/me")
    assert "Yes" in page.locator(".badge").first.inner_text()
    numbers = page.locator(".counts").inner_text()
    assert str(Vote.objects.filter(voter=voter).count()) in numbers
    page.screenshot(path=str(screenshot_dir / "me.png"), full_page=True)


def test_voting_without_javascript_posts_and_redirects(browser, live_server):
    real_public_image("cat")
    real_public_image("cat")
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/validate?label=cat")
    page.get_by_role("button", name="Yes").click()
    page.wait_for_url("**/validate?label=cat&answered=*")
    assert "Answer saved." in page.locator("#feedback").inner_text()
    page.get_by_role("button", name="Undo that answer").click()
    page.wait_for_url("**/validate?label=cat&again=*")
    assert Vote.objects.get().undone
    page.get_by_role("button", name="No").click()
    page.wait_for_url("**/validate?label=cat&answered=*")
    assert Vote.objects.get().answer == Vote.Answer.NO
    page.get_by_role("button", name="Can't tell / skip").click()
    assert "You have seen everything" in page.content()
    assert Vote.objects.count() == 2
    context.close()


def test_on_a_phone_the_answers_stay_on_screen_below_a_portrait_photo(page, screenshot_dir):
    real_public_image("dog", size=(600, 1800))
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/validate")
    yes = page.get_by_role("button", name="Yes").bounding_box()
    assert yes["y"] + yes["height"] <= 844, "Yes is below the fold"
    page.screenshot(path=str(screenshot_dir / "validate-phone.png"))


def test_holding_a_key_answers_once(page):
    for _ in range(5):
        real_public_image("dog")
    page.goto("/validate")
    first = current_pair(page)
    for _ in range(10):  # what a held key sends for 1.5 s: one press, then repeats
        page.keyboard.down("y")
        page.wait_for_timeout(150)
    page.keyboard.up("y")
    page.wait_for_function(
        "previous => document.querySelector('#vote-form').action.split('/')[4] !== previous",
        arg=str(first.pk),
    )
    page.wait_for_timeout(300)
    assert Vote.objects.count() == 1


def test_an_answer_before_the_next_picture_appears_answers_nothing(page):
    for _ in range(5):
        real_public_image("dog")
    page.goto("/validate")
    page.locator("#task-image[data-shown]").wait_for()
    held = []
    # The next pictures do not arrive until released (the preloaded one included).
    page.route("**/*display*", lambda route: held.append(route))
    page.keyboard.press("y")
    page.wait_for_function("() => document.querySelector('#vote-status').textContent !== ''")
    assert Vote.objects.count() == 1
    page.keyboard.press("y")
    page.get_by_text("Wait for the picture to appear").wait_for(state="attached")
    assert Vote.objects.count() == 1, "the second answer was for a picture nobody saw"
    for route in held:
        route.continue_()
    page.locator("#task-image[data-shown]").wait_for()
    page.keyboard.press("y")
    page.wait_for_function(
        "() => document.querySelector('#vote-status').textContent.startsWith('Answer saved')"
    )
    assert Vote.objects.count() == 2


def test_a_failed_connection_keeps_the_page_and_says_so(page):
    for _ in range(3):
        real_public_image("dog")
    page.goto("/validate")
    url, pair = page.url, current_pair(page)
    page.route("**/vote", lambda route: route.abort())
    page.get_by_role("button", name="Yes").click()
    page.get_by_text("the connection failed").first.wait_for()
    assert page.url == url and current_pair(page) == pair
    assert not Vote.objects.exists()
    page.unroute("**/vote")
    page.get_by_role("button", name="Yes").click()
    page.wait_for_function(
        "previous => document.querySelector('#vote-form').action.split('/')[4] !== previous",
        arg=str(pair.pk),
    )
    assert Vote.objects.count() == 1


def test_a_swipe_right_answers_yes_and_left_answers_no(browser, live_server):
    for _ in range(4):
        real_public_image("dog")
    context = browser.new_context(base_url=live_server.url, has_touch=True)
    page = context.new_page()
    page.goto("/validate")
    for direction, answer in ((1, Vote.Answer.YES), (-1, Vote.Answer.NO)):
        pair = current_pair(page)
        page.locator("#task-image[data-shown]").wait_for()
        box = page.locator("#task-image").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.locator("#task-image").dispatch_event(
            "pointerdown", {"pointerType": "touch", "clientX": x, "clientY": y, "isPrimary": True}
        )
        page.locator("#task-image").dispatch_event(
            "pointerup",
            {"pointerType": "touch", "clientX": x + direction * 120, "clientY": y + 5},
        )
        page.wait_for_function(
            "previous => document.querySelector('#vote-form').action.split('/')[4] !== previous",
            arg=str(pair.pk),
        )
        assert Vote.objects.get(pair=pair).answer == answer
    context.close()

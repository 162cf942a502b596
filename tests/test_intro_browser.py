"""The Introduction page in a real browser: the few-shot quiz, the map of where
few-shot learning sits, and the chart of published Omniglot accuracies.

What a reader does and sees: rounds of 5 and 20 characters played by clicking
and by keyboard, with the score kept per size across reloads and reset on
request; a region of the map lit and explained on hover and on focus; the
reader's own score marked on the chart as it changes. The page loads the ONNX
runtime only from the site itself (the quiz's models, issue 13;
tests/test_conv_browser.py), logs no console error and asks no other host for
anything.

Uses the browser fixtures of tests/conftest.py (Debian's Chromium, the
quick-built site served on 127.0.0.1).
"""
from __future__ import annotations

import json
import re

import pytest
from browser_support import wait_widget

pytestmark = pytest.mark.browser

PAGE = ""                                   # the site's index: the Introduction
QUIZ = '[data-widget="few-shot-quiz"]'
MAP = '[data-widget="few-shot-map"]'
CHART = '[data-widget="omniglot-accuracy"]'
TIMEOUT_MS = 30_000


def open_intro(page, site_url):
    """The Introduction with a fresh score: storage cleared, then reloaded."""
    page.goto(site_url + PAGE)
    page.evaluate("() => window.localStorage.clear()")
    page.reload()
    page.wait_for_load_state("load")
    for widget in (QUIZ, MAP, CHART):
        wait_widget(page, widget, timeout=TIMEOUT_MS)
    page.locator(QUIZ).scroll_into_view_if_needed()
    return page.locator(QUIZ)


def round_of(quiz) -> dict:
    return quiz.evaluate("el => ({...el.fewShotQuiz.round, rounds: el.fewShotQuiz.rounds})")


def wait_round(page, number: int, way: int):
    page.wait_for_selector(f"{QUIZ}[data-state='ready'][data-round='{number}'][data-way='{way}']",
                           state="attached", timeout=TIMEOUT_MS)


def choices(quiz):
    return quiz.locator("button.few-shot-quiz__choice")


def tile_position(locator) -> tuple[float, float]:
    """(column, row) fractions of a glyph's place on its sprite sheet, from the CSS."""
    position = locator.evaluate("el => el.style.backgroundPosition")
    x, y = (float(v) for v in re.findall(r"([\d.]+)%", position))
    return x / 100, y / 100


def check_round(quiz, way: int, index: dict) -> dict:
    """The round on screen is a `way`-way 1-shot round of one alphabet: its
    support set drawn by one hand, the query by another, the query's character
    among the support's."""
    r = round_of(quiz)
    assert r["way"] == way and len(r["classes"]) == way and len(set(r["classes"])) == way
    assert r["supportHand"] != r["queryHand"]
    assert choices(quiz).count() == way
    characters, hands = index["characters"] - 1, index["hands"] - 1
    # The quiz shows the 28×28 sheets the models get (issue 13).
    sheet = index["alphabets"][r["alphabet"]]["model_file"]
    for i in range(way):
        tile = choices(quiz).nth(i).locator(".few-shot-glyph")
        assert sheet in tile.evaluate("el => el.style.backgroundImage")
        assert tile_position(tile) == pytest.approx((r["classes"][i] / characters, r["supportHand"] / hands), abs=1e-4)
    query = quiz.locator(".few-shot-quiz__query-glyph")
    assert sheet in query.evaluate("el => el.style.backgroundImage")
    assert tile_position(query) == pytest.approx((r["classes"][r["answer"]] / characters, r["queryHand"] / hands), abs=1e-4)
    return r


def glyph_index(built_site) -> dict:
    return json.loads((built_site / "assets" / "glyphs" / "index.json").read_text())


def assert_runtime_is_the_sites_own(log):
    """The quiz's models run onnxruntime-web (issue 13), from the site's own vendor folder."""
    runtime = [url for url in log.requests if url.endswith((".wasm", ".mjs"))]
    assert all("/assets/vendor/onnxruntime-web/" in url for url in runtime), runtime


# ---------------------------------------------------------------- the quiz

def test_quiz_rounds_by_clicking_count_per_size_and_persist(page, log, site_url, built_site):
    index = glyph_index(built_site)
    quiz = open_intro(page, site_url)
    quiz.scroll_into_view_if_needed()
    assert quiz.get_attribute("data-score5") == "0/0"

    # 5-way: the right answer.
    wait_round(page, 1, 5)
    r = check_round(quiz, 5, index)
    choices(quiz).nth(r["answer"]).click()
    assert quiz.get_attribute("data-answered") == "true"
    assert quiz.get_attribute("data-score5") == "1/1"
    assert "Right" in quiz.locator(".few-shot-quiz__feedback").inner_text()
    assert "5-way: 1 of 1 right (100%)" in quiz.locator(".few-shot-quiz__score").inner_text()
    choices(quiz).nth((r["answer"] + 1) % 5).click(force=True)   # a second click in the same round counts for nothing
    assert quiz.get_attribute("data-score5") == "1/1"

    # Next round, a wrong answer: the answer is outlined, the choice marked.
    quiz.locator("button.few-shot-quiz__next").click()
    wait_round(page, 2, 5)
    r = check_round(quiz, 5, index)
    wrong = (r["answer"] + 2) % 5
    choices(quiz).nth(wrong).click()
    assert quiz.get_attribute("data-score5") == "1/2"
    assert "is-answer" in choices(quiz).nth(r["answer"]).get_attribute("class")
    assert "is-wrong" in choices(quiz).nth(wrong).get_attribute("class")
    assert f"character {r['answer'] + 1}" in quiz.locator(".few-shot-quiz__feedback").inner_text()

    # 20-way, counted apart from 5-way.
    quiz.locator("button.few-shot-quiz__way[data-way='20']").click()
    wait_round(page, 3, 20)
    assert quiz.locator("button.few-shot-quiz__way[data-way='20']").get_attribute("aria-pressed") == "true"
    r = check_round(quiz, 20, index)
    choices(quiz).nth(r["answer"]).click()
    assert quiz.get_attribute("data-score20") == "1/1"
    assert quiz.get_attribute("data-score5") == "1/2"

    # The score survives a reload, and the reset button clears both sizes.
    page.reload()
    wait_widget(page, QUIZ, timeout=TIMEOUT_MS)
    score = quiz.locator(".few-shot-quiz__score").inner_text()
    assert "5-way: 1 of 2 right (50%)" in score and "20-way: 1 of 1 right (100%)" in score
    quiz.locator("button.few-shot-quiz__reset").click()
    assert quiz.get_attribute("data-score5") == "0/0" and quiz.get_attribute("data-score20") == "0/0"
    assert "no answers yet" in quiz.locator(".few-shot-quiz__score").inner_text()
    assert_runtime_is_the_sites_own(log)
    log.assert_clean()


def test_quiz_rounds_by_keyboard(page, log, site_url, built_site):
    index = glyph_index(built_site)
    quiz = open_intro(page, site_url)
    quiz.scroll_into_view_if_needed()

    # 5-way: Tab from the size buttons into the choices, arrows to the answer, Enter.
    wait_round(page, 1, 5)
    r = check_round(quiz, 5, index)
    quiz.locator("button.few-shot-quiz__way[data-way='20']").focus()
    page.keyboard.press("Tab")
    assert choices(quiz).nth(0).evaluate("el => el === document.activeElement")
    for _ in range(r["answer"]):
        page.keyboard.press("ArrowRight")
    assert choices(quiz).nth(r["answer"]).evaluate("el => el === document.activeElement")
    page.keyboard.press("Enter")
    assert quiz.get_attribute("data-score5") == "1/1"
    # The focus moves to "Next round"; Enter starts it and puts the focus on its first choice.
    assert quiz.locator("button.few-shot-quiz__next").evaluate("el => el === document.activeElement")
    page.keyboard.press("Enter")
    wait_round(page, 2, 5)
    assert choices(quiz).nth(0).evaluate("el => el === document.activeElement")
    # A number key answers directly.
    r = check_round(quiz, 5, index)
    page.keyboard.press(str(r["answer"] + 1))
    assert quiz.get_attribute("data-score5") == "2/2"

    # 20-way: Space on the size button, then the arrows (Down moves a row) and Space.
    quiz.locator("button.few-shot-quiz__way[data-way='20']").focus()
    page.keyboard.press("Space")
    wait_round(page, 3, 20)
    r = check_round(quiz, 20, index)
    choices(quiz).nth(0).focus()
    columns = quiz.evaluate("""el => {
        const buttons = [...el.querySelectorAll('.few-shot-quiz__choice')];
        return buttons.filter((b) => b.offsetTop === buttons[0].offsetTop).length;
    }""")
    assert 1 < columns < 20
    row, column = divmod(r["answer"], columns)
    for _ in range(row):
        page.keyboard.press("ArrowDown")
    for _ in range(column):
        page.keyboard.press("ArrowRight")
    assert choices(quiz).nth(r["answer"]).evaluate("el => el === document.activeElement")
    page.keyboard.press("Space")
    assert quiz.get_attribute("data-score20") == "1/1"
    assert "Right" in quiz.locator(".few-shot-quiz__feedback").inner_text()
    assert_runtime_is_the_sites_own(log)
    log.assert_clean()


# ---------------------------------------------------------------- the map

def test_map_lights_a_region_on_hover_and_on_focus(page, log, site_url):
    open_intro(page, site_url)
    widget = page.locator(MAP)
    widget.scroll_into_view_if_needed()
    assert widget.get_attribute("data-active") == ""
    regions = json.loads(page.evaluate("""() => fetch('assets/intro/few-shot-map.json')
        .then((r) => r.text())"""))["regions"]
    by_id = {r["id"]: r for r in regions}

    def point_in(region_id, fx, fy):
        """Screen point at fractions of a region's box."""
        x, y, w, h = by_id[region_id]["box"]
        svg = widget.locator("svg.few-shot-map").bounding_box()
        scale = svg["width"] / 640
        return svg["x"] + (x + fx * w) * scale, svg["y"] + (y + fy * h) * scale

    def active():
        return widget.get_attribute("data-active")

    # The innermost region under the pointer is lit, and explained.
    page.mouse.move(*point_in("few-shot", 0.5, 0.1))
    assert active() == "few-shot"
    assert "is-active" in widget.locator("[data-region='few-shot']").get_attribute("class")
    assert by_id["few-shot"]["text"] in widget.locator(".few-shot-map__caption").inner_text()
    page.mouse.move(*point_in("maml", 0.5, 0.6))
    assert active() == "maml"
    assert widget.locator(".few-shot-map__region.is-active").count() == 1
    page.mouse.move(*point_in("meta-learning", 0.5, 0.04))
    assert active() == "meta-learning"
    page.mouse.move(1, 1)                                   # off the drawing: nothing lit
    assert active() == ""

    # Keyboard: every region is a Tab stop, in order from the outside in.
    widget.locator("[data-region='machine-learning']").focus()
    assert active() == "machine-learning"
    page.keyboard.press("Tab")
    assert active() == regions[1]["id"]
    assert by_id[regions[1]["id"]]["text"] in widget.locator(".few-shot-map__caption").inner_text()
    assert widget.locator(".few-shot-map__region[tabindex='0']").count() == len(regions)
    log.assert_clean()


# ---------------------------------------------------------------- the chart

def test_chart_shows_every_published_point_and_marks_the_readers_score(page, log, site_url, built_site):
    data = json.loads((built_site / "assets" / "intro" / "omniglot-accuracy.json").read_text())
    quiz = open_intro(page, site_url)
    chart = page.locator(CHART)
    for way in (5, 20):
        published = [r for r in data["rows"] if r[f"way{way}"] is not None]
        assert chart.locator(f".omniglot-accuracy__point--{way}").count() == len(published)
    # The page cites every paper the chart draws, linking to Further reading.
    html = page.content()
    for source in {r["source"] for r in data["rows"]}:
        assert f"further-reading/#ref-{source}" in html, f"{source} is not cited on the page"

    # No answers: no mark, a hint.
    assert chart.get_attribute("data-you5") == "" and chart.get_attribute("data-you20") == ""
    assert chart.locator(".omniglot-accuracy__you--5").count() == 0
    assert chart.locator(".omniglot-accuracy__hint").count() == 1

    # One right answer, then one wrong: the mark moves from 100% to 50%.
    wait_round(page, 1, 5)
    r = round_of(quiz)
    choices(quiz).nth(r["answer"]).click()
    page.wait_for_selector(CHART + "[data-you5='100.0']", state="attached")
    quiz.locator("button.few-shot-quiz__next").click()
    wait_round(page, 2, 5)
    r = round_of(quiz)
    choices(quiz).nth((r["answer"] + 1) % 5).click()
    page.wait_for_selector(CHART + "[data-you5='50.0']", state="attached")

    mark = chart.locator("circle.omniglot-accuracy__you--5")
    assert mark.count() == 1
    y50 = chart.evaluate("el => el.omniglotAccuracy.plot.y(50)")
    assert float(mark.get_attribute("cy")) == pytest.approx(y50, abs=0.5)
    line = chart.locator("line.omniglot-accuracy__you-line--5")
    assert float(line.get_attribute("y1")) == pytest.approx(y50, abs=0.5)
    # The axis reaches down to the reader's score, and the published points are still drawn.
    assert chart.evaluate("el => el.omniglotAccuracy.plot.y.domain[0]") <= 50
    assert "50%" in chart.locator(".omniglot-accuracy__readout").inner_text()
    assert chart.get_attribute("data-you20") == ""

    # Reset in the quiz: the mark goes away.
    quiz.locator("button.few-shot-quiz__reset").click()
    page.wait_for_selector(CHART + "[data-you5='']", state="attached")
    assert chart.locator(".omniglot-accuracy__you--5").count() == 0
    assert_runtime_is_the_sites_own(log)
    log.assert_clean()


def test_static_figures_stay_inside_the_widgets_until_they_run(page, site_url, built_site):
    """Each widget holds the build's static figure; once the widget runs, it is hidden."""
    open_intro(page, site_url)
    for widget, figure in ((QUIZ, "few-shot-round.svg"), (MAP, "few-shot-map.svg"),
                           (CHART, "omniglot-accuracy.svg")):
        image = page.locator(f"{widget} img[src$='{figure}']")
        assert image.count() == 1, f"{widget} has no static figure {figure}"
        assert (built_site / "assets" / "figures" / figure).is_file()
        assert not image.is_visible()

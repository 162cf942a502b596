"""The quiz's models in a real browser (issue 13): after the reader answers a
round, MAML's and the pretrained net's answers and confidence appear beside
the reader's, computed in the page by the exported graphs on the very pixels
the reader saw, and a running "you vs MAML vs pretrained" score is kept.

Uses the browser fixtures of tests/conftest.py (the quick-built site).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from browser_support import wait_widget

from meta.conv_export import run_onnx
from site_builder import glyphs

pytestmark = pytest.mark.browser

QUIZ = '[data-widget="few-shot-quiz"]'
TIMEOUT_MS = 60_000


def _answer_round(page, quiz, number: int, way: int) -> dict:
    page.wait_for_selector(f"{QUIZ}[data-state='ready'][data-round='{number}'][data-way='{way}']",
                           state="attached", timeout=TIMEOUT_MS)
    quiz.locator("button.few-shot-quiz__choice").nth(0).click()
    page.wait_for_selector(f"{QUIZ}[data-models-answered='true']", state="attached", timeout=TIMEOUT_MS)
    return quiz.evaluate("el => JSON.parse(JSON.stringify(el.fewShotQuiz.round))")


def test_models_answer_each_round_from_the_pixels_the_reader_saw(page, site_url, built_site, quick_build):
    page.goto(site_url)
    page.evaluate("() => window.localStorage.clear()")
    page.reload()
    wait_widget(page, QUIZ, timeout=TIMEOUT_MS)
    quiz = page.locator(QUIZ)
    quiz.scroll_into_view_if_needed()
    # The models join when the reader starts to play, not when the page loads.
    assert quiz.get_attribute("data-models") is None
    index = json.loads((built_site / "assets/glyphs/index.json").read_text())
    ink = glyphs.split_glyphs("held-out", len(index["alphabets"]), index["characters"], index["hands"])
    manifest = {e["name"]: e for e in json.loads((quick_build.exported / "manifest.json").read_text())["models"]}
    entries = {"maml": manifest["maml-glyphs"], "pretrained": manifest["pretrained-glyphs"]}

    rounds = [(1, 5), (2, 20)]
    for number, way in rounds:
        if way == 20:          # a new round of the other size
            quiz.locator("button.few-shot-quiz__way[data-way='20']").click()
        r = _answer_round(page, quiz, number, way)
        support = ink[r["alphabet"], r["classes"], r["supportHand"]].astype(np.float32)[:, None] / 255
        query = ink[r["alphabet"], r["classes"][r["answer"]], r["queryHand"]].astype(np.float32)[None, None] / 255
        shown = quiz.locator(".few-shot-quiz__players").inner_text()
        for player in r["players"]:
            entry = entries[player["key"]]
            probs, _ = run_onnx(quick_build.exported / entry["file"], support, np.arange(way), query,
                                entry["inner_lr"])
            expected = probs[-1, 0, :way]
            # The page ran the same graph on the same pixels: the same probabilities.
            assert np.abs(np.array(player["probabilities"]) - expected).max() <= 1e-4
            assert player["answer"] == int(np.argmax(expected)) and player["steps"] == entry["steps"]
            label = {"maml": "MAML", "pretrained": "Pretrained"}[player["key"]]
            assert f"{label}: character {player['answer'] + 1}, {100 * player['confidence']:.0f}% sure" in shown
        right = {p["key"]: int(p["answer"] == r["answer"]) for p in r["players"]}
        assert quiz.get_attribute(f"data-maml-score{way}") == f"{right['maml']}/1"
        assert quiz.get_attribute(f"data-pretrained-score{way}") == f"{right['pretrained']}/1"
        versus = quiz.locator(".few-shot-quiz__versus").inner_text()
        assert f"{way}-way: you " in versus and f"MAML {right['maml']}/1" in versus

    # The counts survive a reload and "Reset scores" clears the models' too.
    page.reload()
    wait_widget(page, QUIZ, timeout=TIMEOUT_MS)
    assert page.locator(QUIZ).get_attribute("data-maml-score20") == f"{right['maml']}/1"
    page.locator(f"{QUIZ} button.few-shot-quiz__reset").click()
    assert page.locator(QUIZ).get_attribute("data-maml-score5") == "0/0"

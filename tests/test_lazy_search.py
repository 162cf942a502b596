"""Search costs a page nothing until the reader searches (docs/javascripts/search-on-demand.js).

Material fetches the site's search index (search/search_index.json, about
60 KB gzip: more than any page's own text) and starts its search worker as
every page loads. This site holds both until the reader opens search: a
page read without searching requests neither; a click on the search box or
Material's "/" shortcut fetches them and finds results; a page opened from a
search result (?h=…) fetches the index at once and highlights the matches.
"""
from __future__ import annotations

import pytest
from browser_support import PageLog

pytestmark = pytest.mark.browser

INDEX = "/search/search_index.json"
WORKER = "/assets/javascripts/workers/search."


def search_requests(log) -> list[str]:
    return [url for url in log.requests if INDEX in url or WORKER in url]


def test_a_page_read_without_searching_fetches_no_index_and_no_worker(page, site_url):
    log = PageLog(page)
    page.goto(site_url + "preliminaries/", wait_until="load")
    page.mouse.wheel(0, 2000)
    page.wait_for_timeout(800)
    assert search_requests(log) == []
    log.assert_clean()


def test_opening_search_fetches_the_index_once_and_finds_pages(page, site_url):
    log = PageLog(page)
    page.goto(site_url + "preliminaries/", wait_until="load")
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially("Reptile", delay=30)
    page.wait_for_selector("li.md-search-result__item", timeout=15_000)
    results = page.locator("li.md-search-result__item")
    assert results.count() >= 3
    assert "reptile/" in results.first.locator("a").first.get_attribute("href")
    assert len([url for url in log.requests if INDEX in url]) == 1
    assert len([url for url in log.requests if WORKER in url]) == 1
    log.assert_clean()


def test_the_search_shortcut_works_from_a_page_that_has_not_searched(page, site_url):
    log = PageLog(page)
    page.goto(site_url + "fomaml/", wait_until="load")
    page.wait_for_timeout(300)
    assert search_requests(log) == []
    page.keyboard.press("/")
    page.keyboard.type("Hessian", delay=30)
    page.wait_for_selector("li.md-search-result__item", timeout=15_000)
    assert page.locator("li.md-search-result__item").count() >= 1
    log.assert_clean()


def test_a_page_opened_from_a_search_result_highlights_its_matches(page, site_url):
    log = PageLog(page)
    page.goto(site_url + "reptile/?h=reptile", wait_until="load")
    page.wait_for_selector("mark[data-md-highlight]", state="attached", timeout=15_000)
    assert page.locator("mark[data-md-highlight]").count() >= 5
    assert [url for url in log.requests if INDEX in url]
    log.assert_clean()

"""The one bibliography: site_builder/references.bib, citations and the Further reading page.

Unit tests read the real .bib file (every key the series may cite, complete
entries, the link texts a reader sees) and render citations in synthetic
pages; the slow one reads the quick-built site and follows every citation
link to its entry.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from site_builder import bibliography, generated
from site_builder.bibliography import BIB_FILE, references, render_page
from site_builder.errors import BuildFailure

#: The keys the series' pages may cite (team notes); the .bib has exactly these.
KEYS = {
    "finn2017", "nichol2018", "rajeswaran2019", "li2017", "antoniou2019", "zintgraf2019",
    "raghu2020", "lake2015", "koch2015", "vinyals2016", "snell2017", "santoro2016", "ravi2017",
    "sung2018", "mishra2018", "schmidhuber1987", "thrun1998", "hochreiter2001",
    "pearlmutter1994", "nocedal2006", "hospedales2021", "lee2019", "chen2019",
}


@pytest.fixture(scope="module")
def refs():
    return references()


def _bib(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "refs.bib"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------- the .bib file

def test_every_entry_parses_with_author_title_and_year(refs):
    from pybtex.database import parse_file

    data = parse_file(str(BIB_FILE), bib_format="bibtex")
    assert set(data.entries) == KEYS == set(refs)
    for key, entry in data.entries.items():
        assert entry.persons.get("author") or entry.persons.get("editor"), key
        assert entry.fields.get("title"), key
        assert key.endswith(entry.fields["year"]), key
        # Every entry links to the work, except the two that have no arXiv id, DOI or page.
        if key not in ("koch2015", "schmidhuber1987"):
            assert "](https://" in refs[key].entry, key


def test_entries_read_as_a_reader_sees_them(refs):
    assert refs["finn2017"].entry == (
        "Chelsea Finn, Pieter Abbeel, and Sergey Levine. *Model-Agnostic Meta-Learning for Fast "
        "Adaptation of Deep Networks.* In Proceedings of the 34th International Conference on "
        "Machine Learning (ICML), Proceedings of Machine Learning Research, vol. 70, "
        "pp. 1126–1135, 2017. [arXiv:1703.03400](https://arxiv.org/abs/1703.03400)")
    assert refs["koch2015"].entry == (
        "Gregory Koch, Richard Zemel, and Ruslan Salakhutdinov. *Siamese Neural Networks for "
        "One-Shot Image Recognition.* In ICML Deep Learning Workshop, 2015.")
    # Braces that protect capitals are gone; pages are an en dash; a DOI is a link.
    assert refs["pearlmutter1994"].entry == (
        "Barak A. Pearlmutter. *Fast Exact Multiplication by the Hessian.* Neural Computation "
        "6(1), 147–160, 1994. [doi:10.1162/neco.1994.6.1.147]"
        "(https://doi.org/10.1162/neco.1994.6.1.147)")
    assert "*Meta-SGD: Learning to Learn Quickly for Few-Shot Learning.* Preprint, 2017." \
        in refs["li2017"].entry
    # An edited book names its editors as such.
    assert refs["thrun1998"].entry.startswith("Sebastian Thrun and Lorien Pratt (eds.). "
                                              "*Learning to Learn.*")
    assert "*Rapid Learning or Feature Reuse? Towards Understanding the Effectiveness of " \
           "MAML.* In International" in refs["raghu2020"].entry
    assert refs["schmidhuber1987"].entry.startswith("Jürgen Schmidhuber. *Evolutionary")


def test_labels_name_one_two_or_the_first_of_three_authors(refs):
    assert refs["pearlmutter1994"].label == "Pearlmutter, 1994"
    assert refs["schmidhuber1987"].label == "Schmidhuber, 1987"
    assert refs["ravi2017"].label == "Ravi and Larochelle, 2017"
    assert refs["nocedal2006"].label == "Nocedal and Wright, 2006"
    assert refs["thrun1998"].label == "Thrun and Pratt, 1998"          # editors
    assert refs["finn2017"].label == "Finn et al., 2017"
    assert refs["vinyals2016"].label == "Vinyals et al., 2016"
    assert len({r.label for r in refs.values()}) == len(refs)


def test_latex_duplicate_labels_and_markdown_characters(tmp_path):
    path = _bib(tmp_path, r"""
@article{muller2020a, author = {J{\"u}rgen M{\"u}ller and Ana Ruiz}, title = {A {GPU} *Study*},
  journal = {J}, year = {2020}}
@article{muller2020b, author = {Jürgen Müller and Ana Ruiz}, title = {Another_one}, journal = {J},
  year = {2020}}
@book{vanrossum1995, author = {Guido van Rossum}, title = {Python?}, publisher = {CWI}, year = {1995}}
""")
    refs = references(path)
    # Two works with the same authors and year: 2020a and 2020b, in key order.
    assert refs["muller2020a"].label == "Müller and Ruiz, 2020a"
    assert refs["muller2020b"].label == "Müller and Ruiz, 2020b"
    assert refs["vanrossum1995"].label == "van Rossum, 1995"
    # LaTeX accents decoded, braces dropped, Markdown characters escaped.
    assert refs["muller2020a"].entry == r"Jürgen Müller and Ana Ruiz. *A GPU \*Study\*.* J, 2020."
    assert r"*Another\_one.*" in refs["muller2020b"].entry
    # A title that ends in a question mark gets no period after it.
    assert refs["vanrossum1995"].entry == "Guido van Rossum. *Python?* CWI, 1995."
    # Sorted by surname with accents folded ("muller" < "van rossum"), then year and key.
    listed = re.findall(r'id="ref-([^"]+)"', bibliography.bibliography(refs))
    assert listed == ["muller2020a", "muller2020b", "vanrossum1995"]


def test_a_bad_bib_file_fails_naming_the_file_and_the_entry(tmp_path):
    with pytest.raises(BuildFailure, match=r"refs\.bib: entry notitle has no title, year"):
        references(_bib(tmp_path, "@misc{notitle, author = {A. Person}}\n"))
    with pytest.raises(BuildFailure, match=r"refs\.bib: cannot read the bibliography"):
        references(_bib(tmp_path, "@misc{broken, author = {A. Person}, title = {T\n"))
    with pytest.raises(BuildFailure, match=r"missing\.bib: cannot read the bibliography"):
        references(tmp_path / "missing.bib")
    with pytest.raises(BuildFailure, match=r"unknown reference nope; .*references\.bib has: "
                                           r"antoniou2019, chen2019, finn2017"):
        bibliography.reference("nope")


# ------------------------------------------------------------------ citations

def test_a_citation_links_to_its_entry_relative_to_the_page(refs):
    assert render_page("MAML [@finn2017] works.", "model-agnostic.md", refs) == (
        "MAML [Finn et al., 2017](further-reading.md#ref-finn2017) works.")
    assert render_page("[@ravi2017]", "part/page.md", refs) == (
        "[Ravi and Larochelle, 2017](../further-reading.md#ref-ravi2017)")
    assert render_page("[@pearlmutter1994]", "further-reading.md", refs) == (
        "[Pearlmutter, 1994](#ref-pearlmutter1994)")


def test_several_keys_in_one_citation(refs):
    assert render_page("see [@nichol2018; @rajeswaran2019;@thrun1998].", "imaml.md", refs) == (
        "see [Nichol et al., 2018](further-reading.md#ref-nichol2018); "
        "[Rajeswaran et al., 2019](further-reading.md#ref-rajeswaran2019); "
        "[Thrun and Pratt, 1998](further-reading.md#ref-thrun1998).")


def test_citations_in_code_are_left_alone(refs):
    page = "\n".join([
        "Write `[@finn2017]` or ``[@li2017] with `ticks` `` to cite; [@li2017] is cited.",
        "```markdown",
        "[@finn2017]",
        "```",
        "!!! note",
        "    ~~~~",
        "    [@koch2015] and even [@unknownkey]",
        "    ~~~~",
        "    After the fence [@koch2015].",
        "[a handle](https://example.org/@user) and [@lake2015](https://example.org) stay links.",
        "A lone ` backtick does not hide [@snell2017].",
        "",
    ])
    out = render_page(page, "x.md", refs)
    lines = out.split("\n")
    assert lines[0] == ("Write `[@finn2017]` or ``[@li2017] with `ticks` `` to cite; "
                        "[Li et al., 2017](further-reading.md#ref-li2017) is cited.")
    assert lines[1:8] == page.split("\n")[1:8]
    assert lines[8] == "    After the fence [Koch et al., 2015](further-reading.md#ref-koch2015)."
    assert lines[9] == page.split("\n")[9]
    assert lines[10] == ("A lone ` backtick does not hide "
                         "[Snell et al., 2017](further-reading.md#ref-snell2017).")


def test_an_unknown_key_fails_naming_page_key_and_known_keys(refs):
    with pytest.raises(BuildFailure) as failure:
        render_page("As shown [@finn2017; @fin2017] and [@maml].", "how-maml-works.md", refs)
    message = str(failure.value)
    assert message.startswith("how-maml-works.md: unknown citation key(s) fin2017, maml; "
                              "the keys in site_builder/references.bib are: antoniou2019, ")
    assert all(key in message for key in KEYS) and "\n" not in message


# --------------------------------------------------------------- the list

def test_the_bibliography_lists_every_entry_sorted_with_an_anchor(refs):
    out = render_page("# Further reading\n\nText.\n\n<!-- bib:all -->\n", "further-reading.md", refs)
    items = [line for line in out.split("\n") if line.startswith("- ")]
    keys = [re.match(r'- <span id="ref-([a-z0-9]+)"></span>', line).group(1) for line in items]
    assert sorted(keys) == sorted(KEYS) and len(keys) == len(KEYS)
    surnames = [(refs[k].sort_key[0], refs[k].sort_key[1]) for k in keys]
    assert surnames == sorted(surnames)
    assert keys[:4] == ["antoniou2019", "chen2019", "finn2017", "hochreiter2001"]
    assert keys[-1] == "zintgraf2019"
    assert items[2] == f'- <span id="ref-finn2017"></span>{refs["finn2017"].entry}'
    assert "<!-- bib:" not in out
    with pytest.raises(BuildFailure, match=r"x\.md: unknown bib block al; allowed: all"):
        render_page("<!-- bib:al -->\n", "x.md", refs)


def test_bib_is_a_generator_called_on_every_page(tmp_path):
    assert generated.GENERATORS["bib"] == "site_builder.bibliography"
    assert "bib" in generated.EVERY_PAGE
    staging = generated.Staging(tmp_path, tmp_path, [], tmp_path)
    # A page without any marker still gets its citations rendered.
    assert generated.render_page("Reptile [@nichol2018].\n", staging, "reptile.md") == (
        "Reptile [Nichol et al., 2018](further-reading.md#ref-nichol2018).\n")
    text = (Path(bibliography.__file__).parents[1] / "docs" / "further-reading.md").read_text(
        encoding="utf-8")
    assert text.count("<!-- bib:all -->") == 1
    rendered = generated.render_page(text, staging, "further-reading.md")
    assert set(re.findall(r'<span id="ref-([a-z0-9]+)"></span>', rendered)) == KEYS


# ------------------------------------------------------------ the built site

class _Page(HTMLParser):
    """Element ids, link targets and the text outside <code>/<pre> of one HTML page."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self.items: list[str] = []           # ids of <span>s that open a list item
        self._code = 0
        self._in_item = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])
        if tag in ("code", "pre"):
            self._code += 1
        if tag == "li":
            self._in_item = True
        elif tag == "span" and self._in_item and attrs.get("id", "").startswith("ref-"):
            self.items.append(attrs["id"])
            self._in_item = False
        else:
            self._in_item = False

    def handle_endtag(self, tag):
        if tag in ("code", "pre"):
            self._code -= 1

    def handle_data(self, data):
        if not self._code:
            self.text.append(data)


def _read(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.mark.slow
def test_every_citation_on_the_built_site_resolves_to_an_entry(built_site):
    reading = _read(built_site / "further-reading" / "index.html")
    # The Further reading page lists every entry of the .bib file, once, as a list item.
    assert sorted(reading.items) == sorted(f"ref-{k}" for k in KEYS)
    text = " ".join(reading.text)
    for ref in references().values():
        assert ref.entry.split(".")[0] in text, ref.key       # the authors
    # Its own words cite papers too.
    assert "Finn et al., 2017" in text and len(re.findall(r"\w+", text)) > 600
    cited = 0
    for html in sorted(built_site.rglob("*.html")):
        url = "http://site/" + html.relative_to(built_site).as_posix()
        page = _read(html)
        for href in page.hrefs:
            target = urlsplit(urljoin(url, href))
            if target.netloc != "site" or not target.fragment.startswith("ref-"):
                continue
            if target.path == urlsplit(url).path:            # the Results page's own list
                assert target.fragment in page.ids, (html, href)
                continue
            assert target.path == "/further-reading/", (html, href)
            assert target.fragment in reading.ids, (html, href)
            cited += 1
        # No citation was left unrendered outside code.
        assert not re.search(r"\[@[\w:.+-]+", " ".join(page.text)), html
    assert cited >= len(KEYS)

"""The series' one bibliography: site_builder/references.bib, read with pybtex.

Citations. Anywhere in a page's text, except in fenced code blocks and inline
code, a citation is a key after an at sign in square brackets, one key or
several separated by semicolons:

    [@finn2017]                 ->  [Finn et al., 2017](further-reading.md#ref-finn2017)
    [@finn2017; @nichol2018]    ->  the two links, separated by "; "

The link text names the first author for one author or three and more
("Finn et al., 2017") and both for two ("Ravi and Larochelle, 2017"); the
link goes to the entry on the Further reading page, relative to the citing
page. A key that is not in the .bib file fails the build, naming the page,
the key and the keys there are.

The bibliography. The marker ``<!-- bib:all -->`` on a line of its own is
replaced by every entry of the .bib file, sorted by first author's surname,
then year, each carrying the anchor ``ref-<key>`` that the citations link to.
The Results page lists the entries it cites with ``item`` and cites them with
``reference(key).label``, so no reference is typed twice.

Entries are formatted here from pybtex's parsed persons and fields (LaTeX in
them decoded by pybtex's rich text): authors, the title in italics, the venue
and year, and links to the DOI, the arXiv preprint and any other URL.
"""
from __future__ import annotations

import functools
import posixpath
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import BuildFailure

BIB_FILE = Path(__file__).with_name("references.bib")
#: The page (relative to docs/) that lists every entry and that citations link to.
BIB_PAGE = "further-reading.md"
BLOCKS = ("all",)

MARKER = re.compile(r"^<!--\s*bib:([A-Za-z0-9_-]+)\s*-->[ \t]*$", re.MULTILINE)
_KEY = r"[A-Za-z0-9_:.+-]+"
#: [@key] or [@key1; @key2]; not [@text](url), which is an ordinary link.
CITATION = re.compile(rf"\[(@{_KEY}(?:\s*;\s*@{_KEY})*)\](?!\()")
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_TICKS = re.compile(r"(?<![`\\])`+")
_PARAGRAPH_BREAK = re.compile(r"(\n[ \t]*\n)")


@dataclass(frozen=True)
class Reference:
    key: str
    label: str          # how the text cites it: "Finn et al., 2017"
    entry: str          # the bibliography entry, Markdown
    sort_key: tuple     # (first surname, year, key), for the sorted list


# ----------------------------------------------------------------- reading

def _latex(value: str) -> str:
    """A BibTeX field as plain text: braces dropped, LaTeX accents and -- decoded."""
    from pybtex.richtext import Text
    return Text.from_latex(value).render_as("text").strip()


def _markdown(text: str) -> str:
    """text with the characters Markdown would read as markup escaped."""
    return re.sub(r"([\\`*_\[\]<])", r"\\\1", text)


def _full_name(person) -> str:
    parts = person.first_names + person.middle_names + person.prelast_names + person.last_names
    name = _latex(" ".join(parts))
    return f"{name}, {_latex(' '.join(person.lineage_names))}" if person.lineage_names else name


def _surname(person) -> str:
    return _latex(" ".join(person.prelast_names + person.last_names))


def _names(names: list[str]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + ", and " + names[-1]


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else text + "."


def _venue(kind: str, f: dict[str, str]) -> str:
    """Where the work appeared, without the year."""
    if kind == "article":
        venue = _markdown(f.get("journal", ""))
        if "volume" in f:
            venue += f" {f['volume']}" + (f"({f['number']})" if "number" in f else "")
        if "pages" in f:
            venue += f", {f['pages']}"
        return venue.strip(" ,")
    parts: list[str] = []
    if kind in ("inproceedings", "incollection", "inbook"):
        if "booktitle" in f:
            parts.append(f"In {_markdown(f['booktitle'])}")
        if "series" in f:
            volume = f", vol. {f['volume']}" if "volume" in f else ""
            parts.append(_markdown(f["series"]) + volume)
        if "pages" in f:
            parts.append(f"pp. {f['pages']}")
        if "publisher" in f:
            parts.append(_markdown(f["publisher"]))
    elif kind == "book":
        if "publisher" in f:
            parts.append(_markdown(f["publisher"]))
        if "edition" in f:
            parts.append(f"{f['edition']} edition")
    elif kind in ("mastersthesis", "phdthesis"):
        default = "Master's thesis" if kind == "mastersthesis" else "PhD thesis"
        parts.append(_markdown(f.get("type", default)))
        if "school" in f:
            parts.append(_markdown(f["school"]))
    elif "howpublished" in f:
        parts.append(_markdown(f["howpublished"]))
    elif "eprint" in f:
        parts.append("Preprint")
    return ", ".join(parts)


def _links(f: dict[str, str]) -> list[str]:
    links = []
    if "doi" in f:
        links.append(f"[doi:{f['doi']}](https://doi.org/{f['doi']})")
    if "eprint" in f and f.get("archiveprefix", "arXiv").lower() == "arxiv":
        links.append(f"[arXiv:{f['eprint']}](https://arxiv.org/abs/{f['eprint']})")
    if "url" in f and not any(f["url"] in link for link in links):
        links.append(f"[{urlsplit(f['url']).netloc or f['url']}]({f['url']})")
    return links


def _fold(text: str) -> str:
    """text for sorting: accents dropped, case folded."""
    return "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c)).casefold()


def _reference(key: str, bib_entry, source: Path) -> tuple[str, Reference]:
    """(the label without disambiguation, the Reference) of one parsed entry."""
    persons = bib_entry.persons.get("author") or bib_entry.persons.get("editor")
    missing = [name for name, present in (("author or editor", persons),
                                          ("title", "title" in bib_entry.fields),
                                          ("year", "year" in bib_entry.fields)) if not present]
    if missing:
        raise BuildFailure(f"{source}: entry {key} has no {', '.join(missing)}")
    f = {name.lower(): value for name, value in bib_entry.fields.items()}
    f = {name: (value if name in ("url", "doi", "eprint") else _latex(value))
         for name, value in f.items()}
    surnames = [_surname(p) for p in persons]
    if len(surnames) == 1:
        who = surnames[0]
    elif len(surnames) == 2:
        who = f"{surnames[0]} and {surnames[1]}"
    else:
        who = f"{surnames[0]} et al."
    names = _markdown(_names([_full_name(p) for p in persons]))
    if "author" not in bib_entry.persons:
        names += " (eds.)" if len(persons) > 1 else " (ed.)"
    venue = _venue(bib_entry.type.lower(), f)
    text = f"{_sentence(names)} *{_sentence(_markdown(f['title']))}*"
    text += f" {venue}, {f['year']}." if venue else f" {f['year']}."
    links = _links(f)
    if links:
        text += " " + " · ".join(links)
    return who, Reference(key, f"{who}, {f['year']}", text,
                          (_fold(surnames[0]), f["year"], key))


@functools.lru_cache(maxsize=8)
def _parse(path: str, _mtime_ns: int, _size: int) -> dict[str, Reference]:
    from pybtex.database import parse_file
    from pybtex.exceptions import PybtexError
    try:
        data = parse_file(path, bib_format="bibtex")
    except (OSError, PybtexError) as exc:
        raise BuildFailure(f"{path}: cannot read the bibliography ({exc})") from exc
    if not data.entries:
        raise BuildFailure(f"{path}: the bibliography has no entries")
    refs: dict[str, Reference] = {}
    by_label: dict[str, list[Reference]] = {}
    for key, bib_entry in data.entries.items():
        _, ref = _reference(key, bib_entry, Path(path))
        refs[key] = ref
        by_label.setdefault(ref.label, []).append(ref)
    # Two works with the same label ("Finn et al., 2017") become 2017a and 2017b.
    for same in (group for group in by_label.values() if len(group) > 1):
        for letter, ref in zip("abcdefghijklmnopqrstuvwxyz", sorted(same, key=lambda r: r.key)):
            refs[ref.key] = Reference(ref.key, ref.label + letter, ref.entry, ref.sort_key)
    return refs


def references(path: Path = BIB_FILE) -> dict[str, Reference]:
    """Every entry of the .bib file, by key (parsed once per version of the file)."""
    try:
        stat = Path(path).stat()
    except OSError as exc:
        raise BuildFailure(f"{path}: cannot read the bibliography ({exc})") from exc
    return _parse(str(path), stat.st_mtime_ns, stat.st_size)


def reference(key: str, path: Path = BIB_FILE) -> Reference:
    refs = references(path)
    if key not in refs:
        raise BuildFailure(f"unknown reference {key}; {path} has: {', '.join(sorted(refs))}")
    return refs[key]


def item(ref: Reference) -> str:
    """The entry with its anchor, for a list on a page."""
    return f'<span id="ref-{ref.key}"></span>{ref.entry}'


def bibliography(refs: dict[str, Reference]) -> str:
    """Every entry, sorted by first author's surname, then year: a Markdown list."""
    return "\n".join(f"- {item(ref)}" for ref in sorted(refs.values(), key=lambda r: r.sort_key))


# ----------------------------------------------------------------- the page

def _split_fences(text: str) -> list[tuple[bool, str]]:
    """text as (is_code, piece) pieces: fenced code blocks and everything else."""
    pieces: list[tuple[bool, str]] = []
    current: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        if fence is None:
            match = _FENCE.match(line)
            # A backtick fence's info string has no backticks (``` `x` ``` is inline code).
            if match and not (match.group(1)[0] == "`" and "`" in line[match.end():]):
                pieces.append((False, "".join(current)))
                current, fence = [line], match.group(1)
            else:
                current.append(line)
        else:
            current.append(line)
            closing = rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*"
            if re.fullmatch(closing, line.rstrip("\r\n")):
                pieces.append((True, "".join(current)))
                current, fence = [], None
    pieces.append((fence is not None, "".join(current)))   # an unclosed fence runs to the end
    return [p for p in pieces if p[1]]


def _split_inline(text: str) -> list[tuple[bool, str]]:
    """One paragraph as (is_code, piece): inline code spans and the text between."""
    pieces: list[tuple[bool, str]] = []
    start = search = 0
    while (opening := _TICKS.search(text, search)) is not None:
        run = opening.group()
        closing = re.compile(rf"(?<!`){run}(?!`)").search(text, opening.end())
        if closing is None:             # no closing run: the backticks are literal
            search = opening.end()
            continue
        pieces += [(False, text[start:opening.start()]),
                   (True, text[opening.start():closing.end()])]
        start = search = closing.end()
    pieces.append((False, text[start:]))
    return pieces


def _outside_code(text: str, prose, blocks) -> str:
    """text with blocks(piece) applied to every stretch outside fenced code and
    prose(piece) to every stretch outside any code."""
    out = []
    for is_code, piece in _split_fences(text):
        if is_code:
            out.append(piece)
            continue
        for paragraph in _PARAGRAPH_BREAK.split(blocks(piece)):
            out += [code if is_span else prose(code) for is_span, code in _split_inline(paragraph)]
    return "".join(out)


def link(ref: Reference, page: str) -> str:
    """A Markdown link from page (relative to docs/) to ref's entry on the bibliography page."""
    if page == BIB_PAGE:
        return f"[{ref.label}](#ref-{ref.key})"
    target = posixpath.relpath(BIB_PAGE, posixpath.dirname(page) or ".")
    return f"[{ref.label}]({target}#ref-{ref.key})"


def render_page(text: str, page: str, refs: dict[str, Reference], source: Path = BIB_FILE) -> str:
    """text with its citations linked and its bib markers replaced."""
    unknown: list[str] = []

    def cite(match: re.Match) -> str:
        keys = [k.strip().lstrip("@") for k in match.group(1).split(";")]
        unknown.extend(k for k in keys if k not in refs and k not in unknown)
        return "; ".join(link(refs[k], page) for k in keys if k in refs)

    def block(match: re.Match) -> str:
        name = match.group(1)
        if name not in BLOCKS:
            raise BuildFailure(f"{page}: unknown bib block {name}; allowed: {', '.join(BLOCKS)}")
        return bibliography(refs)

    text = _outside_code(text, lambda piece: CITATION.sub(cite, piece),
                         lambda piece: MARKER.sub(block, piece))
    if unknown:
        raise BuildFailure(f"{page}: unknown citation key(s) {', '.join(unknown)}; the keys in "
                           f"{source.parent.name}/{source.name} are: {', '.join(sorted(refs))}")
    return text


def render(text: str, staging, page: str) -> str:
    """The generated-blocks entry point (site_builder.generated), called on every page."""
    if "[@" not in text and "bib:" not in text:
        return text
    return render_page(text, page, references())

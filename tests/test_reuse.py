"""The "Use the models" page and what it promises to people who reuse the models.

- the Python snippets run as written from the repository root, against the
  committed exported/, and print what the page shows (docs/snippets/adapt-output.txt);
- meta.load_params reads the exported weights and names the file and what was
  expected when they are wrong; fine_tune/predict give the graph's predictions;
- the <!-- reuse:graphs --> block renders every graph's inputs and outputs
  from the manifest (one table per distinct signature), from synthetic entries;
- the page quotes the README's install/build and test commands verbatim, and
  the GitHub Pages workflow runs them and deploys site/;
- in Chromium, the browser snippet served next to a quick-built site gives the
  predictions of Python's onnxruntime to 1e-5, and the built page shows each
  snippet file exactly.
"""
from __future__ import annotations

import functools
import html
import json
import math
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import meta
from meta.export import run_onnx
from site_builder import reuse
from site_builder.config import REPO_ROOT
from site_builder.errors import BuildFailure
from site_builder.generated import GENERATORS, MODELS_DIR, Staging, render_page
from browser_support import READY_TIMEOUT_MS, PageLog, QuietHandler, serve

PAGE_PATH = REPO_ROOT / "docs" / "use-the-models.md"
PAGE = PAGE_PATH.read_text(encoding="utf-8")
SNIPPETS = REPO_ROOT / "docs" / "snippets"
EXPECTED_OUTPUT = SNIPPETS / "adapt-output.txt"
PYTHON_SNIPPETS = ("use_onnxruntime.py", "use_pytorch.py")
BROWSER_SNIPPET = SNIPPETS / "use-onnxruntime-web.mjs"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "pages.yml"
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")

OUTPUT_LINE = re.compile(r"^after +(\d+) steps: support MSE (\S+), query MSE (\S+)$")
#: The same task as the snippets: y = 3 sin(x + 1) at five points.
SUPPORT_X = [[-4.0], [-2.0], [0.0], [1.5], [3.5]]


def parse_output(text: str) -> dict[int, tuple[float, float]]:
    """{steps: (support MSE, query MSE)} from the snippets' printed lines."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    parsed = {}
    for line in lines:
        match = OUTPUT_LINE.match(line.strip())
        assert match, f"unexpected output line {line!r}"
        parsed[int(match[1])] = (float(match[2]), float(match[3]))
    return parsed


def assert_documented_output(got: dict, where: str) -> None:
    """What the page says about the output, and the numbers it shows."""
    assert sorted(got) == [0, 1, 10], f"{where}: lines for steps {sorted(got)}, expected 0, 1, 10"
    for steps, (support, query) in got.items():
        assert math.isfinite(support) and math.isfinite(query), f"{where}: not finite after {steps} steps"
        assert support >= 0 and query >= 0
    query = {steps: q for steps, (_, q) in got.items()}
    # "one step already removes most of the error on the query points, and after
    # ten steps the query error is less than a tenth of what it was before"
    assert query[1] < 0.5 * query[0], f"{where}: one step took the query MSE from {query[0]} to {query[1]}"
    assert query[10] < 0.1 * query[0], f"{where}: ten steps took the query MSE from {query[0]} to {query[10]}"


def assert_same_numbers(got: dict, expected: dict, where: str, hint: str = "") -> None:
    for steps in expected:
        for what, a, b in zip(("support", "query"), got[steps], expected[steps]):
            assert math.isclose(a, b, rel_tol=0.01, abs_tol=1e-6), (
                f"{where}: {what} MSE after {steps} steps is {a}, the page shows {b}{hint}")


# ------------------------------------------------------------ Python snippets

@pytest.mark.parametrize("snippet", PYTHON_SNIPPETS)
def test_python_snippet_runs_as_written_and_prints_the_documented_output(snippet):
    assert f'--8<-- "docs/snippets/{snippet}"' in PAGE, f"the page does not include {snippet}"
    done = subprocess.run([sys.executable, f"docs/snippets/{snippet}"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{snippet} failed:\n{done.stderr}"
    got = parse_output(done.stdout)
    assert_documented_output(got, snippet)
    assert_same_numbers(got, parse_output(EXPECTED_OUTPUT.read_text(encoding="utf-8")), snippet,
                        hint=" (after a retrain: python docs/snippets/use_onnxruntime.py > "
                             "docs/snippets/adapt-output.txt)")


def test_the_page_shows_the_output_file():
    assert '--8<-- "docs/snippets/adapt-output.txt"' in PAGE
    assert_documented_output(parse_output(EXPECTED_OUTPUT.read_text(encoding="utf-8")),
                             "adapt-output.txt")


# ------------------------------------------------------------ weights in PyTorch

def test_load_params_reads_the_exported_weights():
    params = meta.load_params(REPO_ROOT / "exported" / "maml-sinusoid.pt")
    assert list(params) == ["w1", "b1", "w2", "b2", "w3", "b3"]
    assert {n: tuple(p.shape) for n, p in params.items()} == {
        "w1": (1, 40), "b1": (40,), "w2": (40, 40), "b2": (40,), "w3": (40, 1), "b3": (1,)}
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in params.values())


def test_fine_tune_and_predict_give_the_graphs_predictions():
    entry = next(e for e in json.loads((REPO_ROOT / "exported" / "manifest.json").read_text())["models"]
                 if e["name"] == "maml-sinusoid")
    params = meta.load_params(REPO_ROOT / "exported" / entry["weights"]["file"])
    support_x = torch.tensor(SUPPORT_X)
    support_y = 3.0 * torch.sin(support_x + 1.0)
    query_x = torch.linspace(-5.0, 5.0, 100).reshape(-1, 1)
    graph_y, graph_loss = run_onnx(REPO_ROOT / "exported" / entry["file"], support_x, support_y,
                                   query_x, entry["inner_lr"])
    for steps in (0, 1, 10):
        tuned = meta.fine_tune(params, support_x, support_y, steps, entry["inner_lr"])
        assert {n: p.shape for n, p in tuned.items()} == {n: p.shape for n, p in params.items()}
        np.testing.assert_allclose(meta.predict(tuned, query_x).numpy(), graph_y[steps], atol=1e-5)
        support_mse = torch.mean((meta.predict(tuned, support_x) - support_y) ** 2).item()
        assert support_mse == pytest.approx(float(graph_loss[steps]), rel=1e-3, abs=1e-6)
    # 1-D points work too, and predict does not change the parameters.
    np.testing.assert_allclose(meta.predict(params, [0.0, 1.0]).numpy(),
                               meta.predict(params, torch.tensor([[0.0], [1.0]])).numpy())


def _good_params() -> dict[str, torch.Tensor]:
    return meta.load_params(REPO_ROOT / "exported" / "maml-sinusoid.pt")


def test_load_params_accepts_a_plain_dict_of_the_six_tensors(tmp_path):
    path = tmp_path / "mine.pt"
    torch.save({n: p.double() for n, p in _good_params().items()}, path)
    loaded = meta.load_params(path)
    assert all(p.dtype == torch.float32 for p in loaded.values())
    torch.testing.assert_close(loaded["w2"], _good_params()["w2"])


@pytest.mark.parametrize("content, message", [
    (lambda p: {"params": {n: t for n, t in p.items() if n != "b3"}},
     r"expected exactly the tensors w1, b1, w2, b2, w3, b3 .*missing \['b3'\], unexpected none"),
    (lambda p: {"params": {**p, "w4": torch.zeros(1)}}, r"expected exactly .*; missing none, unexpected \['w4'\]"),
    (lambda p: {"params": {**p, "w2": torch.zeros(40, 41)}},
     r"'w2' has shape \[40, 41\], expected \[40, 40\] \(the 1-40-40-1 network"),
    (lambda p: {"params": {**p, "b1": torch.zeros(1, 40)}}, r"'b1' has shape \[1, 40\], expected \[40\]"),
    (lambda p: {"params": {**p, "w1": torch.zeros(1, 40, dtype=torch.int64)}},
     r"'w1' must be a floating-point tensor, got torch.int64"),
    (lambda p: {"params": {**p, "b2": [0.0] * 40}}, r"'b2' must be a floating-point tensor, got list"),
    (lambda p: {"params": {**p, "b3": torch.tensor([float("nan")])}}, r"'b3' holds NaN or infinite"),
    (lambda p: {"params": [1, 2, 3]}, r"expected a dict of the tensors .* its 'params' is a list"),
    (lambda p: torch.zeros(3), r"expected a dict of the tensors .* it is a Tensor"),
])
def test_load_params_names_the_file_and_what_was_expected(tmp_path, content, message):
    path = tmp_path / "weights.pt"
    torch.save(content(_good_params()), path)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + message):
        meta.load_params(path)


def test_load_params_rejects_a_file_torch_did_not_write(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n")
    with pytest.raises(ValueError, match=re.escape(str(path)) + r": not a file written by torch.save"):
        meta.load_params(path)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        meta.load_params(tmp_path / "missing.pt")


def test_fine_tune_checks_its_arguments():
    params = _good_params()
    with pytest.raises(ValueError, match=r"support_x \[2, 1\] and support_y \[3, 1\]"):
        meta.fine_tune(params, [[0.0], [1.0]], [[0.0], [1.0], [2.0]], 1, 0.01)
    with pytest.raises(ValueError, match="steps must be an integer >= 0, got -1"):
        meta.fine_tune(params, [[0.0]], [[0.0]], -1, 0.01)
    with pytest.raises(ValueError, match=r"x must be shaped \[points, 1\] or \[points\], got \[2, 2\]"):
        meta.predict(params, [[0.0, 1.0], [2.0, 3.0]])
    # No support points: nothing to adapt to, the parameters stay as they were.
    tuned = meta.fine_tune(params, torch.zeros(0, 1), torch.zeros(0, 1), 3, 0.01)
    torch.testing.assert_close(tuned["w2"], params["w2"])


# ------------------------------------------------------------ <!-- reuse:graphs -->

def _port(name, shape, meaning, type_="float32"):
    return {"name": name, "type": type_, "shape": shape, "meaning": meaning}


SINE_GRAPH = {
    "inputs": [_port("support_x", ["N", 1], "support inputs, N ≥ 0 (dynamic)"),
               _port("support_y", ["N", 1], "support targets"),
               _port("query_x", ["M", 1], "where to predict, M ≥ 1 (dynamic)"),
               _port("inner_lr", [], "learning rate of the adaptation steps")],
    "outputs": [_port("query_y", ["S+1", "M", 1], "predictions after 0, 1, …, S steps"),
                _port("support_loss", ["S+1"], "support MSE | before each step and after the last")],
}
TOY_GRAPH = {
    "inputs": [_port("theta", [2], "starting point"), _port("steps", [], "how many", "int64")],
    "outputs": [_port("path", ["K", 2], "the points visited")],
}


def _entry(name, algorithm, graph=None, inner_lr=0.01, steps=10, file=None):
    entry = {"name": name, "algorithm": algorithm, "file": file or f"{name}.onnx",
             "inner_lr": inner_lr, "steps": steps}
    if graph is not None:
        entry["graph"] = graph
    return entry


def _staging(tmp_path, models, staged=("a-sinusoid.onnx",)) -> Staging:
    exported = tmp_path / "exported"
    exported.mkdir()
    (exported / "manifest.json").write_text(json.dumps({"format": 1, "models": models}))
    docs = tmp_path / "docs"
    (docs / MODELS_DIR).mkdir(parents=True)
    for file in staged:
        (docs / MODELS_DIR / file).write_bytes(b"onnx")
    # staging.entries holds only the sinusoid models; the block reads the whole manifest.
    return Staging(tmp_path, exported, [m for m in models if "sinusoid" in m["name"]], docs)


def _table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            for line in text.splitlines() if line.startswith("|") and not line.startswith("|---")]


def test_graphs_block_renders_one_table_per_signature_from_the_manifest(tmp_path):
    models = [
        _entry("a-sinusoid", "maml", SINE_GRAPH),
        _entry("b-sinusoid", "imaml", json.loads(json.dumps(SINE_GRAPH)), inner_lr=0.00061),
        _entry("c-toy", "maml", TOY_GRAPH, inner_lr=0.1, steps=5),
        _entry("d-sinusoid", "reptile"),                       # no graph field yet
    ]
    staging = _staging(tmp_path, models)
    text = "# Use the models\n\n<!-- reuse:graphs -->\n\nAfter.\n"
    out = reuse.render(text, staging, "use-the-models.md")
    assert "<!-- reuse:graphs -->" not in out
    assert out.startswith("# Use the models\n\n") and out.endswith("\n\nAfter.\n")
    rows = _table_rows(out)
    models_table = rows[:5]
    assert models_table[0] == ["model", "algorithm", "inner_lr", "steps (S)", "graph file",
                               "inputs and outputs"]
    assert models_table[1:] == [
        ["`a-sinusoid`", "maml", "0.01", "10", f"[`a-sinusoid.onnx`]({MODELS_DIR}/a-sinusoid.onnx)",
         "[signature 1](#graph-1)"],
        ["`b-sinusoid`", "imaml", "0.00061", "10", "`b-sinusoid.onnx`", "[signature 1](#graph-1)"],
        ["`c-toy`", "maml", "0.1", "5", "`c-toy.onnx`", "[signature 2](#graph-2)"],
        ["`d-sinusoid`", "reptile", "0.01", "10", "`d-sinusoid.onnx`", "not recorded"],
    ]
    # Two signatures, each once, naming the models that share it, with an anchor.
    assert out.count("| port | name | type | shape | meaning |") == 2
    assert ("**Signature 1**, shared by the graphs of `a-sinusoid` and `b-sinusoid`:\n"
            "{: #graph-1 }") in out
    assert "**Signature 2**, the graph of `c-toy`:\n{: #graph-2 }" in out
    first = out.index("#graph-1 }")
    second = out.index("#graph-2 }")
    sine_rows = _table_rows(out[first:second])[1:]
    assert sine_rows == [
        ["input", "`support_x`", "float32", "`[N, 1]`", "support inputs, N ≥ 0 (dynamic)"],
        ["input", "`support_y`", "float32", "`[N, 1]`", "support targets"],
        ["input", "`query_x`", "float32", "`[M, 1]`", "where to predict, M ≥ 1 (dynamic)"],
        ["input", "`inner_lr`", "float32", "`[]`", "learning rate of the adaptation steps"],
        ["output", "`query_y`", "float32", "`[S+1, M, 1]`", "predictions after 0, 1, …, S steps"],
        ["output", "`support_loss`", "float32", "`[S+1]`",
         "support MSE \\| before each step and after the last"],
    ]
    toy_rows = _table_rows(out[second:])[1:]
    assert toy_rows == [
        ["input", "`theta`", "float32", "`[2]`", "starting point"],
        ["input", "`steps`", "int64", "`[]`", "how many"],
        ["output", "`path`", "float32", "`[K, 2]`", "the points visited"],
    ]
    assert ("The manifest does not record the inputs and outputs of `d-sinusoid` "
            "(the entry has no `graph` field)") in out


def test_a_changed_meaning_or_shape_is_another_signature(tmp_path):
    other = json.loads(json.dumps(SINE_GRAPH))
    other["outputs"][0]["shape"] = ["S+1", "M", 2]
    out = reuse.render("<!-- reuse:graphs -->\n", _staging(tmp_path, [
        _entry("a-sinusoid", "maml", SINE_GRAPH), _entry("b-sinusoid", "maml", other)]), "p.md")
    assert out.count("| port | name | type | shape | meaning |") == 2
    assert "`[S+1, M, 2]`" in out and "`[S+1, M, 1]`" in out


def test_without_any_graph_field_every_model_is_listed_as_not_recorded(tmp_path):
    models = [_entry("a-sinusoid", "maml"), _entry("b-sinusoid", "fomaml")]
    out = render_page("<!-- reuse:graphs -->\n", _staging(tmp_path, models), "use-the-models.md")
    assert "| port | name | type | shape | meaning |" not in out
    assert [row[-1] for row in _table_rows(out)[1:]] == ["not recorded", "not recorded"]
    assert "does not record the inputs and outputs of `a-sinusoid` and `b-sinusoid`" in out


def test_an_empty_manifest_says_there_are_no_models(tmp_path):
    out = reuse.render("<!-- reuse:graphs -->\n", _staging(tmp_path, []), "p.md")
    assert "The manifest lists no models" in out and "maml-site build" in out


@pytest.mark.parametrize("graph, message", [
    ("inputs", r"graph must be an object with lists 'inputs' and 'outputs'"),
    ({"inputs": SINE_GRAPH["inputs"]}, r"graph.outputs must be a non-empty list"),
    ({**SINE_GRAPH, "inputs": [{"name": "x", "type": "float32", "shape": [1]}]},
     r"graph.inputs\[0\] lacks meaning"),
    ({**SINE_GRAPH, "inputs": [_port("x", "N", "points")]},
     r"graph.inputs\[0\].shape must be a list of sizes .* got \"N\""),
    ({**SINE_GRAPH, "outputs": [_port("y", [1.5], "points")]},
     r"graph.outputs\[0\].shape must be a list of sizes .* got \[1.5\]"),
    ({**SINE_GRAPH, "outputs": [_port("", [1], "points")]}, r"graph.outputs\[0\].name must be a non-empty"),
])
def test_a_malformed_graph_field_is_a_build_failure_naming_the_model(tmp_path, graph, message):
    staging = _staging(tmp_path, [_entry("a-sinusoid", "maml", graph)])
    with pytest.raises(BuildFailure, match=r"manifest entry 'a-sinusoid': " + message):
        reuse.render("<!-- reuse:graphs -->\n", staging, "p.md")


def test_unknown_reuse_block_names_the_allowed_ones(tmp_path):
    with pytest.raises(BuildFailure, match=r"p.md: unknown block <!-- reuse:nope -->; allowed: graphs"):
        reuse.render("<!-- reuse:nope -->\n", _staging(tmp_path, []), "p.md")


def test_the_page_asks_for_the_graphs_block_through_the_one_mechanism():
    assert GENERATORS["reuse"] == "site_builder.reuse"
    assert re.search(r"^<!-- reuse:graphs -->$", PAGE, re.MULTILINE)


# ------------------------------------------------------------ README commands and the workflow

def _readme_block(heading: str) -> str:
    """The first ```sh block after a README heading."""
    section = README.split(f"\n## {heading}\n", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL)[1]


INSTALL = _readme_block("Install and build")
TEST = _readme_block("Test")


def test_readme_commands_are_what_we_think_they_are():
    assert "maml-site build" in INSTALL and "pip install" in INSTALL
    assert TEST.strip() == "pytest"


def test_the_page_quotes_the_readme_install_and_test_commands_verbatim():
    blocks = re.findall(r"```sh\n(.*?)```", PAGE, re.DOTALL)
    assert INSTALL in blocks, f"the page does not quote the README's install command:\n{INSTALL}"
    assert TEST in blocks, f"the page does not quote the README's test command:\n{TEST}"
    for option in ("maml-site build --retrain", "--device cuda"):
        assert option in PAGE


def test_pages_workflow_runs_the_readme_commands_and_deploys_site():
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    jobs = workflow["jobs"]
    steps = [step for job in jobs.values() for step in job["steps"]]
    runs = [step.get("run", "") for step in steps]
    assert any(INSTALL.strip() in run for run in runs), \
        f"no step of {WORKFLOW.name} runs the README's install and build command:\n{INSTALL}"
    assert any(TEST.strip() in run.splitlines() for run in runs), "no step runs the README's test command"
    uses = {step["uses"].split("@")[0]: step for step in steps if "uses" in step}
    for step in steps:
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), f"not pinned to a major: {step['uses']}"
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "site"
    assert "actions/deploy-pages" in uses
    deploy_job = next(job for job in jobs.values()
                      if any(s.get("uses", "").startswith("actions/deploy-pages@") for s in job["steps"]))
    assert deploy_job.get("needs"), "deploying must wait for the build job"
    assert workflow["permissions"]["pages"] == "write" and workflow["permissions"]["id-token"] == "write"
    assert f'--8<-- ".github/workflows/pages.yml"' in PAGE


# ------------------------------------------------------------ the built page and the browser snippet

def _page_code_blocks(built_site: Path) -> dict[str, str]:
    """{title: code text} of the built page's titled code blocks."""
    text = (built_site / "use-the-models" / "index.html").read_text(encoding="utf-8")
    blocks = re.findall(r'<span class="filename">([^<]+)</span><pre>.*?<code>(.*?)</code></pre>',
                        text, re.DOTALL)
    return {html.unescape(title): html.unescape(re.sub(r"<[^>]+>", "", code)) for title, code in blocks}


@pytest.mark.slow
def test_the_built_page_shows_each_snippet_exactly_and_the_graphs_table(built_site, quick_build):
    blocks = _page_code_blocks(built_site)
    for name in (*PYTHON_SNIPPETS, BROWSER_SNIPPET.name, "use_glyphs_onnxruntime.py"):
        shown = blocks[f"docs/snippets/{name}"]
        assert shown.rstrip("\n") == (SNIPPETS / name).read_text(encoding="utf-8").rstrip("\n")
    assert blocks[".github/workflows/pages.yml"].rstrip("\n") == WORKFLOW.read_text().rstrip("\n")
    page = (built_site / "use-the-models" / "index.html").read_text(encoding="utf-8")
    assert "reuse:graphs" not in page and "reuse:conv-nets" not in page
    for entry in json.loads((quick_build.exported / "manifest.json").read_text())["models"]:
        if (built_site / MODELS_DIR / entry["file"]).is_file():     # linked where the site serves it
            assert f'<a href="../assets/models/{entry["file"]}"><code>{entry["file"]}</code></a>' in page
        assert f"<code>{entry['name']}</code>" in page
        for port in [*entry.get("graph", {}).get("inputs", []), *entry.get("graph", {}).get("outputs", [])]:
            assert f"<td><code>{port['name']}</code></td>" in page, f"{entry['name']}: {port['name']} not shown"


def _html_host() -> str:
    """The host page the page tells readers to save as maml-demo.html."""
    match = re.search(r'```html title="maml-demo.html"\n(.*?)```', PAGE, re.DOTALL)
    assert match, "the page has no maml-demo.html block"
    assert '<script type="module" src="maml-demo.mjs"></script>' in match[1]
    return match[1]


@pytest.fixture
def demo_url(built_site, tmp_path):
    """The built site served on 127.0.0.1, with the page's two files at its top
    as a reader would save them: maml-demo.html and maml-demo.mjs."""
    host = tmp_path / "maml-demo.html"
    host.write_text(_html_host(), encoding="utf-8")
    extra = {"/maml-demo.html": host, "/maml-demo.mjs": BROWSER_SNIPPET,
             # Chromium asks every host for one; the site has its own under assets/.
             "/favicon.ico": built_site / "assets" / "images" / "favicon.png"}

    class Handler(QuietHandler):
        def translate_path(self, path):
            clean = path.split("?", 1)[0].split("#", 1)[0]
            return str(extra[clean]) if clean in extra else super().translate_path(path)

    with serve(functools.partial(Handler, directory=str(built_site))) as url:
        yield url


@pytest.mark.browser
def test_browser_snippet_gives_the_predictions_of_python_onnxruntime(page, demo_url, built_site,
                                                                      tmp_path, monkeypatch, capsys):
    log = PageLog(page)
    page.goto(demo_url + "maml-demo.html")
    page.wait_for_function("document.querySelector('#maml-output').textContent.startsWith('after')",
                           timeout=READY_TIMEOUT_MS)
    shown = page.locator("#maml-output").inner_text()
    result = page.evaluate("""async (url) => {
        const m = await import(url);
        return { queryY: Array.from(m.queryY.data), dims: Array.from(m.queryY.dims),
                 supportLoss: Array.from(m.supportLoss.data) };
    }""", demo_url + "maml-demo.mjs")

    # The Python snippet, run as written against the same site's copy of the models.
    (tmp_path / "exported").symlink_to(built_site / MODELS_DIR, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    python = runpy.run_path(str(SNIPPETS / "use_onnxruntime.py"), run_name="__main__")
    printed = capsys.readouterr().out

    assert result["dims"] == list(python["query_y"].shape) == [11, 100, 1]
    np.testing.assert_allclose(np.array(result["queryY"]).reshape(result["dims"]), python["query_y"],
                               atol=1e-5, rtol=0)
    np.testing.assert_allclose(result["supportLoss"], python["support_loss"], atol=1e-5, rtol=0)
    browser_lines, python_lines = parse_output(shown), parse_output(printed)
    assert sorted(browser_lines) == [0, 1, 10]
    assert_same_numbers(browser_lines, python_lines, "browser snippet")
    log.assert_clean()


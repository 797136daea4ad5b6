"""The HTML report (``--html DIR``): the README's command writes a page a person can read, with the findings'
severities, reproduce commands and plots; headless Chromium renders its table and a plot; everything that comes
from the judged code is escaped; the plots' slices show the departure, and a plot whose implementation kills its
worker is omitted with a note while lossguard carries on.

The Chromium tests need Debian's ``chromium`` (``apt-get install -y --no-install-recommends chromium``) and skip
without it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from markupsafe import escape

from lossguard.catalog import CATALOG
from lossguard.harness.app import slices
from lossguard.harness.app.pages import write_pages
from lossguard.harness.kernel.model import Example, Implementation, PropertyResult

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"
CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
PLOT_COLOURS = ((31, 119, 180), (255, 127, 14))  # matplotlib's first two line colours (C0, C1)
PASS_BADGE = (0xB9, 0xE4, 0xBF)  # the CSS colour of a pass badge (reports/templates/style.css.j2)


def readme_command() -> tuple[list[str], int]:
    """The `$ lossguard ... --html DIR` line of the README's "HTML reports" section, and its documented status."""
    section = re.search(r"^## HTML reports\n(.*?)(?=^## )", (ROOT / "README.md").read_text(), flags=re.S | re.M)
    assert section, "the README has an 'HTML reports' section"
    lines = [line for line in re.findall(r"^\$ (lossguard .*--html .*)$", section.group(1), flags=re.M)]
    assert lines, "the section shows the command"
    command, _, comment = lines[0].partition("#")
    status = re.search(r"exit (\d)", comment)
    return shlex.split(command), int(status.group(1)) if status else 0


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """The README's command run as a user runs it (the report directory moved to a temporary one), with --json."""
    out = tmp_path_factory.mktemp("html")
    words, status = readme_command()
    words[words.index("--html") + 1] = str(out / "pages")
    done = subprocess.run(
        [sys.executable, "-m", "lossguard", *words[1:], "--json", str(out / "report.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "true"},
        timeout=600,
    )
    assert done.returncode == status, done.stdout[-3000:] + done.stderr[-2000:]
    return out / "pages", json.loads((out / "report.json").read_text()), done.stdout


class _Tags(HTMLParser):
    """The elements of a document, as a browser's tokenizer sees them (an attribute's text is no element)."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _injected(text: str) -> list[str]:
    """Elements a page must never hold: scripts, event handlers, or images other than its PNG plots."""
    forbidden = ("script", "iframe", "object", "embed", "link")
    plot = "data:image/png;base64,"
    return [
        tag
        for tag, attrs in _Tags(text).tags
        if tag in forbidden
        or any(a.startswith("on") for a in attrs)
        or (tag == "img" and not (attrs.get("src") or "").startswith(plot))
    ]


def _articles(page: str) -> list[str]:
    return page.split('<article class="finding"')[1:]


def test_the_readme_command_writes_one_page_with_every_finding(readme_run):
    pages, document, stdout = readme_run
    page_file = pages / "lossguard.html"
    assert f"lossguard: wrote {page_file}" in stdout
    assert [p.name for p in pages.iterdir()] == ["lossguard.html"], "a run of no library is one page"
    page = page_file.read_text()
    assert '<table class="grid">' in page and "examples/my_losses.py:focal" in page
    findings = document["findings"]
    assert findings, "the clamped focal loss has findings"
    articles = _articles(page)
    assert len(articles) == len(findings), "one finding per root cause"
    for finding in findings:
        label = finding["severity"] or "stale record"
        assert any(f">{label}</span>" in a and str(escape(finding["reproduce"])) in a for a in articles), finding
    # the vanished gradient the README describes is drawn: the gradient finding has a plot
    gradient = [a for a in articles if re.search(r"breaks</dt><dd>[^<]*\bgradient \(", a)]
    assert gradient and '<img src="data:image/png;base64,' in gradient[0]
    for article in articles:
        if "by definition" not in article.split("</h3>")[0]:
            assert "<img src=" in article or "no plot:" in article, "every new finding has a plot or says why not"
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page), "the page loads nothing"
    assert _injected(page) == []


def _chromium(*options: str, url: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--force-device-scale-factor=1", *options, url],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _boxes(page: Path, tmp_path: Path) -> dict:
    """Where Chromium lays out the grid and the first plot: a copy of the page with a script that writes their
    boxes into the DOM once loaded (the page itself has no script), read back with --dump-dom."""
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => { const box = e => { const r = e.getBoundingClientRect(); "
        "return [r.left, r.top, r.width, r.height]; }; const img = document.querySelector('article img'); "
        "document.body.setAttribute('data-boxes', JSON.stringify({grid: box(document.querySelector('table.grid')), "
        "plot: box(img), natural: img.naturalWidth})); });</script>"
    )
    probe.write_text(page.read_text().replace("</body>", script + "</body>"))
    dom = _chromium("--window-size=1280,2000", "--virtual-time-budget=5000", "--dump-dom", url=probe.as_uri()).stdout
    found = re.search(r'data-boxes="([^"]*)"', dom)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


def _region(image: np.ndarray, box: list[float]) -> np.ndarray:
    left, top, width, height = (round(v) for v in box)
    return image[top : top + height, left : left + width]


def _near(region: np.ndarray, colour: tuple[int, int, int], within: float = 30) -> int:
    """Pixels of ``region`` (RGB, 0..255) within ``within`` of ``colour``."""
    return int(np.sum(np.linalg.norm(region - np.asarray(colour, dtype=float), axis=-1) < within))


@needs_chromium
def test_chromium_renders_the_table_and_a_plot(readme_run, tmp_path):
    import matplotlib.image

    page = readme_run[0] / "lossguard.html"
    dom = _chromium("--dump-dom", url=page.as_uri()).stdout
    assert '<table class="grid">' in dom and "<tbody>" in dom
    rows = re.findall(r"<tr>\s*<td class=\"loss\">(.*?)</td>", dom)
    assert rows == ["sigmoid_focal_loss"], rows
    assert '<img src="data:image/png;base64,' in dom
    assert _injected(dom) == []

    shot = Path("/tmp/lossguard-html-report.png") if os.access("/tmp", os.W_OK) else tmp_path / "shot.png"
    done = _chromium(f"--screenshot={shot}", "--window-size=1280,2000", url=page.as_uri())
    assert shot.exists(), done.stderr[-2000:]
    image = matplotlib.image.imread(shot)[..., :3].astype(float)
    image = image * 255 if image.max() <= 1.0 else image
    assert image.shape[:2] == (2000, 1280)

    boxes = _boxes(page, tmp_path)
    assert boxes["natural"] > 0, "the plot's PNG decodes"
    for name in ("grid", "plot"):
        _, top, width, height = boxes[name]
        assert width > 100 and height > 30 and top + height <= 2000, f"the {name} lies in the first screen: {boxes}"
    grid = _region(image, boxes["grid"])
    assert np.mean(np.any(grid < 200, axis=-1)) > 0.02, "the table shows text and borders"
    assert _near(grid, PASS_BADGE, 12) > 100, "the table shows its coloured status badges"
    plot = _region(image, boxes["plot"])
    assert np.mean(np.any(plot < 200, axis=-1)) > 0.02, "the plot is not blank"
    for colour in PLOT_COLOURS:
        assert _near(plot, colour) > 200, f"the plot draws its curves ({colour})"


def _focal(input, target, alpha=0.25, gamma=2.0, reduction="mean"):
    """The README's clamped focal loss (its gradient vanishes where sigmoid rounds to 1)."""
    p = torch.sigmoid(input)
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = 1.0 if alpha is None else alpha * target + (1 - alpha) * (1 - target)
    loss = -alpha_t * (1 - p_t) ** gamma * torch.log(p_t.clamp_min(1e-8))
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def _hostile_run() -> tuple[list[PropertyResult], Implementation]:
    """A failing result whose names, message, counterexample and reproduce command carry markup, with an
    implementation of that name (its plot's labels carry it too, and a '$' matplotlib must not parse)."""
    name = f"{HOSTILE}$x^$"
    impl = Implementation(
        name=name,
        loss="sigmoid_focal_loss",
        kind="user",
        fn=_focal,
        accepted=frozenset({"alpha", "gamma", "reduction"}),
    )
    example = Example(
        {"input": np.array([17.0]), "target": np.array([0.0])}, {"alpha": None, "gamma": 0.0, "reduction": "none"}
    )
    result = PropertyResult(
        loss="sigmoid_focal_loss",
        implementation=name,
        kind="user",
        device="cpu",
        dtype="float32",
        property="gradient",
        status="fail",
        message=f"d loss / d input = 0.0, but should be 1.0 {HOSTILE}",
        counterexample=f"input=np.array([17.]), note='{HOSTILE}'",
        reproduce=f"lossguard audit '{HOSTILE}' --property gradient",
        actual=0.0,
        expected=1.0,
        scale=1.0,
        severity="wrong",
        convention=f"matches {HOSTILE}",
        library=f"lib{HOSTILE}",
        example=example,
    )
    passing = PropertyResult(**{**result.__dict__, "property": "agreement", "status": "pass", "severity": ""})
    return [result, passing], impl


def test_markup_from_the_judged_code_is_escaped_in_page_and_plot(tmp_path):
    results, impl = _hostile_run()
    document = {"command": f"lossguard audit {HOSTILE}", "target": {"target": HOSTILE}, "summary": {}}
    (path,) = write_pages(tmp_path, document, results, impls=[impl], catalog=CATALOG)
    assert path.parent == tmp_path and re.fullmatch(r"[A-Za-z0-9._-]+\.html", path.name), path.name
    page = path.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<script" not in page.lower() and _injected(page) == []
    assert [t for t, _ in _Tags(page).tags].count("img") == 1, "the plot, drawn although its labels carry markup, '$'"
    assert ">wrong</span>" in page and "matches &lt;script&gt;" in page


@needs_chromium
def test_chromium_sees_no_injected_element(tmp_path):
    results, _ = _hostile_run()
    document = {"command": f"lossguard audit {HOSTILE}", "target": {"target": HOSTILE}, "summary": {}}
    (path,) = write_pages(tmp_path, document, results)  # no implementations: a note instead of the plot
    dom = _chromium("--dump-dom", url=path.as_uri()).stdout
    assert "<body" in dom
    tags = _Tags(dom).tags
    assert _injected(dom) == [] and "img" not in [t for t, _ in tags], "the judged code's markup stayed text"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "no plot: the report was not given the implementations to call" in dom


def test_a_slice_shows_the_vanished_gradient():
    spec = CATALOG["sigmoid_focal_loss"]
    _, impl = _hostile_run()
    example = Example(
        {"input": np.array([17.0]), "target": np.array([0.0])}, {**spec.params, "alpha": None, "gamma": 0.0}
    )
    found = slices.slice_through(spec, impl, example, "float32")
    at = int(np.argmin(np.abs(found.x - 17.0)))
    assert (found.argument, found.index, found.center) == ("input", (0,), 17.0)
    assert found.implementation_grad[at] == 0.0 and found.reference_grad[at] == pytest.approx(1.0, rel=1e-6)
    assert found.grad_ulps[at] > found.budget
    near_zero = np.abs(found.x) < 5
    assert np.all(found.grad_ulps[near_zero] <= found.budget), "away from the clamp the two agree"
    assert slices.Slice.from_json(json.loads(json.dumps(found.to_json()))).x.tolist() == found.x.tolist()


def test_a_plot_whose_implementation_kills_its_worker_is_omitted(tmp_path):
    """Isolated plots run in the isolation worker: os._exit there costs the plot (and the implementation's other
    plots), with a note, never lossguard's process."""
    source = tmp_path / "dies.py"
    source.write_text(
        "import os\nimport torch.nn.functional as F\n\n"
        "def dies(input, target, reduction='mean'):\n"
        "    if float(input.detach().max()) > 10:\n"
        "        os._exit(3)\n"
        "    return F.binary_cross_entropy_with_logits(input, target, reduction=reduction)\n"
    )
    target = f"{source}:dies"
    job = {
        "dtypes": ["float32"],
        "devices": ["cpu"],
        "properties": [],
        "profile": "ci",
        "base_command": ["lossguard", "audit", target],
        "replay": None,
        "bindings": [
            {
                "inline": {
                    "target": target,
                    "framework": "torch",
                    "loss": "binary_cross_entropy_with_logits",
                    "inspect": True,
                }
            }
        ],
        "memory_limit_gb": 8.0,
    }
    example = Example({"input": np.array([12.0]), "target": np.array([1.0])}, {"reduction": "none"})
    requests = [slices.Request(target, "float32", "cpu", example)] * 2
    first, second = slices.isolated(job, requests, time_limit=60)
    assert isinstance(first, str) and "killed its process (exit status 3)" in first
    assert isinstance(second, str) and "an earlier plot of this implementation failed" in second

"""The benchmark report (``lossguard.reports.bench_report``): the figures it derives from measured rows (speed
relative to torch eager at a common size, amplification, bandwidth fraction, own against the fastest third-party)
and the two pages, from rows whose numbers are given here."""

from __future__ import annotations

import re

import pytest

from lossguard.reports import bench_report as br

MiB = 2**20


def _row(name: str, kind: str, seconds: list[float], peak: float | None = None, moved: bool = False) -> br.Row:
    sizes = [("small", 1_000), ("medium", 10_000), ("large", 100_000)][: len(seconds)]
    points = tuple(
        br.Point(size, n, s, moved_bytes=8.0 * n if moved else None)
        for (size, n), s in zip(sizes, seconds, strict=False)
    )
    return br.Row("cross_entropy", name, kind, "cpu", "float32", points, peak, input_bytes=4 * MiB, worst_ulps=3.0)


ROWS = [
    _row("torch.ce", "torch", [1e-4, 1e-3, 4e-3], peak=20 * MiB, moved=True),
    _row("lossguard.ce", "own", [1e-4, 1e-3, 2e-3], peak=4 * MiB, moved=True),
    _row("fastlib.ce", "third-party", [1e-4, 1e-3, 2e-3], peak=2 * MiB, moved=True),
    _row("slowlib.ce", "third-party", [1e-4, 4e-3], peak=1 * MiB, moved=True),  # its large size was cut
    br.Row("cross_entropy", "broken.ce", "third-party", "cpu", "float32", error="RuntimeError: no"),
]
BENCH = br.Bench(ROWS, {"cpu": (8.0e9, "measured: a STREAM triad")}, [("command", "lossguard bench")])


def test_speed_relative_to_torch_eager_at_the_largest_common_size():
    by_name = {r.implementation: r for r in ROWS}
    assert br.speedup(by_name["lossguard.ce"], ROWS) == pytest.approx(2.0)
    assert br.speedup(by_name["torch.ce"], ROWS) == pytest.approx(1.0)
    assert br.speedup(by_name["slowlib.ce"], ROWS) == pytest.approx(0.25)  # at medium, its largest
    assert br.speedup(by_name["broken.ce"], ROWS) is None


def test_amplification_and_bandwidth_fraction():
    own = ROWS[1]
    assert own.amplification == pytest.approx(1.0)
    # 8 bytes per element at 100,000 elements in 2 ms against 8 GB/s
    assert br.bandwidth_fraction(own, BENCH.bandwidth) == pytest.approx(8e5 / 2e-3 / 8e9)
    assert br.bandwidth_fraction(own, {}) is None


def test_own_against_the_fastest_third_party():
    (versus,) = br.own_versus_third_party(ROWS)
    assert versus.fastest.implementation == "fastlib.ce"
    assert versus.size == "large"  # slowlib's large size was cut: not compared at medium
    assert versus.time_ratio == pytest.approx(1.0)
    assert versus.memory_ratio == pytest.approx(2.0)  # 4 MiB against fastlib's 2 MiB
    assert not versus.met


def test_markdown_has_a_row_per_implementation_and_the_versus_table():
    text = br.markdown(BENCH)
    for row in ROWS:
        assert len(re.findall(rf"^\| ` {re.escape(row.implementation)} ` \|", text, flags=re.M)) == 1
    assert "broken.ce ` (cpu float32): RuntimeError: no" in text
    assert "| ` 2x ` |" in text  # the own row's speed relative to torch
    assert "MISSED" in text
    assert "memory bandwidth of cpu: 7.45 GiB/s (measured: a STREAM triad)" in text


def test_html_page_is_self_contained_with_one_plot_per_loss(tmp_path):
    md, page = br.write(tmp_path / "out", BENCH)
    assert md.read_text() == br.markdown(BENCH)
    text = page.read_text()
    assert text.count('<img src="data:image/png;base64,') == 1
    assert text.count('<tr class="impl">') == len(ROWS)
    assert "<script" not in text and "http" not in text.replace("http-equiv", "")
    assert ">RuntimeError: no</td>" in text


def test_names_are_text_on_both_pages():
    evil = br.Row("huber_loss", "<b>x</b>|`y`", "own", "cpu", "float32", (br.Point("small", 10, 1e-3),))
    bench = br.Bench([evil])
    assert "<b>x</b>" not in br.render_html(bench)
    assert "&lt;b&gt;x&lt;/b&gt;" in br.render_html(bench)
    assert "\\|" in br.markdown(bench)  # the pipe does not end the cell

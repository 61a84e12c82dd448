"""The HTML pages of ``sweep`` and ``compare``: self-contained, defined, sortable, and loaded in a
real headless browser (Chromium) that finds no JavaScript error and every figure drawn."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_sweep_report import _rows

from dse.report import network_points, write_report
from dse.report.compare import unfolded_layers, write_compare_report
from dse.report.glossary import TERMS

VARIANTS = ["net[dilated]", "net[undilated]"]


def _sweep_page(out: Path) -> Path:
    rows = [{**r, "technology": "45nm"} for r in _rows()]
    network = [dict(point=p.point, model=p.model, energy_pJ=p.energy_pJ, cycles=p.cycles,
                    edp=p.edp, utilization=0.5, gflops_1ghz=1.0, sdc_rate=p.sdc_rate,
                    sdc_lo=p.sdc_lo, sdc_hi=p.sdc_hi, layers=3, layers_scored=3,
                    technology="45nm", area_mm2=1.26)
               for p in network_points(rows) if p.policy == "min-EDP"]
    return write_report(rows, network, out, title="test sweep", notes=["a note"],
                        settings={"raw FIT/Mbit": 1000.0, "seed": 0, "confidence": 0.95})


def _compare_rows() -> list[dict]:
    rows = []
    for point in ("d1", "d2"):
        for model, layers in ((VARIANTS[0], [("a", 1, 10.0), ("b", 1, 30.0), ("c", 1, 30.0)]),
                              (VARIANTS[1], [("a", 1, 10.0), ("b", 2, 20.0)])):
            for i, (path, count, energy) in enumerate(layers):
                rows.append(dict(point=point, model=model, layer_index=i, layer=path,
                                 layer_path=path, count=count, rank=0, energy_pJ=energy,
                                 cycles=100, edp=energy * 1e-10, macs=50, sdc_rate=None,
                                 sdc_lo=None, sdc_hi=None, utilization=1.0, components="{}",
                                 technology="7nm" if point == "d1" else "45nm"))
    return rows


OCCURRENCES = {VARIANTS[0]: {0: ["a"], 1: ["b"], 2: ["c"]}, VARIANTS[1]: {0: ["a"], 1: ["b", "c"]}}


def _compare_page(out: Path) -> Path:
    return write_compare_report(_compare_rows(), VARIANTS, out, title="test compare",
                                settings={"seed": 0}, occurrences=OCCURRENCES)


def test_unfolded_layers_give_every_module_path_its_own_ratio():
    layers = {r["layer"]: r for r in unfolded_layers(_compare_rows(), VARIANTS, "d1",
                                                     OCCURRENCES)}
    assert set(layers) == {"a", "b", "c"}
    # c was folded into b in the undilated variant: unfolded it has b's per-instance values
    assert layers["c"][VARIANTS[1]]["energy_pJ"] == 20.0
    assert layers["c"]["ratio"]["energy_pJ"] == pytest.approx(30.0 / 20.0)
    folded = {r["layer"] for r in unfolded_layers(_compare_rows(), VARIANTS, "d1")}
    assert folded == {"a", "b", "c"} and unfolded_layers(_compare_rows(), VARIANTS, "d1")[2][
        VARIANTS[1]] is None  # without occurrences c has no undilated value


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """Both pages, drawn once for the module (figures are the slow part)."""
    return {"sweep": _sweep_page(tmp_path_factory.mktemp("sweep")),
            "compare": _compare_page(tmp_path_factory.mktemp("compare"))}


@pytest.mark.parametrize("kind", ["sweep", "compare"])
def test_page_embeds_every_figure_and_links_nothing(pages, kind):
    page = pages[kind].read_text()
    pngs = sorted(pages[kind].parent.glob("*.png"))
    assert pngs and page.count("<img ") == len(pngs)
    assert all(src.startswith("data:image/png;base64,")
               for src in re.findall(r"<img src='([^']*)'", page))
    assert not re.search(r"href=|<link|src='(?!data:)|https?://", page)
    assert "<h2>Settings and provenance</h2>" in page and "<dt>seed</dt><dd>0</dd>" in page
    for term in TERMS:
        assert f"<dt>{term.name}" in page
    assert "class='sortable'" in page and "<td class='n' data-v=" in page


def test_sweep_page_headers_carry_units():
    from dse.report.html import layer_rows
    from dse.report.tables import network_rows

    rows = [{**r, "technology": "45nm"} for r in _rows()]
    headers = set(layer_rows(rows)[0]) | set(network_rows(
        [dict(point="p", model="m", energy_pJ=1e6, cycles=10, edp=1e-5, utilization=0.5,
              gflops_1ghz=1.0, sdc_rate=None, technology="45nm", area_mm2=1.0)])[0])
    unitless = {"design point", "model", "layer", "count", "node", "cycles x count", "cycles"}
    for h in headers - unitless:
        assert re.search(r"\((pJ|nJ|uJ|mJ|J|%|J x cycles|mm2)\)|\[CI\]|@1GHz", h), h


# ------------------------------------------------------------------------- headless browser

def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("no headless Chromium on PATH (Debian: apt-get install chromium)")


# Added in front of a copy of the page: records JavaScript errors; then, after the page's own
# script, clicks the first numeric column twice and records the order and each figure's size.
_PROBE_HEAD = ("<script>window.__errors=[];window.addEventListener('error',e=>"
               "window.__errors.push(e.message));</script>")
_PROBE_TAIL = """<script>
const th=[...document.querySelectorAll('table.sortable th')].find((h,i)=>
  h.closest('table').tBodies[0].rows[0].cells[i].classList.contains('n'));
const col=[...th.parentNode.children].indexOf(th), body=th.closest('table').tBodies[0];
const vals=()=>[...body.rows].map(r=>parseFloat(r.cells[col].dataset.v));
th.click(); const up=vals(); th.click(); const down=vals();
const figs=[...document.images].map(i=>i.complete&&i.naturalWidth>0?'ok':'broken');
document.body.insertAdjacentHTML('beforeend',`<pre id="probe">${JSON.stringify(
  {errors:window.__errors,up,down,figs})}</pre>`);
</script>"""


@pytest.mark.parametrize("kind", ["sweep", "compare"])
def test_page_in_headless_chromium_has_no_error_every_figure_and_sorts(tmp_path, pages, kind):
    import json

    browser = _chromium()
    text = pages[kind].read_text()
    alone = tmp_path / "moved" / "page.html"  # moved away from its PNG/SVG files
    alone.parent.mkdir()
    alone.write_text(text.replace("<title>", _PROBE_HEAD + "<title>", 1)
                     .replace("</html>", _PROBE_TAIL + "</html>"))
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
                           "--dump-dom", alone.as_uri()], capture_output=True, text=True,
                          timeout=120)
    assert "Uncaught" not in done.stderr
    probe = json.loads(re.search(r'<pre id="probe">(\{.*?\})</pre>', done.stdout, re.S).group(1))
    assert probe["errors"] == []
    assert probe["figs"] == ["ok"] * text.count("<img ") and probe["figs"]
    assert probe["up"] == sorted(probe["up"]) and probe["down"] == sorted(probe["up"])[::-1]
    assert len(set(probe["up"])) > 1


def test_settings_block_lists_fault_settings_only_when_faults_were_scored():
    from dse.report.html import sweep_settings

    config = {"designs": ["eyeriss_like"], "variants": [{}], "grid": {}, "seed": 0,
              "models": [{"name": "deeplabv3", "label": "deeplabv3[dilated]"}],
              "resilience": {"enabled": True, "margin": 0.1, "confidence": 0.95,
                             "fit_per_mbit": 1000.0, "images": 8, "precision": 0.25}}
    scored = sweep_settings(config, "v", scored=True)
    assert scored["resilience scored"] == "yes" and scored["raw FIT/Mbit"] == 1000.0
    assert scored["sampling"].startswith("adaptive") and "error margin" not in scored
    classic = sweep_settings({**config, "resilience": {**config["resilience"], "faults": 50}},
                             "v", scored=True)
    assert classic["faults per site class"] == 50 and "precision" not in classic
    assert scored["design variants"] == ["base (as shipped)"] and scored["grid"] == "none"
    unscored = sweep_settings(config, "v", scored=False)
    assert unscored["resilience scored"] == "no (no model had weights and data)"
    assert not {"raw FIT/Mbit", "error margin", "precision", "images per fault"} & set(unscored)

"""report.html in a real browser: headless Chromium loads it from disk, every image decodes, no errors.

A copy of the report gets two small scripts: one at the top of <head> that records every error
(script errors and failed resource loads, caught in the capture phase), one that, on the load
event, writes the count of images, of broken images and of errors into the DOM, which
``--dump-dom`` prints. The report itself carries no scripts.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from _records import sweep_manifest, sweep_records
from analysis.pages.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (Debian: apt-get install -y chromium); "
                             "the browser check of report.html needs it")

RECORD_ERRORS = ("<script>window.__errors=[];window.addEventListener('error',function(e){"
                 "window.__errors.push(e.message||('failed to load '+((e.target&&e.target.src)||'?')"
                 ".slice(0,40)))},true);</script>")
REPORT_IMAGES = ("<script>window.addEventListener('load',function(){var im=document.images,bad=0;"
                 "for(var i=0;i<im.length;i++){if(!im[i].complete||im[i].naturalWidth===0)bad++;}"
                 "var d=document.createElement('pre');d.id='browser-check';d.textContent='images '+im.length+"
                 "' broken '+bad+' errors '+window.__errors.length+' '+window.__errors.join(' | ');"
                 "document.body.appendChild(d);});</script>")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser")
    return write_report(out, records=sweep_records(), manifest=sweep_manifest())


def load_in_chromium(html_path, tmp_path, extra: str = "", window: str = "1280,800") -> tuple[str, dict]:
    """Open an instrumented copy of ``html_path`` (same folder) in headless Chromium; return DOM and counts."""
    page = html_path.with_name("browser-check.html")
    text = html_path.read_text()
    page.write_text(text.replace("<head>", "<head>" + RECORD_ERRORS, 1)
                    .replace("</body>", REPORT_IMAGES + extra + "</body>", 1))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
           f"--window-size={window}", "--hide-scrollbars",
           "--dump-dom", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r'<pre id="browser-check">images (\d+) broken (\d+) errors (\d+) ?([^<]*)</pre>', proc.stdout)
    assert m, "the page's load handler never ran:\n" + proc.stdout[-1000:]
    counts = {"images": int(m[1]), "broken": int(m[2]), "errors": int(m[3]), "messages": m[4]}
    return proc.stdout, counts


def test_report_renders_with_every_image(report, tmp_path):
    dom, counts = load_in_chromium(report, tmp_path)
    figures = sorted(report.parent.joinpath("figures").glob("*.png"))
    assert len(figures) == 7
    assert counts == {"images": len(figures), "broken": 0, "errors": 0, "messages": ""}
    assert "<h2>Summary</h2>" in dom and "<h2>Design</h2>" in dom and "<table>" in dom


# On load: how wide the decision table is against the window, where its last columns end and how
# wide the figures under the first screen are drawn.
MEASURE = ("<script>window.addEventListener('load',function(){"
           "var h=[].slice.call(document.querySelectorAll('h2')).filter(function(x){"
           "return x.textContent==='Decision per cell'})[0],t=h.nextElementSibling;"
           "while(t&&t.tagName!=='TABLE')t=t.nextElementSibling;"
           "var th=[].slice.call(t.querySelectorAll('th')),right={};"
           "th.forEach(function(c){right[c.textContent]=Math.round(c.getBoundingClientRect().right)});"
           "var f=document.querySelector('figure:not(.lead) img').getBoundingClientRect();"
           "var d=document.createElement('pre');d.id='layout';d.textContent=JSON.stringify({window:window.innerWidth,"
           "scroll:t.scrollWidth,client:t.clientWidth,right:right,"
           "figure_width:Math.round(f.width),body:document.body.clientWidth});document.body.appendChild(d);});"
           "</script>")


def test_at_1280px_the_verdicts_fit_and_figures_take_the_width(report, tmp_path):
    """At 1280 px the decision table needs no sideways scrolling (its p-value and verdict columns
    are in view) and the figures under the first screen take the column's width.
    Screenshots of the first screen and the whole page go to test-artefacts/ for a person to look at."""
    import json

    dom, counts = load_in_chromium(report, tmp_path, extra=MEASURE)
    layout = json.loads(re.search(r'<pre id="layout">([^<]*)</pre>', dom)[1].replace("&quot;", '"'))
    assert layout["window"] == 1280
    assert layout["scroll"] <= layout["client"], layout            # no sideways scrolling
    for column in ("p Holm", "p BH", "verdict"):
        assert layout["right"][column] <= layout["window"], (column, layout)
    assert layout["figure_width"] >= 0.9 * layout["body"] - 40, layout
    artefacts = Path(__file__).resolve().parents[1] / "test-artefacts"
    artefacts.mkdir(exist_ok=True)
    for name, size in (("report-first-screen.png", "1280,800"), ("report-page.png", "1280,7000")):
        shot = artefacts / name
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={tmp_path / 'chromium-shot'}", f"--window-size={size}",
                        f"--screenshot={shot}", report.resolve().as_uri()], capture_output=True, timeout=120,
                       check=True)
        assert shot.stat().st_size > 10_000


# On load: what follows the title, the first list on the page and where its third line ends, and
# the first figure (its file and its box), all in CSS pixels from the top of the page.
FIRST_SCREEN = ("<script>window.addEventListener('load',function(){"
                "var h=document.querySelector('h1'),next=h.nextElementSibling,ul=document.querySelector('ul'),"
                "li=ul.querySelectorAll('li'),f=document.querySelector('figure'),img=f.querySelector('img');"
                "var kids=[].slice.call(next.children).map(function(c){return c.tagName+'.'+c.className});"
                "var d=document.createElement('pre');d.id='first-screen';d.textContent=JSON.stringify({"
                "after_title:next.tagName+'.'+next.className,children:kids,list:ul.className,lines:li.length,"
                "texts:[].slice.call(li,0,3).map(function(x){return x.textContent.slice(0,40)}),"
                "third_bottom:li.length>2?Math.round(li[2].getBoundingClientRect().bottom):null,"
                "figure:f.querySelector('code').textContent,figure_top:Math.round(img.getBoundingClientRect().top),"
                "figure_bottom:Math.round(img.getBoundingClientRect().bottom),"
                "exploratory:[].slice.call(document.querySelectorAll('p.exploratory')).map(function(p){"
                "return Math.round(p.getBoundingClientRect().bottom)})});document.body.appendChild(d);});</script>")


def first_screen(html_path, tmp_path) -> dict:
    import json

    dom, counts = load_in_chromium(html_path, tmp_path, extra=FIRST_SCREEN)
    assert counts["errors"] == 0, counts
    return json.loads(re.search(r'<pre id="first-screen">([^<]*)</pre>', dom)[1].replace("&quot;", '"'))


def test_the_first_screen_is_three_lines_and_the_verdict_figure(report, tmp_path):
    """At 1280 x 800 the page opens with the answer: right after the title, three lines (where, how
    much, at what cost), then the verdict heatmap, all of it inside the first 800 pixels."""
    s = first_screen(report, tmp_path)
    assert s["after_title"] == "DIV.lead" and s["children"] == ["UL.answer", "FIGURE.lead"], s
    assert s["lines"] == 3, s
    assert s["texts"][0].startswith("Dropout lowers test MSE in") and s["texts"][2].startswith("At what cost"), s
    assert s["figure"] == "figures/delta_heatmap.png", s
    assert s["third_bottom"] <= s["figure_top"] and s["figure_bottom"] <= 800, s
    assert s["exploratory"] == []


def test_an_exploratory_report_says_so_above_the_three_lines(tmp_path):
    from analysis.numbers.estimates import StatsOptions

    path = write_report(tmp_path / "exploratory", records=sweep_records(), manifest=sweep_manifest(),
                        seed_picture=False, options=StatsOptions(outcome="excess_risk"))
    s = first_screen(path, tmp_path)
    assert s["children"] == ["P.exploratory", "UL.answer", "FIGURE.lead"], s
    assert s["texts"][0].startswith("Dropout lowers excess risk in"), s
    assert len(s["exploratory"]) == 1 and s["exploratory"][0] <= s["third_bottom"] <= s["figure_top"], s
    assert s["figure_bottom"] <= 800, s


def test_the_check_sees_a_broken_image(report, tmp_path):
    _, counts = load_in_chromium(report, tmp_path, extra="<img src='data:image/png;base64,AAAA'>")
    assert counts["broken"] == 1 and counts["errors"] == 1

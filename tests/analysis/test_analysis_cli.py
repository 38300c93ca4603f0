"""The analysis from the command line (analyze, run --rate, graph --annotate, Mermaid) and
its pictures."""

import json
import shutil

import pytest
from support.analysis_check import cli_banking, cli_funnel
from support.models import ping_pong
from support.services import require_module, service_missing

from doge_datagen import InMemorySink
from doge_datagen.analysis.graph import DataOnlineGeneratorGrapher
from doge_datagen.cli.main import main


def run_cli(capsys, *args):
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_analyze_prints_matrix_shares_dwell_events_checks_and_the_veto_caveat(capsys):
    status, out, _ = run_cli(capsys, "analyze", "support.analysis_check:cli_banking")
    assert status == 0
    a = cli_banking().analyze()
    assert "Per-tick transition matrix" in out
    assert "offline        0.999   0.001            0" in out
    assert f"{a.stationary['offline'] * 100:.4g} %" in out
    assert "mean dwell (ticks)" in out and "1,000" in out
    assert "cannot see vetoes" in out and "fall short" in out
    assert "per second (long run)" in out and "in 1440 ticks" in out
    assert "unreachable states: none" in out


def test_analyze_json_has_stationary_dwell_and_events_per_tick(capsys):
    status, out, _ = run_cli(
        capsys,
        "analyze",
        "support.analysis_check:cli_banking",
        "--format",
        "json",
        "--subjects",
        "50",
    )
    assert status == 0
    data = json.loads(out)  # nothing else on standard output
    a = cli_banking().analyze(subjects_num=50)
    assert data["stationary"] == pytest.approx(a.stationary)
    assert data["dwell"] == pytest.approx(a.dwell)
    assert data["events_per_tick"] == pytest.approx(a.events_per_tick)
    assert data["subjects"] == 50
    assert sum(data["events_per_tick"].values()) == pytest.approx(50 * 3.948e-3, rel=1e-3)


def test_analyze_reports_final_states_and_where_subjects_end(capsys):
    status, out, _ = run_cli(capsys, "analyze", "support.analysis_check:cli_funnel")
    assert status == 0
    a = cli_funnel().analyze()
    assert "Where subjects end up" in out
    assert f"{a.absorption['bought'] * 100:.4g} %" in out
    assert "expected time to get there" in out
    assert "states without exits: 'bought', 'left'" in out


def test_analyze_forever_has_no_run_figures(capsys):
    status, out, _ = run_cli(
        capsys, "analyze", "support.analysis_check:cli_banking", "--forever", "--format", "json"
    )
    assert status == 0 and json.loads(out)["run"] is None


def test_observed_without_plot_and_forever_with_ticks_are_refused(capsys):
    status, _, err = run_cli(
        capsys, "analyze", "support.analysis_check:cli_banking", "--observed", "x.jsonl"
    )
    assert status == 2 and "--plot" in err
    status, _, err = run_cli(
        capsys, "analyze", "support.analysis_check:cli_banking", "--forever", "--ticks", "5"
    )
    assert status == 2 and "--forever" in err


def png_is_a_picture(path, min_colours=50, min_size=(800, 400)):
    """Written, a PNG, and more than a blank canvas: many colours, ink over a good part."""
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000
    image = imread(str(path))
    height, width = image.shape[:2]
    assert width >= min_size[0] and height >= min_size[1]
    pixels = image.reshape(-1, image.shape[2])[:, :3]
    colours = {tuple(p) for p in (pixels * 255).astype(int)[::7].tolist()}
    assert len(colours) >= min_colours
    ink = (pixels.sum(axis=1) < 2.5).mean()  # not white
    assert 0.01 < ink < 0.9


def test_plot_writes_a_weekly_rate_picture(tmp_path, capsys):
    require_module("matplotlib", "plot")
    target = tmp_path / "rates.png"
    status, out, _ = run_cli(
        capsys, "analyze", "support.analysis_check:cli_banking", "--plot", str(target)
    )
    assert status == 0 and "rate plot written to" in out
    png_is_a_picture(target)


def write_events(path, datagen):
    """Run ``datagen`` into JSON Lines with timestamp and event, as the demo writes them."""
    sink = InMemorySink()
    for t in datagen.transitions:
        t.event_sinks = [sink]
    datagen.start()
    with open(path, "w") as out:
        for e in sink.events:
            out.write(json.dumps({"timestamp": e.timestamp, "event": e.trigger}) + "\n")
    return sink


def test_observed_events_are_folded_onto_the_week(tmp_path):
    require_module("matplotlib", "plot")
    from doge_datagen.analysis.plots import observed_hourly, plot_rates

    datagen = cli_banking()
    datagen.ticks_num = 3 * 60  # three hours of one-minute ticks
    analysis = datagen.analyze()
    events = tmp_path / "events.jsonl"
    sink = write_events(events, datagen)
    hourly = observed_hourly(str(events), analysis)
    # Hours 0, 1 and 2 hold what the run made in them; the other hours were never covered.
    for name, values in hourly.items():
        made = [
            sum(
                1
                for e in sink.events
                if e.trigger == name
                and h * 60 <= (e.timestamp - datagen.timestamp_start) // 60_000 < (h + 1) * 60
            )
            for h in range(3)
        ]
        assert values[:3] == made
        assert all(v != v for v in values[3:])  # NaN
    target = tmp_path / "overlay.png"
    assert plot_rates(analysis, str(target), observed=str(events)) == str(target)
    png_is_a_picture(target)


def test_observed_file_with_a_bad_line_names_the_line(tmp_path):
    from doge_datagen.analysis.plots import observed_hourly

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"timestamp": 1, "event": "login"}\n{"ts": 2}\n')
    with pytest.raises(ValueError, match="line 2"):
        observed_hourly(str(bad), cli_banking().analyze())
    bad.write_text('{"timestamp": 1, "event": "dance"}\n')
    with pytest.raises(ValueError, match="'dance'"):
        observed_hourly(str(bad), cli_banking().analyze())


def test_mermaid_output_lists_states_transitions_initial_and_final_states(tmp_path, capsys):
    target = tmp_path / "states.mmd"
    status, out, _ = run_cli(
        capsys, "graph", "support.analysis_check:cli_funnel", "-o", str(target)
    )
    assert status == 0 and "states.mmd" in out
    text = target.read_text()
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert '    state "visitor" as s0' in lines
    assert "    [*] --> s0" in lines
    assert "    s0 --> s1 : browse (20%)" in lines
    assert "    s1 --> s1 : view (30%)" in lines
    # 'bought' only loops on itself and 'left' has no transition: both are final.
    assert "    s3 --> [*]" in lines and "    s4 --> [*]" in lines
    assert "    s1 --> [*]" not in lines
    assert sum(1 for line in lines if " : " in line) == len(cli_funnel().transitions)


def test_annotated_mermaid_carries_shares_and_rates(tmp_path, capsys):
    target = tmp_path / "annotated.mmd"
    status, _, _ = run_cli(
        capsys, "graph", "support.analysis_check:cli_banking", "--annotate", "-o", str(target)
    )
    assert status == 0
    a = cli_banking().analyze()
    text = target.read_text()
    assert f'state "offline ({a.stationary["offline"] * 100:.3g}%)" as s0' in text
    login = a.transition_events_per_tick[2] / 60
    assert f"s0 --> s1 : login (0.1%), {login:.3g} ev/s" in text


def test_annotated_graphviz_graph_carries_shares_and_rates(tmp_path, capsys, monkeypatch):
    datagen = cli_banking()
    a = datagen.analyze()
    source = DataOnlineGeneratorGrapher(datagen).generate_graph(annotate=True).source
    assert f"online\n{a.stationary['online'] * 100:.3g}%" in source
    take_loan = a.transition_events_per_tick[6] / 60
    assert f"take_loan (10%)\n{take_loan:.3g} ev/s" in source
    plain = DataOnlineGeneratorGrapher(datagen).generate_graph().source
    assert "ev/s" not in plain and "%\n" not in plain
    if shutil.which("dot") is None:
        service_missing("Graphviz's dot program")
    monkeypatch.setattr("graphviz.backend.viewing.view", lambda *a, **k: None)
    target = tmp_path / "annotated.png"
    status, _, _ = run_cli(
        capsys, "graph", "support.analysis_check:cli_banking", "--annotate", "-o", str(target)
    )
    assert status == 0
    png_is_a_picture(target, min_colours=10, min_size=(600, 150))


def test_rate_and_speed_contradict(capsys):
    status, _, err = run_cli(
        capsys, "run", "support.analysis_check:cli_banking", "--rate", "10", "--speed", "2"
    )
    assert status == 2 and "--rate and --speed" in err


def test_start_with_rate_derives_the_speed_from_the_analysis():
    # ping_pong at 100 %: 40 events per tick of one second, so 4,000 events/s is speed 100.
    datagen, _ = ping_pong(40, 5)
    summary = datagen.start(rate=4000)
    assert summary.speed == pytest.approx(100)
    assert summary.rate_asked == 4000
    assert "rate: asked for 4,000 events/s, achieved" in str(summary)
    with pytest.raises(ValueError, match="speed or rate"):
        datagen.start(speed=1, rate=5)


def test_run_and_demo_with_rate_show_asked_and_achieved(capsys):
    status, out, _ = run_cli(
        capsys, "run", "support.analysis_check:cli_banking", "--rate", "50000", "--ticks", "30"
    )
    assert status == 0
    assert "rate: asked for 50,000 events/s, achieved" in out
    speed = cli_banking().analyze(ticks_num=30)
    expected = 50000 / (speed.run_total_events / (30 * 60))
    assert f"at speed {expected:.4g}" in out
    status, out, err = run_cli(
        capsys, "demo", "--sink", "print:", "--subjects", "20", "--ticks", "30", "--rate", "100000"
    )
    assert status == 0
    assert "rate: asked for 100,000 events/s" in out + err


def test_the_readme_analysis_block_runs_unchanged(capsys):
    from support.docs import code_blocks, page

    blocks = [b for b in code_blocks(page("doc/analysis.md")) if "datagen.analyze()" in b]
    assert len(blocks) == 1
    from doge_datagen.demo import demo_model

    ns = {"datagen": demo_model()}
    exec(blocks[0], ns)
    analysis = ns["analysis"]
    assert "Per-tick transition matrix" in capsys.readouterr().out
    assert analysis.matrix["online"]["loan_screen"] == pytest.approx(0.3)
    assert analysis.dwell["loan_screen"] == pytest.approx(2.0)


def test_a_run_longer_than_a_week_is_folded_onto_it(tmp_path):
    from doge_datagen.analysis.plots import observed_hourly

    a = cli_banking().analyze()
    week = 168 * 3_600_000
    start = int(a.week_start_ms)
    lines = [
        (start + 10, "login"),
        (start + 20, "login"),
        (start + week + 30, "login"),
        (start + week + 40, "login"),
        (start + week + 50, "login"),
        (start + week + 60, "logout"),
        (start + week + 5 * 3_600_000, "income"),  # the last hour covered: 5
    ]
    path = tmp_path / "two.jsonl"
    path.write_text("".join(json.dumps({"timestamp": t, "event": e}) + "\n" for t, e in lines))
    hourly = observed_hourly(str(path), a)
    # Hours 0..5 of the week were covered twice (first week, then the second up to hour 5).
    assert hourly["login"][0] == pytest.approx((2 + 3) / 2)
    assert hourly["logout"][0] == pytest.approx(0.5)
    assert hourly["income"][5] == pytest.approx(0.5)
    assert hourly["login"][6] == pytest.approx(0.0)  # covered once (first week), no event
    assert hourly["login"][167] == 0.0


def test_the_analysis_example_renders_both_doc_pictures(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    require_module("matplotlib", "plot")
    if shutil.which("dot") is None:
        service_missing("Graphviz's dot program")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [
            sys.executable,
            str(root / "examples" / "doge_analysis_example.py"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "vetoed by callbacks" in done.stdout
    png_is_a_picture(tmp_path / "rates-week.png")
    png_is_a_picture(tmp_path / "states-annotated.png", min_colours=10, min_size=(600, 150))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rates-week.png", "states-annotated.png"]

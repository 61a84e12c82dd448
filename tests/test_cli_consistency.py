"""The command line as a whole: closed pipes, defaults in --help, old flag spellings."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from dse.cli import build_parser


def _closed_pipe_run(*args: str) -> subprocess.CompletedProcess:
    """Run dse with its stdout a pipe whose reader is already gone (``dse ... | head`` after
    head exited): every write fails with EPIPE, deterministically."""
    proc = subprocess.Popen([sys.executable, "-m", "dse", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return subprocess.CompletedProcess(proc.args, proc.wait(timeout=120), "", err)


@pytest.mark.parametrize("args", [("designs", "show", "eyeriss_like"), ("designs", "list"),
                                  ("designs", "show", "nvdla_like", "--json"),
                                  ("profile", "--model", "digits_cnn")])
def test_a_closed_pipe_ends_quietly_without_a_traceback(args):
    done = _closed_pipe_run(*args)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 141


def test_really_piped_into_head_prints_the_first_line_and_no_traceback():
    done = subprocess.run(f"{sys.executable} -m dse designs show eyeriss_like | head -n 1",
                          shell=True, capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("eyeriss_like") and len(done.stdout.splitlines()) == 1
    assert "Traceback" not in done.stderr


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_option_with_a_default_shows_it_in_help():
    missing = []
    for name, command in _commands().items():
        text = " ".join(command.format_help().split())
        for action in command._actions:
            default = action.default
            if (not action.option_strings or default is None or default is False
                    or default == [] or default == argparse.SUPPRESS or action.help == argparse.SUPPRESS):
                continue
            if "default" not in (action.help or "") or "default" not in text:
                missing.append(f"{name} {action.option_strings[0]}")
    assert not missing


def test_design_variants_have_one_name_everywhere():
    for name in ("sweep", "compare", "designs"):
        flags = {o for a in _commands()[name]._actions for o in a.option_strings}
        assert "--design-variant" in flags, name
    assert "--model-variant" in {o for a in _commands()["compare"]._actions
                                 for o in a.option_strings}


def test_old_flag_spelling_still_works_with_one_warning_line():
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dse", "designs", "show", "nvdla_like",
                               "--json", *args], capture_output=True, text=True, timeout=120)

    old, new = run("--variant", "pe_y=4"), run("--design-variant", "pe_y=4")
    assert old.returncode == new.returncode == 0
    assert json.loads(old.stdout) == json.loads(new.stdout)
    lines = old.stderr.strip().splitlines()
    assert len(lines) == 1 and "--variant is deprecated; use --design-variant" in lines[0]
    assert new.stderr.strip() == ""


@pytest.mark.parametrize("args", [
    ("designs", "list"), ("designs", "show", "eyeriss_like"),
    ("designs", "show", "simple_output_stationary"), ("profile", "--model", "cifar_resnet20"),
    ("map", "--arch", "eyeriss_like", "--problem",
     "layer_shapes/digits_cnn/01_features.2.yaml", "--budget", "40", "--workers", "1"),
])
def test_default_output_fits_100_columns(args, capsys):
    """What a command prints by default (map's Timeloop-style nest aside: it is Timeloop's
    map.txt, byte for byte) wraps at 100 columns."""
    from dse.cli import main

    assert main(list(args)) == 0
    out = capsys.readouterr().out
    if args[0] == "map":
        out = out[out.index("\nbest of"):]
    wide = [line for line in out.splitlines() if len(line) > 100]
    assert not wide, wide[:2]


def test_fault_counts_have_one_name_per_meaning():
    """Per site class: --faults-per-class wherever the campaign is per design (resilience,
    sweep, compare); a total over the network: inject's --n-faults."""
    flags = {name: {o for a in cmd._actions for o in a.option_strings if a.help != argparse.SUPPRESS}
             for name, cmd in _commands().items()}
    for name in ("resilience", "sweep", "compare"):
        assert "--faults-per-class" in flags[name] and "--n-faults" not in flags[name], name
    assert "--n-faults" in flags["inject"] and "--faults-per-class" not in flags["inject"]
    assert "total" in _commands()["inject"].format_help()


def test_results_into_a_closed_pipe_ends_quietly(tmp_path):
    made = subprocess.run([sys.executable, "-m", "dse", "sweep", "--arch", "simple_output_stationary",
                           "--model", "digits_cnn", "--no-resilience", "--budget", "100",
                           "--out", str(tmp_path), "--no-report", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    for table in ("network", "results"):
        done = _closed_pipe_run("results", "--db", str(tmp_path / "sweep.sqlite"), "--table",
                                table)
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
        assert done.returncode == 141

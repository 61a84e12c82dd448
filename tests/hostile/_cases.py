"""The hostile-input corpus: every case must end in exit status 2 with one line on stderr, no
traceback, and every file that existed before (a sweep store among them) byte-identical after.

A case is ``(id, argv, files)``: ``{d}`` in argv and in file contents is the case's own temporary
folder (also the working directory); ``files`` are written there before the run, on top of the
fixture's standard furniture (see :func:`furnish`).
"""

from __future__ import annotations

import pickle
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DESIGN = (REPO / "designs" / "eyeriss_like" / "design.yaml").read_text()
PROBLEM = (REPO / "layer_shapes" / "digits_cnn" / "01_features.2.yaml").read_text()
LONG = "a" * 3000


class _Evil:
    """A pickle that would create ``{d}/pwned`` if anything ever unpickled it unsafely."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        import os

        return (os.mkdir, (self.target,))


def evil_pickle(d: Path) -> bytes:
    return pickle.dumps(_Evil(str(d / "pwned")))


def design(**subs: str) -> str:
    text = DESIGN
    for old, new in subs.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def problem(old: str, new: str) -> str:
    assert old in PROBLEM, old
    return PROBLEM.replace(old, new, 1)


P = "layer_shapes/digits_cnn/01_features.2.yaml"
PROB = str(REPO / P)
MAP = ["map", "--arch", "eyeriss_like", "--problem", PROB, "--time-limit", "1"]
DES = ["designs", "show", "eyeriss_like"]
INJ = ["inject", "--model", "digits_cnn", "--n-faults", "4", "--images", "8"]
RES = ["resilience", "--arch", "eyeriss_like", "--model", "digits_cnn", "--layer", "features.2",
       "--faults-per-class", "4", "--images", "8"]
SW = ["sweep", "--arch", "eyeriss_like", "--model", "digits_cnn", "--no-resilience",
      "--budget", "10", "--quiet", "--no-report", "--out", "{d}/sw"]
RESULTS = ["results", "--db", "{d}/store/sweep.sqlite"]

CASES: list[tuple[str, list[str], dict[str, str | bytes]]] = []


def case(cid: str, argv: list[str], files: dict[str, str | bytes] | None = None) -> None:
    CASES.append((cid, argv, files or {}))


# ------------------------------------------------------------- output paths that cannot be written
for where, path in (("under-file", "{d}/file.txt/x"), ("existing-dir", "{d}/adir")):
    case(f"designs-native-out-{where}", ["designs", "native", "eyeriss_like", "-o", path])
    case(f"results-csv-{where}", [*RESULTS, "--csv", path])
    case(f"results-parquet-{where}", [*RESULTS, "--parquet", path])
case("designs-ert-out-under-file", ["designs", "ert", "eyeriss_like", "-o", "{d}/file.txt/p"])
case("designs-ert-prefix-existing-dir", ["designs", "ert", "eyeriss_like", "-o", "{d}/edir/p"],
     {"edir/p.ERT.yaml/keep.txt": "x"})
case("map-out-existing-file", [*MAP, "--out", "{d}/file.txt"])
case("map-out-under-file", [*MAP, "--out", "{d}/file.txt/sub"])
case("map-out-mapyaml-is-dir", [*MAP, "--out", "{d}/mo"], {"mo/map.yaml/keep.txt": "x"})
case("inject-out-existing-file", [*INJ, "--out", "{d}/file.txt"])
case("inject-out-under-file", [*INJ, "--out", "{d}/file.txt/x"])
case("results-report-existing-file", [*RESULTS, "--report", "{d}/file.txt"])
case("results-report-under-file", [*RESULTS, "--report", "{d}/file.txt/r"])
case("sweep-out-store-is-dir", [*SW[:-1], "{d}/storedir"], {"storedir/sweep.sqlite/k": "x"})
case("sweep-out-existing-file", [*SW[:-1], "{d}/file.txt"])
case("sweep-out-under-file", [*SW[:-1], "{d}/file.txt/s"])
case("profile-out-existing-file", ["profile", "--model", "digits_cnn", "--out", "{d}/file.txt"])
case("profile-out-under-file", ["profile", "--model", "digits_cnn", "--out", "{d}/file.txt/x"])
case("sweep-out-store-not-sqlite", [*SW[:-1], "{d}/junk"], {"junk/sweep.sqlite": "not a db\n"})

# -------------------------------------------------------------------------- designs: bad numbers
for key, bad in (("width: 64", "width: .nan"), ("width: 64", "width: .inf"),
                 ("width: 64", "width: -64"), ("width: 64", "width: 0"),
                 ("depth: 16384", "depth: .nan"), ("depth: 16384", "depth: -1"),
                 ("depth: 16384", "depth: many"), ("word_bits: 8", "word_bits: .nan"),
                 ("banks: 32", "banks: .inf"), ("read_bandwidth: 16", "read_bandwidth: .nan"),
                 ("read_bandwidth: 16", "read_bandwidth: -16"), ("mesh_x: 14", "mesh_x: .nan"),
                 ("mesh_x: 14", "mesh_x: 0"), ("mesh_y: 12", "mesh_y: -12"),
                 ("keep: [Inputs]", "keep: [Weightz]"), ("bypass: [Weights]", "bypass: [Psums]"),
                 ("keep: [Inputs, Outputs]", "keep: 42"), ("dse_design: 1", "dse_design: 2"),
                 ("levels:", "levels: 7\nxlevels:"), ("name: eyeriss_like", "name: [1, 2]")):
    cid = f"design-{key.split(':')[0]}-{bad.split(': ')[1]}".replace(".", "").replace(" ", "")
    case(cid, ["designs", "show", "{d}/bad/design.yaml"], {"bad/design.yaml": design(**{key: bad})})
case("design-not-yaml", ["designs", "show", "{d}/bad/design.yaml"], {"bad/design.yaml": "a: [\n"})
case("design-empty", ["designs", "show", "{d}/bad/design.yaml"], {"bad/design.yaml": ""})
case("design-binary", ["designs", "show", "{d}/bad/design.yaml"],
     {"bad/design.yaml": b"\x00\xff\xfe" * 50})
case("design-python-tag", ["designs", "show", "{d}/bad/design.yaml"],
     {"bad/design.yaml": "!!python/object/apply:os.system ['true']\n"})
case("design-long-name", ["designs", "show", LONG])
case("design-unknown-name", ["designs", "show", "eyeriss_lik"])
case("design-dir-without-design", ["designs", "show", "{d}/adir"])
for var in ("pe_x=nan", "pe_x=inf", "pe_x=-3", "pe_x=0", "pe_x=2.5", "pe_y=abc", "word_bits=0",
            "word_bits=nan", "depth.shared_glb=nan", "depth.shared_glb=-5", "depth.nolevel=4",
            "technology=nan", "technology=-7nm", "nokey=3", "=3", "pe_x"):
    case(f"designs-variant-{var}", [*DES, "--design-variant", var])
case("designs-native-no-output", ["designs", "native", "eyeriss_like"])

# --------------------------------------------------------------------------------- map values
for flag, value in (("--time-limit", "nan"), ("--time-limit", "-1"), ("--time-limit", "0"),
                    ("--time-limit", "inf"), ("--victory", "-5"), ("--victory", "0"),
                    ("--victory", "x"), ("--seed", "-1"), ("--seed", "1.5"), ("--workers", "0"),
                    ("--workers", "-2"), ("--objective", "energy=nan"),
                    ("--objective", "energy=-1"), ("--objective", "energy=inf"),
                    ("--objective", "energy=0,delay=0"), ("--objective", "power=1"),
                    ("--objective", "max:energy=1"), ("--objective", "energy=x"),
                    ("--search", "bogus")):
    case(f"map{flag}={value}", [*MAP, flag, value])
case("map-long-arch", ["map", "--arch", LONG, "--problem", PROB])
case("map-missing-problem", ["map", "--arch", "eyeriss_like", "--problem", "{d}/nope.yaml"])
for cid, (old, new) in {"nan-dim": ("C: 16", "C: .nan"), "neg-dim": ("C: 16", "C: -16"),
                        "zero-dim": ("M: 32", "M: 0"), "str-dim": ("M: 32", "M: lots"),
                        "unknown-dim": ("C: 16", "Z: 16"), "nan-stride": ("Wstride: 1,", "Wstride: .nan,"),
                        "bad-projection": ("- - [C]", "- - [Q9]"), "huge-dim": ("P: 8", "P: 1e400"),
                        "no-instance": ("instance:", "instanc:")}.items():
    case(f"problem-{cid}", ["map", "--arch", "eyeriss_like", "--problem", "{d}/p.yaml"],
         {"p.yaml": problem(old, new)})
case("problem-empty", ["map", "--arch", "eyeriss_like", "--problem", "{d}/p.yaml"], {"p.yaml": ""})
case("problem-list", ["map", "--arch", "eyeriss_like", "--problem", "{d}/p.yaml"], {"p.yaml": "[1]"})
case("evaluate-bad-mapping", ["evaluate", "--arch", "eyeriss_like", "--problem", PROB,
                              "--mapping", "{d}/m.yaml"], {"m.yaml": "mapping: [{target: Nope}]"})
case("evaluate-mapping-not-yaml", ["evaluate", "--arch", "eyeriss_like", "--problem", PROB,
                                   "--mapping", "{d}/m.yaml"], {"m.yaml": "mapping: [\n"})
case("evaluate-mapping-nan-factor", ["evaluate", "--arch", "eyeriss_like", "--problem", PROB,
                                     "--mapping", "{d}/m.yaml"],
     {"m.yaml": "mapping:\n- target: DRAM\n  type: temporal\n  factors: C=.nan\n"})

# ------------------------------------------------------------------------------- inject values
for flag, value in (("--n-faults", "-5"), ("--n-faults", "0"), ("--seed", "-1"),
                    ("--margin", "nan"), ("--margin", "0"), ("--margin", "1.5"),
                    ("--confidence", "1"), ("--confidence", "-0.5"), ("--images", "0"),
                    ("--workers", "0"), ("--n-bits", "0"), ("--num-classes", "0"),
                    ("--bits", "99"), ("--bits", "a-b"), ("--fault", "melt")):
    case(f"inject{flag}={value}", [*INJ, flag, value])
case("inject-model-os-getpid", ["inject", "--model", "os:getpid", "--checkpoint", "{d}/w.pt",
                                "--dataset", "digits", "--n-faults", "2"], {"w.pt": b"x"})
case("inject-malicious-checkpoint", ["inject", "--model", "digits_cnn", "--checkpoint",
                                     "{d}/evil.pt", "--dataset", "digits", "--n-faults", "2",
                                     "--out", "{d}/inj"], {"evil.pt": "EVIL"})
case("inject-garbage-checkpoint", ["inject", "--model", "digits_cnn", "--checkpoint",
                                   "{d}/w.pt", "--dataset", "digits", "--n-faults", "2",
                                   "--out", "{d}/inj"], {"w.pt": b"\x80\x04garbage"})
case("inject-missing-checkpoint", ["inject", "--model", "digits_cnn", "--checkpoint",
                                   "{d}/none.pt", "--dataset", "digits", "--n-faults", "2",
                                   "--out", "{d}/inj"])
for cid, text in {"header-only-wrong": "a,b,c\n1,2,3\n",
                  "empty": "",
                  "bad-layer": "layer,tensor_index,bit\nnope,0,0\n",
                  "nan-bit": "layer,tensor_index,bit\nfeatures.0,0,nan\n",
                  "neg-index": "layer,tensor_index,bit\nfeatures.0,-1,0\n",
                  "binary": "\x00\x01\x02\n"}.items():
    case(f"inject-faults-csv-{cid}", [*INJ, "--faults", "{d}/f.csv", "--out", "{d}/inj"],
         {"f.csv": text})

# --------------------------------------------------------------------------- resilience values
for flag, value in (("--fit-per-mbit", "nan"), ("--fit-per-mbit", "-5"), ("--fit-per-mbit", "0"),
                    ("--seed", "-1"), ("--images", "0"), ("--faults-per-class", "-1"),
                    ("--confidence", "nan"), ("--map-evals", "0")):
    case(f"resilience{flag}={value}", [*RES, flag, value])
case("resilience-unknown-layer", [*RES[:6], "--layer", "nope.9", *RES[8:]])

# ------------------------------------------------------------------------------- sweep values
for flag, value in (("--search", "bogus"), ("--seed", "-1"), ("--time-limit", "nan"),
                    ("--budget", "0"), ("--fit-per-mbit", "nan"), ("--fit-per-mbit", "-1000"),
                    ("--margin", "2"), ("--top-k", "-1"), ("--workers", "0"),
                    ("--images", "-3"), ("--grid", "pe_x="), ("--grid", "pe_x"),
                    ("--design-variant", "pe_x=nan"), ("--design-variant", "pe_x=-1"),
                    ("--pe", "0x4"),
                    ("--word-bits", "0"), ("--depth", "shared_glb=nan"), ("--input", "1x1x-8x8"),
                    ("--input", "1x1x100000x100000"), ("--name", LONG), ("--arch", LONG),
                    ("--executor", "threads"), ("--backend", "magic"), ("--name", "")):
    case(f"sweep{flag}={value[:20]}", [*SW, flag, value])
case("sweep-unknown-model", [*SW, "--model", "resnet9999"])
case("sweep-model-os-getpid", [*SW, "--model", "os:getpid", "--input", "1x3x8x8"])
case("sweep-dataset-mismatched-labels", [*SW[:-7], "--model", "digits_cnn", "--checkpoint",
                                         "{d}/w.pt", "--dataset", "{d}/d.npz", "--quiet",
                                         "--no-report", "--budget", "10", "--out", "{d}/sw"],
     {"d.npz": "NPZ_MISMATCH", "w.pt": "DIGITS_WEIGHTS"})
case("sweep-dataset-garbage", [*SW[:-7], "--model", "digits_cnn", "--checkpoint", "{d}/w.pt",
                               "--dataset", "{d}/d.npz", "--quiet", "--no-report",
                               "--budget", "10", "--out", "{d}/sw"],
     {"d.npz": b"PK\x03\x04garbage", "w.pt": "DIGITS_WEIGHTS"})
case("sweep-malicious-dataset", [*SW[:-7], "--model", "digits_cnn", "--checkpoint", "{d}/w.pt",
                                 "--dataset", "{d}/d.pt", "--quiet", "--no-report",
                                 "--budget", "10", "--out", "{d}/sw"],
     {"d.pt": "EVIL", "w.pt": "DIGITS_WEIGHTS"})
case("sweep-malicious-checkpoint", [*SW[:-7], "--model", "digits_cnn", "--checkpoint",
                                    "{d}/w.pt", "--dataset", "{d}/d.npz", "--quiet",
                                    "--no-report", "--budget", "10", "--out", "{d}/sw"],
     {"d.npz": "NPZ_OK", "w.pt": "EVIL"})
EXPERIMENTS = {
    "time-limit-nan": "mapper: {time_limit: .nan}",
    "fit-nan": "resilience: {fit_per_mbit: .nan}",
    "fit-negative": "resilience: {fit_per_mbit: -1000}",
    "margin-inf": "resilience: {margin: .inf}",
    "faults-bool": "resilience: {faults: yes}",
    "images-str": "resilience: {images: many}",
    "seed-neg": "seed: -1",
    "seed-float": "seed: 1.5",
    "workers-nan": "workers: .nan",
    "search-bogus": "mapper: {search: bogus}",
    "unknown-key": "colour: blue",
    "unknown-mapper-key": "mapper: {speed: 11}",
    "designs-unknown": "designs: [eyeriss_lik]",
    "designs-empty": "designs: []",
    "models-empty": "models: []",
    "model-no-name": "models: [{input: 1x1x8x8}]",
    "model-bad-input": "models: [{name: digits_cnn, input: 1xqx8}]",
    "grid-empty-list": "grid: {pe_x: []}",
    "grid-null": "grid: {pe_x: [null]}",
    "variant-nan": "variants: [{pe_x: .nan}]",
    "variant-unknown-level": "variants: [{depth.nolevel: 4}]",
    "not-mapping": "- a\n- b",
    "syntax": "mapper: {time_limit: [",
    "python-tag": "seed: !!python/object/apply:os.getpid []",
    "name-list": "name: [a, b]",
    "executor-bogus": "executor: threads",
    "top-k-neg": "resilience: {top_k: -2}",
    "budget-zero": "mapper: {budget: 0}",
}
for cid, text in EXPERIMENTS.items():
    body = text if cid in ("not-mapping", "syntax") else (
        f"designs: [eyeriss_like]\nmodels: [digits_cnn]\nresilience: {{enabled: false}}\n{text}"
        if not text.startswith(("resilience", "designs", "models")) else
        f"designs: [eyeriss_like]\nmodels: [digits_cnn]\n{text}")
    case(f"experiment-{cid}", ["sweep", "--config", "{d}/e.yaml", "--quiet", "--no-report",
                               "--out", "{d}/sw"], {"e.yaml": body})

# -------------------------------------------------------------------------- results (read only)
case("results-empty-file", ["results", "--db", "{d}/empty.sqlite"], {"empty.sqlite": ""})
case("results-not-sqlite", ["results", "--db", "{d}/file.txt"])
case("results-missing", ["results", "--db", "{d}/none.sqlite"])
case("results-db-is-dir", ["results", "--db", "{d}/adir"])
case("results-other-sqlite", ["results", "--db", "{d}/other.sqlite"], {"other.sqlite": "OTHER_DB"})
case("results-truncated", ["results", "--db", "{d}/trunc.sqlite"], {"trunc.sqlite": "TRUNCATED"})
case("results-unknown-sweep", [*RESULTS, "--sweep", "no_such_sweep"])
for cid, sql in {"attach": "ATTACH DATABASE '{d}/x.db' AS e",
                 "delete": "DELETE FROM tasks", "drop": "DROP TABLE tasks",
                 "insert": "INSERT INTO meta VALUES ('a', 'b')",
                 "update": "UPDATE meta SET value = 'x'",
                 "pragma-write": "PRAGMA journal_mode = DELETE",
                 "vacuum-into": "VACUUM INTO '{d}/copy.db'",
                 "create": "CREATE TABLE t (a)", "two-statements": "SELECT 1; DELETE FROM meta",
                 "syntax": "SELEC 1", "unknown-table": "SELECT * FROM nope",
                 "load-extension": "SELECT load_extension('{d}/x.so')",
                 "create-temp": "CREATE TEMP TABLE t (a)",
                 "writefile": "SELECT writefile('{d}/w.txt', 'x')"}.items():
    case(f"results-query-{cid}", [*RESULTS, "--query", sql])

# --------------------------------------------------------------------------------- profile
for value in ("1x1x100000x100000", "0x1x8x8", "1x-1x8x8", "axb", "", "1x1x8x8x" + "9" * 30):
    case(f"profile-input-{value[:24] or 'empty'}", ["profile", "--model", "digits_cnn",
                                                    "--input", value, "--out", "{d}/ls"])
case("profile-model-os-getpid", ["profile", "--model", "os:getpid", "--input", "1x3x8x8",
                                 "--out", "{d}/ls"])
case("profile-model-not-importable", ["profile", "--model", "nosuchmod:f", "--input", "1x3",
                                      "--out", "{d}/ls"])
case("profile-model-unknown", ["profile", "--model", "resnet9999", "--out", "{d}/ls"])
case("profile-bad-option", ["profile", "--model", "digits_cnn", "--option", "x", "--out", "{d}/ls"])
case("compare-unknown-model", ["compare", "--model", "nosuch", "--model-variant", "a", "b",
                               "--out", "{d}/cmp", "--quiet"])
case("sweep-name-reused-with-another-config", [*SW[:-1], "{d}/store", "--name", "s1"])

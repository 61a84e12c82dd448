"""What every figure dse shows means, and its unit: one definition per column name.

Tables, plot axes and the HTML pages use these names, so "SDC per fault" means the same thing
in ``dse sweep``, ``dse compare``, ``dse results`` and the store; the HTML glossary prints them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    name: str
    unit: str
    definition: str


TERMS: tuple[Term, ...] = (
    Term("energy", "pJ, nJ, uJ, mJ or J: one unit per column, named in its header",
         "Energy of one inference of the network (or layer): every buffer access x the design's "
         "energy per action (Accelergy-style ERT) + MACs x MAC energy, summed over layers x their "
         "repeat count."),
    Term("cycles", "clock cycles",
         "Cycles of one inference: compute cycles slowed by the tightest bandwidth at any level, "
         "summed over layers x their repeat count."),
    Term("EDP", "J x cycles",
         "Energy-delay product: energy in joules x cycles (of the whole network for network rows; "
         "of the layer instance for layer rows)."),
    Term("util", "%", "MAC utilization: ideal cycles / cycles, cycle-weighted over layers."),
    Term("GOPS @1GHz", "10^9 operations per second at a 1 GHz clock",
         "2 operations (multiply + add) per MAC x MACs / cycles; integer MACs, so OPS, not FLOPS."),
    Term("area", "mm2", "On-chip area: every buffer instance and MAC unit at the design's "
         "technology node (Accelergy-style area tables); DRAM is off chip and counts 0."),
    Term("technology", "nm", "Process node of the design point's energy and area tables; "
         "designs at different nodes are not comparable on energy without scaling."),
    Term("SDC per fault", "probability (0-1), with its interval [lo, hi]",
         "P(top-1 changes | one single-bit fault strikes a bit of the layer's on-chip buffers), "
         "faults placed in proportion to each buffer's exposure (bits x residency time) and "
         "followed through the mapping to the outputs they corrupt; the sampling unit is the "
         "fault. Network rows weight layers by the cycles they run (a fault at a uniformly random "
         "time hits the layer running then)."),
    Term("SDC FIT", "failures in 10^9 device-hours",
         "Rate of silent data corruptions: SDC per fault x raw FIT per Mbit x exposed Mbit. The "
         "raw FIT/Mbit used is printed beside it (settings)."),
    Term("raw FIT/Mbit", "failures in 10^9 hours per 10^6 bits",
         "Assumed raw soft-error rate of one megabit of on-chip storage."),
    Term("SDC per inference", "probability (0-1)",
         "P(one inference's top-1 changes) in the field: SDC FIT x (network cycles / clock) / "
         "1e9 h, at the raw FIT/Mbit and clock of the settings (no fault is assumed present)."),
    Term("per (fault, image) pair", "share (0-1)",
         "`dse inject` / `snn-inject`: of the inferences run with one fault present (each fault "
         "x each image), the share whose outcome is the class; the interval takes the fault, "
         "not the pair, as the sampling unit."),
    Term("format", "", "Number format the faults corrupt: int (the design's fixed point at "
         "each level's own word width), or one format everywhere: fp32, fp16, bf16 or intN (N-bit "
         "fixed point, e.g. int8). The same bit flip costs orders of magnitude more in a "
         "floating-point exponent than in fixed point, so the format is part of every SDC figure."),
    Term("interval", "", "Two-sided confidence interval of a rate (Wilson score), at the "
         "confidence level stated in the settings; printed [lo, hi] (never +-, they are "
         "asymmetric near 0)."),
)

BY_NAME = {t.name: t for t in TERMS}

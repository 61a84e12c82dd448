"""Exposure of each fault-site class of a mapping: how many bit-steps of storage it holds, and so
its share of the raw fault rate (FIdelity: a buffer's exposure = bits x residency time)."""

from __future__ import annotations

from dataclasses import dataclass

from dse.arch.spec import Arch
from dse.resilience.mapped.sites import MAC_SITE, Nest


@dataclass(frozen=True)
class SiteExposure:
    """One (level, dataspace) fault site class: its share of the fault rate and its size."""

    level: int
    level_name: str
    dataspace: str
    bits: int
    instances: int
    words: int
    exposure: float  # bits × instances × words × steps (bit-steps)



def exposures(
    nest: Nest, arch: Arch, *, include_backing: bool = False, include_mac: bool = True,
    word_bits: int | None = None,
) -> list[SiteExposure]:
    """Exposure of every (level, kept dataspace): bits × utilized instances × tile words × steps.

    The outermost level (DRAM) is left out unless ``include_backing``: it is off-chip, usually
    ECC-protected, and its whole-tensor residency would swamp every on-chip buffer. ``word_bits``
    stores every word in one width (a floating-point format) instead of each level's own.
    """
    sites = []
    for i, lm in enumerate(nest.mapping.levels):
        if (i == 0 and not include_backing) or arch.levels[i].dummy:
            continue
        bits = word_bits or arch.levels[i].word_bits
        for ds in sorted(lm.keep):
            words = nest.tile_words(i, ds)
            inst = nest.instances(i)
            sites.append(
                SiteExposure(
                    i, lm.level, ds, bits, inst, words, float(bits) * inst * words * nest.steps
                )
            )
    if include_mac:
        bits = word_bits or 2 * arch.compute.word_bits  # a double-width product register
        sites.append(
            SiteExposure(
                nest.nlev,
                arch.compute.name,
                MAC_SITE,
                bits,
                nest.pes,
                1,
                float(bits) * nest.pes * nest.steps,
            )
        )
    return sites

"""Reports of a sweep: text tables, matplotlib figures (PNG + SVG) and one HTML page."""

from dse.report.analysis import NetworkPoint, network_points, pareto_front
from dse.report.html import write_figures, write_report
from dse.report.tables import network_rows, text_table

__all__ = ["NetworkPoint", "network_points", "network_rows", "pareto_front", "text_table",
           "write_figures", "write_report"]

"""Plots and the self-contained HTML report."""

from au.report.html import Report

__all__ = ["Report"]

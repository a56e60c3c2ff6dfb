"""Evaluating agents: summary statistics with confidence intervals, and the plateau test."""

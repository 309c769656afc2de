"""Measuring the terminal's own face and liveness pipeline on labelled image folders."""

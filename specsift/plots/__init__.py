"""Figures (matplotlib, Agg backend): reconstructions, galleries of outliers."""

"""Refusal classifiers behind one protocol."""

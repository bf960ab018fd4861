"""Refusal classifiers behind one protocol (classifiers.base.Classifier).

`classifiers.registry.get()` returns the default classifier; labels are refusal | partial | compliance with
p_refusal = P(refusal or partial). Heavy dependencies (scikit-learn, torch) load only when a classifier is used.
"""

from classifiers.base import LABELS, Classifier, Prediction

__all__ = ["LABELS", "Classifier", "Prediction"]

"""Training data for the refusal classifiers (generator and fragments written for this project)."""

"""probe: survey and refusal-probe large language models at fleet scale."""

__version__ = "0.1.0"

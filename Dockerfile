FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CARETRACK_DATA_DIR=/var/lib/caretrack

WORKDIR /app
COPY . .
RUN pip install . \
    && useradd --system --create-home --home-dir /var/lib/caretrack caretrack

USER caretrack
WORKDIR /var/lib/caretrack
EXPOSE 8000
# Migrations first, then hypercorn; set CARETRACK_DATABASE_URL, CARETRACK_REDIS_URL,
# CARETRACK_SECRET_KEY, CARETRACK_PHI_KEYS and CARETRACK_BASE_URL in production.
CMD ["caretrack", "serve", "--migrate", "--host", "0.0.0.0", "--port", "8000"]

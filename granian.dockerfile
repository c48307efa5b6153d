# Both apps in one container under granian, the maintained alternative now that
# Unit is archived upstream. ./start.sh --server granian builds and runs it; by hand:
#
#   docker build -f granian.dockerfile -t flask-vs-fastapi:granian .
#   docker run --rm -p 127.0.0.1:8080:8080 -p 127.0.0.1:8081:8081 flask-vs-fastapi:granian
#
# It builds on Python's image only (Dockerfile on Unit's only). The base is a build
# argument, pinned to a tag.
ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE}
# Marks every layer of this project's builds: start.sh removes those a failed build leaves.
LABEL org.opencontainers.image.title=flask-vs-fastapi
WORKDIR /app
ENV VENV=/venv PATH=/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# PostgreSQL's server from Debian's packages (postgresql-15): up.sh makes a cluster of its
# own at each start, before the apps (serve/postgres.py), so the package makes none.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && sed -ri 's/^#?\s*(create_main_cluster)\s*=.*$/\1 = false/' \
        /etc/postgresql-common/createcluster.conf \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY requirements.txt ./
RUN python3 -m venv /venv \
    && /venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt \
    && useradd --system --no-create-home unit
# What .dockerignore lets in.
COPY . ./
# Everything runs as this unprivileged user, PostgreSQL included: with no root to switch
# users, it runs as whoever runs up.sh.
USER unit
ENV SERVER=granian HOST=0.0.0.0
EXPOSE 8080 8081
# Both apps answer / and /status (serve/readiness.py).
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-m", "serve.readiness"]
STOPSIGNAL SIGTERM
CMD ["./up.sh"]

# Both apps in one container under NGINX Unit: the default image. ./start.sh builds and
# runs it; by hand:
#
#   docker build -t flask-vs-fastapi:unit .
#   docker run --rm -p 127.0.0.1:8080:8080 -p 127.0.0.1:8081:8081 flask-vs-fastapi:unit
#
# It builds on Unit's image only (granian.dockerfile on Python's only), so that
# any builder, the classic one included, needs no other base image. The base is
# a build argument, pinned to a tag: the last Unit images published are 1.34.2
# for Python 3.12 and 3.13 (there is none for 3.11).
ARG UNIT_IMAGE=unit:1.34.2-python3.12
FROM ${UNIT_IMAGE}
# Marks every layer of this project's builds: start.sh removes those a failed build leaves.
LABEL org.opencontainers.image.title=flask-vs-fastapi
WORKDIR /app
ENV VENV=/venv PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# PostgreSQL's server from Debian's packages (postgresql-15): up.sh makes a cluster of its
# own at each start, before the apps (serve/postgres.py), so the package makes none.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && sed -ri 's/^#?\s*(create_main_cluster)\s*=.*$/\1 = false/' \
        /etc/postgresql-common/createcluster.conf \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
# A virtualenv made by the image's own python3, the one Unit's Python module links (up.sh
# checks it): it becomes the apps' "home", and no distribution's pip policy (PEP 668)
# is in the way.
COPY requirements.txt ./
RUN python3 -m venv /venv \
    && /venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt
# What .dockerignore lets in.
COPY . ./
# Unit's main process runs as root so that it can run the apps as its unprivileged
# "unit" user (UNIT_USER); its control socket stays inside the container. PostgreSQL
# runs as the package's unprivileged "postgres" user (POSTGRES_USER).
ENV SERVER=unit HOST=0.0.0.0 UNIT_USER=unit
EXPOSE 8080 8081
# Both apps answer / and /status (serve/readiness.py, on the image's python3).
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-m", "serve.readiness"]
STOPSIGNAL SIGTERM
# The image's own entrypoint would configure Unit from /docker-entrypoint.d; up.sh does that.
ENTRYPOINT []
CMD ["./up.sh"]

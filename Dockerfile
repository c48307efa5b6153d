# Both apps in one container, under NGINX Unit (target "unit", the default) or
# under granian (target "granian"), the maintained alternative now that Unit
# is archived upstream. ./start.sh builds and runs it; by hand:
#
#   docker build -t flask-vs-fastapi:unit .
#   docker build --target granian -t flask-vs-fastapi:granian .
#   docker run --rm -p 127.0.0.1:8080:8080 -p 127.0.0.1:8081:8081 flask-vs-fastapi:unit
#
# The base images are build arguments, pinned to tags: the last Unit images
# published are 1.34.2 for Python 3.12 and 3.13 (there is none for 3.11).
ARG UNIT_IMAGE=unit:1.34.2-python3.12
ARG PYTHON_IMAGE=python:3.12-slim

# granian comes first, so that building it needs no Unit image, even with the
# classic builder, which builds every stage up to the target.
FROM ${PYTHON_IMAGE} AS granian
WORKDIR /app
ENV PATH=/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY requirements.txt ./
RUN python3 -m venv /venv \
    && pip install --no-cache-dir --disable-pip-version-check -r requirements.txt \
    && useradd --system --no-create-home unit
COPY flask-wsgi.py fastapi-asgi.py metrics.py workloads.py unit_conf.py conf.json up.sh ./
USER unit
ENV SERVER=granian HOST=0.0.0.0
EXPOSE 8080 8081
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 CMD \
    python3 -c "import os, urllib.request as u; [u.urlopen(f'http://127.0.0.1:{os.environ.get(v, d)}/', timeout=4) for v, d in (('FLASK_PORT', 8080), ('FASTAPI_PORT', 8081))]"
STOPSIGNAL SIGTERM
CMD ["./up.sh"]

# Unit's main process runs as root so that it can run the apps as its
# unprivileged "unit" user; its control socket stays inside the container.
FROM ${UNIT_IMAGE} AS unit
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY requirements.txt ./
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.txt
COPY flask-wsgi.py fastapi-asgi.py metrics.py workloads.py unit_conf.py conf.json up.sh ./
ENV SERVER=unit HOST=0.0.0.0
EXPOSE 8080 8081
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 CMD \
    python3 -c "import os, urllib.request as u; [u.urlopen(f'http://127.0.0.1:{os.environ.get(v, d)}/', timeout=4) for v, d in (('FLASK_PORT', 8080), ('FASTAPI_PORT', 8081))]"
STOPSIGNAL SIGTERM
# The image's own entrypoint would configure Unit from /docker-entrypoint.d; up.sh does that.
ENTRYPOINT []
CMD ["./up.sh"]

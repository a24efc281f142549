# The service alone: `reservation serve` on the real stores (REDIS_URL, MONGODB_URI), no demo or
# dev extras (no fakeredis, no nx-27017), as a non-root user. compose.yaml runs it; the Stripe
# simulator ships in the same wheel and runs from this image too (`reservation stripe-sim`).
# Not built on the machine this was written on (no container daemon there): README, *Containers*.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY reservation reservation
COPY persistence persistence
COPY domain domain
COPY harness harness
COPY stripesim stripesim
# Wheels of the package and of every dependency, so the runtime stage needs no build tools.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RESERVATION_LOG_FORMAT=json
RUN useradd --system --uid 10001 --create-home --home-dir /home/reservation reservation
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels stripe-reservation \
    && rm -rf /wheels
USER 10001:10001
WORKDIR /home/reservation
EXPOSE 8000
# One worker per container (each container is one process to scrape for /metrics); scale with
# more containers behind the proxy. SIGTERM stops it gracefully.
CMD ["reservation", "serve", "--host", "0.0.0.0", "--port", "8000"]

# syntax=docker/dockerfile:1.7
#
# The praxis container image: one binary, `praxis serve` by default.
#
#   docker build -t praxis .
#   docker run --rm -p 8080:8080 -v praxis-data:/data praxis
#
# Embedded by default (SQLite under the /data volume). Point it at PostgreSQL, Redis and NATS
# with PRAXIS_DATABASE_URL, PRAXIS_REDIS_URL and PRAXIS_NATS_URL (and the secrets with
# PRAXIS_ADMIN_KEY_FILE / PRAXIS_JWT_SECRET_FILE) to run it scaled; `serve --only shortener`
# runs a subset of the systems. docs/operations.md ("Deploy") has the rest.
#
# RUST_VERSION must equal the channel of rust-toolchain.toml (scripts/check-deploy checks it);
# rust-toolchain.toml itself is kept out of the build context (.dockerignore) so rustup in the
# builder does not try to download the rustfmt and clippy components it lists.

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm

# --- build -------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder

# Nothing to install: the one TLS provider is ring (no C toolchain beyond the image's), and
# aws-lc-rs, which needed cmake, is banned from the graph (deny.toml).

WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo ./.cargo
COPY crates ./crates

# The registry and the target folder are BuildKit caches, so a rebuild after a source change
# compiles only the workspace crates. The binary is copied out of the cache in the same step,
# without its line tables (about 190 MB -> 48 MB; symbol names stay for backtraces).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p praxis \
 && install -D -m 0755 target/release/praxis /out/praxis \
 && strip --strip-debug /out/praxis

# --- run ---------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim

# ca-certificates: the OS trust store, for webhooks, SMTP, JWKS and TLS to managed engines.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 praxis \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin praxis \
 && install -d -o 10001 -g 10001 -m 0750 /data

COPY --from=builder /out/praxis /usr/local/bin/praxis

# Listen on every interface (the default, 127.0.0.1:8080, is unreachable from outside the
# container) and keep the data in the volume. These are PRAXIS_* environment variables, so they
# win over a praxis.toml (file < environment < flags): change them with `docker run -e` or the
# pod's env, not in the file.
ENV PRAXIS_LISTEN=0.0.0.0:8080 \
    PRAXIS_DATA_DIR=/data

USER 10001:10001
# The working directory holds no praxis.toml: mount one and name it with PRAXIS_CONFIG.
WORKDIR /
VOLUME ["/data"]
EXPOSE 8080

# No HEALTHCHECK: Kubernetes probes /healthz (alive) and /readyz (dependencies up).
# praxis handles SIGTERM itself (drains requests, flushes buffered work), so it runs as PID 1.
ENTRYPOINT ["praxis"]
CMD ["serve"]

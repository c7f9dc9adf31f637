# syntax=docker/dockerfile:1
#
# memshard: one image for every role (app, proxy, server, ...).
#
#   docker build -t memshard:0.1.0 .
#   docker run --rm -p 11211:11211 memshard:0.1.0 server
#
# Build stage: the Rust toolchain, a release build of the `memshard` binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit); the binary
# is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p memshard \
    && install -D -m 0755 target/release/memshard /out/memshard

# Final stage: the binary on a slim Debian of the same release (same glibc),
# running as a fixed non-root user, UID/GID 10001, which the Kubernetes
# manifests name in their securityContext.
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 memshard \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin memshard
COPY --from=build /out/memshard /usr/local/bin/memshard
USER 10001:10001
# app HTTP, memcache (proxy and server), proxy stats
EXPOSE 3000 11211 22222
ENTRYPOINT ["memshard"]
CMD ["--help"]

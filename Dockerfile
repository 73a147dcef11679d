# Multi-stage build of the onboard binaries: a full Rust toolchain to build, a slim Debian
# to run. One image carries the worker, the producer and the sandbox.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p onboard-worker -p onboard-producer -p onboard-sandbox

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 onboard
COPY --from=build /src/target/release/onboard-worker /src/target/release/onboard-producer /src/target/release/onboard-sandbox /usr/local/bin/
USER onboard
ENTRYPOINT ["onboard-worker"]

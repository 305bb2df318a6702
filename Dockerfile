# trainwatch in a container: a release build in a full Rust image, copied into a small
# Debian runtime. It runs `trainwatch serve` (the Discord bot) by default.
#
#   docker build -t trainwatch .
#   docker run --rm -e DISCORD_TOKEN -v "$PWD/config:/config:ro" -v trainwatch-state:/state \
#       trainwatch serve --config /config/trainwatch.toml --store /state/state.db
#
# The jobs run inside the container too: mount the training code and data, and install
# the job's own runtime (Python, CUDA libraries…) in an image derived from this one.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Every workspace member must be present for cargo to load the workspace.
COPY crates ./crates
COPY bench ./bench
COPY assets ./assets
COPY src ./src
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin trainwatch

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 trainwatch \
    && mkdir -p /state && chown trainwatch /state
COPY --from=build /src/target/release/trainwatch /usr/local/bin/trainwatch
USER trainwatch
WORKDIR /home/trainwatch
VOLUME ["/state"]
# tini reaps the shim processes trainwatch leaves holding jobs when it restarts.
ENTRYPOINT ["/usr/bin/tini", "--", "trainwatch"]
CMD ["serve", "--config", "/config/trainwatch.toml", "--store", "/state/state.db"]

# Builds the five service binaries and the jetsaga CLI once; compose builds this image once (as
# nats-provision) and runs each service from it with its own command (`jetsaga provision`
# provisions the streams as the NATS admin).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bins -p order-service -p payment-service -p stock-service -p voucher-service \
    -p points-service -p jetsaga-cli

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/order-service /src/target/release/payment-service \
     /src/target/release/stock-service /src/target/release/voucher-service \
     /src/target/release/points-service \
     /src/target/release/jetsaga /usr/local/bin/
# Puts NATS_USER and NATS_PASSWORD, percent-encoded, into NATS_URL (any characters), then runs the
# command. curl is for the compose healthchecks (`GET /health`).
COPY deploy/jetsaga-entrypoint.sh /usr/local/bin/jetsaga-entrypoint
ENTRYPOINT ["/bin/sh", "/usr/local/bin/jetsaga-entrypoint"]
USER nobody

# Builds the four service binaries and the jetsaga CLI once; compose runs each from this image with
# its own command (`jetsaga provision` provisions the streams as the NATS admin).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bins -p order-service -p payment-service -p stock-service -p voucher-service \
    -p jetsaga-cli

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/order-service /src/target/release/payment-service \
     /src/target/release/stock-service /src/target/release/voucher-service \
     /src/target/release/jetsaga /usr/local/bin/
USER nobody

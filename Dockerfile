# freellmapi: one static binary on an empty base image, for linux/amd64 and linux/arm64.
#   docker buildx build --platform linux/amd64,linux/arm64 -t freellmapi .
# The builder runs on the target platform (buildx emulates it when needed) and links a static musl binary,
# so the final image needs no libc, no CA bundle (TLS roots are compiled in) and no shell.

FROM rust:1-bookworm AS build
ARG TARGETARCH
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
RUN case "$TARGETARCH" in \
      amd64) echo x86_64-unknown-linux-musl > /rust-target ;; \
      arm64) echo aarch64-unknown-linux-musl > /rust-target ;; \
      *) echo "unsupported TARGETARCH: $TARGETARCH" >&2; exit 1 ;; \
    esac && rustup target add "$(cat /rust-target)"
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY static ./static
COPY examples ./examples
RUN cargo build --release --locked --bin freellmapi --target "$(cat /rust-target)" \
    && cp "target/$(cat /rust-target)/release/freellmapi" /freellmapi \
    && mkdir -p /data-skeleton

FROM scratch
COPY --from=build /freellmapi /freellmapi
COPY --from=build --chown=65532:65532 /data-skeleton /data
USER 65532:65532
ENV HOST=0.0.0.0 PORT=3001 DATABASE_URL=/data/freellmapi.db
VOLUME /data
EXPOSE 3001
STOPSIGNAL SIGTERM
ENTRYPOINT ["/freellmapi"]
CMD ["serve"]

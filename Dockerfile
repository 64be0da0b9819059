# syntax=docker/dockerfile:1
#
# boxoffice: one static binary in a distroless image. Every role is a command:
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#                --build-arg COMMIT=$(git rev-parse HEAD) -t boxoffice .
#   docker run --rm -p 8000:8000 -v boxoffice-data:/data boxoffice run   # embedded mode
#   docker run --rm boxoffice version
#
# docker-compose.yml runs the distributed roles (api, ingest, worker, listener) on
# PostgreSQL, Redis and RabbitMQ from this same image.

# ---- build: a static binary (modernc SQLite is pure Go, so CGO stays off) ------------
FROM golang:1.26 AS build
WORKDIR /src
# A module mirror of your own, e.g. --build-arg GOPROXY=https://goproxy.internal.
ARG GOPROXY=https://proxy.golang.org,direct
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly GOPROXY=${GOPROXY}
# Dependencies first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
        -o /out/boxoffice ./cmd/boxoffice \
 && mkdir -p /out/rootfs/data

# ---- runtime: no shell, no package manager, not root ---------------------------------
# distroless/static has CA certificates (for an https:// EXTERNAL_API_URL), tzdata and
# /etc/passwd with the nonroot user (65532), and nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/boxoffice /boxoffice
# /data, owned by nonroot, for the embedded mode's SQLite store (`boxoffice run` without
# DATABASE_WRITE_URL): a named volume mounted there inherits the ownership. The
# distributed roles never write to it. (Copying the parent's contents makes --chown
# apply to the directory itself, not only to what it holds.)
COPY --from=build --chown=65532:65532 /out/rootfs/ /
ENV DATA_DIR=/data HTTP_ADDR=:8000
USER 65532:65532
EXPOSE 8000
# No HEALTHCHECK here: it would apply to every role, and only some serve HTTP, on
# different ports. The image has no shell, curl or wget, so a probe must be the binary
# itself: docker-compose.yml declares one per service with `boxoffice healthcheck URL`.
ENTRYPOINT ["/boxoffice"]
CMD ["run"]

# syntax=docker/dockerfile:1
# The regmirror image: build with dev dependencies, run with production dependencies only.
#   docker build --build-arg COMMIT=$(git rev-parse HEAD) -t regmirror/regmirror:0.1.0 .
# Air-gapped: build from a base image in your own registry with --build-arg NODE_IMAGE=…, and
# `npm ci` from your npm mirror with --build-arg NPM_CONFIG_REGISTRY=… (README, "Build the image").
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Unset unless given: npm's own default registry. A build arg, not ENV, so it stays out of the image.
ARG NPM_CONFIG_REGISTRY
COPY package.json package-lock.json ./
# Scripts off: "prepare" would build before the sources are copied.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
ARG NPM_CONFIG_REGISTRY
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
# The commit `regmirror --version` reports: the image has no .git to read it from. Declared here, so
# a new commit does not invalidate the npm ci layer above.
ARG COMMIT=
# `regmirror` on PATH, as `npm link` gives a checkout: `kubectl exec … -- regmirror cache ls`.
RUN chmod 0755 dist/cli/main.js && ln -s /app/dist/cli/main.js /usr/local/bin/regmirror \
 && if [ -n "$COMMIT" ]; then echo "$COMMIT" > COMMIT; fi
# The default config, with the cache on the volume instead of next to the config file.
COPY mirror.config.json ./
RUN groupadd --system --gid 10001 regmirror \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin regmirror \
 && mkdir -p /etc/regmirror /var/lib/regmirror \
 && node -e "const fs=require('node:fs');const c=JSON.parse(fs.readFileSync('mirror.config.json','utf8'));c.storage={...c.storage,path:'/var/lib/regmirror'};fs.writeFileSync('/etc/regmirror/mirror.config.json',JSON.stringify(c,null,2)+'\n')" \
 && chown 10001:10001 /var/lib/regmirror
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# Commands run from here find the served config as their default `--config mirror.config.json`.
WORKDIR /etc/regmirror
VOLUME /var/lib/regmirror
EXPOSE 5000
# A small young generation, as `npm start` runs it: peak RSS while streaming (BENCHMARKS.md, "Peak RSS").
# NODE_OPTIONS rather than CMD, so a chart or operator overriding the command keeps it.
ENV NODE_OPTIONS=--max-semi-space-size=2
# glibc keeps freed memory in per-thread arenas and above a moving trim threshold: fixed, an idle
# mirror gives a burst's buffers back (BENCHMARKS.md, memory per client). As in `npm start`.
ENV MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072
# node is PID 1 on purpose: `serve` handles SIGTERM/SIGINT itself (stops accepting, lets transfers in
# flight finish for shutdownGrace, closes the stores, exits 0) and starts no child processes to reap.
CMD ["node", "/app/dist/cli/main.js", "serve", "--config", "/etc/regmirror/mirror.config.json"]

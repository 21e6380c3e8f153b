# syntax=docker/dockerfile:1
# Build: compile core/, plugins/ and hub.config.ts to JavaScript.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# A local package (better-sqlite3 on node:sqlite, for the Matrix crypto store) that npm ci links.
COPY plugins/matrix/crypto/better-sqlite3-shim ./plugins/matrix/crypto/better-sqlite3-shim
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json hub.config.ts ./
COPY core ./core
COPY plugins ./plugins
RUN npx tsc -p tsconfig.build.json && cp -r core/console/public dist/core/console/public

# Run: production dependencies only, the compiled hub and every plugin, as a non-root user.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY plugins/matrix/crypto/better-sqlite3-shim ./plugins/matrix/crypto/better-sqlite3-shim
# No install scripts run (--ignore-scripts); the one the project needs, patch-package applying patches/ (README, Operations), runs after.
COPY patches ./patches
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npx patch-package && npm cache clean --force
COPY --from=build /app/dist ./
COPY mapping.json ./
USER node
EXPOSE 9464 9465
# The port on the address HUB_HTTP_HOST binds (127.0.0.1 when it binds every address).
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "const h=process.env.HUB_HTTP_HOST||'0.0.0.0';const a=h==='0.0.0.0'||h==='::'?'127.0.0.1':h.includes(':')?'['+h+']':h;fetch('http://'+a+':'+(process.env.HUB_HTTP_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# Exec form, node itself as PID 1 (no shell, no npm): SIGTERM from `docker stop` reaches the hub, which
# handles it from its first moment (a graceful stop within 9 s, under docker's 10 s); it starts no child
# processes, so it needs no init to reap them.
# A small young generation (2 MB semi-spaces) and an old generation grown by 20 % (not V8's up to 4×): under load
# most of the RSS was garbage, not data (README, Performance: a matrix worker's peak 290 → 150 MB for a few per cent
# more CPU at steady load; the hub's under 100 MB).
# No allocation-site pretenuring: V8 otherwise moved the rendering's short-lived objects straight into the old
# generation, a third more full collections (README, Performance).
# On the command line, not in NODE_OPTIONS, which refuses --heap-growing-percent.
# Two malloc arenas instead of one per thread that allocates (V8's and libuv's helpers): 7-10 MB less RSS, the same CPU.
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT ["node", "--max-semi-space-size=2", "--heap-growing-percent=20", "--no-allocation-site-pretenuring", "core/cli/main.js"]
CMD ["start"]

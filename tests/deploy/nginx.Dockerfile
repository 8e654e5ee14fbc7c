# Debian's nginx (1.22 on bookworm), for `make deploy-test` where no registry has nginx's image.
# Runs deploy/nginx.conf as the official image runs its config: in the foreground, as root
# (its workers drop to www-data).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/*
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]

#!/bin/sh
# The entrypoint of the jetsaga image (Dockerfile): puts NATS_USER and NATS_PASSWORD into NATS_URL,
# percent-encoded, then runs the command (a service, or `jetsaga ...`).
#
# Compose cannot URL-encode what it substitutes, so docker-compose.yml passes the NATS password in
# its own variable rather than inside NATS_URL: a password with `@`, `:`, `/`, `%`, `#`, spaces or
# any other character then reaches the service unchanged (the saga kit percent-decodes the user and
# password of NATS_URL). NATS_URL may list several servers, comma-separated (a cluster); each gets
# the credentials. Without NATS_PASSWORD, NATS_URL is left as it is. PostgreSQL needs no such step:
# sqlx reads PGPASSWORD when DATABASE_URL has no password.
#
# Only POSIX sh and od (debian:bookworm-slim has them). scripts/check-deploy runs this script and
# checks that nats-server accepts the password it encodes.
set -eu

# Letters, digits and `-._~` stay as they are; every other byte becomes %XX.
percent_encode() {
    for hex in $(printf '%s' "$1" | od -An -v -tx1); do
        case "$hex" in
        3[0-9] | 4[1-9a-f] | 5[0-9a] | 6[1-9a-f] | 7[0-9a] | 2d | 2e | 5f | 7e)
            # shellcheck disable=SC2059 # the format is the octal escape of the byte
            printf "\\$(printf '%03o' "0x$hex")"
            ;;
        *) printf '%%%s' "$hex" ;;
        esac
    done
}

if [ -n "${NATS_PASSWORD+set}" ]; then
    if [ -z "${NATS_USER:-}" ]; then
        echo "jetsaga-entrypoint: NATS_PASSWORD is set but NATS_USER is not" >&2
        exit 2
    fi
    credentials="$(percent_encode "$NATS_USER"):$(percent_encode "$NATS_PASSWORD")"
    urls=""
    old_ifs=$IFS
    IFS=,
    for url in ${NATS_URL:-nats://127.0.0.1:4222}; do
        case "$url" in
        *://*@*)
            echo "jetsaga-entrypoint: NATS_URL already has credentials; set them in NATS_URL or in NATS_USER/NATS_PASSWORD, not both" >&2
            exit 2
            ;;
        *://*) url="${url%%://*}://$credentials@${url#*://}" ;;
        *) url="nats://$credentials@$url" ;;
        esac
        urls="${urls:+$urls,}$url"
    done
    IFS=$old_ifs
    NATS_URL=$urls
    export NATS_URL
    unset NATS_PASSWORD
fi

exec "$@"

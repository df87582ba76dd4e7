#!/bin/sh
# Runs nats-server (the command given) with every JETSAGA_NATS_*_PASSWORD in its environment turned
# into a quoted NATS config string. docker-compose.yml uses it as the entrypoint of the nats
# container, next to passwords-from-env.conf.
#
# nats-server parses the value of an environment variable that the config refers to
# (`password: $JETSAGA_NATS_ORDER_PASSWORD`) as a config value, not as text: an all-digit password
# becomes a number, and nats-server stops at start-up ("interface {} is int64, not string"); a
# password with a space, `#`, `,`, `}` or a quote would be cut short or refused. Quoted and escaped
# (`\` and `"`), every password is a string, whatever its characters (except a line break).
#
# Only POSIX sh and sed (the nats:2.10-alpine image has busybox). scripts/check-deploy runs this
# script with awkward passwords and checks that nats-server accepts each of them.
set -eu

quote() {
    printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

for name in $(env | sed -n 's/^\(JETSAGA_NATS_[A-Z0-9_]*_PASSWORD\)=.*/\1/p'); do
    value=$(printenv "$name")
    export "$name=$(quote "$value")"
done

exec "$@"

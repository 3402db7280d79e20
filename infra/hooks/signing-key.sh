#!/bin/sh
# azd preprovision hook: the queue-message signing key (P2C_MESSAGE_SIGNING_KEY), made once per
# azd environment and kept in it, so every `azd provision` writes the same value to the vault
# (a new value would make the messages already in the queues unverifiable).
set -eu
if ! azd env get-values | grep -q '^P2C_MESSAGE_SIGNING_KEY='; then
  azd env set P2C_MESSAGE_SIGNING_KEY "$(openssl rand -base64 48 | tr -d '\n')"
  echo "p2c: generated P2C_MESSAGE_SIGNING_KEY for this azd environment"
fi
# The live sync key (P2C_EVENTS_KEY), the same way: the webhook registered with it keeps working.
if ! azd env get-values | grep -q '^P2C_EVENTS_KEY='; then
  azd env set P2C_EVENTS_KEY "$(openssl rand -hex 32)"
  echo "p2c: generated P2C_EVENTS_KEY for this azd environment"
fi

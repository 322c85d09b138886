#!/usr/bin/env bash
# Recipe of the bundled `default` model (see scripts/make_model.sh); resumable: rerun to continue.
exec "$(dirname "$0")/make_model.sh" default "$@"

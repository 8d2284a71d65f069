#!/usr/bin/env bash
# Prints a hash of colorize's sources (colorize/, conf/, sweeps/: *.py, *.yaml), run at the repository
# root: gpu_prepare.sh stores it beside colorize's wheel, gpu_env.sh checks the device copy against it.
find colorize conf sweeps -type f \( -name '*.py' -o -name '*.yaml' \) | LC_ALL=C sort | xargs sha1sum | sha1sum | cut -c1-12

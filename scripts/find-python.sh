#!/usr/bin/env bash
# Print the first Python 3.11 interpreter on PATH (python3.11, then python3), or fail.
set -euo pipefail
for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
        command -v "$candidate"
        exit 0
    fi
done
echo "error: Tongban needs Python 3.11 (neither python3.11 nor python3 is 3.11)." >&2
echo "       On Debian 12: apt-get install python3 python3-venv" >&2
exit 1

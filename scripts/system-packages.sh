#!/usr/bin/env bash
# Make sure the Debian packages that the given needs call for are installed.
#
#   scripts/system-packages.sh [postgresql] [chromium] [fonts] [gettext] [venv]
#
# Each need is checked by a file or command, not by asking dpkg, so a machine that has the
# thing some other way is fine. When something is missing: as root, `apt-get update` once
# and `apt-get install` what is missing; as anyone else, fail naming the packages.
set -euo pipefail

missing=()
for need in "$@"; do
    case "$need" in
    postgresql)
        compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql) ;;
    chromium)
        [[ -x /usr/bin/chromium ]] || missing+=(chromium) ;;
    fonts)
        [[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]] || missing+=(fonts-wqy-microhei)
        # pdftoppm renders printed licenses to images in the PDF tests
        command -v pdftoppm >/dev/null || missing+=(poppler-utils) ;;
    gettext)
        command -v msgfmt >/dev/null 2>&1 || missing+=(gettext) ;;
    venv)  # Debian's python3 creates venvs only with python3-venv (ensurepip) installed
        python=$("$(dirname "$0")/find-python.sh")
        "$python" -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv) ;;
    *)
        echo "system-packages.sh: unknown need '$need'" >&2
        exit 2 ;;
    esac
done

((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "error: missing Debian packages: ${missing[*]}" >&2
    echo "       install them as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "==> installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"

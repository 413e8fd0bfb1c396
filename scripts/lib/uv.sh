# Sourced by the scripts: finds uv, or installs it from PyPI into .tools/ on a machine that has
# only Python, so the README's commands work on a fresh machine. Sets $UV.
UV_VERSION="0.13.9"

ensure_python() {
  local py
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 &&
      "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON=$(command -v "$py")
      return
    fi
  done
  echo "Backfill needs Python 3.11 or newer on PATH (python3 --version)." >&2
  exit 1
}

ensure_uv() {
  if command -v uv >/dev/null 2>&1; then
    UV=$(command -v uv)
    return
  fi
  local candidate
  for candidate in "$PWD/.tools/uv/bin/uv" "$PWD/.tools/uv-pip/bin/uv"; do
    if [ -x "$candidate" ]; then
      UV=$candidate
      return
    fi
  done
  ensure_python
  echo "uv not found: installing uv $UV_VERSION into .tools/ (once)" >&2
  if "$PYTHON" -m venv .tools/uv >/dev/null 2>&1; then
    .tools/uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
    UV="$PWD/.tools/uv/bin/uv"
  else  # a Debian Python without python3-venv still has pip
    rm -rf .tools/uv
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --target .tools/uv-pip \
      "uv==$UV_VERSION"
    UV="$PWD/.tools/uv-pip/bin/uv"
  fi
}

sync_workspace() {
  ensure_uv
  # Every service and library of the workspace, exactly as uv.lock pins them.
  "$UV" sync --all-packages --frozen --quiet
}

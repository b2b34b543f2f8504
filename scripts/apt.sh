# Sourced by scripts/setup.sh and scripts/test.sh: Debian's packages, installed the one
# way (sudo when not root, quietly, no prompts).

# apt_install WHY PACKAGE...: say why on stderr, then install the packages.
apt_install() {
  local why="$1"
  shift
  echo "$why" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

have_apt() {
  command -v apt-get >/dev/null 2>&1
}

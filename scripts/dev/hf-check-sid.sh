#!/usr/bin/env bash
# The issue-3 HF load check without a GPU machine: Debian sid packages torch (CPU) and transformers, so a sid
# chroot runs scripts/device/check_hf.py on what tuneforge writes. Run as root on a Debian/Ubuntu host, from any
# directory, after the native addon is built (make-hf-check.ts runs our engine on the tiny model and on every
# parity fixture model, from $TUNEFORGE_FIXTURES or ../shared/fixtures):
#   bash scripts/dev/hf-check-sid.sh          -> prints check_hf.py's JSON; exit code is check_hf.py's
# Env: HF_SID_ROOT (chroot, default /opt/hf-sid; made with debootstrap if missing), HF_SID_MIRROR (Debian mirror),
#      HF_CHECK_DIR (keep the check folder there instead of a temp dir),
#      HF_SID_PEFT_WHEELS (a folder with peft-*.whl and accelerate-*.whl, e.g. a local PyPI mirror's files: they
#      are unpacked into the chroot so the PeftModel check runs too).
# Sid has no python3-peft, so without HF_SID_PEFT_WHEELS the check runs with --without-peft (it then applies our
# adapter by forward hooks, as PEFT defines LoRA; it does that in both modes).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROOT=${HF_SID_ROOT:-/opt/hf-sid}
MIRROR=${HF_SID_MIRROR:-http://deb.debian.org/debian}
PACKAGES=(python3-transformers python3-torch python3-safetensors python3-tokenizers python3-numpy python3-jinja2)
log() { echo "hf-check-sid: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "needs root (debootstrap, chroot, mount)"; exit 2; }

# /proc inside the chroot for apt and torch; unmounted on exit only if this script mounted it.
mounted_proc=0
tmp_dir=""
cleanup() {
  [ "$mounted_proc" = 1 ] && umount "$ROOT/proc" || true
  [ -n "$tmp_dir" ] && rm -rf "$tmp_dir" || true
}
trap cleanup EXIT
mount_proc() {
  if ! mountpoint -q "$ROOT/proc"; then
    mount -t proc proc "$ROOT/proc"
    mounted_proc=1
  fi
}
# Pure-Python wheels unpacked here are put on PYTHONPATH only when HF_SID_PEFT_WHEELS is set.
extra=/opt/peft-extra
pythonpath=""
[ -z "${HF_SID_PEFT_WHEELS:-}" ] || pythonpath=$extra
in_root() { chroot "$ROOT" env LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive PYTHONPATH="$pythonpath" "$@"; }

if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  [ ! -e "$ROOT" ] || { log "$ROOT exists but is no Debian root; remove it or set HF_SID_ROOT"; exit 2; }
  command -v debootstrap >/dev/null || apt-get install -y debootstrap >&2
  log "debootstrap sid into $ROOT (a few minutes)"
  debootstrap --variant=minbase sid "$ROOT" "$MIRROR" >&2
fi
mount_proc
if ! in_root python3 -c "import torch, transformers, safetensors, tokenizers, numpy, jinja2" 2>/dev/null; then
  log "installing ${PACKAGES[*]} in $ROOT"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  # A sid snapshot's Release file can be past its Valid-Until; the packages are still the ones we want.
  echo 'Acquire::Check-Valid-Until "false";' >"$ROOT/etc/apt/apt.conf.d/99tuneforge-no-valid-until"
  in_root apt-get update >&2
  in_root apt-get install -y --no-install-recommends "${PACKAGES[@]}" >&2
fi
if [ -n "${HF_SID_PEFT_WHEELS:-}" ]; then
  wheels=("$HF_SID_PEFT_WHEELS"/peft-*.whl "$HF_SID_PEFT_WHEELS"/accelerate-*.whl)
  for w in "${wheels[@]}"; do [ -f "$w" ] || { log "no $w"; exit 2; }; done
  # peft's and accelerate's other imports come from sid.
  in_root apt-get install -y --no-install-recommends python3-psutil python3-yaml python3-tqdm python3-packaging >&2
  rm -rf "$ROOT$extra"
  mkdir -p "$ROOT$extra/wheels"
  cp "${wheels[@]}" "$ROOT$extra/wheels/"
  for w in "${wheels[@]}"; do in_root python3 -m zipfile -e "$extra/wheels/$(basename "$w")" "$extra"; done
fi

if [ -n "${HF_CHECK_DIR:-}" ]; then
  check_dir=$(realpath -m "$HF_CHECK_DIR")
  rm -rf "$check_dir"
else
  tmp_dir=$(mktemp -d)
  check_dir="$tmp_dir/hf-check"
fi
log "writing the check folder ($check_dir)"
# A fresh TUNEFORGE_HOME, as prepare.sh does, so a cached tiny model from older code cannot mask a writer bug.
home_dir=$(mktemp -d)
TUNEFORGE_HOME="$home_dir" npx tsx scripts/device/make-hf-check.ts "$check_dir" >&2
rm -rf "$home_dir"

# Inside the chroot under one fixed folder, replaced each run.
inside=/var/tmp/tuneforge-hf-check
rm -rf "$ROOT$inside"
mkdir -p "$ROOT$inside"
cp -r "$check_dir" "$ROOT$inside/hf-check"
cp scripts/device/check_hf.py "$ROOT$inside/check_hf.py"

flags=()
in_root python3 -c "import peft" 2>/dev/null || flags+=(--without-peft)
log "running check_hf.py ${flags[*]:-} (torch, transformers from sid)"
set +e
# transformers' weight-loading progress bar is \r-updated noise; everything else on stderr is kept.
in_root python3 "$inside/check_hf.py" "$inside/hf-check" "${flags[@]}" \
  2> >(tr '\r' '\n' | grep -v -e '^Loading weights' -e '^$' >&2)
rc=$?
set -e
exit "$rc"

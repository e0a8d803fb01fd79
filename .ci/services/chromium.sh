# Sourced by .ci/run: makes headless Chromium available to the browser test
# of examples/server, which reads OTP_CHROMIUM and fails (not skips) when CI
# is set and the browser is missing.
OTP_CHROMIUM=${OTP_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$OTP_CHROMIUM" ]; then
  step "installing Debian's chromium"
  command -v apt-get >/dev/null || die "chromium is missing at $OTP_CHROMIUM and apt-get is not available"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
    || die "apt-get install chromium failed"
fi
[ -x "$OTP_CHROMIUM" ] || die "chromium is still missing at $OTP_CHROMIUM"
# Prove it starts headless with the flags the test uses, in a throwaway profile.
chromium_profile=$(mktemp -d)
CLEANUP+=("rm -rf '$chromium_profile'")
if ! chromium_version=$(timeout 60 "$OTP_CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$chromium_profile" --version 2>/dev/null); then
  die "chromium at $OTP_CHROMIUM does not start headless"
fi
printf 'chromium: %s\n' "$chromium_version"
export OTP_CHROMIUM

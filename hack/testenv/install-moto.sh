#!/usr/bin/env bash
# Installs moto_server (pinned) into a venv in the cache. Idempotent: a
# completed install leaves a stamp file; a half-finished one is redone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

venv="$HAWSER_CACHE/moto-$MOTO_VERSION"

# One fix to moto's CloudFormation, so the test bed behaves as AWS does:
# moto 5.2.5 builds a stack's Outputs on the first read and never again
# after ExecuteChangeSet (its change set updates only the resources and
# parameters), so an Output computed from a parameter kept its old value
# after a parameter edit. Real CloudFormation recomputes Outputs on every
# update, as moto's own UpdateStack does; the patch makes the change set's
# apply do the same. Applied once, checked by a stamp.
patch_outputs() {
  "$venv/bin/python" - <<'PY'
import pathlib, moto.cloudformation.models as m
path = pathlib.Path(m.__file__)
text = path.read_text()
old = "    def apply(self) -> None:\n        self.stack.resource_map.update(self.template_dict, self.parameters)\n"
new = old + "        self.stack.output_map = self.stack._create_output_map()\n"
if new not in text:
    assert text.count(old) == 1, "moto's ChangeSet.apply is not the one this patch was written for"
    path.write_text(text.replace(old, new))
PY
  touch "$venv/.patched-outputs"
}

if [ -f "$venv/.installed" ]; then
  [ -f "$venv/.patched-outputs" ] || patch_outputs
  log "moto $MOTO_VERSION cached in $venv"
  exit 0
fi
python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
log "installing moto[server]==$MOTO_VERSION into $venv (about 75 s)"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
patch_outputs
touch "$venv/.installed"
log "moto in $venv"

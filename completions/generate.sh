#!/usr/bin/env bash
# Regenerate the shell completion scripts from the CLI itself (Typer's scripts, which call `advcl` back):
#   completions/generate.sh            (with advcl on PATH, e.g. after `. .venv/bin/activate`)
# Install: bash  `source completions/advcl.bash` (or copy it to ~/.local/share/bash-completion/completions/advcl)
#          zsh   copy completions/_advcl into a folder on $fpath, then `compinit`
#          fish  copy completions/advcl.fish to ~/.config/fish/completions/
set -euo pipefail
cd "$(dirname "$0")"
_ADVCL_COMPLETE=source_bash advcl > advcl.bash
_ADVCL_COMPLETE=source_zsh advcl > _advcl
_ADVCL_COMPLETE=source_fish advcl > advcl.fish
echo "wrote completions/advcl.bash, completions/_advcl, completions/advcl.fish" >&2

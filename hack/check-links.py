#!/usr/bin/env python3
"""Checks the relative links of Markdown files: each must name a file or
directory inside this repository and, with a #fragment into a Markdown
file, a heading of it (GitHub's anchors). Links in fenced code are not
links. Called by `hack/gen.sh --check`; prints every broken link."""
import os
import re
import sys

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
LINK = re.compile(r"\[[^\]]*\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)|^\[[^\]]+\]:\s+(\S+)", re.M)


def prose(text):
    """The text outside fenced code blocks and inline code spans."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            out.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def anchors(path):
    """GitHub's anchors for the headings of a Markdown file."""
    seen, result = {}, set()
    for line in prose(open(path, encoding="utf-8").read().replace("`", "")).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1)).lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        result.add(slug if n == 0 else f"{slug}-{n}")
    return result


def broken(md):
    base = os.path.dirname(os.path.realpath(md))
    for m in LINK.finditer(prose(open(md, encoding="utf-8").read())):
        target = m.group(1) or m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # https:, mailto: and the like
        path, _, fragment = target.partition("#")
        full = os.path.realpath(os.path.join(base, path)) if path else os.path.realpath(md)
        if full != ROOT and not full.startswith(ROOT + os.sep):
            yield f"{md}: {target}: outside the repository"
        elif not os.path.exists(full):
            yield f"{md}: {target}: no such file"
        elif fragment and full.endswith(".md") and fragment not in anchors(full):
            yield f"{md}: {target}: no heading #{fragment} in {os.path.relpath(full, ROOT)}"


problems = [p for md in sys.argv[1:] for p in broken(md)]
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)

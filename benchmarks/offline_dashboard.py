"""Make a published asv dashboard self-contained: its CDN scripts and stylesheet served from the folder itself.

asv 0.6.6's ``index.html`` (``asv/www/index.html``) loads jQuery, flot and its plugins, stupidtable, blueimp-md5
and bootstrap from public CDNs; without a network it shows only its "dependencies failed to load" page. ``install``
fetches the same libraries from npm (the registry's tarballs, verified by npm) into an ignored folder
(``.asv/js``); ``rewrite`` copies each into ``<html_dir>/vendor/<package>/...`` and points the page's tags at
those copies, so the folder opens from disk, or from any static host, with no network.

Where the local file is byte-for-byte the CDN's (the page's own Subresource Integrity hash matches: jQuery,
flot-orderbars, blueimp-md5, bootstrap), the tag keeps its ``integrity`` attribute and the browser still checks
it. Two differ, and their tags lose ``integrity`` (the rewrite prints which):

- flot 0.8.3: npm's package ships the unminified sources of the files cdnjs serves minified;
- stupidtable: npm has no 1.0.1 (cdnjs's); ``stupid-table-plugin@1.1.3`` is the same plugin's latest release,
  with the same ``$.fn.stupidtable`` API.

Usage::

    python benchmarks/offline_dashboard.py install           # npm install into .asv/js
    python benchmarks/offline_dashboard.py rewrite .asv/html # after asv publish
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / ".asv" / "js" / "node_modules"
VENDOR = "vendor"


@dataclass(frozen=True)
class Local:
    """The npm package (``name@version``) and the file in it that stands for one CDN URL."""

    package: str
    path: str

    @property
    def name(self) -> str:
        return self.package.rsplit("@", 1)[0]


_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
_FLOT = "flot@0.8.3"
# asv 0.6.6's CDN URLs (asv/www/index.html) and their npm counterparts
SOURCES: dict[str, Local] = {
    "https://code.jquery.com/jquery-3.3.1.min.js": Local("jquery@3.3.1", "dist/jquery.min.js"),
    f"{_CDNJS}/flot/0.8.3/jquery.flot.min.js": Local(_FLOT, "jquery.flot.js"),
    f"{_CDNJS}/flot/0.8.3/jquery.flot.time.min.js": Local(_FLOT, "jquery.flot.time.js"),
    f"{_CDNJS}/flot/0.8.3/jquery.flot.selection.min.js": Local(_FLOT, "jquery.flot.selection.js"),
    f"{_CDNJS}/flot/0.8.3/jquery.flot.categories.min.js": Local(_FLOT, "jquery.flot.categories.js"),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": Local(
        "flot-orderbars@1.0.0", "js/jquery.flot.orderBars.js"
    ),
    f"{_CDNJS}/stupidtable/1.0.1/stupidtable.min.js": Local("stupid-table-plugin@1.1.3", "stupidtable.min.js"),
    f"{_CDNJS}/blueimp-md5/2.19.0/js/md5.min.js": Local("blueimp-md5@2.19.0", "js/md5.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": Local(
        "bootstrap@3.1.1", "dist/js/bootstrap.min.js"
    ),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": Local(
        "bootstrap@3.1.1", "dist/css/bootstrap.min.css"
    ),
}
# files a copied file refers to by a relative path (bootstrap's CSS: ../fonts/glyphicons-halflings-regular.*)
COMPANIONS: dict[str, tuple[str, ...]] = {"bootstrap@3.1.1": ("dist/fonts",)}
PACKAGES: tuple[str, ...] = tuple(sorted({local.package for local in SOURCES.values()}))

_TAG = re.compile(r"<(?:script|link)\b[^>]*>")
_URL = re.compile(r'\b(?:src|href)="([^"]+)"')
_INTEGRITY = re.compile(r'\s+integrity="([^"]*)"')


def missing(node_modules: Path = NODE_MODULES) -> list[str]:
    """The files of ``SOURCES`` absent from ``node_modules`` (empty once ``install`` has run)."""
    return sorted(
        {
            str(node_modules / s.name / s.path)
            for s in SOURCES.values()
            if not (node_modules / s.name / s.path).is_file()
        }
    )


def install(prefix: Path = NODE_MODULES.parent) -> None:
    """``npm install`` the packages of ``SOURCES`` under ``prefix`` (no package.json or lock file written)."""
    subprocess.run(
        [
            "npm",
            "install",
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(prefix),
            *PACKAGES,
        ],
        check=True,
    )


def _matches(data: bytes, integrity: str) -> bool:
    """Whether ``data`` has one of the Subresource Integrity hashes in ``integrity`` ("sha256-... sha512-...")."""
    hashes = (token.partition("-") for token in integrity.split())
    return any(
        algorithm in ("sha256", "sha384", "sha512")
        and base64.b64encode(hashlib.new(algorithm, data).digest()).decode() == digest
        for algorithm, _, digest in hashes
    )


def rewrite(html_dir: Path, node_modules: Path = NODE_MODULES) -> list[str]:
    """Copy the local counterpart of every CDN URL of ``html_dir``'s index.html into ``html_dir/vendor`` and point
    its tag there; return the URLs whose copy is not the CDN's file (their tag's ``integrity`` dropped).

    Raises FileNotFoundError naming the files ``install`` has not fetched, and ValueError for a CDN URL the page
    loads that ``SOURCES`` does not know (another asv version's page)."""
    absent = missing(node_modules)
    if absent:
        raise FileNotFoundError(f"not installed (python benchmarks/offline_dashboard.py install): {', '.join(absent)}")
    index = html_dir / "index.html"
    substituted: list[str] = []

    def local_tag(match: re.Match[str]) -> str:
        tag = match.group(0)
        url = _URL.search(tag)
        if url is None or not url.group(1).startswith(("http://", "https://")):
            return tag
        source = SOURCES.get(url.group(1))
        if source is None:
            raise ValueError(f"{index}: no local copy known for {url.group(1)}")
        package = node_modules / source.name
        target = html_dir / VENDOR / source.name
        for companion in COMPANIONS.get(source.package, ()):
            shutil.copytree(package / companion, target / companion, dirs_exist_ok=True)
        (target / source.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package / source.path, target / source.path)
        tag = tag.replace(url.group(1), f"{VENDOR}/{source.name}/{source.path}")
        integrity = _INTEGRITY.search(tag)
        if integrity is not None and not _matches((target / source.path).read_bytes(), integrity.group(1)):
            substituted.append(url.group(1))
            tag = _INTEGRITY.sub("", tag)
        return tag

    index.write_text(_TAG.sub(local_tag, index.read_text()))
    return substituted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="offline_dashboard.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="npm install the dashboard's libraries into .asv/js")
    rewrite_parser = commands.add_parser("rewrite", help="point a published dashboard at local copies")
    rewrite_parser.add_argument("html_dir", type=Path, help="asv publish's folder (asv.conf.json's html_dir)")
    args = parser.parse_args(argv)
    if args.command == "install":
        install()
        return 0
    try:
        substituted = rewrite(args.html_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"offline_dashboard.py: error: {error}", file=sys.stderr)
        return 2
    for url in substituted:
        print(f"not the CDN's bytes (integrity dropped): {url} -> {SOURCES[url].package}/{SOURCES[url].path}")
    print(f"{args.html_dir / 'index.html'}: {len(SOURCES)} CDN files served from {args.html_dir / VENDOR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

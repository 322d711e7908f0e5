"""Offline attack resources: counter-fitted vectors (Mrkšić et al. 2016) checked as the paper checks them, WordNet
and NLTK data in NLTK's layout, and the status listing."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from advcl.attacks import counterfit, resources
from advcl.data.catalogue import data_dir
from advcl.errors import BadInput

LEXICAL = data_dir() / "lexical"
# Antonyms the counter-fitted space must keep out of the neighbourhoods of these words: the constraint lists' own,
# plus the failures of plain GloVe that motivated counter-fitting here (../shared/attacks.md: boring -> enjoyable).
PROBES = {"good": {"bad", "worse", "poor"}, "boring": {"interesting", "enjoyable", "exciting", "entertaining"},
          "cheap": {"expensive", "pricey"}}
CONSTRAINT_FILES = ("ppdb_synonyms.txt", "ppdb_antonyms.txt", "wordnet_antonyms.txt")


def listed_antonyms(word: str) -> set[str]:
    found = set()
    for name in CONSTRAINT_FILES[1:]:
        for line in (LEXICAL / name).read_text().splitlines():
            pair = line.split()
            if len(pair) >= 2 and word in pair[:2]:
                found.add(pair[1] if pair[0] == word else pair[0])
    return found


def neighbours(vectors: counterfit.WordVectors, word: str, k: int = 50) -> list[str]:
    """TextFooler's candidates: the k nearest words with cosine ≥ 0.5."""
    index = vectors.index()
    sims = vectors.vectors @ vectors.vectors[index[word]]
    return [vectors.words[j] for j in np.argsort(-sims)[1 : k + 1] if sims[j] >= 0.5]


def test_counter_fitting_on_the_frequent_words_separates_antonyms_and_raises_simlex(capsys):
    """The paper's check on GloVe's 20,000 most frequent words of the vocabulary (the full build: integration)."""
    words = counterfit.read_words(LEXICAL / "vocabulary.txt")
    words += [w for name in CONSTRAINT_FILES for w in (LEXICAL / name).read_text().split()]
    glove = counterfit.load_glove(words)
    glove = counterfit.WordVectors(glove.words[:20000], glove.vectors[:20000])  # GloVe's frequency order
    index = glove.index()
    synonyms = counterfit.read_pairs(LEXICAL / "ppdb_synonyms.txt", index)
    antonyms = np.unique(np.concatenate([counterfit.read_pairs(LEXICAL / n, index) for n in CONSTRAINT_FILES[1:]]),
                         axis=0)
    fitted, stats = counterfit.counter_fit(glove, synonyms, antonyms)
    fitted = counterfit.WordVectors(glove.words, fitted)
    assert np.allclose(np.linalg.norm(fitted.vectors, axis=1), 1, atol=1e-3)
    before, pairs = counterfit.simlex_spearman(glove, LEXICAL / "SimLex-999.txt")
    after, _ = counterfit.simlex_spearman(fitted, LEXICAL / "SimLex-999.txt")
    with capsys.disabled():
        print(f"\nSimLex-999 Spearman ({pairs} pairs, 20k words): GloVe-50d {before:.3f}, counter-fitted {after:.3f}")
    assert after > before + 0.05
    for word, common in PROBES.items():
        banned = (common | listed_antonyms(word)) & set(index)
        plain, fitted_near = neighbours(glove, word), neighbours(fitted, word)
        with capsys.disabled():
            print(f"{word}: GloVe {plain[:12]}\n{' ' * len(word)}  counter-fitted {fitted_near[:12]}")
        assert not banned & set(fitted_near), (word, banned & set(fitted_near))
    assert PROBES["boring"] & set(neighbours(glove, "boring"))  # the failure counter-fitting is there to fix


@pytest.mark.integration
def test_full_build_in_textattack_layout(tmp_path, capsys):
    """`advcl resources build` of the counter-fitted vectors, read back through TextAttack's own loader."""
    done = subprocess.run([sys.executable, "-m", "advcl", "resources", "build", "--only", "counter-fitted-vectors",
                           "--output", str(tmp_path), "--json"], capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / resources.PARAGRAMCF
    report = json.loads((folder / "counterfit.json").read_text())
    with capsys.disabled():
        print(f"\nSimLex-999 ({report['simlex999']['pairs']} pairs): GloVe-50d {report['simlex999']['glove']}, "
              f"counter-fitted {report['simlex999']['counter_fitted']}")
    assert report["simlex999"]["counter_fitted"] > report["simlex999"]["glove"] + 0.08
    words = pickle.load(open(folder / "wordlist.pickle", "rb"))
    matrix, nn = np.load(folder / "paragram.npy"), np.load(folder / "nn.npy")
    assert matrix.shape == (len(words), 50) and nn.shape == (len(words), resources.NEIGHBOURS + 1)
    assert (nn[:, 0] == np.arange(len(words))).all()
    fitted = counterfit.WordVectors(sorted(words, key=words.get), matrix)
    for word, common in PROBES.items():
        assert not (common | listed_antonyms(word)) & set(neighbours(fitted, word)), word
    # TextAttack's own loader reads the folder as its cache (no download); its neighbours are nn.npy's
    resources.build(tmp_path, data_dir(), only=("stopwords",), log=lambda m: None)  # `import textattack` reads them
    probe = ("import sys; from pathlib import Path; from advcl.attacks.resources import activate; "
             "activate(Path(sys.argv[1])); from textattack.shared import WordEmbedding; "
             "e = WordEmbedding.counterfitted_GLOVE_embedding(); "
             "print([e.index2word(i) for i in e.nearest_neighbours(e.word2index('cheap'), 5)])")
    loaded = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert loaded.returncode == 0, loaded.stderr
    assert "cheaper" in loaded.stdout


def test_nltk_data_in_nltk_layout(tmp_path):
    """Stopwords, universal tagset and the tagger converted to nltk ≥ 3.9's JSON, and WordNet copied from Debian."""
    import nltk

    wanted = ("stopwords", "universal-tagset", "pos-tagger") + (("wordnet",) if has_wordnet() else ())
    done = resources.build(tmp_path, data_dir(), only=wanted, log=lambda m: None)
    assert set(done) == set(wanted) and set(done.values()) == {"built"}
    state = {row["name"]: row["status"] for row in resources.status(tmp_path)}
    assert {name: state[name] for name in wanted} == dict.fromkeys(wanted, "present")
    assert state["counter-fitted-vectors"] == "missing"
    nltk.data.path.insert(0, str(tmp_path / "nltk_data"))
    try:
        tagged = nltk.tag.PerceptronTagger().tag("the film is a boring mess".split())
        assert [nltk.tag.map_tag("en-ptb", "universal", tag) for _, tag in tagged] == \
            ["DET", "NOUN", "VERB", "DET", "ADJ", "NOUN"]
        if has_wordnet():
            from nltk.corpus.reader.wordnet import WordNetCorpusReader

            wordnet = WordNetCorpusReader(str(tmp_path / "nltk_data/corpora/wordnet"), None)
            assert wordnet.synsets("dog")[0].lexname() == "noun.animal"
            assert "good" in {lemma.name() for s in wordnet.synsets("well") for lemma in s.lemmas()}
    finally:
        nltk.data.path.remove(str(tmp_path / "nltk_data"))


def has_wordnet() -> bool:
    return (resources.DEBIAN_WORDNET / "index.sense").is_file()


def test_lexnames_from_the_man_page():
    if not resources.DEBIAN_LEXNAMES.is_file():
        pytest.skip(f"Debian's wordnet-base is not installed ({resources.WORDNET_PACKAGES})")
    lines = resources.lexnames().splitlines()
    assert len(lines) == 45 and lines[0] == "00\tadj.all\t3" and lines[44] == "44\tadj.ppl\t3"
    assert "29\tverb.body\t2" in lines


def test_missing_wordnet_names_the_debian_packages(tmp_path):
    with pytest.raises(BadInput, match="apt-get install --no-install-recommends wordnet-base wordnet-sense-index"):
        resources.build(tmp_path, data_dir(), only=("wordnet",), wordnet_dir=tmp_path / "nowhere", log=lambda m: None)


def test_status_says_where_it_looked(tmp_path):
    rows = {row["name"]: row for row in resources.status(tmp_path)}
    assert set(rows) == set(resources.RESOURCE_NAMES)
    assert rows["counter-fitted-vectors"]["status"] == "missing"
    assert rows["counter-fitted-vectors"]["where"] == str(tmp_path / resources.PARAGRAMCF)
    assert rows["sentence-encoder"]["status"] == "present"
    with pytest.raises(BadInput, match=r"textfooler needs resources missing from .*counter-fitted-vectors.*"
                                       r"advcl resources build"):
        resources.require(tmp_path, ("stopwords", "counter-fitted-vectors"), "textfooler")

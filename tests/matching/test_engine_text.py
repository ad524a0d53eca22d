"""Featuriser: different wordings of one capability meet in one taxonomy concept."""

from services.matching.engine.text import Featuriser


class TestFeaturiser:
    def setup_method(self) -> None:
        self.f = Featuriser()

    def keys(self, phrase: str) -> list[str]:
        return [k for k, _ in self.f.phrase(phrase)]

    def test_synonyms_share_a_concept(self) -> None:
        assert self.keys("looking for freight forwarding") == ["c:freight"]
        assert self.keys("we deliver cargo transport") == ["t:deliv", "c:freight"]
        assert self.keys("Shipping goods") == ["c:freight"]

    def test_inflections_are_stemmed(self) -> None:
        assert self.keys("data pipeline") == self.keys("data pipelines") == ["c:data_engineering"]

    def test_leftover_words_become_terms_and_keep_their_words(self) -> None:
        feats = self.f.phrase("freight forwarding to Poland")
        assert feats == (("c:freight", "freight forwarding"), ("t:poland", "poland"))

    def test_longest_phrase_wins(self) -> None:
        assert self.keys("temperature controlled logistics") == ["c:cold_chain"]

    def test_regions_and_industries_are_canonical(self) -> None:
        assert self.f.region("Germany") == self.f.region("DACH") == "dach"
        assert self.f.industry("Life Sciences") == "pharma"
        assert self.f.region("Atlantis") == "atlantis"

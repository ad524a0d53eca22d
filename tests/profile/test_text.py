"""Text analysis behind tag clouds and search: stems, phrases, stop words, languages."""

from __future__ import annotations

from services.profile.text import analyze, guess_language, index_text, search_tokens


class TestAnalyze:
    def test_markup_and_everyday_filler_are_never_terms(self) -> None:
        post = (
            '<p>Really, <b>cold chain</b> help please</p><script>var x = "onerror"</script>'
            '<img src="a.png" onerror="steal()"> check it on Thursday'
        )
        surfaces = {terms for key in analyze(post).counts for terms in key.split()}
        for word in ("script", "img", "src", "onerror", "steal", "var", "thursday", "realli"):
            assert word not in surfaces
        assert analyze(post).counts["cold chain"] == 1

    def test_stems_join_word_forms_and_keep_the_common_surface(self) -> None:
        terms = analyze("Refrigerated trucks. Refrigerated truck. Refrigeration.")
        assert terms.counts["truck"] == 2
        assert terms.surface("truck") in {"trucks", "truck"}
        assert terms.surface("refriger") == "refrigerated"

    def test_phrases_never_span_stop_words_or_punctuation(self) -> None:
        terms = analyze("Cold chain audits. Chain of custody, custody transfer")
        assert terms.counts["cold chain"] == 1 and terms.counts["chain audit"] == 1
        assert "audit chain" not in terms.counts  # across the full stop
        assert "chain custodi" not in terms.counts  # across "of"
        assert "custodi custodi" not in terms.counts  # across the comma

    def test_stop_words_numbers_and_links_are_not_terms(self) -> None:
        terms = analyze("The 2024 plan is on https://example.com/plan and we will share it")
        assert set(terms.counts) == {"plan", "share"}

    def test_hyphenated_words_form_a_phrase(self) -> None:
        assert analyze("cross-docking").counts["cross dock"] == 1


class TestLanguages:
    def test_german_text_uses_german_stop_words_and_stemmer(self) -> None:
        text = "Die Kühlkette ist für die Pharmaindustrie wichtig, und wir prüfen die Kühlketten."
        assert guess_language(text.lower().split()) == "german"
        terms = analyze(text)
        assert terms.counts["kuhlkett"] == 2
        assert not {"die", "ist", "für", "und", "wir"} & set(terms.counts)

    def test_french_and_spanish_stop_words(self) -> None:
        assert not {"les", "des", "pour"} & set(analyze("Les entrepôts pour des palettes").counts)
        assert not {"los", "para", "con"} & set(
            analyze("Los almacenes para palets con frío").counts
        )

    def test_english_is_the_default(self) -> None:
        assert guess_language(["forecasting", "models"]) == "english"


class TestSearchTokens:
    def test_tokens_are_folded_stems(self) -> None:
        assert search_tokens("Zürich logistics") == ["zurich", "logist"]
        assert index_text("Anna Müller", "cold chains") == "anna muller cold chain"

"""Text rules: normalising, refusing control/bidi characters, showing them safely, folding and
Swedish / natural ordering."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kundreg_tui.domain.keys import derived_columns, search_key
from kundreg_tui.domain.text import (
    FORBIDDEN_MULTI_LINE,
    FORBIDDEN_SINGLE_LINE,
    describe_char,
    fold,
    forbidden_chars,
    natural_key,
    normalise,
    swedish_key,
    visible,
)

C0_EXCEPT_TAB_LF = [chr(c) for c in range(0x00, 0x20) if c not in (0x09, 0x0A)]
C1 = [chr(c) for c in range(0x80, 0xA0)]
BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
ALWAYS_FORBIDDEN = [*C0_EXCEPT_TAB_LF, "\x7f", *C1, *BIDI]

# Text that is likely to hit the interesting cases: controls, bidi, combining marks, Swedish.
_interesting = st.sampled_from(
    [*ALWAYS_FORBIDDEN, "\t", "\n", "\r\n", " ", "\u00a0", "\u0301", "\u030a", "\u0308", "å", "Å",
     "ä", "Ä", "ö", "Ö", "ü", "Ü", "é", "æ", "ø", "ß", "ﬀ", "ℌ", "İ", "ǅ", "ẞ", "a", "Z", "1", "0",
     "-", "%", "_", "\\", "[", "/", "\u2028", "\ufeff", "\u200f", "😀"]
)
texts = st.lists(st.one_of(_interesting, st.characters()), max_size=30).map("".join) | st.text()


# ------------------------------------------------------------------------------ normalise
class TestNormalise:
    def test_none_and_empty(self) -> None:
        assert normalise(None) == ""
        assert normalise("") == ""
        assert normalise("   \t ") == ""

    def test_trims(self) -> None:
        assert normalise("  Anna Berg \t") == "Anna Berg"
        assert normalise("\n Anna\n", multiline=True) == "Anna"

    def test_nfc(self) -> None:
        decomposed = "O\u0308sterlund"  # Ö as O + combining diaeresis
        assert normalise(decomposed) == "Österlund"
        assert len(normalise(decomposed)) == len("Österlund")
        assert normalise("A\u030asa") == "Åsa"

    def test_crlf_and_cr_become_lf_in_multiline(self) -> None:
        assert normalise("rad 1\r\nrad 2\rrad 3", multiline=True) == "rad 1\nrad 2\nrad 3"

    def test_multiline_trims_line_ends_keeps_inner_lines(self) -> None:
        assert normalise("c/o Berg   \r\nStorgatan 1  ", multiline=True) == "c/o Berg\nStorgatan 1"
        assert normalise("a\n\nb", multiline=True) == "a\n\nb"

    def test_single_line_keeps_inner_cr_so_that_it_is_refused(self) -> None:
        # A single-line value is not silently rewritten: an inner line break is refused later.
        assert "\r" in normalise("a\r\nb") or "\n" in normalise("a\r\nb")
        assert forbidden_chars(normalise("a\r\nb"))

    @given(texts, st.booleans())
    def test_idempotent(self, value: str, multiline: bool) -> None:
        once = normalise(value, multiline=multiline)
        assert normalise(once, multiline=multiline) == once

    @given(texts, st.booleans())
    def test_result_is_nfc_and_trimmed(self, value: str, multiline: bool) -> None:
        out = normalise(value, multiline=multiline)
        assert unicodedata.is_normalized("NFC", out)
        assert out == out.strip()
        if multiline:
            assert "\r" not in out


# ------------------------------------------------------------------------------ forbidden chars
class TestForbiddenChars:
    @pytest.mark.parametrize("ch", ALWAYS_FORBIDDEN, ids=describe_char)
    @pytest.mark.parametrize("multiline", [False, True])
    def test_always_forbidden(self, ch: str, multiline: bool) -> None:
        assert forbidden_chars(f"a{ch}b", multiline=multiline) == [ch]

    @pytest.mark.parametrize("ch", ["\t", "\n"])
    def test_tab_and_newline_only_in_multiline(self, ch: str) -> None:
        assert forbidden_chars(f"a{ch}b") == [ch]
        assert forbidden_chars(f"a{ch}b", multiline=True) == []

    def test_cr_is_forbidden_even_in_multiline(self) -> None:
        # normalise turns CR into LF first; a bare CR reaching the check is a control character.
        assert forbidden_chars("a\rb", multiline=True) == ["\r"]

    @pytest.mark.parametrize(
        "value",
        ["Anna Berg", "Åsa Öberg-Ärlig", "c/o Berg", "Straße 5", "Zoë", "€ 100", "日本", "😀",
         "\u00a0", "\u200f", "\u2028"],
    )
    def test_ordinary_text_passes(self, value: str) -> None:
        assert forbidden_chars(value) == []

    def test_all_reported_in_order(self) -> None:
        assert forbidden_chars("\x1b[31m\u202eX\x7f") == ["\x1b", "\u202e", "\x7f"]

    def test_sets(self) -> None:
        assert set(ALWAYS_FORBIDDEN) <= FORBIDDEN_MULTI_LINE
        assert FORBIDDEN_SINGLE_LINE == FORBIDDEN_MULTI_LINE | {"\t", "\n"}
        assert "\t" not in FORBIDDEN_MULTI_LINE and "\n" not in FORBIDDEN_MULTI_LINE

    def test_describe_char(self) -> None:
        assert describe_char("\x1b") == "U+001B"
        assert describe_char("\u202e") == "U+202E"


# ------------------------------------------------------------------------------ visible
class TestVisible:
    def test_osc_title_sequence_is_defused(self) -> None:
        out = visible("\x1b]0;X\x07")
        assert "␛" in out
        assert "\x1b" not in out and "\x07" not in out
        assert "X" in out

    def test_plain_text_unchanged(self) -> None:
        for value in ["", "Anna Berg", "Österlund AB", "Ann [/] Berg", "[bold]x[/bold]"]:
            assert visible(value) == value
            assert visible(value, keep_newlines=True) == value

    def test_pictures(self) -> None:
        assert visible("\x00") == "␀"
        assert visible("\x7f") == "␡"
        assert visible("\t") == "␉"
        assert visible("\x85") == "<U+0085>"
        assert visible("a\u202eb") == "a<U+202E>b"
        assert visible("\u2066") == "<U+2066>"

    def test_newlines(self) -> None:
        assert "\n" not in visible("rad 1\nrad 2")
        assert visible("rad 1\nrad 2", keep_newlines=True) == "rad 1\nrad 2"
        assert visible("a\tb", keep_newlines=True) == "a\tb"
        assert "\x1b" not in visible("a\n\x1b[2J", keep_newlines=True)

    @given(texts)
    def test_output_never_contains_a_forbidden_char(self, value: str) -> None:
        assert forbidden_chars(visible(value)) == []
        assert forbidden_chars(visible(value, keep_newlines=True), multiline=True) == []

    @given(st.text(alphabet=st.characters(exclude_characters=ALWAYS_FORBIDDEN + ["\t", "\n"])))
    def test_safe_text_is_left_alone(self, value: str) -> None:
        assert visible(value) == value


# ------------------------------------------------------------------------------ fold
class TestFold:
    @pytest.mark.parametrize(
        ("value", "folded"),
        [("Österlund", "osterlund"), ("ÅSA", "asa"), ("Ärla", "arla"), ("Zoë", "zoe"),
         ("Müller", "muller"), ("Straße", "strasse"), ("Søren", "soren"), ("Æble", "aeble"),
         ("Łódź", "lodz"), ("ANNA@EXEMPEL.SE", "anna@exempel.se"), ("556677-8899", "556677-8899"),
         ("O\u0308sterlund", "osterlund")],
    )
    def test_examples(self, value: str, folded: str) -> None:
        assert fold(value) == folded

    @given(texts)
    @example("ℌ")  # a capital that only compatibility decomposition reveals
    @example("\u2126")  # OHM SIGN
    @example("ǅ")
    @example("İ")
    def test_idempotent(self, value: str) -> None:
        assert fold(fold(value)) == fold(value)

    def test_query_with_compatibility_capital_finds_name(self) -> None:
        # search_key stores fold(name) and the query is folded too: both must meet.
        assert fold("ℌamn") == fold("hamn") == "hamn"

    @given(texts)
    def test_case_insensitive(self, value: str) -> None:
        assert fold(value.upper()) == fold(value.lower()) == fold(value) or not value.isascii()

    @given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzåäöÅÄÖABCXYZéü -"))
    def test_swedish_letters_fold_to_ascii(self, value: str) -> None:
        assert fold(value).isascii()


# ------------------------------------------------------------------------------ swedish order
class TestSwedishKey:
    def test_alphabet_tail(self) -> None:
        letters = list("abcdefghijklmnopqrstuvwxyzåäö")
        assert sorted(letters, key=swedish_key) == letters
        upper = [c.upper() for c in letters]
        assert sorted(reversed(upper), key=swedish_key) == upper

    def test_names(self) -> None:
        names = ["Östen", "Åsa", "Zlatan", "Ärla", "Anna", "Xerxes", "Yngve", "Bo"]
        assert sorted(names, key=swedish_key) == [
            "Anna", "Bo", "Xerxes", "Yngve", "Zlatan", "Åsa", "Ärla", "Östen"]

    def test_case_insensitive(self) -> None:
        assert swedish_key("ÅSA") == swedish_key("åsa")
        assert sorted(["bo", "Anna", "Bertil"], key=swedish_key) == ["Anna", "Bertil", "bo"]

    def test_u_umlaut_is_y(self) -> None:
        assert swedish_key("Ülla") == swedish_key("Ylla")
        assert sorted(["Zäta", "Ülla", "Xena", "Yvonne"], key=swedish_key) == [
            "Xena", "Ülla", "Yvonne", "Zäta"]

    def test_accents_dropped_and_danish_norwegian(self) -> None:
        assert swedish_key("Éric") == swedish_key("eric")
        assert swedish_key("Ærø") == swedish_key("ärö")
        assert swedish_key("Ø") == swedish_key("Ö")
        assert sorted(["Öberg", "Zorn", "Østergaard"], key=swedish_key)[0] == "Zorn"

    def test_decomposed_input(self) -> None:
        assert swedish_key("A\u030asa") == swedish_key("Åsa")
        assert swedish_key("O\u0308sten") == swedish_key("Östen")

    def test_byte_order_equals_code_point_order(self) -> None:
        # The key is compared byte-wise by the databases (C collation, SQLite BINARY).
        names = ["Östen", "Åsa", "Zlatan", "Ärla", "Anna", "Ülla", "Éva", "zz", "ab 2", "ab 10"]
        keys = [swedish_key(n) for n in names]
        assert sorted(keys) == sorted(keys, key=lambda k: k.encode("utf-8"))

    @given(texts)
    def test_casefold_invariant(self, value: str) -> None:
        assert swedish_key(value.casefold()) == swedish_key(value)


# ------------------------------------------------------------------------------ natural order
class TestNaturalKey:
    def test_numbers(self) -> None:
        values = ["10", "2", "1001", "100", "1", "20"]
        assert sorted(values, key=natural_key) == ["1", "2", "10", "20", "100", "1001"]

    def test_prefixed(self) -> None:
        values = ["K-10", "K-2", "K-1", "A-100"]
        assert sorted(values, key=natural_key) == ["A-100", "K-1", "K-2", "K-10"]
        assert natural_key("K-2") < natural_key("K-10")

    def test_leading_zeros_compare_by_value(self) -> None:
        assert natural_key("007") == natural_key("7")
        assert natural_key("007") < natural_key("10")

    def test_numbers_before_letters(self) -> None:
        assert natural_key("99999") < natural_key("A")

    def test_swedish_letters(self) -> None:
        assert sorted(["Ö1", "Å1", "Z1"], key=natural_key) == ["Z1", "Å1", "Ö1"]

    @given(st.integers(min_value=0, max_value=10**18), st.integers(min_value=0, max_value=10**18))
    def test_integer_order(self, a: int, b: int) -> None:
        ka, kb = natural_key(str(a)), natural_key(str(b))
        assert (ka < kb) == (a < b)
        assert (ka == kb) == (a == b)

    @given(st.integers(min_value=0, max_value=10**32 - 1), st.integers(min_value=0, max_value=10**32 - 1))
    @example(10**20, 10**20 - 1)
    @example(int("9" * 21), int("1" * 25))
    def test_long_numbers_order(self, a: int, b: int) -> None:
        # A customer number may have 32 digits.
        ka, kb = natural_key(str(a)), natural_key(str(b))
        assert (ka < kb) == (a < b)
        assert (natural_key(f"K-{a}") < natural_key(f"K-{b}")) == (a < b)

    def test_twenty_digit_form_is_stable(self) -> None:
        # Stored keys (and the demo's SQL, printf('%020d')) rely on this form.
        assert natural_key("1002") == "00000000000000001002"
        assert natural_key("K-7") == "k-00000000000000000007"

    @given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6))
    def test_prefixed_integer_order(self, a: int, b: int) -> None:
        assert (natural_key(f"K-{a}") < natural_key(f"K-{b}")) == (a < b)


# ------------------------------------------------------------------------------ keys
class TestKeys:
    def test_derived_columns(self) -> None:
        values = {"number": "1002", "name": "Österlund AB", "city": "Åre",
                  "email": "Info@Osterlund.SE", "org_number": "556677-8899"}
        d = derived_columns(values)
        assert d["number_key"] == natural_key("1002")
        assert d["name_key"] == swedish_key("Österlund AB")
        assert d["city_key"] == swedish_key("Åre")
        assert d["email_key"] == "info@osterlund.se"
        key = d["search_key"]
        assert key is not None
        assert "osterlund ab" in key and "1002" in key and "5566778899" in key
        assert "556677-8899" in key

    def test_no_email_is_null(self) -> None:
        assert derived_columns({"name": "x", "email": ""})["email_key"] is None

    @settings(max_examples=50)
    @given(texts)
    def test_search_key_finds_folded_name(self, name: str) -> None:
        assert fold(name) in search_key({"name": name})
